"""Rooms without a keypad: the guest opens with the Nuki app (an app authorization, type 0, for
the guest's Nuki account user), with the sandbox as Nuki. From booking to removal and the privacy
purge; a room that mixes app and keypad; keypad codes linked to the guest's account user; locks
refused at room set-up; bad input refused with nothing written at Nuki."""

from __future__ import annotations

from datetime import timedelta

import pytest

from staykey.adapters.mail import render
from staykey.core.models import BookingStatus
from tests.functional.access.conftest import DOOR, ENTRANCE, Rig, stay_body

APP_ROOM = {"name": "Room 12", "smartlockIds": [DOOR], "timezone": "Europe/Berlin", "access": {str(DOOR): "app"}}
MIXED_ROOM = {
    "name": "Room 12",
    "smartlockIds": [DOOR, ENTRANCE],
    "timezone": "Europe/Berlin",
    "access": {str(DOOR): "app", str(ENTRANCE): "keypad"},
}


def app_auths(rig: Rig, lock_id: int) -> list[dict[str, object]]:
    return [a for a in rig.auths(lock_id) if a["type"] == 0]


def test_an_app_access_room_from_booking_to_removal_and_the_purge(rig: Rig) -> None:
    # Given a door without a keypad that guests open with the Nuki app
    rig.add_lock(DOOR, keypad=False)
    assert rig.api("PUT", "/rooms/room-12", APP_ROOM)[0] == 201
    # When the shop books a stay that starts tomorrow
    status, body = rig.api("POST", "/bookings", stay_body())
    assert status == 201, body
    assert body["locks"] == [{"smartlockId": DOOR, "status": "pending", "access": "app"}]
    # Then StayKey created the guest's Nuki account user (name, email, language) and invited them
    users = rig.account_users()
    assert [(u["email"], u["name"], u["language"]) for u in users] == [("ada@example.org", "Ada Lovelace", "en")]
    user_id = users[0]["accountUserId"]
    assert rig.writes()[:2] == ["PUT /account/user", f"PUT /smartlock/{DOOR}/auth"]
    # ... and it is confirmed by read-back, not by Nuki's 204: only then active and the guest told
    assert body["status"] == "provisioning"
    assert rig.mail.sent == []
    rig.settle()
    booking = rig.booking()
    assert booking.status == BookingStatus.ACTIVE
    (auth,) = app_auths(rig, DOOR)
    assert (auth["accountUserId"], auth["name"], auth["enabled"]) == (user_id, booking.authName, True)
    assert auth["allowedFromDate"].startswith("2026-11-27T14:00:00")
    assert "code" not in auth
    (notice,) = rig.mail.sent
    text = render(notice).text
    assert "Nuki app" in text
    assert "invitation" in text
    assert "ada@example.org" in text
    assert booking.pin not in text.replace(" ", "")  # no PIN for a door without a keypad
    assert render(notice).subject == "Your access to Room 12"
    # When the guest opens the door with the app during the stay, the entry is attributed
    inside = booking.validFrom + timedelta(hours=1)
    assert rig.opens_with_app(DOOR, user_id, inside)
    rig.at(inside + timedelta(minutes=1))
    rig.poller.poll()
    status, activity = rig.api("GET", "/bookings/B-1001/activity")
    assert [(e["action"], e["trigger"], e["success"]) for e in activity["items"]] == [("unlock", "app", True)]
    assert rig.booking().firstEntryAt == inside
    # When the guest checks out early, the app authorization is removed and confirmed gone
    assert rig.api("POST", "/bookings/B-1001/checkout")[0] == 200
    rig.settle()
    assert rig.booking().status == BookingStatus.REVOKED
    assert app_auths(rig, DOOR) == []
    assert not rig.opens_with_app(DOOR, user_id, inside + timedelta(minutes=5))
    # And when the guest's data is purged, the account user StayKey created is deleted at Nuki
    rig.at(booking.validUntil + timedelta(days=30, minutes=1))
    report = rig.accounts.purge()
    assert report.deleted == [user_id]
    assert f"DELETE /account/user/{user_id}" in rig.writes()
    rig.settle()
    import time

    time.sleep(0.1)  # Nuki deletes asynchronously
    assert rig.accounts.purge().confirmed == [user_id]
    assert rig.account_users() == []
    assert rig.store.get_account_user(user_id) is None


