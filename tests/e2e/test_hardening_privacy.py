"""Privacy on the running stack: a whole stay over HTTP (booking, code on the lock, guest email,
keypad entry, activity, checkout), then the stored items read from the stack's DynamoDB.

* The guest's name and email are in the booking's GUEST item only, whose `expiresAt` (the table's
  TTL attribute) is validUntil + GuestDataRetentionDays (30). That the API stops showing them
  after the retention is proven with a moving clock in tests/hardening/test_privacy.py.
* Activity items keep the booking id and Nuki's numbers: no name, no email, no PIN.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest

from local import cfn
from local.stack import LocalStack
from tests.e2e.helpers import Shop, Sim, eventually, new_id, now

pytestmark = pytest.mark.e2e

NAME, EMAIL = "Ada Lövelace", "ada.privacy@example.org"


def _items(stack: LocalStack) -> list[dict[str, Any]]:
    from boto3.dynamodb.types import TypeDeserializer

    env = stack.environment()
    ddb = boto3.client(
        "dynamodb",
        endpoint_url=stack.aws_endpoint,
        region_name=stack.config.region,
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY", "testing"),
    )
    assert stack.resources is not None
    (table,) = stack.resources.of_type("AWS::DynamoDB::Table").values()
    de = TypeDeserializer()
    out: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table}
    while True:
        page = ddb.scan(**kwargs)
        out += [{k: de.deserialize(v) for k, v in item.items()} for item in page["Items"]]
        if "LastEvaluatedKey" not in page:
            return out
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def test_guest_data_lives_only_in_its_expiring_item_and_activity_keeps_only_the_booking_id(
    stack: LocalStack, shop: Shop, sim: Sim
) -> None:
    lock = sim.add_lock()
    room_id = shop.put_room([lock])
    start = now()
    body = shop.booking_body(room_id, start, start + timedelta(days=2), new_id("B-priv"))
    body["guest"] = {"name": NAME, "email": EMAIL, "locale": "de"}
    r = shop.call("POST", "/bookings", body)
    assert r.status_code == 201, r.text
    booking_id, pin = body["bookingId"], r.json()["pin"]
    active = shop.wait_status(booking_id, "active", timeout=15)
    assert active["guest"]["email"] == EMAIL  # within the retention the API shows it
    assert sim.keypad(lock, pin) is True

    def stored_entry() -> list[dict[str, Any]]:
        return [i for i in _items(stack) if i["pk"].startswith("LOG#") and i.get("bookingId") == booking_id]

    logs = eventually(stored_entry, 15, "the keypad entry stored under the booking")
    assert shop.call("POST", f"/bookings/{booking_id}/checkout").status_code == 200
    shop.wait_status(booking_id, "revoked", timeout=15)

    items = _items(stack)
    holders = [
        (i["pk"], i["sk"]) for i in items if NAME in json.dumps(i, ensure_ascii=False, default=str) or EMAIL in str(i)
    ]
    # Other tests' guests may share the name; whoever they are, only GUEST items hold it.
    assert (f"BOOKING#{booking_id}", "GUEST") in holders
    assert {sk for _, sk in holders} == {"GUEST"}, holders
    (guest,) = [i for i in items if i["pk"] == f"BOOKING#{booking_id}" and i["sk"] == "GUEST"]
    valid_until = datetime.fromisoformat(active["validUntil"].replace("Z", "+00:00"))
    assert int(guest["expiresAt"]) == int((valid_until + timedelta(days=30)).timestamp())
    assert cfn.ttl_attribute() == "expiresAt"

    for log in logs:
        text = json.dumps(log, ensure_ascii=False, default=str)
        assert log["bookingId"] == booking_id
        assert pin not in text
        assert NAME not in text
        assert EMAIL not in text
