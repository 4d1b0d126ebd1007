"""The texts of instants remembered by `remembered_text` (iso_utc, the events' dates) are what they
would be made anew: equal fixed-offset datetimes are one instant; zones with daylight saving,
where equal wall times may be two instants, are never remembered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter

from staykey.core.timeutil import _iso_utc, iso_utc, remembered_text
from staykey.events.model import _iso, _iso_text


def test_one_instant_in_any_fixed_offset_has_one_text() -> None:
    at = datetime(2026, 10, 25, 0, 30, 15, 123456, tzinfo=UTC)
    parsed = TypeAdapter(datetime).validate_python("2026-10-25T02:30:15.123456+02:00")
    for value in (at, at.astimezone(timezone(timedelta(hours=-5))), parsed):
        assert iso_utc(value) == _iso_utc(value) == "2026-10-25T00:30:15Z"
        assert _iso(value) == _iso_text(value) == "2026-10-25T00:30:15Z"


def test_equal_wall_times_of_a_zone_are_not_taken_for_one_instant() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    first = datetime(2026, 10, 25, 2, 30, tzinfo=berlin, fold=0)
    second = datetime(2026, 10, 25, 2, 30, tzinfo=berlin, fold=1)
    texts: dict[datetime, str] = {}
    assert remembered_text(first, _iso_utc, texts) == "2026-10-25T00:30:00Z"
    assert remembered_text(second, _iso_utc, texts) == "2026-10-25T01:30:00Z"
    assert texts == {}


def test_the_texts_remembered_are_bounded() -> None:
    texts: dict[datetime, str] = {}
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(10_050):
        value = start + timedelta(seconds=n)
        assert remembered_text(value, _iso_utc, texts) == _iso_utc(value)
    assert len(texts) <= 10_000
