"""A shop's webhook endpoint on loopback, for `make demo` and the end-to-end tests.

`EventReceiver` listens on ``127.0.0.1`` (a free port), verifies each delivery the way a shop would,
with the `standardwebhooks` package and the secret StayKey showed at registration, answers 204 to a
verified delivery and 401 to anything else, and keeps the verified events once per id (delivery is
at least once: a repeated id is acknowledged and dropped).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    event: dict[str, Any]
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)


class EventReceiver:
    def __init__(self, on_event: Callable[[Received], None] | None = None) -> None:
        self.secret: str | None = None
        self.events: list[Received] = []
        self.rejected = 0
        self.duplicates = 0
        self.on_event = on_event
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0") or 0)
                body = self.rfile.read(min(length, 1 << 20))
                status = receiver._receive(body, dict(self.headers.items()))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self.server.serve_forever, name="event-receiver", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/staykey/events"

    def start(self) -> EventReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _receive(self, body: bytes, headers: dict[str, str]) -> int:
        from standardwebhooks import Webhook, WebhookVerificationError

        if self.secret is None:
            return 503
        try:
            event = Webhook(self.secret).verify(body, headers)
        except (WebhookVerificationError, ValueError):
            with self._lock:
                self.rejected += 1
            return 401
        received = Received(event=dict(event), headers=headers)
        with self._lock:
            if any(r.event["id"] == event["id"] for r in self.events):
                self.duplicates += 1
                return 204
            self.events.append(received)
        if self.on_event is not None:
            self.on_event(received)
        return 204

    def types(self) -> list[str]:
        with self._lock:
            return [str(r.event["type"]) for r in self.events]

    def wait_for(self, wanted: Iterable[str], timeout: float) -> bool:
        """True once every type in `wanted` has arrived (each at least as often as listed)."""
        need = list(wanted)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            have = self.types()
            if all(have.count(t) >= need.count(t) for t in set(need)):
                return True
            time.sleep(0.05)
        return False

    @staticmethod
    def describe(event: dict[str, Any]) -> str:
        data = event.get("data") or {}
        subject = f"booking {data['bookingId']}" if data.get("bookingId") else f"lock {data.get('smartlockId')}"
        extra = ""
        if event["type"].startswith("booking.") and data.get("previousStatus"):
            extra = f" ({data['previousStatus']} -> {data.get('status')})"
        elif event["type"] == "access.entry":
            extra = (
                f" (lock {data.get('smartlockId')}: {data.get('action')} by {data.get('trigger')}, {data.get('state')})"
            )
        elif event["type"] == "guest.checked_in":
            extra = f" (lock {data.get('smartlockId')} at {data.get('firstEntryAt')})"
        return f"{event['type']:<22} {subject}{extra}"


def dumps(event: dict[str, Any]) -> str:
    return json.dumps(event, separators=(",", ":"))