def test_the_purge_waits_for_the_retention_and_never_deletes_an_account_user_it_did_not_create(rig: Rig) -> None:
    # Given a guest the operator's Nuki account knows already (added in Nuki Web, not by StayKey)
    rig.add_lock(DOOR, keypad=False)
    known = rig.http.post(
        f"{rig.sandbox.url}/_sim/account-users", json={"email": "ada@example.org", "name": "Ada"}, timeout=5
    ).json()
    assert rig.api("PUT", "/rooms/room-12", APP_ROOM)[0] == 201
    assert rig.api("POST", "/bookings", stay_body())[0] == 201
    rig.settle()
    booking = rig.booking()
    assert booking.account.accountUserId == known["accountUserId"]  # found by email, not created
    assert "PUT /account/user" not in rig.writes()
    assert rig.api("POST", "/bookings/B-1001/checkout")[0] == 200
    rig.settle()
    # When the retention has passed, the purge leaves it alone
    rig.at(booking.validUntil + timedelta(days=31))
    assert rig.accounts.purge().deleted == []
    assert [u["accountUserId"] for u in rig.account_users()] == [known["accountUserId"]]
    assert not any(w.startswith("DELETE /account/user") for w in rig.writes())


def test_a_created_account_user_waits_for_every_booking_of_the_guest(rig: Rig) -> None:
    rig.add_lock(DOOR, keypad=False)
    assert rig.api("PUT", "/rooms/room-12", APP_ROOM)[0] == 201
    assert rig.api("POST", "/bookings", stay_body())[0] == 201
    second = stay_body(booking_id="B-1002", checkIn="2026-12-20", checkOut="2026-12-22")
    assert rig.api("POST", "/bookings", second)[0] == 201
    rig.settle()
    first = rig.booking()
    assert rig.api("POST", "/bookings/B-1001/checkout")[0] == 200
    rig.settle()
    # The second stay's access goes on the lock 72 hours ahead: it uses the same account user
    second_booking = rig.booking("B-1002")
    rig.at(second_booking.provisionAt)
    rig.bookings.start_provisioning("B-1002")
    rig.settle()
    assert rig.booking("B-1002").account.accountUserId == first.account.accountUserId
    # The first stay's retention passed, the second stay's has not: nothing is deleted
    rig.at(first.validUntil + timedelta(days=31))
    assert rig.accounts.purge().deleted == []
    assert len(rig.account_users()) == 1
    # Once the second stay is over too and its guest data expired, the account user goes
    rig.at(second_booking.validUntil + timedelta(minutes=5))
    rig.bookings.expire("B-1002")
    rig.settle()
    rig.at(second_booking.validUntil + timedelta(days=30, minutes=10))
    assert rig.accounts.purge().deleted == [first.account.accountUserId]


def test_a_mixed_room_app_on_the_room_door_keypad_at_the_entrance(rig: Rig) -> None:
    rig.add_lock(DOOR, keypad=False)
    rig.add_lock(ENTRANCE, keypad=True)
    assert rig.api("PUT", "/rooms/room-12", MIXED_ROOM)[0] == 201
    status, body = rig.api("POST", "/bookings", stay_body())
    assert status == 201, body
    # The booking's answer says per lock which the guest uses
    assert {(lk["smartlockId"], lk["access"]) for lk in body["locks"]} == {(DOOR, "app"), (ENTRANCE, "keypad")}
    rig.settle()
    booking = rig.booking()
    assert booking.status == BookingStatus.ACTIVE
    assert len(app_auths(rig, DOOR)) == 1
    codes = [a for a in rig.auths(ENTRANCE) if a["type"] == 13]
    assert [(c["code"], c.get("accountUserId")) for c in codes] == [(int(booking.pin), None)]
    (notice,) = rig.mail.sent
    text = render(notice).text
    assert f"{booking.pin[:3]} {booking.pin[3:]}" in text  # the PIN for the entrance
    assert "Nuki app" in text  # and the app for the room door
    # Both kinds of entry are the guest's
    inside = booking.validFrom + timedelta(hours=2)
    assert rig.types_pin(ENTRANCE, booking.pin, inside)
    assert rig.opens_with_app(DOOR, booking.account.accountUserId or 0, inside + timedelta(minutes=1))
    rig.at(inside + timedelta(minutes=5))
    rig.poller.poll()
    _, activity = rig.api("GET", "/bookings/B-1001/activity")
    assert sorted(e["trigger"] for e in activity["items"]) == ["app", "keypad"]
    # And both go at the end
    assert rig.api("POST", "/bookings/B-1001/checkout")[0] == 200
    rig.settle()
    assert rig.booking().status == BookingStatus.REVOKED
    assert rig.auths(DOOR) == []
    assert rig.auths(ENTRANCE) == []


