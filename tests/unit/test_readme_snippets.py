"""The README's receiver snippet runs as written: it accepts a delivery signed as StayKey signs it,
drops a repeat, and refuses a forged or altered one."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from staykey.events.endpoints import new_secret
from staykey.events.sender import sign

README = Path(__file__).resolve().parents[2] / "README.md"


def _snippet() -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"<!-- verify-snippet -->\s*```python\n(.*?)```", text, re.S)
    assert match, "the README lost its verify snippet"
    return match.group(1)


def _headers(secret: str, event_id: str, body: str) -> dict[str, str]:
    at = datetime.now(UTC)
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": sign([secret], event_id, at, body),
    }


def test_the_readme_receiver_verifies_drops_repeats_and_refuses_forgeries() -> None:
    secret = new_secret()
    scope: dict[str, Any] = {"SECRET": secret, "SEND_OWN_EMAIL": {}}
    exec(compile(_snippet(), "README.md", "exec"), scope)  # noqa: S102 - our own README's code
    receive = scope["receive"]
    body = json.dumps({"id": "evt_1", "type": "booking.active", "timestamp": "x", "data": {"bookingId": "B-1"}})
    headers = _headers(secret, "evt_1", body)
    assert receive(body.encode(), headers) == 204
    assert receive(body.encode(), headers) == 204  # the repeat
    assert scope["seen"] == {"evt_1"}
    assert receive(body.replace("B-1", "B-2").encode(), headers) == 401
    assert receive(body.encode(), _headers(new_secret(), "evt_1", body)) == 401
    assert receive(body.encode(), {}) == 401
