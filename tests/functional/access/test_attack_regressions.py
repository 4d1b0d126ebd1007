"""Found by an adversarial run against issue 15 (app access): each test failed before its fix.

* a retry of a booking whose guest's account user Nuki refused made no call and failed again;
* an app entry naming only the guest's account user went to a cancelled booking of the same stay
  (cancelled, then booked again), which was checked in, and not to the live one;
* an app user someone else added under our authorization's name had their entries attributed to
  the guest (and checked them in).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from staykey.core.models import BookingStatus
from staykey.nuki import errors as nuki_errors
from tests.functional.access.conftest import DOOR, Rig, stay_body

APP_ROOM = {"name": "Room A", "smartlockIds": [DOOR], "timezone": "Europe/Berlin", "access": {str(DOOR): "app"}}


def app_auths(rig: Rig, lock_id: int) -> list[dict[str, Any]]:
    return [a for a in rig.auths(lock_id) if a["type"] == 0]


def test_retry_after_a_refused_account_user(rig: Rig, monkeypatch: Any) -> None:
    rig.add_lock(DOOR, keypad=False)
    assert rig.api("PUT", "/rooms/room-a", APP_ROOM)[0] == 201
    real = rig.nuki.create_account_user
    state = {"refuse": True}

    def maybe(body: Any) -> Any:
        if state["refuse"]:
            raise nuki_errors.NukiAuthError("Forbidden: the token may not manage account users", status=403)
        return real(body)

    monkeypatch.setattr(rig.nuki, "create_account_user", maybe)
    assert rig.api("POST", "/bookings", stay_body("room-a"))[0] == 201
    rig.settle()
    b = rig.booking()
    # the operator fixes the token's rights, then retries the failed booking
    state["refuse"] = False
    b = rig.bookings.retry("B-1001")
    rig.settle()
    b = rig.booking()
    assert b.status == BookingStatus.ACTIVE


def test_account_user_only_entry_after_cancel_and_rebook(rig: Rig) -> None:
    rig.add_lock(DOOR, keypad=False)
    assert rig.api("PUT", "/rooms/room-a", APP_ROOM)[0] == 201
    assert rig.api("POST", "/bookings", stay_body("room-a", "B-1001"))[0] == 201
    rig.settle()
    rig.bookings.cancel("B-1001")
    rig.settle()
    assert rig.api("POST", "/bookings", stay_body("room-a", "B-1002"))[0] == 201
    rig.settle()
    b2 = rig.booking("B-1002")
    assert b2.status == BookingStatus.ACTIVE
    user = b2.account.accountUserId
    inside = b2.validFrom + timedelta(hours=3)
    entry = {"action": 1, "trigger": 5, "state": 0, "accountUserId": user, "name": "Ada", "date": inside.isoformat()}
    assert rig.http.post(f"{rig.sandbox.url}/_sim/smartlocks/{DOOR}/log", json=entry, timeout=5).status_code == 201
    rig.at(inside + timedelta(minutes=1))
    rig.poller.poll()
    _, a1 = rig.api("GET", "/bookings/B-1001/activity")
    _, a2 = rig.api("GET", "/bookings/B-1002/activity")
    assert a1["items"] == []
    assert len(a2["items"]) == 1


def test_foreign_app_auth_named_like_ours_is_not_attributed(rig: Rig) -> None:
    rig.add_lock(DOOR, keypad=False)
    assert rig.api("PUT", "/rooms/room-a", APP_ROOM)[0] == 201
    assert rig.api("POST", "/bookings", stay_body("room-a"))[0] == 201
    rig.settle()
    b = rig.booking()
    other = rig.http.post(
        f"{rig.sandbox.url}/_sim/account-users", json={"email": "mallory@example.org", "name": "M"}, timeout=5
    ).json()
    rig.http.post(
        f"{rig.sandbox.url}/_sim/smartlocks/{DOOR}/auths",
        json={"type": 0, "name": b.authName, "accountUserId": other["accountUserId"]},
        timeout=5,
    )
    rig.reconciler.reconcile_lock(DOOR)
    rig.settle()
    assert len(app_auths(rig, DOOR)) == 2, "foreign app user touched"
    inside = b.validFrom + timedelta(hours=1)
    assert rig.opens_with_app(DOOR, other["accountUserId"], inside)
    rig.at(inside + timedelta(minutes=1))
    rig.poller.poll()
    _, act = rig.api("GET", "/bookings/B-1001/activity")
    assert act["items"] == [], "someone else's app entry attributed to the guest (and checked them in)"
