"""Time: instants are aware UTC datetimes inside; IANA zones appear only at the edges.

A check-in given as a date means "the room's check-in time on that day, in the room's zone";
the zone's rules (daylight-saving changes included) decide the UTC instant.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic_core import TzInfo


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that tests move by hand."""

    def __init__(self, at: datetime) -> None:
        self._at = at.astimezone(UTC)

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        self._at = at.astimezone(UTC)

    def advance(self, **delta: float) -> datetime:
        self._at += timedelta(**delta)
        return self._at


_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def parse_hhmm(value: str) -> time:
    match = _HHMM.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a time of day as HH:MM (00:00 to 23:59)")
    return time(int(match.group(1)), int(match.group(2)))


# Names the zone database holds that are not a place's zone: the host's own setting, and the
# placeholder zone meaning "not set". A room's zone must not depend on the machine it runs on.
_NOT_PLACES = frozenset({"localtime", "Factory"})


@functools.lru_cache(maxsize=1)
def _iana_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) - _NOT_PLACES


def iana_zone(name: str) -> ZoneInfo:
    """A zone the shop names: one of the IANA database's zone names (not a file of the database
    like posixrules or right/UTC, not the host's localtime). ValueError naming it otherwise."""
    found = zone(name)
    if name not in _iana_names():
        raise ValueError(f"{name!r} is not an IANA time zone (for example Europe/Berlin)")
    return found


def zone(name: str) -> ZoneInfo:
    try:
        if not name or name != name.strip() or ".." in name or name.startswith("/"):
            raise ZoneInfoNotFoundError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        # OSError: a name that is a directory of the zone database ("Europe") or unreadable.
        raise ValueError(f"{name!r} is not an IANA time zone (for example Europe/Berlin)") from exc


def local_to_utc(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock time in a zone.

    On the day clocks go back the wall time happens twice: we take the first (fold=0), so a guest
    gets in at the earlier moment. On the day clocks go forward a wall time inside the gap does not
    exist: we move it forward by the gap (02:30 becomes 03:30 in Europe/Berlin), as a clock would.
    """
    # zoneinfo with fold=0 does both: the first of two repeated times, and for a time in the gap
    # the offset from before the change, which lands the same distance after the gap.
    return datetime.combine(day, at).replace(tzinfo=tz, fold=0).astimezone(UTC)


def to_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("a date-time needs an offset (Z or +01:00)")
    return value.astimezone(UTC)


def iso_utc(value: datetime | None) -> str | None:
    """`2026-12-01T14:00:00Z`, the form every answer of ours uses."""
    if value is None:
        return None
    return remembered_text(value, _iso_utc, _ISO_UTC)


def _iso_utc(value: datetime) -> str:
    return value.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# The types of tzinfo whose offset is the same at every instant (datetime.UTC is a timezone; pydantic
# reads "...Z" and "+01:00" as TzInfo). Two aware datetimes with such a tzinfo are equal (and hash
# alike) only when they are the same instant, so a text of the instant made for one is the other's.
_FIXED_OFFSETS = (timezone, TzInfo)
_TEXTS_MAX = 10_000
_ISO_UTC: dict[datetime, str] = {}


def remembered_text(value: datetime, form: Callable[[datetime], str], texts: dict[datetime, str]) -> str:
    """`form(value)`, remembered in `texts` (at most 10,000) when `value`'s offset is fixed: `form`
    must depend on the instant alone (its UTC fields). The same instants are formatted again and
    again (every booking read, every save). A zone with daylight saving, where equal wall times
    may be two instants, is formatted each time."""
    if type(value.tzinfo) not in _FIXED_OFFSETS:
        return form(value)
    text = texts.get(value)
    if text is None:
        if len(texts) >= _TEXTS_MAX:
            texts.clear()
        text = texts[value] = form(value)
    return text


def parse_iso(value: str | None) -> datetime | None:
    if value is None:
        return None
    return to_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))


def format_local(value: datetime, tz_name: str, locale: str = "en") -> str:
    """A human date-time in the room's zone with the zone named: `Tue 1 Dec 2026, 15:00 (Europe/Berlin, CET)`."""
    tz = zone(tz_name)
    local = value.astimezone(tz)
    abbrev = local.tzname() or ""
    if locale.startswith("de"):
        days = ["Mo", "Di", "Mi", "Do", "Fr", "Sa", "So"]
        months = ["Jan", "Feb", "Mär", "Apr", "Mai", "Jun", "Jul", "Aug", "Sep", "Okt", "Nov", "Dez"]
        text = f"{days[local.weekday()]}, {local.day}. {months[local.month - 1]} {local.year}, {local:%H:%M} Uhr"
    else:
        days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        text = f"{days[local.weekday()]} {local.day} {months[local.month - 1]} {local.year}, {local:%H:%M}"
    return f"{text} ({tz_name}, {abbrev})" if abbrev and abbrev != tz_name else f"{text} ({tz_name})"
