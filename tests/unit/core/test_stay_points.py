"""A stay point the shop sends that is not one: the message names the problem in the shop's terms,
never Python's internals (found by an adversarial run: "offset must be a timedelta strictly
between -timedelta(hours=24) and timedelta(hours=24)", "Invalid isoformat string")."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from staykey.core.models import BookingIn


def _message(check_in: str) -> str:
    body = {
        "bookingId": "B-1",
        "roomId": "room-12",
        "guest": {"name": "Ada Lovelace", "email": "ada@example.org"},
        "checkIn": check_in,
        "checkOut": "2027-01-12",
    }
    with pytest.raises(ValidationError) as caught:
        BookingIn.model_validate(body)
    return " ".join(str(e["msg"]) for e in caught.value.errors())


@pytest.mark.parametrize(
    ("check_in", "says"),
    [
        ("2027-01-10T15:00:00+24:00", "is not a real date or time"),
        ("2027-02-30", "is not a real date or time"),
        ("2027-01-10T24:00:00Z", "is not a real date or time"),
        ("\uff12\uff10\uff12\uff17-01-10", "must be a date (2026-12-01)"),
        ("2027-01-10T15:00:00", "needs an offset"),
    ],
)
def test_a_stay_point_that_is_not_one_is_named_in_the_shops_terms(check_in: str, says: str) -> None:
    message = _message(check_in)
    assert says in message
    assert "timedelta" not in message
    assert "isoformat" not in message
