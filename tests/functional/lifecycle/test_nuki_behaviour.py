"""How the lifecycle copes with what Nuki really does: conflicts, offline locks, failures, delays."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from staykey.core.models import BookingStatus, LockStatus
from staykey.nuki import NukiUnavailable
from tests.conftest import World
from tests.functional.lifecycle.conftest import Call, booking_body

ROOM = {"name": "Room 12", "smartlockIds": [17000001, 17000099], "timezone": "Europe/Berlin"}


def test_409_from_someone_elses_code_leads_to_a_new_pin(api: Call, world: World) -> None:
    api("PUT", "/rooms/room-12", ROOM)
    # Given someone else's code on the entrance that we do not know about yet
    real_choice = __import__("staykey.core.pins", fromlist=["generate_pin"]).generate_pin
    first = real_choice()
    world.nuki.add_foreign(17000099, int(first), name="Cleaning crew")
    picks = iter([first])

    import staykey.services.bookings as bookings_module

    original = bookings_module.generate_pin
    bookings_module.generate_pin = lambda avoid=(), *choice: next(picks, None) or original(avoid)  # type: ignore[assignment]
    try:
        # When a booking happens to draw that very PIN
        status, body = api("POST", "/bookings", booking_body())
    finally:
        bookings_module.generate_pin = original
    # Then Nuki's 409 makes us choose another PIN, and the other code is left alone
    assert status == 201
    assert body["pin"] != first
    world.settle()
    _, body = api("GET", "/bookings/B-1001")
    assert body["status"] == "active"
    assert world.nuki.codes(17000099)[int(first)] == "Cleaning crew"
    assert world.nuki.codes(17000099)[int(body["pin"])] == "SK B-1001"
    assert world.nuki.codes(17000001) == {int(body["pin"]): "SK B-1001"}
    # and the other code is remembered, so no later booking picks it
    assert any(c.owner == "foreign" and c.pin == first for c in world.store.codes_on_lock(17000099))


def test_offline_lock_stays_pending_then_turns_active_when_back(api: Call, world: World) -> None:
    api("PUT", "/rooms/room-12", ROOM)
    world.nuki.set_online(17000099, False)
    api("POST", "/bookings", booking_body())
    world.nuki.apply()
    world.clock.advance(seconds=5)
    world.run_jobs()
    _, body = api("GET", "/bookings/B-1001")
    assert body["status"] == "provisioning"
    assert {lk["smartlockId"]: lk["status"] for lk in body["locks"]} == {17000001: "active", 17000099: "pending"}
    assert world.mail.sent == []  # never before the code is on every lock
    # When the lock comes back (before validFrom)
    world.nuki.set_online(17000099, True)
    world.settle()
    _, body = api("GET", "/bookings/B-1001")
    assert body["status"] == "active"
    assert len(world.mail.sent) == 1


def test_offline_lock_fails_the_booking_after_valid_from_and_recovers_late(api: Call, world: World) -> None:
    api("PUT", "/rooms/room-12", ROOM)
    world.nuki.set_online(17000099, False)
    api("POST", "/bookings", booking_body())
    world.clock.set(datetime(2026, 11, 27, 14, 0, 1, tzinfo=UTC))  # just past validFrom
    world.settle()
    _, body = api("GET", "/bookings/B-1001")
    assert body["status"] == "failed"
    failed = next(lk for lk in body["locks"] if lk["smartlockId"] == 17000099)
    assert failed["status"] == "failed"
    assert "offline" in failed["error"]
    assert "17000099" in body["statusReason"]
    assert world.mail.sent == []
    # The lock comes back later and applies the queued code: a read-back (reconciler or a
    # webhook) sees it and the booking is rescued.
    world.nuki.set_online(17000099, True)
    world.nuki.apply()
    auth = next(a for a in world.nuki.locks[17000099].auths.values() if a.name == "SK B-1001")
    world.sync.observe_auth(17000099, auth, deleted=False)
    assert api("GET", "/bookings/B-1001")[1]["status"] == "active"
    assert len(world.mail.sent) == 1


def test_nuki_down_is_retried_with_backoff_until_it_works(api: Call, world: World) -> None:
    api("PUT", "/rooms/room-12", ROOM)
    world.nuki.fail("create_keypad_code", NukiUnavailable("503 after retries", status=503))
    status, body = api("POST", "/bookings", booking_body())
    assert status == 201
    assert body["status"] == "provisioning"
    assert all(lk["error"].startswith("retrying") for lk in body["locks"])
    world.settle()
    _, body = api("GET", "/bookings/B-1001")
    assert body["status"] == "active"
    assert "error" not in body["locks"][0]
    assert world.nuki.count("create_keypad_code") == 2


def test_ambiguous_create_that_did_arrive_is_not_mistaken_for_a_foreign_code(api: Call, world: World) -> None:
    api("PUT", "/rooms/room-12", ROOM)
    # A create that timed out on our side but reached Nuki: it is applied, then we retry.
    world.nuki.fail("create_keypad_code", NukiUnavailable("timeout", status=None))
    original = world.nuki.create_keypad_code
    sent: list[object] = []

    def create_then_fail(ids: object, code: object) -> None:
        if not sent:
            sent.append(code)
            world.nuki._failures.pop("create_keypad_code", None)
            original(ids, code)  # type: ignore[arg-type]
            world.nuki.apply()
            raise NukiUnavailable("read timeout", status=None)
        original(ids, code)  # type: ignore[arg-type]

    world.nuki.create_keypad_code = create_then_fail  # type: ignore[method-assign]
    _, body = api("POST", "/bookings", booking_body())
    first_pin = body["pin"]
    world.settle()
    _, body = api("GET", "/bookings/B-1001")
    assert body["status"] == "active"
    assert body["pin"] == first_pin  # our own earlier attempt, not someone else's
    assert list(world.nuki.codes(17000001)) == [int(first_pin)]


def test_room_change_keeps_the_pin_and_moves_the_code(api: Call, world: World) -> None:
    api("PUT", "/rooms/room-12", ROOM)
    api("PUT", "/rooms/room-14", {**ROOM, "name": "Room 14", "smartlockIds": [17000002, 17000099]})
    _, body = api("POST", "/bookings", booking_body())
    world.settle()
    pin = body["pin"]
    status, body = api("PATCH", "/bookings/B-1001", {"roomId": "room-14"})
    assert status == 200
    assert body["pin"] == pin
    world.settle()
    _, body = api("GET", "/bookings/B-1001")
    assert body["status"] == "active"
    assert body["roomId"] == "room-14"
    assert [lk["smartlockId"] for lk in body["locks"]] == [17000099, 17000002]
    assert world.nuki.codes(17000001) == {}  # removed from the old room door
    assert world.nuki.codes(17000002) == {int(pin): "SK B-1001"}
    assert world.nuki.codes(17000099) == {int(pin): "SK B-1001"}  # shared entrance untouched
    assert [n.updated for n in world.mail.sent] == [False, True]  # the guest is told again


def test_room_change_picks_a_new_pin_when_taken_there(api: Call, world: World) -> None:
    api("PUT", "/rooms/room-12", ROOM)
    api("PUT", "/rooms/room-14", {**ROOM, "name": "Room 14", "smartlockIds": [17000002]})
    _, first = api("POST", "/bookings", booking_body())
    world.settle()
    # Another guest holds the same PIN on room 14's door
    world.store.record_foreign_code(17000002, first["pin"], "Other", None, world.clock.now())
    _, body = api("PATCH", "/bookings/B-1001", {"roomId": "room-14"})
    assert body["pin"] != first["pin"]
    world.settle()
    _, body = api("GET", "/bookings/B-1001")
    assert body["status"] == "active"
    assert world.nuki.codes(17000002) == {int(body["pin"]): "SK B-1001"}
    assert world.nuki.codes(17000001) == {}
    assert world.mail.sent[-1].pin == body["pin"]


def test_a_ghost_delete_is_reissued_with_a_sync_until_the_code_is_gone(api: Call, world: World) -> None:
    api("PUT", "/rooms/room-12", {**ROOM, "smartlockIds": [17000001]})
    api("POST", "/bookings", booking_body())
    world.settle()
    world.nuki.ghost_deletes = 1  # Nuki answers 204 but never applies the first delete
    api("POST", "/bookings/B-1001/checkout")
    world.settle()
    _, body = api("GET", "/bookings/B-1001")
    assert body["status"] == "revoked"
    assert world.nuki.codes(17000001) == {}
    assert world.nuki.count("sync") >= 1
    assert world.nuki.count("delete_auth") >= 2


def test_code_deleted_by_someone_is_put_back(api: Call, world: World) -> None:
    api("PUT", "/rooms/room-12", {**ROOM, "smartlockIds": [17000001]})
    api("POST", "/bookings", booking_body())
    world.settle()
    auth = next(iter(world.nuki.locks[17000001].auths.values()))
    world.nuki.locks[17000001].auths.clear()
    world.sync.observe_auth(17000001, auth, deleted=True)
    world.settle()
    booking = world.bookings.get("B-1001")
    assert booking.status == BookingStatus.ACTIVE
    assert booking.locks[0].status == LockStatus.ACTIVE
    assert list(world.nuki.codes(17000001)) == [int(booking.pin)]
    assert len(world.mail.sent) == 1  # same PIN, same window: no new email


def test_no_pin_in_any_log_line(api: Call, world: World, captured_logs: Callable[[], str]) -> None:
    api("PUT", "/rooms/room-12", ROOM)
    world.nuki.fail("create_keypad_code", NukiUnavailable("503", status=503))
    _, body = api("POST", "/bookings", booking_body())
    world.settle()
    api("PATCH", "/bookings/B-1001", {"checkOut": "2026-11-30"})
    world.settle()
    api("POST", "/bookings/B-1001/checkout")
    world.settle()
    logs = captured_logs()
    assert "booking created" in logs  # the logger did write
    assert body["pin"] not in logs


def test_a_code_that_lands_after_cancellation_is_removed_when_seen(api: Call, world: World) -> None:
    api("PUT", "/rooms/room-12", {**ROOM, "smartlockIds": [17000001]})
    world.nuki.set_online(17000001, False)
    api("POST", "/bookings", booking_body())
    # Cancelled while the lock is offline: the queued create has not landed yet
    api("DELETE", "/bookings/B-1001")
    world.settle()
    # while the lock is offline we keep looking for the create that may still land
    assert api("GET", "/bookings/B-1001")[1]["locks"][0]["status"] == "pending"
    # The lock comes back and Nuki applies the old create; its DEVICE_AUTHS reaches us
    world.nuki.set_online(17000001, True)
    world.nuki.apply()
    auth = next(iter(world.nuki.locks[17000001].auths.values()))
    world.sync.observe_auth(17000001, auth, deleted=False)
    world.settle()
    assert world.nuki.codes(17000001) == {}
    assert api("GET", "/bookings/B-1001")[1]["status"] == "cancelled"
