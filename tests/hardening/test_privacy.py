"""Privacy: the guest's name and email are removed GUEST_DATA_RETENTION_DAYS (default 30) after the
stay, and nothing else ever holds them; activity keeps the booking id, never guest data or a PIN.

How: the name and email live in one item of their own (BOOKING#{id} / GUEST) whose `expiresAt` is
validUntil + the retention, and `expiresAt` is the table's DynamoDB TTL attribute. DynamoDB deletes
expired items within days, not at once, so reads ignore an expired GUEST item: from the first
second after the retention, the API answers the booking with `"guest": null`. These tests move a
fixed clock through the retention and read through the Lambda handlers, as API Gateway calls them.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import boto3
import pytest

from local import cfn
from staykey.services.activity import Activity
from tests.conftest import World
from tests.functional.activity.conftest import STAY_START, Pipeline, stay
from tests.functional.activity.helpers import keypad_entry, logs_body
from tests.functional.lifecycle.conftest import Call, booking_body

NAME, EMAIL = "Ada Lovelace", "ada@example.org"
ROOM = {"name": "Room 12", "smartlockIds": [17000001, 17000099], "timezone": "Europe/Berlin"}


def items(world: World) -> list[dict[str, Any]]:
    res = boto3.client("dynamodb").scan(TableName=world.store.table_name)
    return [world.store.codec.load(item) for item in res["Items"]]


def guest_item(world: World, booking_id: str = "B-1001") -> dict[str, Any]:
    found = [i for i in items(world) if i["pk"] == f"BOOKING#{booking_id}" and i["sk"] == "GUEST"]
    assert len(found) == 1
    return found[0]


@pytest.fixture
def booked(api: Call, world: World) -> dict[str, Any]:
    assert api("PUT", "/rooms/room-12", ROOM)[0] == 201
    status, body = api("POST", "/bookings", booking_body())
    assert status == 201, body
    return dict(body)


def test_the_guest_item_expires_retention_days_after_the_stay_by_dynamodb_ttl(world: World, booked: Any) -> None:
    valid_until = world.bookings.get("B-1001").validUntil
    item = guest_item(world)
    assert item["expiresAt"] == int((valid_until + timedelta(days=30)).timestamp())
    assert (item["name"], item["email"]) == (NAME, EMAIL)
    ttl = boto3.client("dynamodb").describe_time_to_live(TableName=world.store.table_name)
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expiresAt" == cfn.ttl_attribute()


def test_after_the_retention_the_api_shows_no_name_or_email(api: Call, world: World, booked: Any) -> None:
    valid_until = world.bookings.get("B-1001").validUntil
    world.clock.set(valid_until + timedelta(days=30) - timedelta(seconds=1))
    status, body = api("GET", "/bookings/B-1001")
    assert (status, body["guest"]["name"], body["guest"]["email"]) == (200, NAME, EMAIL)

    world.clock.set(valid_until + timedelta(days=30, seconds=1))
    status, body = api("GET", "/bookings/B-1001")
    assert status == 200
    assert body["guest"] is None
    text = json.dumps(body)
    assert NAME not in text
    assert EMAIL not in text
    assert body["bookingId"] == "B-1001"  # the booking itself stays, for the operator's records


def test_the_retention_is_configurable(api: Call, world: World) -> None:
    world.bookings.settings = world.bookings.settings.model_copy(update={"guest_data_retention_days": 7})
    assert api("PUT", "/rooms/room-12", ROOM)[0] == 201
    assert api("POST", "/bookings", booking_body())[0] == 201
    valid_until = world.bookings.get("B-1001").validUntil
    assert guest_item(world)["expiresAt"] == int((valid_until + timedelta(days=7)).timestamp())
    world.clock.set(valid_until + timedelta(days=7, seconds=1))
    assert api("GET", "/bookings/B-1001")[1]["guest"] is None


def test_a_stay_moved_later_moves_the_guest_datas_expiry_with_it(api: Call, world: World, booked: Any) -> None:
    """A PATCH that moves the stay months later must not let the guest data expire before it:
    the guest would never get the PIN email (found while writing these tests)."""
    status, body = api("PATCH", "/bookings/B-1001", {"checkIn": "2027-06-01", "checkOut": "2027-06-05"})
    assert status == 200, body
    valid_until = world.bookings.get("B-1001").validUntil
    assert guest_item(world)["expiresAt"] == int((valid_until + timedelta(days=30)).timestamp())
    world.clock.set(valid_until - timedelta(days=1))
    assert api("GET", "/bookings/B-1001")[1]["guest"]["email"] == EMAIL


def test_a_changed_guest_gets_the_same_expiry(api: Call, world: World, booked: Any) -> None:
    new = {"name": "李小龍", "email": "lee@example.org", "locale": "en"}
    assert api("PATCH", "/bookings/B-1001", {"guest": new})[0] == 200
    valid_until = world.bookings.get("B-1001").validUntil
    item = guest_item(world)
    assert (item["name"], item["email"]) == (new["name"], new["email"])
    assert item["expiresAt"] == int((valid_until + timedelta(days=30)).timestamp())


def test_only_the_guest_item_holds_the_name_and_email(pipeline: Pipeline, world: World, activity: Activity) -> None:
    """After a whole stay (booking, code on the locks, keypad entries, checkout), no other item of
    the table carries the guest's name or email, and no activity item carries a PIN."""
    booking = stay(world)
    entry = keypad_entry(world.nuki, 17000001, STAY_START + timedelta(hours=1), booking.pin)
    pipeline.deliver(logs_body(entry))
    world.bookings.checkout("B-1001")
    world.settle()
    stored = items(world)
    holders = [i for i in stored if NAME in json.dumps(i, ensure_ascii=False) or EMAIL in json.dumps(i)]
    assert [(i["pk"], i["sk"]) for i in holders] == [("BOOKING#B-1001", "GUEST")]
    logs = [i for i in stored if i["pk"].startswith("LOG#")]
    assert logs, "the keypad entry was not stored"
    allowed = {"pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "expiresAt", "id", "at", "smartlockId", "bookingId"}
    allowed |= {"action", "trigger", "source", "state", "success", "authRef", "attributedBy", "deviceType", "via"}
    for log in logs:
        assert set(log) <= allowed, set(log) - allowed
        assert log["bookingId"] == "B-1001"
        text = json.dumps(log)
        for pin in booking.pinHistory:
            assert pin not in text


def test_the_booking_item_itself_has_no_guest_data(world: World, booked: Any) -> None:
    item = next(i for i in items(world) if i["pk"] == "BOOKING#B-1001" and i["sk"] == "BOOKING")
    assert "guest" not in item
    text = json.dumps(item, ensure_ascii=False)
    assert NAME not in text
    assert EMAIL not in text
