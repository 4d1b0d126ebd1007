"""The webhook sender against a real HTTP receiver on loopback: Standard Webhooks signatures a shop
verifies with `standardwebhooks`, the retry schedule to over 24 hours, then the dead-letter queue
and a disabled endpoint; the address that was checked is the one connected to."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from staykey.core.timeutil import FixedClock
from staykey.events.dispatch import delivery
from staykey.events.endpoints import Endpoint, EndpointSecrets, EndpointStore, new_endpoint_id
from staykey.events.feed import Outgoing
from staykey.events.sender import Sender, retry_schedule_total
from staykey.settings import load_settings


class Receiver:
    """A shop's endpoint: records each request and answers `status` (a list: one per request)."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes, str]] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append((dict(self.headers.items()), body, self.path))
                status = receiver.statuses.pop(0) if receiver.statuses else 204
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class ListQueue:
    def __init__(self) -> None:
        self.sent: list[tuple[dict[str, Any], int]] = []
        self.dead: list[tuple[dict[str, Any], str]] = []

    def send(self, messages: list[dict[str, Any]], delay: int = 0) -> None:
        self.sent += [(m, delay) for m in messages]

    def dead_letter(self, message: dict[str, Any], reason: str) -> None:
        self.dead.append((message, reason))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def setup(
    aws: dict[str, str], receiver: Receiver
) -> tuple[Sender, EndpointStore, EndpointSecrets, ListQueue, FixedClock]:
    clock = FixedClock(datetime(2026, 11, 26, 9, 0, tzinfo=UTC))
    store = EndpointStore("staykey-test")
    secrets = EndpointSecrets("staykey-test/webhook-endpoints/")
    queue = ListQueue()
    sender = Sender(
        endpoints=store,
        secrets=secrets,
        queue=queue,  # type: ignore[arg-type]
        clock=clock,
        retry_seconds=load_settings().webhook_retry_seconds,
        allow_loopback=True,
        timeout_seconds=5,
        resolve=lambda host, port: {"hooks.shop.test": ["127.0.0.1"], "127.0.0.1": ["127.0.0.1"]}[host],
    )
    return sender, store, secrets, queue, clock


def _endpoint(store: EndpointStore, secrets: EndpointSecrets, url: str, clock: FixedClock) -> tuple[Endpoint, str]:
    endpoint = Endpoint(
        endpointId=new_endpoint_id(), url=url, eventTypes=["*"], createdAt=clock.now(), updatedAt=clock.now()
    )
    secret = secrets.create(endpoint.endpointId)
    store.put_new(endpoint)
    return endpoint, secret


EVENT = Outgoing(
    "evt_01JDQ8Z5K3N2T7W9XG4HB6C1VE",
    "booking.active",
    json.dumps({"id": "evt_01JDQ8Z5K3N2T7W9XG4HB6C1VE", "type": "booking.active", "data": {"bookingId": "B-1"}}),
)


def test_a_delivery_is_signed_so_that_standardwebhooks_verifies_it(setup: Any, receiver: Receiver) -> None:
    sender, store, secrets, queue, clock = setup
    # A host name (resolved by the test's resolver to loopback): the request goes to the checked address.
    endpoint, secret = _endpoint(store, secrets, f"http://hooks.shop.test:{receiver.port}/staykey?x=1", clock)
    assert sender.handle(delivery(EVENT, endpoint)) == "delivered"
    ((headers, body, path),) = receiver.requests
    assert path == "/staykey?x=1"
    assert headers["Host"] == f"hooks.shop.test:{receiver.port}"
    assert body.decode() == EVENT.body  # byte for byte
    assert headers["webhook-id"] == EVENT.event_id
    verified = Webhook(secret).verify(body, headers)  # what a shop's receiver does
    assert verified["id"] == EVENT.event_id
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=").verify(body, headers)
    tampered = body.replace(b"B-1", b"B-2")
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, headers)
    assert store.get(endpoint.endpointId).lastSuccessAt == clock.now()  # type: ignore[union-attr]
    assert queue.sent == []


