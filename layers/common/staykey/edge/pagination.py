"""Opaque cursors and the query-string parameters of the list routes.

A cursor is base64url of a small JSON object: the position reached (the last sort key returned,
never a whole DynamoDB key) and a hash of the filters it belongs to. It is validated, not signed:
it can only point to a position that the same filters could reach anyway (the position is a sort
key we check the shape of, read with the same partition keys and filters), so a forged cursor
reaches nothing more than the query itself, and there is no key to keep or rotate. A cursor that
does not decode, has another shape, or belongs to other filters is a 422 naming `cursor`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from staykey.errors import ValidationFailed

CURSOR_VERSION = 1
MAX_CURSOR_CHARS = 512


def bad(field: str, message: str) -> ValidationFailed:
    return ValidationFailed("bad query parameter", details=[{"field": field, "message": message}])


def filters_hash(filters: Mapping[str, Any]) -> str:
    canonical = json.dumps(filters, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def encode_cursor(position: str, filters: Mapping[str, Any]) -> str:
    raw = json.dumps({"v": CURSOR_VERSION, "q": filters_hash(filters), "k": position}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, filters: Mapping[str, Any], shape: re.Pattern[str]) -> str | None:
    """The position a cursor holds, checked against the filters of this request and `shape`."""
    if cursor is None:
        return None
    if not cursor or len(cursor) > MAX_CURSOR_CHARS or not re.fullmatch(r"[A-Za-z0-9_-]+", cursor):
        raise bad("cursor", "is not a cursor of this list (use nextCursor of the previous page as it is)")
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, RecursionError):
        raise bad("cursor", "is not a cursor of this list (use nextCursor of the previous page as it is)") from None
    if not isinstance(data, dict) or set(data) != {"v", "q", "k"} or data["v"] != CURSOR_VERSION:
        raise bad("cursor", "is not a cursor of this list (use nextCursor of the previous page as it is)")
    position = data["k"]
    if not isinstance(position, str) or not shape.fullmatch(position):
        raise bad("cursor", "is not a cursor of this list (use nextCursor of the previous page as it is)")
    if data["q"] != filters_hash(filters):
        raise bad("cursor", "belongs to a list with other filters; start again without a cursor")
    return position


class Query:
    """The query-string parameters of one request: known names only, each given at most once
    (unless `repeatable`), every problem a 422 naming the parameter."""

    def __init__(
        self,
        single: Mapping[str, str] | None,
        multi: Mapping[str, Sequence[str]] | None,
        allowed: Sequence[str],
        repeatable: Sequence[str] = (),
    ) -> None:
        self.values: dict[str, list[str]] = {}
        for key, values in (multi or {}).items():
            self.values[key] = list(values)
        for key, value in (single or {}).items():
            self.values.setdefault(key, [value])
        unknown = sorted(set(self.values) - set(allowed))
        if unknown:
            raise ValidationFailed(
                "bad query parameter",
                details=[
                    {"field": key, "message": f"is not a parameter of this route (known: {', '.join(allowed)})"}
                    for key in unknown
                ],
            )
        for key, values in self.values.items():
            if len(values) > 1 and key not in repeatable:
                raise bad(key, "must be given once")

    def get(self, key: str) -> str | None:
        values = self.values.get(key)
        return values[-1] if values else None

    def all(self, key: str) -> list[str]:
        return [part for value in self.values.get(key, []) for part in value.split(",")]

    def limit(self, default: int, maximum: int) -> int:
        raw = self.get("limit")
        if raw is None or raw == "":
            return default
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 6) or not 1 <= int(raw) <= maximum:
            raise bad("limit", f"must be a whole number from 1 to {maximum}")
        return int(raw)

    def instant(self, key: str) -> datetime | None:
        """An RFC 3339 date-time with an offset (Z or +01:00); a date alone or no offset is refused,
        as for stays: guessing a zone is how times go wrong."""
        raw = self.get(key)
        if raw is None:
            return None
        pattern = r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?([Zz]|[+-]\d{2}:\d{2})"
        if not re.fullmatch(pattern, raw, re.ASCII):
            raise bad(key, "must be a date-time with an offset, for example 2026-12-01T00:00:00Z")
        try:
            value = datetime.fromisoformat(raw.upper().replace("Z", "+00:00"))
        except ValueError:
            raise bad(key, "is not a valid date-time") from None
        return value

    def text(self, key: str, max_length: int, min_length: int = 1) -> str | None:
        import unicodedata

        raw = self.get(key)
        if raw is None:
            return None
        value = unicodedata.normalize("NFC", raw).strip()
        if any(unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Co"} for ch in value):
            raise bad(key, "must not contain control or invisible formatting characters")
        if not min_length <= len(value) <= max_length:
            raise bad(key, f"must be {min_length} to {max_length} characters")
        return value
