"""The stay window in UTC from the room's zone, across Europe/Berlin's daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from staykey.core.models import BookingIn, Room, window_for

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def room(**kw: object) -> Room:
    body = {
        "roomId": "r",
        "name": "R",
        "smartlockIds": [1],
        "timezone": "Europe/Berlin",
        "createdAt": NOW,
        "updatedAt": NOW,
        **kw,
    }
    return Room.model_validate(body)


@pytest.mark.parametrize(
    ("check_in", "check_out", "valid_from", "valid_until"),
    [
        # Autumn 2026: clocks go back on Sunday 25 October at 03:00 CEST -> 02:00 CET.
        (date(2026, 10, 24), date(2026, 10, 26), "2026-10-24T13:00:00+00:00", "2026-10-26T10:00:00+00:00"),
        # Spring 2027: clocks go forward on Sunday 28 March at 02:00 CET -> 03:00 CEST.
        (date(2027, 3, 27), date(2027, 3, 29), "2027-03-27T14:00:00+00:00", "2027-03-29T09:00:00+00:00"),
    ],
)
def test_date_stays_across_dst_use_the_local_time_on_each_day(
    check_in: date, check_out: date, valid_from: str, valid_until: str
) -> None:
    start, end = window_for(room(), check_in, check_out)
    assert start == datetime.fromisoformat(valid_from)
    assert end == datetime.fromisoformat(valid_until)


def test_a_stay_over_the_spring_change_is_an_hour_shorter_in_utc() -> None:
    start, end = window_for(room(checkInTime="15:00", checkOutTime="15:00"), date(2027, 3, 27), date(2027, 3, 28))
    assert (end - start).total_seconds() == 23 * 3600


def test_check_in_time_inside_the_spring_gap_moves_forward() -> None:
    start, _ = window_for(room(checkInTime="02:30"), date(2027, 3, 28), date(2027, 3, 29))
    assert start == datetime(2027, 3, 28, 1, 30, tzinfo=UTC)  # 03:30 CEST, the first valid moment


def test_check_out_time_in_the_repeated_autumn_hour_takes_the_first() -> None:
    _, end = window_for(room(checkOutTime="02:30"), date(2026, 10, 24), date(2026, 10, 25))
    assert end == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST, before clocks go back


def test_buffers_widen_the_window() -> None:
    start, end = window_for(room(accessBeforeMinutes=30, accessAfterMinutes=60), date(2026, 12, 1), date(2026, 12, 3))
    assert start == datetime(2026, 12, 1, 13, 30, tzinfo=UTC)
    assert end == datetime(2026, 12, 3, 11, 0, tzinfo=UTC)


def test_date_times_with_offset_are_taken_as_given() -> None:
    b = BookingIn.model_validate(
        {
            "bookingId": "B",
            "roomId": "r",
            "guest": {"name": "A", "email": "a@b.io"},
            "checkIn": "2027-03-28T01:30:00+01:00",
            "checkOut": "2027-03-29T12:00:00Z",
        }
    )
    start, end = window_for(room(), b.checkIn, b.checkOut)
    assert start == datetime(2027, 3, 28, 0, 30, tzinfo=UTC)
    assert end == datetime(2027, 3, 29, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("value", ["2026-12-01T15:00:00", "2026-12-01 15:00", "tomorrow", "2026-13-01", 20261201])
def test_stay_points_without_offset_or_malformed_are_refused(value: object) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        BookingIn.model_validate(
            {
                "bookingId": "B",
                "roomId": "r",
                "guest": {"name": "A", "email": "a@b.io"},
                "checkIn": value,
                "checkOut": "2026-12-03",
            }
        )
