"""The console's "Rotate PIN" calls Bookings.rotate_pin(booking_id) -> Booking, which the lead
engineer is adding. Until it exists the console shows the action as not available yet (and audits
that); this test turns green, and its strict xfail red, the day it lands."""

from __future__ import annotations

import pytest

from staykey.core.models import BookingStatus
from tests.conftest import World
from tests.functional.search.conftest import book


@pytest.mark.xfail(strict=True, reason="Bookings.rotate_pin is the lead engineer's (issue 13); not merged yet")
def test_rotate_pin_gives_a_new_pin_confirmed_on_every_lock(wired: World) -> None:
    wired.add_room("room-12", locks=(17000001, 17000099))
    old = book(wired, "B-1", "2026-11-27", "2026-11-29")
    wired.settle()
    rotated = wired.bookings.rotate_pin("B-1")  # type: ignore[attr-defined]
    wired.settle()
    after = wired.store.get_booking("B-1")
    assert after is not None
    assert rotated.pin != old.pin
    assert after.status == BookingStatus.ACTIVE
    assert all(int(after.pin) in wired.nuki.codes(lock) for lock in (17000001, 17000099))
