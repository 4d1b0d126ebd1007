"""One source, three ways out: the dispatcher takes outbox events from the stream to the feed
(GET /events), the EventBridge bus and the webhook delivery queue; the feed pages in order with
opaque cursors and never skips an event that may still appear below a cursor."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from staykey.events.feed import Feed, Outgoing
from tests.conftest import World
from tests.functional.activity.conftest import stay
from tests.functional.events.conftest import Events
from tests.functional.events.helpers import outbox


def test_a_journey_reaches_the_feed_the_bus_and_each_subscribed_endpoint(events_world: Events, world: World) -> None:
    status, all_types = events_world.api(
        "POST", "/webhook-endpoints", "/webhook-endpoints", {"url": "http://127.0.0.1:9/all", "eventTypes": ["*"]}
    )
    assert status == 201, all_types
    status, only_active = events_world.api(
        "POST",
        "/webhook-endpoints",
        "/webhook-endpoints",
        {"url": "http://127.0.0.1:9/active", "eventTypes": ["booking.active"]},
    )
    assert status == 201, only_active
    stay(world)
    world.bookings.checkout("B-1001")
    world.settle()
    assert events_world.pump() == 4
    assert outbox(world) == []  # every outbox item was taken

    feed = events_world.all_events()
    types = [e["type"] for e in feed]
    assert types == ["booking.provisioning", "booking.active", "booking.revoking", "booking.revoked"]
    ids = [e["id"] for e in feed]
    assert len(set(ids)) == len(ids)

    bus = [
        json.loads(m["detail"]) if isinstance(m.get("detail"), str) else m["detail"]
        for m in events_world.queued(events_world.bus_copy_url)
    ]
    assert [e["id"] for e in bus] == ids

    deliveries = events_world.queued()
    to_all = [d["eventId"] for d in deliveries if d["endpointId"] == all_types["id"]]
    to_active = [d["eventType"] for d in deliveries if d["endpointId"] == only_active["id"]]
    assert to_all == ids
    assert to_active == ["booking.active"]
    assert all(d["attempt"] == 1 and json.loads(d["body"])["id"] == d["eventId"] for d in deliveries)


def test_a_batch_delivered_twice_goes_out_once(events_world: Events, world: World) -> None:
    world.add_room()
    stay(world, "B-2")
    records = list(events_world.reader.read())
    from local.kit.apigw import Context
    from local.streams import matches
    from tests.functional.events.conftest import handler, template_filters

    wanted = [r for r in records if matches(template_filters(), r)]
    assert handler("event_dispatcher")({"Records": wanted}, Context()) == {"batchItemFailures": []}
    # The event source mapping retries a batch it thinks failed: the outbox items are gone, so nothing twice.
    assert handler("event_dispatcher")({"Records": wanted}, Context()) == {"batchItemFailures": []}
    assert [e["type"] for e in events_world.all_events()] == ["booking.provisioning", "booking.active"]


def test_the_filter_lets_only_new_outbox_items_through(events_world: Events, world: World) -> None:
    from local.streams import matches
    from tests.functional.events.conftest import template_filters

    stay(world)
    records = events_world.reader.read()
    wanted = [r for r in records if matches(template_filters(), r)]
    assert len(records) > 4 * len(wanted)  # the room, booking, guest, name, code claims... and two events
    assert {r["eventName"] for r in wanted} == {"INSERT"}
    assert all(r["dynamodb"]["Keys"]["sk"]["S"].startswith("EVENT#") for r in wanted)


def test_paging_is_ascending_with_opaque_cursors_and_bad_cursors_are_refused(
    events_world: Events, world: World
) -> None:
    feed = Feed(world.store.table_name, 30, 90)
    events = [Outgoing(f"evt_{i:03d}", "booking.active", json.dumps({"id": f"evt_{i:03d}", "n": i})) for i in range(7)]
    feed.append(events[:3])
    feed.append(events[3:])
    first = events_world.events(limit=3)
    assert [e["n"] for e in first["items"]] == [0, 1, 2]
    assert first["hasMore"] is True
    assert not first["next"].isdigit()
    second = events_world.events(first["next"], 3)
    third = events_world.events(second["next"], 3)
    assert [e["n"] for e in second["items"] + third["items"]] == [3, 4, 5, 6]
    assert third["hasMore"] is False
    # Polling with the last cursor: nothing new, the same cursor back; then the new event.
    again = events_world.events(third["next"])
    assert again["items"] == []
    assert again["next"] == third["next"]
    feed.append([Outgoing("evt_new", "lock.offline", json.dumps({"id": "evt_new"}))])
    assert [e["id"] for e in events_world.events(third["next"])["items"]] == ["evt_new"]

    for bad, field in (("17", "after"), ("v1.$$$", "after"), ("v1.LTE", "after")):
        status, body = events_world.api("GET", "/events", "/events", query={"after": bad})
        assert (status, body["errors"][0]["field"]) == (422, field)
    for limit in ("0", "101", "ten", "-1", "1.5"):
        status, body = events_world.api("GET", "/events", "/events", query={"limit": limit})
        assert (status, body["errors"][0]["field"]) == (422, "limit")


def test_a_gap_in_the_numbers_is_waited_for_until_its_writer_must_be_gone(world: World, aws: dict[str, str]) -> None:
    import boto3

    feed = Feed(world.store.table_name, 30, hole_seconds=90)
    t0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    feed.append([Outgoing("evt_a", "booking.active", '{"id":"evt_a"}')], t0)
    # A dispatcher takes number 2 and has not written it yet; another writes number 3.
    boto3.client("dynamodb").update_item(
        TableName=world.store.table_name,
        Key={"pk": {"S": "FEED"}, "sk": {"S": "COUNTER"}},
        UpdateExpression="ADD #n :one",
        ExpressionAttributeNames={"#n": "last"},
        ExpressionAttributeValues={":one": {"N": "1"}},
    )
    feed.append([Outgoing("evt_c", "booking.active", '{"id":"evt_c"}')], t0)

    page = feed.read(0, 100, now=t0 + timedelta(seconds=10))
    assert [e["id"] for e in page.items] == ["evt_a"]  # not past the gap: number 2 may still come
    assert page.has_more is True
    late = feed.read(page.next_seq, 100, now=t0 + timedelta(seconds=10))
    assert late.items == []
    # The slow writer writes number 2 after all: a reader at the old cursor gets it, then 3.
    import boto3 as b3

    b3.client("dynamodb").put_item(
        TableName=world.store.table_name,
        Item={
            "pk": {"S": "FEED"},
            "sk": {"S": f"SEQ#{2:020d}"},
            "seq": {"N": "2"},
            "body": {"S": '{"id":"evt_b"}'},
            "sequencedAt": {"S": "2026-11-26T09:00:05.000Z"},
            "expiresAt": {"N": str(int((t0 + timedelta(days=30)).timestamp()))},
        },
    )
    assert [e["id"] for e in feed.read(page.next_seq, 100, now=t0 + timedelta(seconds=11)).items] == ["evt_b", "evt_c"]


def test_a_gap_whose_writer_died_is_stepped_over_after_the_wait(world: World, aws: dict[str, str]) -> None:
    import boto3

    feed = Feed(world.store.table_name, 30, hole_seconds=90)
    t0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    boto3.client("dynamodb").update_item(
        TableName=world.store.table_name,
        Key={"pk": {"S": "FEED"}, "sk": {"S": "COUNTER"}},
        UpdateExpression="ADD #n :one",
        ExpressionAttributeNames={"#n": "last"},
        ExpressionAttributeValues={":one": {"N": "1"}},
    )
    feed.append([Outgoing("evt_b", "booking.active", '{"id":"evt_b"}')], t0)
    assert feed.read(0, 10, now=t0 + timedelta(seconds=89)).items == []
    page = feed.read(0, 10, now=t0 + timedelta(seconds=91))
    assert [e["id"] for e in page.items] == ["evt_b"]
    assert page.next_seq == 2
