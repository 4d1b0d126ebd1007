"""Small building blocks of the sandbox: ids, dates, replies and Nuki-shaped errors."""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

JSON = Any
"""A JSON-serialisable value (dicts, lists, str, int, float, bool, None)."""

H = TypeVar("H")

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|z|[+-]\d{2}:\d{2})")


class ObjectIds:
    """24-hex ids shaped like MongoDB ObjectIds (Nuki's auth and log ids are ObjectIds).

    4 bytes of Unix time, 5 random bytes per sandbox, a 3-byte counter: ids made later compare
    greater as strings, which is what the log's ``id`` cursor ("older than") relies on.
    """

    def __init__(self, clock: Callable[[], float] = time.time, seed: int | None = None) -> None:
        """``clock`` gives Unix seconds (a simulator passes its virtual clock); with a ``seed`` the
        machine part and the counter's start are fixed, so a simulated run makes the same ids."""
        self._lock = threading.Lock()
        self._clock = clock
        if seed is None:
            self._machine = secrets.token_hex(5)
            self._counter = secrets.randbelow(1 << 22)
        else:
            self._machine = f"{seed % (1 << 40):010x}"
            self._counter = 0
        self._last_second = 0

    def new(self) -> str:
        with self._lock:
            # Never let the timestamp go backwards (clock steps) so ids stay ordered.
            second = max(int(self._clock()), self._last_second)
            self._last_second = second
            self._counter = (self._counter + 1) % (1 << 24)
            counter = self._counter
        return f"{second:08x}{self._machine}{counter:06x}"


def is_object_id(value: str) -> bool:
    return re.fullmatch(r"[0-9a-f]{24}", value) is not None


def encode_json(value: JSON) -> bytes:
    """Compact UTF-8 JSON, the bytes that go on the wire (and get signed, for webhooks)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def utcnow() -> datetime:
    return datetime.now(UTC)


def format_date(value: datetime) -> str:
    """Nuki's date style: UTC with milliseconds, ``2026-12-01T14:00:00.000Z``.

    A UTC date's text is remembered: every answer listing a lock's authorizations formats each
    one's dates again (`strftime` was a twentieth of a simulated season). Two UTC datetimes that
    are equal have the same fields, so the text remembered for one is the other's."""
    if value.tzinfo is UTC:
        text = _formatted.get(value)
        if text is None:
            if len(_formatted) >= _FORMATTED_MAX:
                _formatted.clear()
            text = _formatted[value] = _format_date(value)
        return text
    return _format_date(value)


_formatted: dict[datetime, str] = {}
_FORMATTED_MAX = 100_000


def _format_date(value: datetime) -> str:
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse_date(value: object) -> datetime | None:
    """An RFC 3339 date-time with an offset, as an aware UTC datetime; None if it is not one."""
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        return None
    text = value[:-1] + "+00:00" if value[-1] in "Zz" else value
    # fromisoformat takes at most 6 fractional digits.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError:
        return None


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: status, JSON body (None: no body) and extra headers."""

    status: int
    body: JSON = None
    headers: tuple[tuple[str, str], ...] = field(default=())


def nuki_error_body(detail: str | None) -> dict[str, JSON]:
    """The Java exception shape Nuki answers errors with."""
    body: dict[str, JSON] = {}
    if detail is not None:
        body["detailMessage"] = detail
    body["stackTrace"] = []
    body["suppressedExceptions"] = []
    return body


class NukiError(Exception):
    """An error answer of the Nuki API routes."""

    def __init__(self, status: int, body: JSON, headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(f"{status}: {body}")
        self.reply = Reply(status, body, headers)


def _shown(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def bad_param(name: str, value: object) -> NukiError:
    """Nuki's 400: ``The supplied value '13' for parameter 'type' is not valid``."""
    return NukiError(400, nuki_error_body(f"The supplied value '{_shown(value)}' for parameter '{name}' is not valid"))


def unauthorized() -> NukiError:
    return NukiError(401, nuki_error_body("Your access token is not authorized"))


def forbidden() -> NukiError:
    return NukiError(403, nuki_error_body("Forbidden"))


def not_found() -> NukiError:
    return NukiError(404, nuki_error_body("Not found"))


def conflict(detail: str) -> NukiError:
    return NukiError(409, nuki_error_body(detail))


def locked() -> NukiError:
    # Observed body of a 423 (forum 1178): no detailMessage.
    return NukiError(423, nuki_error_body(None))


def unprocessable() -> NukiError:
    # Restlet's Status serialisation, as observed for a keypad name over 20 characters (forum 35593).
    return NukiError(
        422,
        {
            "code": 422,
            "description": (
                "The server understands the content type of the request entity and the syntax of the "
                "request entity is correct but was unable to process the contained instructions"
            ),
            "reasonPhrase": "Unprocessable Entity",
            "uri": "http://www.webdav.org/specs/rfc2518.html#STATUS_422",
        },
    )


class ControlError(Exception):
    """An error answer of the ``/_sim`` control routes: ``{"error": "..."}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.reply = Reply(status, {"error": message})


@dataclass(frozen=True)
class Route(Generic[H]):
    """One route of a table: method, full-match path pattern with named groups, handler."""

    method: str
    pattern: re.Pattern[str]
    handler: H


def route(method: str, pattern: str, handler: H) -> Route[H]:
    return Route(method, re.compile(pattern), handler)


def find_route(routes: Sequence[Route[H]], method: str, path: str) -> tuple[H, dict[str, str]] | int:
    """The handler and path parameters for a request, or 404/405 when no route takes it."""
    path = path.rstrip("/") or "/"
    status = 404
    for candidate in routes:
        match = candidate.pattern.fullmatch(path)
        if match is None:
            continue
        if candidate.method != method:
            status = 405
            continue
        return candidate.handler, match.groupdict()
    return status
