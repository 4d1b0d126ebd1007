"""How a stored Nuki log entry reads in the activity API."""

from __future__ import annotations

import pytest

from staykey.errors import ValidationFailed
from staykey.services.activity import ACTIVITY_LIMIT_DEFAULT, activity_limit, is_success, to_item


def stored(**kw: object) -> dict[str, object]:
    return {
        "id": "675000000000000000000001",
        "at": "2026-11-27T14:03:11Z",
        "smartlockId": 17000001,
        "action": 1,
        "trigger": 255,
        "source": 1,
        "state": 0,
        "bookingId": "B-1001",
        **kw,
    }


def test_a_guest_entry_reads_with_the_contracts_names() -> None:
    assert to_item(stored()).to_api() == {
        "id": "675000000000000000000001",
        "at": "2026-11-27T14:03:11Z",
        "smartlockId": 17000001,
        "action": "unlock",
        "trigger": "keypad",
        "source": "keypad_code",
        "success": True,
        "state": "success",
    }


@pytest.mark.parametrize(
    ("fields", "names", "success"),
    [
        ({"state": 224}, ("unlock", "keypad", "keypad_code", "invalid_code"), False),
        ({"action": 3, "trigger": 5, "source": 0}, ("unlatch", "app", "default", "success"), True),
        ({"action": 2, "trigger": 6, "source": 0}, ("lock", "auto_lock", "default", "success"), True),
        ({"action": 240, "trigger": 0, "source": 0}, ("door_opened", "system", "default", "success"), True),
        ({"action": 1, "trigger": 1, "source": 0, "state": 1}, ("unlock", "manual", "default", "motor_blocked"), False),
        # Tap to Unlock error: state 0 means "access document revoked", not success
        (
            {"trigger": 253, "source": 3, "state": 0},
            ("unlock", "keypad_error", "tap_to_unlock", "access_document_revoked"),
            False,
        ),
        # values a later Nuki version may add stay readable
        (
            {"action": 99, "trigger": 77, "source": 9, "state": 199},
            ("unknown_99", "unknown_77", "unknown_9", "unknown_199"),
            False,
        ),
    ],
)
def test_names_and_success(fields: dict[str, int], names: tuple[str, str, str, str], success: bool) -> None:
    item = to_item(stored(**fields)).to_api()
    assert (item["action"], item["trigger"], item["source"], item["state"]) == names
    assert item["success"] is success


def test_success_is_state_zero_except_for_tap_to_unlock_errors() -> None:
    assert is_success(255, 0)
    assert not is_success(255, 224)
    assert not is_success(253, 0)


@pytest.mark.parametrize(
    ("raw", "expected"), [(None, ACTIVITY_LIMIT_DEFAULT), ("", ACTIVITY_LIMIT_DEFAULT), ("1", 1), ("1000", 1000)]
)
def test_limit(raw: str | None, expected: int) -> None:
    assert activity_limit(raw) == expected


@pytest.mark.parametrize("raw", ["0", "1001", "1e3", " 5", "\u0665", "9" * 5000])
def test_bad_limits(raw: str) -> None:
    with pytest.raises(ValidationFailed):
        activity_limit(raw)
