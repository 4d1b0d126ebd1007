"""Staff codes over HTTP, as the shop makes them (issue 16): the local stack's API Gateway, the
template's functions, moto and the Nuki sandbox, which applies Nuki's weekday restrictions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.e2e.helpers import Shop, Sim, eventually, new_id

pytestmark = pytest.mark.e2e


def _get(shop: Shop, staff_code_id: str) -> dict[str, Any]:
    r = shop.call("GET", f"/staff-codes/{staff_code_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def _wait(shop: Shop, staff_code_id: str, status: str, timeout: float = 20.0) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        code = _get(shop, staff_code_id)
        return code if code["status"] == status else None

    return dict(eventually(reached, timeout, f"staff code {staff_code_id} {status}"))


def _today_bit() -> int:
    """Nuki's bit of today (UTC, the sandbox lock's zone): 64 Monday ... 1 Sunday."""
    return 64 >> datetime.now(UTC).weekday()


def test_a_staff_code_made_changed_rotated_and_removed_over_http(shop: Shop, sim: Sim) -> None:
    locks = [sim.add_lock(), sim.add_lock()]
    room_id = shop.put_room(locks)
    staff_code_id = new_id("staff")
    # Given a staff code for every day but today
    body = {"staffCodeId": staff_code_id, "name": "Anna (cleaning)", "roomIds": [room_id]}
    body["allowedWeekDays"] = 127 - _today_bit()
    r = shop.call("POST", "/staff-codes", body)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["smartlockIds"] == []
    assert created["roomIds"] == [room_id]
    assert [lk["smartlockId"] for lk in created["locks"]] == locks
    code = _wait(shop, staff_code_id, "active")
    pin = code["pin"]
    assert code["validUntil"] is None  # no last date: until it is removed
    # Then it is on both locks and does not open today
    for lock_id in locks:
        assert int(pin) in sim.codes(lock_id)
        assert not sim.keypad(lock_id, pin)
    # And the same request again is answered 200 with the same staff code; another one is a 409
    again = shop.call("POST", "/staff-codes", body)
    assert again.status_code == 200, again.text
    assert again.json()["pin"] == pin
    assert shop.call("POST", "/staff-codes", {**body, "name": "Someone else"}).status_code == 409
    # And it is listed with the staff codes, never with the bookings
    listed = shop.call("GET", "/staff-codes?limit=100").json()
    assert staff_code_id in [c["staffCodeId"] for c in listed["items"]]
    bookings = shop.call("GET", "/bookings?limit=100").json()
    assert all(not str(b["bookingId"]).startswith("staff") for b in bookings["items"])
    # When the shop adds today
    r = shop.call("PATCH", f"/staff-codes/{staff_code_id}", {"allowedWeekDays": 127})
    assert r.status_code == 200, r.text
    eventually(lambda: all(sim.keypad(lock_id, pin) for lock_id in locks), 20, "the PIN opens both doors today")
    _wait(shop, staff_code_id, "active")
    # And the entries are the staff code's activity
    eventually(
        lambda: shop.call("GET", f"/staff-codes/{staff_code_id}/activity").json()["items"],
        20,
        "the staff code's entries recorded",
    )
    # When it rotates its PIN: the new one opens both doors, the old one neither
    r = shop.call("POST", f"/staff-codes/{staff_code_id}/rotate-pin")
    assert r.status_code == 202, r.text
    eventually(lambda: _get(shop, staff_code_id)["pin"] != pin, 30, "the new PIN confirmed on both locks")
    new = _get(shop, staff_code_id)["pin"]
    eventually(lambda: all(int(pin) not in sim.codes(lock_id) for lock_id in locks), 30, "the old PIN removed")
    assert all(sim.keypad(lock_id, new) for lock_id in locks)
    # When it is removed: off both locks, `removed`
    r = shop.call("DELETE", f"/staff-codes/{staff_code_id}")
    assert r.status_code == 200, r.text
    assert r.json()["status"] in ("removing", "removed")
    _wait(shop, staff_code_id, "removed", timeout=30)
    assert all(int(new) not in sim.codes(lock_id) for lock_id in locks)
    assert not sim.keypad(locks[0], new)
    # And a removed staff code cannot be changed
    assert shop.call("PATCH", f"/staff-codes/{staff_code_id}", {"name": "x"}).status_code == 409


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"allowedFromTime": 720, "allowedUntilTime": 480}, "allowedUntilTime"),
        ({"allowedWeekDays": 0}, "allowedWeekDays"),
        ({"allowedFromDate": "2028-01-10", "allowedUntilDate": "2028-01-05"}, "allowedUntilDate"),
        ({"smartlockIds": [999999001]}, "smartlockIds"),
        ({"unknownField": 1}, "unknownField"),
    ],
)
def test_bad_staff_codes_are_422s_naming_the_field_and_nothing_reaches_nuki(
    shop: Shop, sim: Sim, extra: dict[str, Any], field: str
) -> None:
    lock = sim.add_lock()
    room_id = shop.put_room([lock])
    staff_code_id = new_id("bad")
    before = len(sim.requests())
    r = shop.call("POST", "/staff-codes", {"staffCodeId": staff_code_id, "name": "X", "roomIds": [room_id], **extra})
    assert r.status_code == 422, r.text
    assert field in r.text
    assert shop.call("GET", f"/staff-codes/{staff_code_id}").status_code == 404
    writes = [q for q in sim.requests()[before:] if q.get("method") in ("PUT", "POST", "DELETE")]
    assert not [q for q in writes if "/auth" in str(q.get("path"))]
    assert sim.codes(lock) == []