def test_failures_are_retried_on_the_schedule_past_24_hours_then_dead_lettered_and_the_endpoint_disabled(
    setup: Any, receiver: Receiver
) -> None:
    sender, store, secrets, queue, clock = setup
    endpoint, _ = _endpoint(store, secrets, f"http://127.0.0.1:{receiver.port}/", clock)
    schedule = load_settings().webhook_retry_seconds
    assert retry_schedule_total(schedule) >= timedelta(hours=24)
    assert schedule == [5, 300, 1800, 7200, 18000, 36000, 36000]
    receiver.statuses = [500] * 100
    message = delivery(EVENT, endpoint)
    start = clock.now()
    waits: list[float] = []
    hops = 0
    outcome = sender.handle(message)
    while outcome in ("retrying", "waiting"):
        ((message, delay),) = queue.sent
        queue.sent.clear()
        assert delay <= 900  # SQS's limit
        clock.advance(seconds=delay)
        if outcome == "retrying":
            waits.append(
                (datetime.fromisoformat(message["notBefore"].replace("Z", "+00:00")) - clock.now()).total_seconds()
                + delay
            )
        else:
            hops += 1
        outcome = sender.handle(message)
    assert outcome == "dead_lettered"
    assert len(receiver.requests) == 8  # the first attempt and 7 retries
    assert waits == schedule
    assert hops > 0  # waits over 15 minutes are walked in steps
    assert clock.now() - start >= timedelta(hours=24)
    assert [r for _, r in queue.dead] == ["retries exhausted"]
    dead, _ = queue.dead[0]
    assert dead["lastError"] == "HTTP 500"
    assert dead["eventId"] == EVENT.event_id
    stored = store.get(endpoint.endpointId)
    assert stored is not None
    assert stored.enabled is False
    assert "every delivery failed" in (stored.disabledReason or "")
    assert stored.consecutiveFailures == 8
    # Another delivery to the disabled endpoint goes to the dead-letter queue without an attempt.
    assert sender.handle(delivery(EVENT, stored)) == "endpoint_disabled"
    assert len(receiver.requests) == 8
    # Every attempt carried the same webhook-id (the shop drops duplicates by it).
    assert {h["webhook-id"] for h, _, _ in receiver.requests} == {EVENT.event_id}


def test_a_success_in_between_keeps_the_endpoint_enabled(setup: Any, receiver: Receiver) -> None:
    sender, store, secrets, _queue, clock = setup
    endpoint, _ = _endpoint(store, secrets, f"http://127.0.0.1:{receiver.port}/", clock)
    receiver.statuses = [503]
    assert sender.handle(delivery(EVENT, endpoint)) == "retrying"
    assert store.get(endpoint.endpointId).failingSince == clock.now()  # type: ignore[union-attr]
    clock.advance(seconds=60)
    receiver.statuses = [200]
    other = Outgoing("evt_2", "booking.revoked", '{"id":"evt_2"}')
    assert sender.handle(delivery(other, endpoint)) == "delivered"
    healthy = store.get(endpoint.endpointId)
    assert healthy is not None
    assert healthy.failingSince is None
    assert healthy.consecutiveFailures == 0


def test_an_unreachable_or_refused_address_is_a_failed_attempt_without_a_connection(setup: Any) -> None:
    sender, store, secrets, _queue, clock = setup
    sender.allow_loopback = False  # as deployed
    endpoint, _ = _endpoint(store, secrets, "https://hooks.shop.test/staykey", clock)
    assert sender.handle(delivery(EVENT, endpoint)) == "retrying"
    failed = store.get(endpoint.endpointId)
    assert failed is not None
    assert "loopback" in (failed.lastError or "")


def test_a_deleted_endpoint_drops_its_deliveries(setup: Any) -> None:
    sender, store, secrets, queue, clock = setup
    endpoint, _ = _endpoint(store, secrets, "http://127.0.0.1:9/", clock)
    store.delete(endpoint.endpointId)
    assert sender.handle(delivery(EVENT, endpoint)) == "endpoint_deleted"
    assert queue.sent == []
    assert queue.dead == []