def test_keypad_codes_linked_to_the_guests_account_user(rig: Rig) -> None:
    # Given a room whose operator wants the guest's name in Nuki Web's activity log
    rig.add_lock(ENTRANCE, keypad=True)
    room = {"name": "Room 12", "smartlockIds": [ENTRANCE], "timezone": "Europe/Berlin", "linkKeypadCodes": True}
    status, body = rig.api("PUT", "/rooms/room-12", room)
    assert (status, body["linkKeypadCodes"]) == (201, True)
    assert rig.api("POST", "/bookings", stay_body())[0] == 201
    rig.settle()
    booking = rig.booking()
    assert booking.status == BookingStatus.ACTIVE
    (user,) = rig.account_users()
    (code,) = rig.auths(ENTRANCE)
    assert (code["type"], code["code"], code["accountUserId"]) == (13, int(booking.pin), user["accountUserId"])
    # The keypad entry then carries the account user too, and is the guest's
    inside = booking.validFrom + timedelta(hours=1)
    assert rig.types_pin(ENTRANCE, booking.pin, inside)
    rig.at(inside + timedelta(minutes=1))
    rig.poller.poll()
    _, activity = rig.api("GET", "/bookings/B-1001/activity")
    assert [e["trigger"] for e in activity["items"]] == ["keypad"]


def test_the_reconciler_knows_our_app_authorizations_and_never_touches_anyone_elses(rig: Rig) -> None:
    rig.add_lock(DOOR, keypad=False)
    assert rig.api("PUT", "/rooms/room-12", APP_ROOM)[0] == 201
    assert rig.api("POST", "/bookings", stay_body())[0] == 201
    rig.settle()
    # Someone else's app user on the same door, and ours changed in Nuki Web (disabled)
    cleaner = rig.http.post(
        f"{rig.sandbox.url}/_sim/account-users", json={"email": "cleaner@example.org", "name": "C"}, timeout=5
    ).json()
    rig.http.post(
        f"{rig.sandbox.url}/_sim/smartlocks/{DOOR}/auths",
        json={"type": 0, "name": "Cleaner", "accountUserId": cleaner["accountUserId"]},
        timeout=5,
    )
    ours = next(a for a in app_auths(rig, DOOR) if a["name"] == rig.booking().authName)
    rig.sandbox.sandbox.change_auth_elsewhere(DOOR, str(ours["id"]), enabled=False)
    plan = rig.reconciler.reconcile_lock(DOOR)
    drifts = {(a.drift.value, a.auth_id) for a in plan.actions}
    assert ("wrong_window", ours["id"]) in drifts
    assert (plan.app_ours, plan.ours, plan.foreign) == (1, 0, 0)
    rig.settle()
    assert rig.booking().status == BookingStatus.ACTIVE
    assert {(a["name"], a["enabled"]) for a in app_auths(rig, DOOR)} == {
        ("Cleaner", True),
        (rig.booking().authName, True),
    }
    assert not any(a.do.value in ("delete",) and a.auth_id != ours["id"] for a in plan.actions)


@pytest.mark.parametrize(
    ("room", "field"),
    [
        ({**APP_ROOM, "access": {str(DOOR): "bluetooth"}}, f"access.{DOOR}"),
        ({**APP_ROOM, "access": {"17000002": "app"}}, "access"),
    ],
)
def test_an_unknown_access_kind_is_a_422_naming_it_and_nothing_is_asked_or_written(
    rig: Rig, room: dict[str, object], field: str
) -> None:
    rig.add_lock(DOOR, keypad=False)
    status, body = rig.api("PUT", "/rooms/room-12", room)
    assert status == 422, body
    assert [e["field"] for e in body["errors"]] == [field]
    assert rig.api("GET", "/rooms/room-12")[0] == 404
    assert rig.writes() == []


