"""Events over the local stack: a shop's endpoint on loopback gets every event of a whole journey,
signed (verified with standardwebhooks), the pull API has the same ids in order, and the stack's
EventBridge bus carries them to a rule's target."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from local.aws import client
from local.event_receiver import EventReceiver
from local.stack import LocalStack
from tests.e2e.helpers import Shop, Sim, eventually, now

pytestmark = pytest.mark.e2e


def test_a_journeys_events_reach_a_registered_loopback_endpoint_signed(stack: LocalStack, shop: Shop, sim: Sim) -> None:
    assert stack.resources is not None
    bus = stack.resources.refs["EventBus"]
    events, sqs = client("events", stack.aws_endpoint), client("sqs", stack.aws_endpoint)
    copy_url = sqs.create_queue(QueueName="e2e-bus-copy")["QueueUrl"]
    copy_arn = sqs.get_queue_attributes(QueueUrl=copy_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="e2e-active", EventBusName=bus, EventPattern=json.dumps({"detail-type": ["booking.active"]}))
    events.put_targets(Rule="e2e-active", EventBusName=bus, Targets=[{"Id": "copy", "Arn": copy_arn}])

    receiver = EventReceiver().start()
    try:
        r = shop.call("POST", "/webhook-endpoints", {"url": receiver.url, "eventTypes": ["*"]})
        assert r.status_code == 201, r.text
        receiver.secret = r.json()["secret"]
        endpoint_id = r.json()["id"]

        door = sim.add_lock()
        room_id = shop.put_room([door])
        start = now()
        booking = shop.book(room_id, start, start + timedelta(days=1))
        booking_id, pin = booking["bookingId"], booking["pin"]
        shop.wait_status(booking_id, "active")
        assert sim.keypad(door, pin)
        assert shop.call("POST", f"/bookings/{booking_id}/checkout").status_code == 200
        shop.wait_status(booking_id, "revoked")

        journey = ["booking.provisioning", "booking.active", "guest.checked_in", "access.entry"]
        journey += ["booking.revoking", "booking.revoked"]

        def mine() -> list[str]:
            return [
                r.event["type"] for r in receiver.events if (r.event.get("data") or {}).get("bookingId") == booking_id
            ]

        eventually(lambda: sorted(mine()) == sorted(journey) or None, 20, f"events of {booking_id}")
        assert receiver.rejected == 0
        # Deliveries may arrive out of order (docs/events.md); their timestamps tell the order.
        statuses = [r.event for r in receiver.events if (r.event.get("data") or {}).get("bookingId") == booking_id]
        status_order = [
            e["type"] for e in sorted(statuses, key=lambda e: e["timestamp"]) if e["type"].startswith("booking.")
        ]
        assert status_order == ["booking.provisioning", "booking.active", "booking.revoking", "booking.revoked"]
        for received in receiver.events:
            assert pin not in json.dumps(received.event)
            assert received.headers["webhook-id"] == received.event["id"]

        pulled, cursor = [], None
        while True:
            page = shop.call("GET", "/events" + (f"?after={cursor}" if cursor else "")).json()
            pulled += page["items"]
            cursor = page["next"]
            if not page["hasMore"]:
                break
        ours = [e for e in pulled if (e.get("data") or {}).get("bookingId") == booking_id]
        delivered = {
            r.event["id"] for r in receiver.events if (r.event.get("data") or {}).get("bookingId") == booking_id
        }
        assert {e["id"] for e in ours} == delivered  # the same events, the same ids, both ways
        assert [e["type"] for e in ours if e["type"].startswith("booking.")] == status_order

        def on_bus() -> list[dict[str, object]] | None:
            got = sqs.receive_message(QueueUrl=copy_url, MaxNumberOfMessages=10).get("Messages", [])
            details = [json.loads(m["Body"])["detail"] for m in got]
            hits = [d for d in details if (d.get("data") or {}).get("bookingId") == booking_id]
            return hits or None

        (active,) = eventually(on_bus, 10, "booking.active on the bus")
        assert active["type"] == "booking.active"

        got = shop.call("GET", f"/webhook-endpoints/{endpoint_id}").json()
        assert got["enabled"] is True
        assert got["health"]["lastSuccessAt"] is not None
        assert shop.call("DELETE", f"/webhook-endpoints/{endpoint_id}").status_code == 204
    finally:
        receiver.stop()
