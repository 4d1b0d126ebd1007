"""Stays start and end at the same few times of day: each booking's code goes on a fixed share of
PROVISION_SPREAD_MINUTES before its lead, and comes off a fixed share of EXPIRY_SPREAD_MINUTES after
its stay, so that a fleet never writes to Nuki all in the same second (issue 17)."""

from __future__ import annotations

import os
from datetime import timedelta

from local.kit.services import engine
from staykey.adapters.schedules import Scheduler
from staykey.core.models import BookingIn
from staykey.services.bookings import expire_at, lead_for, spread
from staykey.settings import load_settings
from tests.conftest import World


def test_each_booking_gets_its_own_fixed_share_of_the_spread(world: World) -> None:
    settings = load_settings({**os.environ, "PROVISION_SPREAD_MINUTES": "60", "EXPIRY_SPREAD_MINUTES": "10"})
    bookings, _ = engine(
        settings,
        world.store,
        lambda: world.nuki,
        Scheduler(settings),
        world.jobs,
        world.mail,
        world.clock,  # type: ignore[arg-type, return-value]
    )
    world.add_room()
    body = {
        "roomId": "room-12",
        "guest": {"name": "Ada Lovelace", "email": "ada@example.org"},
        "checkIn": "2026-12-20",
        "checkOut": "2026-12-22",
    }
    created = [bookings.create(BookingIn.model_validate({**body, "bookingId": f"B-{n}"}))[0] for n in range(40)]
    leads = [b.validFrom - b.provisionAt for b in created]
    # Every code goes on between 72 h and 73 h before the stay, the same booking always at the same time
    assert all(timedelta(hours=72) <= lead < timedelta(hours=73) for lead in leads)
    assert len({lead.total_seconds() // 60 for lead in leads}) > 20  # spread over the hour
    assert lead_for(settings, "B-7") == lead_for(settings, "B-7")
    # And every removal between the end of the stay and ten minutes after it
    ends = [expire_at(settings, b) - b.validUntil for b in created]
    assert all(timedelta(0) <= end < timedelta(minutes=10) for end in ends)
    assert 0 <= spread("B-1", "expire") < 1