@pytest.mark.parametrize(
    ("guest", "field"),
    [
        ({"name": "Ada Lovelace", "locale": "en"}, "guest.email"),
        ({"name": "Ada Lovelace", "email": "ada@example.org", "locale": "pt-BR"}, "guest.locale"),
    ],
)
def test_an_app_booking_without_an_email_or_in_a_language_nuki_does_not_speak_is_refused(
    rig: Rig, guest: dict[str, str], field: str
) -> None:
    rig.add_lock(DOOR, keypad=False)
    assert rig.api("PUT", "/rooms/room-12", APP_ROOM)[0] == 201
    status, body = rig.api("POST", "/bookings", stay_body(guest=guest))
    assert status == 422, body
    assert [e["field"] for e in body["errors"]] == [field]
    assert rig.api("GET", "/bookings/B-1001")[0] == 404
    assert rig.writes() == []  # nothing written at Nuki: no account user, no authorization
    assert rig.account_users() == []


def test_a_guest_change_to_a_language_nuki_does_not_speak_is_refused_on_an_app_booking(rig: Rig) -> None:
    rig.add_lock(DOOR, keypad=False)
    assert rig.api("PUT", "/rooms/room-12", APP_ROOM)[0] == 201
    assert rig.api("POST", "/bookings", stay_body())[0] == 201
    rig.settle()
    writes = rig.writes()
    change = {"guest": {"name": "Ada Lovelace", "email": "ada@example.org", "locale": "ja"}}
    status, body = rig.api("PATCH", "/bookings/B-1001", change)
    assert (status, [e["field"] for e in body["errors"]]) == (422, ["guest.locale"])
    assert rig.writes() == writes


def test_a_new_guest_email_moves_the_app_authorization_to_the_new_guests_account_user(rig: Rig) -> None:
    rig.add_lock(DOOR, keypad=False)
    assert rig.api("PUT", "/rooms/room-12", APP_ROOM)[0] == 201
    assert rig.api("POST", "/bookings", stay_body())[0] == 201
    rig.settle()
    change = {"guest": {"name": "Grace Hopper", "email": "grace@example.org", "locale": "de"}}
    assert rig.api("PATCH", "/bookings/B-1001", change)[0] == 200
    rig.settle()
    booking = rig.booking()
    assert booking.status == BookingStatus.ACTIVE
    grace = next(u for u in rig.account_users() if u["email"] == "grace@example.org")
    assert grace["language"] == "de"
    (auth,) = app_auths(rig, DOOR)
    assert auth["accountUserId"] == grace["accountUserId"] == booking.account.accountUserId
    assert rig.mail.sent[-1].to == "grace@example.org"


def test_an_app_entry_that_names_only_the_account_user_is_the_guests_during_the_stay(rig: Rig) -> None:
    rig.add_lock(DOOR, keypad=False)
    assert rig.api("PUT", "/rooms/room-12", APP_ROOM)[0] == 201
    assert rig.api("POST", "/bookings", stay_body())[0] == 201
    rig.settle()
    booking = rig.booking()
    user_id = booking.account.accountUserId
    # A log entry of the app with the account user but no authorization id (Nuki's log may say less)
    inside, before = booking.validFrom + timedelta(hours=3), booking.validFrom - timedelta(days=2)
    for at in (inside, before):
        entry = {"action": 1, "trigger": 5, "state": 0, "accountUserId": user_id, "name": "Ada", "date": at.isoformat()}
        assert rig.http.post(f"{rig.sandbox.url}/_sim/smartlocks/{DOOR}/log", json=entry, timeout=5).status_code == 201
    rig.at(inside + timedelta(minutes=1))
    rig.poller.poll()
    # The one inside the stay is the guest's (and checks them in); the one days before is not
    _, activity = rig.api("GET", "/bookings/B-1001/activity")
    assert [e["at"] for e in activity["items"]] == [inside.isoformat().replace("+00:00", "Z")]
    assert rig.booking().firstEntryAt == inside
