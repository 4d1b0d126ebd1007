"""The event feed behind ``GET /events``: every dispatched event under a dense sequence number.

Items: ``FEED / SEQ#{seq:020d}`` (the event's JSON as delivered, ``sequencedAt``, ``expiresAt``)
and the counter ``FEED / COUNTER``. The dispatcher takes a block of numbers with one atomic ADD
and then writes the events under them, so numbers are handed out in order but written in any
order, and a number may be taken by a dispatcher that dies before it writes (the batch is retried
under new numbers). A reader therefore never steps over a missing number while its writer may be
alive: it returns the events up to the first gap and waits, unless the event after the gap was
sequenced more than `hole_seconds` ago. That bound is longer than the dispatcher's Lambda timeout,
so the writer of such a gap is gone and will never write it. This is what makes the cursor safe:
nothing is skipped that could still appear below it (at least once, ascending, ids stable).

Cursors are opaque to the shop (``v1.`` + base64url of the last sequence number returned).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from staykey.adapters.aws import LazyClient
from staykey.core.timeutil import parse_iso

FEED_PK = "FEED"
LIMIT_DEFAULT = 100
LIMIT_MAX = 100


@dataclass(frozen=True)
class Outgoing:
    """One event on its way out: its id, type and exact JSON."""

    event_id: str
    event_type: str
    body: str


def encode_cursor(seq: int) -> str:
    return "v1." + base64.urlsafe_b64encode(str(seq).encode()).decode().rstrip("=")


def decode_cursor(raw: str) -> int:
    """The sequence number in a cursor; ValueError if it is not one of ours."""
    if not raw.startswith("v1.") or len(raw) > 64:
        raise ValueError("not a cursor from GET /events")
    text = raw[3:]
    try:
        seq = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError("not a cursor from GET /events") from None
    if not seq.isascii() or not seq.isdigit() or len(seq) > 19:
        raise ValueError("not a cursor from GET /events")
    return int(seq)


@dataclass
class Page:
    items: list[dict[str, Any]]
    next_seq: int
    has_more: bool


class Feed:
    client = LazyClient("dynamodb")

    def __init__(self, table_name: str, retention_days: int, hole_seconds: float, client: Any | None = None) -> None:
        from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

        self.table_name = table_name
        self.retention = timedelta(days=retention_days)
        self.hole = timedelta(seconds=hole_seconds)
        self._client = client
        self._ser, self._de = TypeSerializer(), TypeDeserializer()

    def _dump(self, item: dict[str, Any]) -> dict[str, Any]:
        return {k: self._ser.serialize(v) for k, v in item.items()}

    def _load(self, raw: dict[str, Any]) -> dict[str, Any]:
        return {k: self._de.deserialize(v) for k, v in raw.items()}

    def append(self, events: Sequence[Outgoing], now: datetime | None = None) -> list[int]:
        """Sequence `events` in this order; their numbers."""
        if not events:
            return []
        now = now or datetime.now(UTC)
        res = self.client.update_item(
            TableName=self.table_name,
            Key=self._dump({"pk": FEED_PK, "sk": "COUNTER"}),
            UpdateExpression="ADD #n :n",
            ExpressionAttributeNames={"#n": "last"},
            ExpressionAttributeValues=self._dump({":n": len(events)}),
            ReturnValues="UPDATED_NEW",
        )
        last = int(self._load(res["Attributes"])["last"])
        first = last - len(events) + 1
        stamp = now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        requests = [
            {
                "PutRequest": {
                    "Item": self._dump(
                        {
                            "pk": FEED_PK,
                            "sk": f"SEQ#{first + i:020d}",
                            "seq": first + i,
                            "eventId": e.event_id,
                            "eventType": e.event_type,
                            "body": e.body,
                            "sequencedAt": stamp,
                            "expiresAt": int((now + self.retention).timestamp()),
                        }
                    )
                }
            }
            for i, e in enumerate(events)
        ]
        for start in range(0, len(requests), 25):
            pending = requests[start : start + 25]
            for _ in range(6):
                out = self.client.batch_write_item(RequestItems={self.table_name: pending})
                pending = out.get("UnprocessedItems", {}).get(self.table_name, [])
                if not pending:
                    break
            if pending:
                raise RuntimeError(f"{len(pending)} feed items could not be written (throttled)")
        return list(range(first, last + 1))

    def read(self, after: int, limit: int, now: datetime | None = None) -> Page:
        """Events with numbers above `after` (0: from the start), ascending, at most `limit`,
        stopping before a gap whose writer may still be alive (see the module docstring)."""
        now = now or datetime.now(UTC)
        res = self.client.query(
            TableName=self.table_name,
            KeyConditionExpression="pk = :p AND sk BETWEEN :a AND :z",
            ExpressionAttributeValues=self._dump(
                {":p": FEED_PK, ":a": f"SEQ#{after + 1:020d}", ":z": f"SEQ#{'9' * 20}"}
            ),
            ConsistentRead=True,
            Limit=limit + 1,
        )
        raw = [self._load(item) for item in res.get("Items", [])]
        expected, last, items = after + 1, after, []
        stopped = False
        for item in raw[:limit]:
            seq = int(item["seq"])
            if seq > expected:
                sequenced = parse_iso(str(item.get("sequencedAt"))) or now
                if now - sequenced < self.hole:
                    stopped = True  # numbers below it may still be written: wait for them
                    break
            expected, last = seq + 1, seq
            if int(item.get("expiresAt", 0)) > now.timestamp():  # DynamoDB's TTL removes within days
                items.append(json.loads(str(item["body"])))
        has_more = stopped or len(raw) > limit
        return Page(items=items, next_seq=last, has_more=has_more)
