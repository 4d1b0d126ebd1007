"""The event dispatcher: outbox items from the table's stream, out three ways from one source.

For each batch of stream records (new ``EVENT#`` items, in the order of their partition):

1. events whose outbox item is gone were dispatched before (a retried batch): skipped;
2. the rest are sequenced onto the feed (``GET /events``), put on the stack's EventBridge bus
   (source ``staykey``, detail-type the event type, detail the event), and queued once per
   enabled webhook endpoint that subscribed to the type (the webhook sender signs and delivers);
3. their outbox items are deleted.

A failure anywhere fails the chunk (and the records after it, which keep their order): the event
source mapping retries it, so an event may go out twice, never not at all. Its id lets the shop
drop the second one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from staykey.adapters.aws import LazyClient
from staykey.events.endpoints import Endpoint, EndpointStore
from staykey.events.feed import Feed, Outgoing
from staykey.observability import count, logger

CHUNK = 25
EVENT_SOURCE = "staykey"


@dataclass(frozen=True)
class OutboxRecord:
    sequence_number: str
    pk: str
    sk: str
    event: Outgoing


def parse_records(records: Sequence[dict[str, Any]]) -> list[OutboxRecord]:
    """The outbox inserts among DynamoDB stream records (Lambda's event shape)."""
    out = []
    for record in records:
        ddb = record.get("dynamodb") or {}
        keys, image = ddb.get("Keys") or {}, ddb.get("NewImage") or {}
        sk = (keys.get("sk") or {}).get("S", "")
        if record.get("eventName") != "INSERT" or not sk.startswith("EVENT#") or "body" not in image:
            continue
        out.append(
            OutboxRecord(
                sequence_number=str(ddb.get("SequenceNumber", "")),
                pk=keys["pk"]["S"],
                sk=sk,
                event=Outgoing(image["eventId"]["S"], image["eventType"]["S"], image["body"]["S"]),
            )
        )
    return out


class EventBus:
    client = LazyClient("events")

    def __init__(self, bus_name: str, client: Any | None = None) -> None:
        self.bus_name = bus_name
        self._client = client

    def put(self, events: Sequence[Outgoing]) -> None:
        for start in range(0, len(events), 10):
            entries = [
                {
                    "Source": EVENT_SOURCE,
                    "DetailType": e.event_type,
                    "Detail": e.body,
                    "EventBusName": self.bus_name,
                    "Resources": [],
                }
                for e in events[start : start + 10]
            ]
            for _ in range(4):
                res = self.client.put_events(Entries=entries)
                if not res.get("FailedEntryCount"):
                    break
                entries = [entry for entry, r in zip(entries, res["Entries"], strict=False) if r.get("ErrorCode")]
            else:
                raise RuntimeError(f"EventBridge refused {len(entries)} events")


class DeliveryQueue:
    """The webhook sender's queue: one message per (event, endpoint, attempt)."""

    client = LazyClient("sqs")

    def __init__(self, queue_url: str, dead_letter_url: str = "", client: Any | None = None) -> None:
        self.queue_url = queue_url
        self.dead_letter_url = dead_letter_url
        self._client = client

    def send(self, messages: Sequence[dict[str, Any]], delay: int = 0) -> None:
        for start in range(0, len(messages), 10):
            entries = [
                {"Id": str(i), "MessageBody": json.dumps(m, separators=(",", ":")), "DelaySeconds": delay}
                for i, m in enumerate(messages[start : start + 10])
            ]
            res = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            if res.get("Failed"):
                raise RuntimeError(f"{len(res['Failed'])} deliveries could not be queued")

    def dead_letter(self, message: dict[str, Any], reason: str) -> None:
        self.client.send_message(
            QueueUrl=self.dead_letter_url,
            MessageBody=json.dumps({**message, "deadLetterReason": reason}, separators=(",", ":")),
            MessageAttributes={"reason": {"DataType": "String", "StringValue": reason[:256]}},
        )


def delivery(event: Outgoing, endpoint: Endpoint) -> dict[str, Any]:
    return {
        "eventId": event.event_id,
        "eventType": event.event_type,
        "endpointId": endpoint.endpointId,
        "attempt": 1,
        "firstAttemptAt": None,
        "notBefore": None,
        "body": event.body,
    }


class Dispatcher:
    client = LazyClient("dynamodb")

    def __init__(
        self,
        table_name: str,
        feed: Feed,
        bus: EventBus,
        queue: DeliveryQueue,
        endpoints: EndpointStore,
        client: Any | None = None,
    ) -> None:
        self.table_name = table_name
        self.feed = feed
        self.bus = bus
        self.queue = queue
        self.endpoints = endpoints
        self._client = client

    def handle(self, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """One batch from the stream; Lambda's partial-failure answer (the first record not done)."""
        outbox = parse_records(records)
        endpoints: list[Endpoint] | None = None
        for start in range(0, len(outbox), CHUNK):
            chunk = outbox[start : start + CHUNK]
            try:
                if endpoints is None:
                    endpoints = [e for e in self.endpoints.list() if e.enabled]
                self._dispatch(chunk, endpoints)
            except Exception:
                logger.exception("events could not be dispatched; the batch is retried from here")
                count("EventDispatchFailed")
                return {"batchItemFailures": [{"itemIdentifier": chunk[0].sequence_number}]}
        return {"batchItemFailures": []}

    def _dispatch(self, chunk: Sequence[OutboxRecord], endpoints: Sequence[Endpoint]) -> None:
        pending = self._still_pending(chunk)
        if not pending:
            return
        events = [r.event for r in pending]
        self.feed.append(events, datetime.now(UTC))
        self.bus.put(events)
        messages = [delivery(e, ep) for e in events for ep in endpoints if ep.wants(e.event_type)]
        self.queue.send(messages)
        self._delete(pending)
        count("EventsDispatched", len(events))
        if messages:
            count("WebhookDeliveriesQueued", len(messages))
        logger.info(
            "events dispatched",
            events=len(events),
            types=sorted({e.event_type for e in events}),
            deliveries=len(messages),
        )

    def _still_pending(self, chunk: Sequence[OutboxRecord]) -> list[OutboxRecord]:
        keys = [{"pk": {"S": r.pk}, "sk": {"S": r.sk}} for r in chunk]
        found: set[tuple[str, str]] = set()
        request: dict[str, Any] = {
            self.table_name: {"Keys": keys, "ConsistentRead": True, "ProjectionExpression": "pk, sk"}
        }
        for _ in range(6):
            res = self.client.batch_get_item(RequestItems=request)
            for raw in res.get("Responses", {}).get(self.table_name, []):
                found.add((raw["pk"]["S"], raw["sk"]["S"]))
            request = res.get("UnprocessedKeys") or {}
            if not request:
                break
        else:
            raise RuntimeError("the outbox could not be read (throttled)")
        return [r for r in chunk if (r.pk, r.sk) in found]

    def _delete(self, done: Sequence[OutboxRecord]) -> None:
        requests = [{"DeleteRequest": {"Key": {"pk": {"S": r.pk}, "sk": {"S": r.sk}}}} for r in done]
        for start in range(0, len(requests), 25):
            pending = requests[start : start + 25]
            for _ in range(6):
                res = self.client.batch_write_item(RequestItems={self.table_name: pending})
                pending = res.get("UnprocessedItems", {}).get(self.table_name, [])
                if not pending:
                    break
            if pending:
                raise RuntimeError("outbox items could not be removed (throttled)")
