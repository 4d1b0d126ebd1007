"""Cancellation and a room change, as the shop makes them."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from local.stack import LocalStack, html_to_text
from tests.e2e.helpers import Shop, Sim, eventually

pytestmark = pytest.mark.e2e


def test_cancelling_an_active_booking_removes_its_code(shop: Shop, sim: Sim) -> None:
    locks = [sim.add_lock(), sim.add_lock()]
    room_id = shop.put_room(locks)
    booking = shop.book_now(room_id)
    shop.wait_status(booking["bookingId"], "active", timeout=10)

    r = shop.call("DELETE", f"/bookings/{booking['bookingId']}")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"

    def gone() -> bool:
        current = shop.get(booking["bookingId"])
        return all(lk["status"] == "removed" for lk in current["locks"]) and not any(sim.codes(x) for x in locks)

    eventually(gone, 10, "the code removed from both locks")
    assert shop.get(booking["bookingId"])["status"] == "cancelled"
    assert not sim.keypad(locks[0], booking["pin"])


def test_cancelling_a_scheduled_booking_touches_no_lock(shop: Shop, sim: Sim) -> None:
    lock = sim.add_lock()
    room_id = shop.put_room([lock])
    check_in = date.today() + timedelta(days=40)
    booking = shop.book(room_id, check_in.isoformat(), (check_in + timedelta(days=2)).isoformat())
    assert booking["status"] == "scheduled"

    r = shop.call("DELETE", f"/bookings/{booking['bookingId']}")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    assert sim.state(lock)["auths"] == []
    assert sim.state(lock)["pending"] == []


def test_room_change_moves_the_code_and_tells_the_guest(stack: LocalStack, shop: Shop, sim: Sim) -> None:
    old_locks = [sim.add_lock(), sim.add_lock()]
    new_lock = sim.add_lock()
    old_room = shop.put_room(old_locks)
    new_room = shop.put_room([new_lock])
    booking = shop.book_now(old_room)
    booking_id = booking["bookingId"]
    shop.wait_status(booking_id, "active", timeout=10)

    r = shop.call("PATCH", f"/bookings/{booking_id}", {"roomId": new_room})
    assert r.status_code == 200, r.text
    assert r.json()["roomId"] == new_room

    def moved() -> dict[str, object] | None:
        current = shop.get(booking_id)
        locks = {lk["smartlockId"]: lk["status"] for lk in current["locks"]}
        if current["status"] == "active" and locks == {new_lock: "active"}:
            return current
        return None

    moved_booking = eventually(moved, 15, "the booking active on the new room's lock only")
    pin = str(moved_booking["pin"])
    assert int(pin) in sim.codes(new_lock)
    for lock in old_locks:
        assert sim.codes(lock) == []
    assert sim.keypad(new_lock, pin) is True
    assert sim.keypad(old_locks[0], pin) is False

    def told_twice() -> list[dict[str, object]]:
        emails = [e for e in stack.sent_emails() if booking_id in html_to_text(str(e.get("body", "")))]
        return emails if len(emails) >= 2 else []

    emails = eventually(told_twice, 10, "a second email after the room change")
    assert len(emails) == 2
    assert f"{pin[:3]} {pin[3:]}" in html_to_text(str(emails[-1]["body"]))
