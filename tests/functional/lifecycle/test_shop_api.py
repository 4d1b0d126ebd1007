"""Every shop route and status transition of docs/shop-api.md, through the Lambda handlers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from staykey.nuki import NukiInvalidRequest
from tests.conftest import World, load_event
from tests.functional.lifecycle.conftest import Call, booking_body

ROOM = {"name": "Room 12", "smartlockIds": [17000001, 17000099], "timezone": "Europe/Berlin"}


@pytest.fixture
def room(api: Call, world: World) -> None:
    status, body = api("PUT", "/rooms/room-12", ROOM)
    assert status == 201, body
    world.nuki.calls.clear()  # the room's set-up asked Nuki about its locks; the tests count from here


def test_rooms_create_replace_get_list(api: Call) -> None:
    # When the operator creates a room
    status, body = api("PUT", "/rooms/room-12", ROOM)
    # Then it is stored with the documented defaults
    assert status == 201
    assert body["checkInTime"] == "15:00"
    assert body["checkOutTime"] == "11:00"
    assert body["accessBeforeMinutes"] == 0
    # When it is replaced, it answers 200 and keeps its creation time
    status, again = api("PUT", "/rooms/room-12", {**ROOM, "name": "Room 12a", "accessAfterMinutes": 30})
    assert status == 200
    assert again["name"] == "Room 12a"
    assert again["createdAt"] == body["createdAt"]
    assert api("GET", "/rooms/room-12") == (200, again)
    status, listing = api("GET", "/rooms")
    assert status == 200
    assert [r["roomId"] for r in listing["items"]] == ["room-12"]
    assert api("GET", "/rooms/nope")[0] == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"smartlockIds": [1, 2, 3, 4, 5, 6]}, "smartlockIds"),
        ({"smartlockIds": ["17000001"]}, "smartlockIds.0"),
        ({"smartlockIds": [0]}, "smartlockIds.0"),
        ({"smartlockIds": []}, "smartlockIds"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"checkInTime": "25:00"}, "checkInTime"),
        ({"accessBeforeMinutes": -5}, "accessBeforeMinutes"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_room_validation_names_the_field(api: Call, change: dict[str, object], field: str) -> None:
    status, body = api("PUT", "/rooms/room-12", {**ROOM, **change})
    assert status == 422
    assert field in [e["field"] for e in body["errors"]]
    assert api("GET", "/rooms/room-12")[0] == 404  # nothing half-written


def test_health_needs_no_key(api: Call) -> None:
    assert api("GET", "/health") == (200, {"status": "ok"})


def test_create_answers_the_booking_with_its_pin(api: Call, room: None, world: World) -> None:
    status, body = api("POST", "/bookings", booking_body())
    assert status == 201
    assert body["status"] == "provisioning"
    assert len(body["pin"]) == 6
    assert body["validFrom"] == "2026-11-27T14:00:00Z"  # 15:00 CET
    assert body["validUntil"] == "2026-11-29T10:00:00Z"  # 11:00 CET
    assert body["locks"] == [
        {"smartlockId": 17000001, "status": "pending", "access": "keypad"},
        {"smartlockId": 17000099, "status": "pending", "access": "keypad"},
    ]
    assert body["guest"] == {"name": "Ada Lovelace", "email": "ada@example.org", "locale": "en"}
    assert body["firstEntryAt"] is None
    assert api("GET", "/bookings/B-1001") == (200, body)


def test_replay_answers_the_same_booking_and_never_a_second_pin(api: Call, room: None, world: World) -> None:
    _, first = api("POST", "/bookings", booking_body())
    status, again = api("POST", "/bookings", booking_body())
    assert status == 200
    assert again["pin"] == first["pin"]
    assert world.nuki.count("create_keypad_code") == 1


def test_same_id_with_another_body_is_409(api: Call, room: None, world: World) -> None:
    _, first = api("POST", "/bookings", booking_body())
    status, body = api("POST", "/bookings", booking_body(checkOut="2026-11-30"))
    assert status == 409
    assert "PATCH" in body["message"]
    assert api("GET", "/bookings/B-1001")[1]["pin"] == first["pin"]


def test_unknown_room_is_404_and_nothing_is_stored(api: Call) -> None:
    status, body = api("POST", "/bookings", booking_body(roomId="nowhere"))
    assert status == 404
    assert "nowhere" in body["message"]
    assert api("GET", "/bookings/B-1001")[0] == 404


def test_422_names_every_bad_field(api: Call, room: None, handlers: object) -> None:
    from functions.booking_created import app
    from local.kit.apigw import Context, response_json

    response = app.lambda_handler(load_event("booking_created_invalid.json"), Context())
    assert response["statusCode"] == 422
    fields = {e["field"] for e in response_json(response)["errors"]}
    assert fields == {"bookingId", "guest.name", "guest.email", "checkIn"}
    assert any("offset" in e["message"] for e in response_json(response)["errors"] if e["field"] == "checkIn")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"checkOut": "2026-11-27"}, "checkOut"),  # not after checkIn
        ({"checkIn": "2026-11-20", "checkOut": "2026-11-21"}, "checkOut"),  # in the past
        ({"checkOut": "2060-01-01"}, "checkOut"),  # decades away
    ],
)
def test_window_errors_are_422(api: Call, room: None, change: dict[str, str], field: str) -> None:
    status, body = api("POST", "/bookings", booking_body(**change))
    assert status == 422
    assert [e["field"] for e in body["errors"]] == [field]
    assert api("GET", "/bookings/B-1001")[0] == 404


def test_broken_json_is_400(api: Call, room: None) -> None:
    status, body = api("POST", "/bookings", "{not json")
    assert status == 400
    assert "JSON" in body["message"]


def test_far_future_booking_stays_scheduled_with_nothing_on_the_lock(api: Call, room: None, world: World) -> None:
    status, body = api("POST", "/bookings", booking_body(checkIn="2027-06-01", checkOut="2027-06-05"))
    assert status == 201
    assert body["status"] == "scheduled"
    assert body["provisionAt"] == "2027-05-29T13:00:00Z"  # 72 h before 15:00 CEST
    assert world.nuki.calls == []
    schedules = _schedules()
    assert sorted(s.split("-")[0] for s in schedules) == ["expire", "provision"]


def test_cancel_before_provisioning_makes_no_nuki_call(api: Call, room: None, world: World) -> None:
    api("POST", "/bookings", booking_body(checkIn="2027-06-01", checkOut="2027-06-05"))
    status, body = api("DELETE", "/bookings/B-1001")
    assert status == 200
    assert body["status"] == "cancelled"
    assert {lk["status"] for lk in body["locks"]} == {"removed"}
    assert world.nuki.calls == []
    assert _schedules() == []
    assert world.store.codes_on_lock(17000001) == []  # the PIN is free again


def test_provision_schedule_puts_the_code_on_the_locks(api: Call, room: None, world: World, handlers: object) -> None:
    from functions.provision import app
    from local.kit.apigw import Context

    api("POST", "/bookings", booking_body(checkIn="2027-06-01", checkOut="2027-06-05"))
    world.clock.set(datetime(2027, 5, 29, 13, 0, tzinfo=UTC))
    result = app.lambda_handler(load_event("provision_scheduled.json"), Context())
    assert result == {"bookingId": "B-1001", "status": "provisioning"}
    assert world.nuki.count("create_keypad_code") == 1
    world.settle()
    assert api("GET", "/bookings/B-1001")[1]["status"] == "active"


def test_checkout_cancel_and_patch_transitions(api: Call, room: None, world: World) -> None:
    api("POST", "/bookings", booking_body())
    world.settle()
    _, active = api("GET", "/bookings/B-1001")
    assert active["status"] == "active"
    # A new window goes to Nuki with the full restriction set and the guest is told again
    status, patched = api("PATCH", "/bookings/B-1001", {"checkOut": "2026-11-30"})
    assert status == 200
    assert patched["status"] == "provisioning"
    assert patched["validUntil"] == "2026-11-30T10:00:00Z"
    assert world.nuki.count("update_auth") == 2
    world.settle()
    assert api("GET", "/bookings/B-1001")[1]["status"] == "active"
    assert [n.updated for n in world.mail.sent] == [False, True]
    # Early checkout: the code goes at once
    status, ending = api("POST", "/bookings/B-1001/checkout")
    assert status == 200
    assert ending["status"] == "revoking"
    world.settle()
    _, done = api("GET", "/bookings/B-1001")
    assert done["status"] == "revoked"
    assert {lk["status"] for lk in done["locks"]} == {"removed"}
    # A finished booking cannot change or be cancelled
    assert api("PATCH", "/bookings/B-1001", {"checkOut": "2026-12-01"})[0] == 409
    assert api("DELETE", "/bookings/B-1001")[0] == 409
    assert api("POST", "/bookings/B-1001/checkout")[0] == 200  # checking out twice is harmless


def test_cancel_an_active_booking_removes_the_code(api: Call, room: None, world: World) -> None:
    api("POST", "/bookings", booking_body())
    world.settle()
    status, body = api("DELETE", "/bookings/B-1001")
    assert status == 200
    assert body["status"] == "cancelled"
    world.settle()
    _, body = api("GET", "/bookings/B-1001")
    assert {lk["status"] for lk in body["locks"]} == {"removed"}
    assert world.nuki.codes(17000001) == {}
    assert api("POST", "/bookings/B-1001/checkout")[0] == 409


def test_expiry_schedule_at_valid_until_removes_the_code(api: Call, room: None, world: World, handlers: object) -> None:
    from functions.checkout import app
    from local.kit.apigw import Context

    api("POST", "/bookings", booking_body())
    world.settle()
    # A schedule that fires early (the stay was extended meanwhile) changes nothing
    assert app.lambda_handler(load_event("checkout_scheduled.json"), Context())["status"] == "active"
    world.clock.set(datetime(2026, 11, 29, 10, 0, tzinfo=UTC))
    assert app.lambda_handler(load_event("checkout_scheduled.json"), Context())["status"] == "revoking"
    world.settle()
    assert api("GET", "/bookings/B-1001")[1]["status"] == "revoked"
    assert world.nuki.codes(17000099) == {}


def test_a_lock_that_refuses_fails_the_booking_with_the_reason(api: Call, room: None, world: World) -> None:
    world.nuki.fail(
        "create_keypad_code",
        NukiInvalidRequest("bad", status=400, detail="The supplied value '13' for parameter 'type' is not valid"),
    )
    status, body = api("POST", "/bookings", booking_body())
    assert status == 201
    assert body["status"] == "failed"
    assert all("'13' for parameter 'type'" in lk["error"] for lk in body["locks"])
    assert world.mail.sent == []


def test_unknown_booking_is_404_everywhere(api: Call) -> None:
    assert api("GET", "/bookings/B-404")[0] == 404
    assert api("PATCH", "/bookings/B-404", {"checkOut": "2026-12-01"})[0] == 404
    assert api("DELETE", "/bookings/B-404")[0] == 404
    assert api("POST", "/bookings/B-404/checkout")[0] == 404


def _schedules() -> list[str]:
    import os

    import boto3

    client = boto3.client("scheduler")
    return [s["Name"] for s in client.list_schedules(GroupName=os.environ["SCHEDULE_GROUP_NAME"])["Schedules"]]
