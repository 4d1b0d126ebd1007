"""Decentral webhook deliveries: signed POSTs sent in order by one background thread.

Every delivery is recorded (``GET /_sim/webhooks/deliveries``) with its exact body, its signature
and each attempt. A delivery that gets a non-2xx answer or no answer is tried again after each of
``retry_delays`` (default 0.2 s, then 1 s: three attempts in all), then given up as ``failed``.
Nuki documents no retry policy; this one is small so a broken receiver shows up quickly in
tests. Deliveries leave one at a time, in the order the events happened, so a slow receiver
delays the ones behind it. A delivery whose registration was deleted before it left is
``dropped``.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from local.nuki_sandbox.model import JSON, encode_json, format_date, utcnow

SIGNATURE_HEADER = "X-Nuki-Signature-SHA256"
CONTENT_TYPE = "application/json; charset=UTF-8"
DEFAULT_RETRY_DELAYS: tuple[float, ...] = (0.2, 1.0)
ATTEMPT_TIMEOUT_SECONDS = 5.0


def sign(secret: str, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of the exact body bytes, keyed with the registration secret."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


@dataclass
class Delivery:
    id: int
    webhook_id: int
    url: str
    feature: str
    body: bytes
    signature: str
    created_at: str
    status: str = "pending"  # pending, delivered, failed, dropped
    attempts: list[dict[str, JSON]] = field(default_factory=list)

    def to_json(self) -> dict[str, JSON]:
        return {
            "id": self.id,
            "webhookId": self.webhook_id,
            "url": self.url,
            "feature": self.feature,
            "status": self.status,
            "createdAt": self.created_at,
            "signature": self.signature,
            "body": self.body.decode("utf-8"),
            "payload": json.loads(self.body),
            "attempts": list(self.attempts),
        }


class WebhookDispatcher:
    """Queues deliveries and sends them from one daemon thread.

    ``lock`` is the sandbox's state lock: records are created under it (by the sandbox, which
    already holds it) and updated under it by the sender thread, never while a POST is in flight.
    """

    def __init__(
        self,
        lock: threading.RLock,
        still_registered: Callable[[int], bool],
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        *,
        now: Callable[[], datetime] = utcnow,
        sink: Callable[[Delivery], None] | None = None,
    ) -> None:
        """With ``sink``, nothing is sent and no thread runs: each delivery is recorded and handed
        to ``sink`` (a simulator delivers it on its own clock, with its own faults)."""
        self._lock = lock
        self._still_registered = still_registered
        self.retry_delays: tuple[float, ...] = tuple(retry_delays)
        self._now = now
        self._sink = sink
        self._records: list[Delivery] = []
        self._next_id = 1
        self._generation = 0
        self._queue: queue.Queue[tuple[int, Delivery] | None] = queue.Queue()
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        if sink is None:
            self._thread = threading.Thread(target=self._run, name="nuki-sandbox-webhooks", daemon=True)
            self._thread.start()

    def enqueue(self, webhook_id: int, url: str, secret: str, feature: str, payload: dict[str, JSON]) -> None:
        """Record a delivery and queue it; the body is serialised and signed once, here."""
        body = encode_json(payload)
        with self._lock:
            record = Delivery(
                id=self._next_id,
                webhook_id=webhook_id,
                url=url,
                feature=feature,
                body=body,
                signature=sign(secret, body),
                created_at=format_date(self._now()),
            )
            self._next_id += 1
            if self._sink is not None:
                self._sink(record)
                return
            self._records.append(record)
            self._in_flight += 1
            self._queue.put((self._generation, record))

    def deliveries(self) -> list[dict[str, JSON]]:
        with self._lock:
            return [record.to_json() for record in self._records]

    def clear(self) -> None:
        """Forget the log and drop what has not been sent yet."""
        with self._lock:
            self._generation += 1
            self._records.clear()

    def wait_idle(self, timeout: float) -> bool:
        """Block until every queued delivery has been sent, failed or dropped."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    def close(self) -> None:
        """Stop sending: what is queued or waiting for a retry is abandoned."""
        with self._lock:
            self._generation += 1
        self._closing.set()
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=ATTEMPT_TIMEOUT_SECONDS + 1)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            generation, record = item
            try:
                self._deliver(generation, record)
            finally:
                with self._idle:
                    self._in_flight -= 1
                    self._idle.notify_all()

    def _deliver(self, generation: int, record: Delivery) -> None:
        delays = self.retry_delays
        for attempt in range(len(delays) + 1):
            with self._lock:
                if generation != self._generation:
                    return
                if not self._still_registered(record.webhook_id):
                    record.status = "dropped"
                    return
            at = format_date(self._now())
            status, error = _post(record.url, record.body, record.signature)
            with self._lock:
                record.attempts.append({"at": at, "status": status, "error": error})
                if status is not None and 200 <= status < 300:
                    record.status = "delivered"
                    return
                if attempt == len(delays):
                    record.status = "failed"
                    return
            if self._closing.wait(delays[attempt]):
                return


def _post(url: str, body: bytes, signature: str) -> tuple[int | None, str | None]:
    """POST the body once; (status, None) on an answer, (None, error) when there was none."""
    parts = urlsplit(url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    connection: http.client.HTTPConnection
    try:
        if parts.scheme == "https":
            connection = http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=ATTEMPT_TIMEOUT_SECONDS)
        else:
            connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=ATTEMPT_TIMEOUT_SECONDS)
        try:
            connection.request(
                "POST",
                target,
                body=body,
                headers={
                    "Content-Type": CONTENT_TYPE,
                    SIGNATURE_HEADER: signature,
                    "User-Agent": "nuki-sandbox-webhooks",
                },
            )
            response = connection.getresponse()
            response.read()
            return response.status, None
        finally:
            connection.close()
    except (OSError, http.client.HTTPException) as exc:
        return None, f"{type(exc).__name__}: {exc}"
