"""Found by an adversarial review of issue 15, with the sandbox as Nuki; each test failed before its
fix, on every path that can meet the problem (the shop's command, a webhook, a read-back, the
reconciler).

* defect 5: a booking moved between rooms that name the same lock with another `access` (keypad,
  app) kept the old kind on that lock: the new one never went on;
* defect 7: remote access (`remoteAllowed`) switched on in Nuki Web on one of StayKey's
  authorizations went unnoticed: StayKey's authorizations are exactly what it asked for.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from staykey.adapters.mail import render
from staykey.core.models import BookingStatus
from staykey.nuki import SmartlockAuth
from tests.functional.access.conftest import DOOR, ENTRANCE, Rig, stay_body

APP_DOOR = {
    "name": "Room 12",
    "smartlockIds": [DOOR, ENTRANCE],
    "timezone": "Europe/Berlin",
    "access": {str(DOOR): "app", str(ENTRANCE): "keypad"},
}
KEYPAD_DOOR = {"name": "Room 14", "smartlockIds": [DOOR, ENTRANCE], "timezone": "Europe/Berlin"}


def kinds(rig: Rig, lock_id: int) -> list[int]:
    return sorted(int(a["type"]) for a in rig.auths(lock_id))


@pytest.mark.parametrize(("first", "then"), [("room-12", "room-14"), ("room-14", "room-12")])
def test_a_move_to_a_room_that_opens_a_lock_another_way_swaps_what_is_on_it(rig: Rig, first: str, then: str) -> None:
    rig.add_lock(DOOR, keypad=True)
    rig.add_lock(ENTRANCE, keypad=True)
    assert rig.api("PUT", "/rooms/room-12", APP_DOOR)[0] == 201
    assert rig.api("PUT", "/rooms/room-14", KEYPAD_DOOR)[0] == 201
    assert rig.api("POST", "/bookings", stay_body(first))[0] == 201
    rig.settle()
    old_kind, new_kind = (0, 13) if first == "room-12" else (13, 0)
    assert kinds(rig, DOOR) == [old_kind]
    old_id = rig.auths(DOOR)[0]["id"]
    before = len(rig.writes())
    # The shop moves the booking: the door is opened the other way in the new room
    status, body = rig.api("PATCH", "/bookings/B-1001", {"roomId": then})
    assert status == 200, body
    assert {(lk["smartlockId"], lk["access"]) for lk in body["locks"]} == {
        (DOOR, "app" if new_kind == 0 else "keypad"),
        (ENTRANCE, "keypad"),
    }
    rig.settle()
    booking = rig.booking()
    assert booking.status == BookingStatus.ACTIVE
    assert kinds(rig, DOOR) == [new_kind]  # the new kind, and only it
    assert kinds(rig, ENTRANCE) == [13]
    # The new one went on before the old one came off, and the guest was told what applies now
    writes = rig.writes()[before:]
    create = next(n for n, w in enumerate(writes) if w in (f"PUT /smartlock/{DOOR}/auth", "PUT /smartlock/auth"))
    assert writes.index(f"DELETE /smartlock/{DOOR}/auth/{old_id}") > create
    text = render(rig.mail.sent[-1]).text
    assert ("Nuki app" in text) == (new_kind == 0)
    inside = booking.validFrom + timedelta(hours=1)
    if new_kind == 13:
        assert rig.types_pin(DOOR, booking.pin, inside)
    else:
        assert rig.opens_with_app(DOOR, booking.account.accountUserId or 0, inside)


def remote_on(rig: Rig, lock_id: int) -> dict[str, Any]:
    """Someone switches remote access on for our code in Nuki Web (a DEVICE_AUTHS goes out)."""
    (ours,) = [a for a in rig.auths(lock_id) if a["name"] == rig.booking().authName]
    changed = dict(rig.sandbox.sandbox.change_auth_elsewhere(lock_id, str(ours["id"]), remote_allowed=True))
    rig.clock.advance(seconds=30)
    # Stamped on StayKey's clock (the sandbox keeps its own, the test moves StayKey's)
    changed["updateDate"] = rig.clock.now().isoformat().replace("+00:00", "Z")
    return changed


def keypad_booking(rig: Rig) -> None:
    rig.add_lock(ENTRANCE, keypad=True)
    room = {"name": "Room 12", "smartlockIds": [ENTRANCE], "timezone": "Europe/Berlin"}
    assert rig.api("PUT", "/rooms/room-12", room)[0] == 201
    assert rig.api("POST", "/bookings", stay_body())[0] == 201
    rig.settle()
    assert rig.booking().status == BookingStatus.ACTIVE


@pytest.mark.parametrize("path", ["webhook", "read-back", "reconciler"])
def test_remote_access_switched_on_in_nuki_web_is_drift_and_switched_off_again(rig: Rig, path: str) -> None:
    keypad_booking(rig)
    changed = remote_on(rig, ENTRANCE)
    if path == "webhook":
        after = rig.sync.observe_webhook(SmartlockAuth.model_validate(changed), deleted=False)
        assert after == "ours"
        assert rig.booking().status != BookingStatus.ACTIVE  # not as booked any more: not told so
    elif path == "read-back":
        rig.sync.process("B-1001", read_back=False, read_locks={ENTRANCE})
        assert rig.booking().status != BookingStatus.ACTIVE
    else:
        plan = rig.reconciler.reconcile_lock(ENTRANCE)
        assert ("wrong_window", changed["id"]) in {(a.drift.value, a.auth_id) for a in plan.actions}
    rig.settle()
    assert rig.booking().status == BookingStatus.ACTIVE
    (code,) = rig.auths(ENTRANCE)
    assert (code["id"], code["remoteAllowed"], code["enabled"]) == (changed["id"], False, True)


def test_a_webhook_that_does_not_say_whether_remote_access_is_on_is_read_back(rig: Rig) -> None:
    keypad_booking(rig)
    changed = remote_on(rig, ENTRANCE)
    changed.pop("remoteAllowed")
    rig.sync.observe_webhook(SmartlockAuth.model_validate(changed), deleted=False)
    rig.settle()
    (code,) = rig.auths(ENTRANCE)
    assert code["remoteAllowed"] is False
    assert rig.booking().status == BookingStatus.ACTIVE
