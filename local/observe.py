"""What the local runtime learns from its functions' own AWS calls, in-process.

The template's functions run in the runtime's process (`local.runtime`), and every AWS client they
make comes from boto3's default session. botocore announces every call on that session's event
hooks, so the runtime hears of a guest email the moment SES accepts it and of a schedule the
moment it is written, instead of asking moto again and again about everything it holds (moto's
``/moto-api/data.json`` dumps every model instance it ever made: polling it grows with the
season and starved the functions' AWS calls after ~100 bookings).

* `SesOutbox`: every ``SendEmail`` / ``SendRawEmail`` that SES (moto) accepted, appended as one
  JSON line to a file (the local stack's outbox; it holds what the guest reads, PIN included, as
  moto's SES does). `read_outbox` reads it whole; `OutboxTail` reads only what was added since
  its last read (``make local`` prints each email from it).
* `observe_calls`: a callback for each successful call of the given operations, with the
  parameters it was made with (the dispatcher learns of schedule writes this way).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

_PARAMS = "staykey_local_params"

Observer = Callable[[str, dict[str, Any], dict[str, Any]], None]
"""(operation name, the call's parameters, the parsed answer)."""


def default_events() -> Any:
    """The event hooks of boto3's default session (created if none exists yet): every client the
    functions make later with ``boto3.client(...)`` copies them."""
    import boto3

    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    return boto3.DEFAULT_SESSION.events


def observe_calls(events: Any, service: str, operations: Iterable[str], observer: Observer) -> None:
    """Call `observer` after each successful call of `service`'s `operations` made with a client
    created from `events`' session after this (clients copy the hooks when they are made)."""

    def keep_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context[_PARAMS] = dict(params)

    def after(http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        status = getattr(http_response, "status_code", 0)
        if not 200 <= int(status or 0) < 300:
            return
        try:
            observer(model.name, context.get(_PARAMS) or {}, parsed or {})
        except Exception as exc:  # an observer must never break the function's call
            print(f"local observer for {service}.{model.name} failed: {type(exc).__name__}: {exc}", flush=True)

    for operation in operations:
        events.register(f"before-parameter-build.{service}.{operation}", keep_params)
        events.register(f"after-call.{service}.{operation}", after)


class SesOutbox:
    """Appends each email SES accepted to `path`, one JSON object a line (see `email_entry`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()

    def install(self, events: Any) -> SesOutbox:
        observe_calls(events, "ses", ("SendEmail", "SendRawEmail"), self.record)
        return self

    def record(self, operation: str, params: dict[str, Any], answer: dict[str, Any]) -> None:
        entry = email_entry(operation, params, answer)
        line = json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            f.write(line)


def email_entry(operation: str, params: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    """``{id, source, destinations, subject, body, text, sentAt}`` (the shape moto's SES keeps:
    ``body`` is the HTML part when there is one, else the text part)."""
    sent_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if operation == "SendRawEmail":
        raw = (params.get("RawMessage") or {}).get("Data", b"")
        parsed = message_from_bytes(raw if isinstance(raw, bytes) else str(raw).encode(), policy=policy.default)
        parts = {part.get_content_type(): str(part.get_content()) for part in parsed.walk() if not part.is_multipart()}
        destinations = {"ToAddresses": list(params.get("Destinations") or [str(parsed.get("To", ""))])}
        text, html = parts.get("text/plain", ""), parts.get("text/html", "")
        source, subject = str(params.get("Source") or parsed.get("From", "")), str(parsed.get("Subject", ""))
    else:
        message = params.get("Message") or {}
        body = message.get("Body") or {}
        text, html = (body.get("Text") or {}).get("Data", ""), (body.get("Html") or {}).get("Data", "")
        destinations = dict(params.get("Destination") or {})
        source, subject = str(params.get("Source", "")), str((message.get("Subject") or {}).get("Data", ""))
    return {
        "id": str(answer.get("MessageId", "")),
        "source": source,
        "destinations": destinations,
        "subject": subject,
        "body": html or text,
        "text": text,
        "sentAt": sent_at,
    }


def read_outbox(path: Path) -> list[dict[str, Any]]:
    """Every email in the outbox, oldest first (none when the file does not exist)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class OutboxTail:
    """Reads only the emails added to the outbox since the last `new()` (by file offset)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0

    def new(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a line being written is read next time
        self._offset += len(complete)
        return [json.loads(line) for line in complete.decode("utf-8").splitlines() if line.strip()]
