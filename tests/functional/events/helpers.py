"""Reading the events a test wrote: the outbox items in the table, oldest first."""

from __future__ import annotations

import json
from typing import Any

import boto3

from tests.conftest import World


def outbox(world: World, event_type: str | None = None) -> list[dict[str, Any]]:
    """Every outbox item (events not yet taken by the dispatcher), in the order they were made."""
    res = boto3.client("dynamodb").scan(
        TableName=world.store.table_name,
        FilterExpression="begins_with(sk, :e)",
        ExpressionAttributeValues={":e": {"S": "EVENT#"}},
    )
    items = [world.store.codec.load(item) for item in res["Items"]]
    items.sort(key=lambda item: str(item["eventId"]))
    return [i for i in items if event_type is None or i["eventType"] == event_type]


def outbox_types(world: World, subject: str) -> list[str]:
    """The types of one booking's (B-...) or one lock's (LOCK#...) events, in order."""
    pk = subject if subject.startswith("LOCK#") else f"BOOKING#{subject}"
    return [str(i["eventType"]) for i in outbox(world) if i["pk"] == pk]


def bodies(world: World) -> list[dict[str, Any]]:
    return [json.loads(i["body"]) for i in outbox(world)]
