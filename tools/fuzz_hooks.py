"""Schemathesis hooks and checks for `tools.fuzz` (loaded by the fuzzer as SCHEMATHESIS_HOOKS).

* `after_call` writes one line per HTTP exchange to ``$STAYKEY_FUZZ_RECORD`` (JSON lines): method,
  path, status, the phase that sent it, and every PIN a response carried (the PIN-in-logs check
  needs them), plus the request and response of every 5xx, so a crash can be turned into a
  regression test.
* `before_call` gives three in four ``POST /bookings`` bodies a fresh ``bookingId`` (generated
  ids repeat, and a repeated id with another body is a 409), sends each ``PUT /rooms/fuzz-new``
  to a room of its own (``fuzz-new-7``: the fuzz's way to create rooms), and signs about half of the
  ``POST /webhooks/nuki`` bodies with the local stack's webhook secret
  (``$STAYKEY_FUZZ_WEBHOOK_SECRET``), so the fuzzer gets past the signature check into what lies
  behind it; the other half keep whatever signature was generated (401).
* The check `refusals_name_rules_the_schema_cannot_state`: a request whose body conforms to
  openapi.yaml may still be refused with 422, but only for a rule JSON Schema cannot state (the
  stay's window, an IANA zone, control characters in a name, a lock the Nuki account lacks). Any
  other 422 on a schema-valid body means openapi.yaml and the service disagree: that fails the run
  and names the field.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import os
import re
import threading
from typing import Any

import schemathesis

from tools.fuzz import NEW_ROOM

_lock = threading.Lock()

# (field, message pattern): the 422s a schema-valid body may get.
RULES_BEYOND_THE_SCHEMA: tuple[tuple[str, str], ...] = (
    # The stay's window (models.window_for, core.commands.check_window).
    (r"checkIn|checkOut", r"must be after checkIn|is in the past|a stay may last at most|more than three years away"),
    # A date-time whose offset moves it out of Python's datetime range (e.g. 0001-01-01T00:00:00+01:00).
    (r"checkIn|checkOut", r"out of range|year .* is out of range"),
    # A day, time or offset of the right shape that does not exist (2027-02-30, 24:00, +24:00).
    (r"checkIn|checkOut", r"is not a real date or time"),
    # IANA zones are a database, not a pattern.
    (r"timezone", r"is not an IANA time zone"),
    # How guests open each lock (`access`) names locks of the room: a cross-field rule.
    (r"access", r"which smartlockIds does not list"),
    # Names: "no control characters" is in the schema's description, not in a pattern.
    (r"name|guest\.name", r"control or invisible formatting characters|must not be empty"),
    # A room's locks are looked up in the Nuki account (services/rooms.py): a schema-valid id of a
    # lock the account does not have, or one StayKey cannot use, is refused naming it.
    (
        r"smartlockIds\.\d+",
        r"does not exist in the Nuki account|has no keypad|Smart Hosting subscription|refuses access|refused by Nuki",
    ),
    # JSON Schema 2020-12 (OpenAPI 3.1) counts 583.0 as an integer; StayKey takes only integer
    # literals (a lock id or a count sent as 583.0 is a shop's bug worth naming, not rounding).
    (
        r"accessBeforeMinutes|accessAfterMinutes|smartlockIds\.\d+|allowedWeekDays|allowedFromTime|allowedUntilTime"
        r"|backupPoolSize",
        r"Input should be a valid integer",
    ),
    # Webhook endpoint URLs: where a host resolves to, and what the URL carries, is not a schema
    # matter (webhook_endpoints.check_url); nor is the number of endpoints a stack keeps.
    (
        r"url",
        r"does not resolve|private, loopback or link-local|must be https|user name or password|fragment"
        r"|has no host|is not a URL|at most \d+ (endpoints|characters)",
    ),
    (r"description", r"control or invisible formatting characters|must not be empty"),
    (r"eventTypes", r"stands alone|must not repeat a type"),
    # Staff codes (core.staff, services.staff): a daily window's end after its start, the dates'
    # window, ids that must be rooms (and locks of a room) StayKey has and that take keypad codes,
    # ids not repeated, a PATCH that names something to change.
    (r"allowedUntilTime", r"must be after allowedFromTime"),
    (
        r"allowedFromDate|allowedUntilDate",
        r"must be after allowedFromDate|is in the past|at most three years|more than three years away"
        r"|is not a real date or time|out of range|needs an offset",
    ),
    (
        r"roomIds|smartlockIds",
        r"no room|give at least one room|belong to no room|opened with the Nuki app only|may open at most"
        r"|must not repeat",
    ),
    (r"(none)|", r"give at least one field to change|must not be null"),
    # Backup codes: what a lock holds is Nuki's to say (services.rooms.check_pool).
    (r"backupPoolSize", r"do not fit"),
)


def _record(entry: dict[str, Any]) -> None:
    path = os.environ.get("STAYKEY_FUZZ_RECORD")
    if not path:
        return
    line = json.dumps(entry, ensure_ascii=False, default=str)
    with _lock, open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")


def _pins(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [str(value["pin"])] if isinstance(value.get("pin"), str) else []
        return found + [p for v in value.values() if isinstance(v, dict | list) for p in _pins(v)]
    if isinstance(value, list):
        return [p for v in value for p in _pins(v)]
    return []


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


_fresh = itertools.count(1)


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    if case.operation.path == "/bookings" and isinstance(case.body, dict):
        booking_id = case.body.get("bookingId")
        # Generated ids repeat ("0", "A"): after the first, every other body is a 409. Three in four
        # get a fresh suffix so creations go deep; the rest keep replays and conflicts coming.
        if isinstance(booking_id, str) and re.fullmatch(r"[A-Za-z0-9._-]{1,50}", booking_id) and next(_fresh) % 4:
            case.body = {**case.body, "bookingId": f"{booking_id}-{next(_fresh)}"}
        return
    if case.operation.path == "/rooms/{roomId}" and (case.path_parameters or {}).get("roomId") == NEW_ROOM:
        # A room no one made yet: each PUT to it creates one (its body permitting).
        case.path_parameters = {**case.path_parameters, "roomId": f"{NEW_ROOM}-{next(_fresh)}"}
        return
    secret = os.environ.get("STAYKEY_FUZZ_WEBHOOK_SECRET")
    if not secret or case.operation.path != "/webhooks/nuki" or case.body is None:
        return
    try:
        # requests sends `json=` bodies as json.dumps(body) with its default separators.
        raw = json.dumps(case.body, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError):
        return
    if hashlib.sha256(raw).digest()[0] % 2:
        return
    signature = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    case.headers = {**(case.headers or {}), "X-Nuki-Signature-SHA256": signature}


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    status = int(response.status_code)
    text = response.text if isinstance(getattr(response, "text", None), str) else ""
    entry: dict[str, Any] = {"method": case.operation.method.upper(), "path": case.operation.path, "status": status}
    phase = getattr(getattr(getattr(case, "meta", None), "phase", None), "name", None)
    if phase is not None:
        entry["phase"] = str(getattr(phase, "value", phase))  # examples, coverage, fuzzing, stateful
    pins = _pins(_json(text)) if text else []
    if pins:
        entry["pins"] = pins
    if 400 <= status < 500:
        entry["answer"] = text[:300]
    if status >= 500:
        request = response.request
        body = request.body
        entry["request"] = {
            "method": request.method,
            "url": request.url,
            "body": body.decode("utf-8", "replace") if isinstance(body, bytes) else body,
        }
        entry["response"] = text[:2000]
    _record(entry)


@schemathesis.check
def refusals_name_rules_the_schema_cannot_state(ctx: Any, response: Any, case: Any) -> bool | None:
    """A schema-valid body refused with 422 must be refused for a rule the schema cannot state."""
    if response.status_code != 422 or case.body is None:
        return None
    bodies = list(case.operation.body)
    if not bodies or not all(isinstance(k, str) for k in (case.path_parameters or {})):
        return None
    try:
        if not any(b.is_valid(case.body) for b in bodies):
            return None  # negative data: refusing it is right
    except Exception:
        return None
    for name, value in (case.path_parameters or {}).items():
        param = next((p for p in case.operation.path_parameters if p.name == name), None)
        if param is not None and not param.is_valid(value):
            return None
    answer = _json(response.text) or {}
    errors = answer.get("errors") or [{"field": "(none)", "message": answer.get("message", "")}]
    unexplained = [
        e
        for e in errors
        if not any(
            re.fullmatch(field, str(e.get("field", ""))) and re.search(message, str(e.get("message", "")))
            for field, message in RULES_BEYOND_THE_SCHEMA
        )
    ]
    if unexplained:
        raise AssertionError(
            "a body that conforms to openapi.yaml was refused for a rule openapi.yaml does not state: "
            + "; ".join(f"{e.get('field')}: {e.get('message')}" for e in unexplained)
        )
    return None
