"""Stays start and end at the same few times of day: each booking's code goes on a fixed share of
PROVISION_SPREAD_MINUTES before its lead, and comes off a fixed share of EXPIRY_SPREAD_MINUTES after
its stay, so that a fleet never writes to Nuki all in the same second (issue 17)."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from local.kit.services import engine
from staykey.adapters.schedules import Scheduler
from staykey.core.models import BookingIn
from staykey.services.bookings import Bookings, expire_at, lead_for, removal_at, spread
from staykey.services.sync import Sync
from staykey.settings import Settings, load_settings
from tests.conftest import World


def _engine(world: World, settings: Settings) -> tuple[Bookings, Sync]:
    """The shop's commands and the sync engine over the world's store, fakes and clock, with `settings`."""
    return engine(settings, world.store, lambda: world.nuki, Scheduler(settings), world.jobs, world.mail, world.clock)  # type: ignore[arg-type, return-value]


def _stay(booking_id: str, check_in: str, check_out: str) -> BookingIn:
    guest = {"name": "Ada Lovelace", "email": "ada@example.org"}
    body = {"bookingId": booking_id, "roomId": "room-12", "guest": guest, "checkIn": check_in, "checkOut": check_out}
    return BookingIn.model_validate(body)


def test_each_booking_gets_its_own_fixed_share_of_the_spread(world: World) -> None:
    settings = load_settings({**os.environ, "PROVISION_SPREAD_MINUTES": "60", "EXPIRY_SPREAD_MINUTES": "10"})
    bookings, _ = _engine(world, settings)
    world.add_room()
    created = [bookings.create(_stay(f"B-{n}", "2026-12-20", "2026-12-22"))[0] for n in range(40)]
    leads = [b.validFrom - b.provisionAt for b in created]
    # Every code goes on between 72 h and 73 h before the stay, the same booking always at the same time
    assert all(timedelta(hours=72) <= lead < timedelta(hours=73) for lead in leads)
    assert len({lead.total_seconds() // 60 for lead in leads}) > 20  # spread over the hour
    assert lead_for(settings, "B-7") == lead_for(settings, "B-7")
    # Every stay ends on time (its end schedule fires at validUntil: the booking turns revoking),
    # and its removal goes to Nuki between the end and ten minutes after it
    assert all(expire_at(settings, b) == b.validUntil for b in created)
    ends = [removal_at(settings, b, hot=500) - b.validUntil for b in created]
    assert all(timedelta(0) <= end < timedelta(minutes=10) for end in ends)
    assert len({end.total_seconds() // 10 for end in ends}) > 20  # spread over the ten minutes
    # in full for a fleet with 500 stays running; a few check-outs are not spread (a small fleet's
    # keep the whole 15 minutes a code may stay after its end for the faults of its removal)
    assert all(removal_at(settings, b, hot=5) - b.validUntil < timedelta(seconds=6) for b in created)
    assert all(removal_at(settings, b, hot=None) == b.validUntil for b in created)
    assert 0 <= spread("B-1", "expire") < 1


def test_a_stay_ends_on_time_and_its_removal_goes_to_nuki_at_its_share_of_the_spread(world: World) -> None:
    """The end schedule turns the booking `revoking` at validUntil; nothing reaches Nuki until its
    share of EXPIRY_SPREAD_MINUTES, then the code comes off and the booking is `revoked`. The
    reconciler meanwhile calls the waiting code pending, not drift to heal."""
    from staykey.core.models import BookingStatus

    settings = load_settings({**os.environ, "EXPIRY_SPREAD_MINUTES": "10"})
    bookings, sync = _engine(world, settings)
    world.sync = sync
    world.store.update_watch_state(hot=800)  # the watcher's last count: a fleet's running stays
    world.add_room()
    b, _ = bookings.create(_stay("B-7", "2026-11-27", "2026-11-29"))
    world.settle()
    assert bookings.get("B-7").status == BookingStatus.ACTIVE
    due = removal_at(settings, b, hot=800)
    assert b.validUntil < due < b.validUntil + timedelta(minutes=10)
    world.jobs.drain()
    world.clock.set(b.validUntil)
    ended = bookings.expire("B-7")
    assert ended.status == BookingStatus.REVOKING  # on time
    assert all(lock.retryAt == due for lock in ended.locks)
    assert world.nuki.count("delete_auth") + world.nuki.count("delete_auths") == 0
    assert [delay for _, delay in world.jobs.jobs] == [pytest.approx((due - b.validUntil).total_seconds())]
    world.settle()
    done = bookings.get("B-7")
    assert done.status == BookingStatus.REVOKED
    assert world.clock.now() >= due
    assert world.nuki.codes(17000001) == {}
    assert world.nuki.codes(17000099) == {}
