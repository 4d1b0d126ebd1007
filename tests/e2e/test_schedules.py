"""What schedules do: the code leaves the locks at validUntil by itself, and a booking far in the
future stays `scheduled` with nothing on its locks."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

import pytest

from tests.e2e.helpers import Shop, Sim, now

pytestmark = pytest.mark.e2e


def test_code_is_removed_at_valid_until_by_the_schedule(shop: Shop, sim: Sim) -> None:
    lock = sim.add_lock()
    room_id = shop.put_room([lock])
    start = now().replace(microsecond=0)
    booking = shop.book(room_id, start - timedelta(minutes=1), start + timedelta(seconds=10))
    booking_id, pin = booking["bookingId"], booking["pin"]
    valid_until = datetime.fromisoformat(booking["validUntil"].replace("Z", "+00:00"))

    shop.wait_status(booking_id, "active", timeout=10)
    assert sim.keypad(lock, pin) is True

    revoked = shop.wait_status(booking_id, "revoked", timeout=25)
    # The one-time schedule fired at validUntil (at() has whole seconds), not before.
    assert datetime.now(UTC) >= valid_until - timedelta(seconds=1)
    assert revoked["locks"][0]["status"] == "removed"
    assert sim.codes(lock) == []
    assert sim.keypad(lock, pin) is False


def test_far_future_booking_stays_scheduled_with_nothing_on_the_lock(shop: Shop, sim: Sim) -> None:
    lock = sim.add_lock()
    room_id = shop.put_room([lock])
    check_in = date.today() + timedelta(days=30)
    booking = shop.book(room_id, check_in.isoformat(), (check_in + timedelta(days=3)).isoformat())
    assert booking["status"] == "scheduled"
    assert booking["pin"]

    time.sleep(2)
    again = shop.get(booking["bookingId"])
    assert again["status"] == "scheduled"
    assert [lk["status"] for lk in again["locks"]] == ["pending"]
    state = sim.state(lock)
    assert state["auths"] == []
    assert state["pending"] == []
