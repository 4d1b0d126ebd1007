"""The one rule of what is on a lock (staykey.core.onlock), and when a webhook may stand for a look."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from staykey.core import onlock
from staykey.nuki import SmartlockAuth

START = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
END = START + timedelta(days=2)


def auth(**changes: Any) -> SmartlockAuth:
    fields: dict[str, Any] = {
        "id": "a" * 24,
        "smartlock_id": 1,
        "type": 13,
        "name": "SK B-1",
        "enabled": True,
        "remote_allowed": False,
        "code": 482917,
        "allowed_from_date": START,
        "allowed_until_date": END,
        "allowed_week_days": 127,
        "allowed_from_time": 0,
        "allowed_until_time": 0,
        "update_date": START - timedelta(days=1),
    }
    fields.update(changes)
    return SmartlockAuth(**fields)


def test_the_code_as_booked_differs_in_nothing() -> None:
    assert onlock.differences(auth(), "482917", START, END, "SK B-1") == []
    rounded = auth(allowed_until_date=END + timedelta(seconds=60))
    assert onlock.differences(rounded, "482917", START, END, "SK B-1") == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"error": "K_ERROR_TOO_MANY_ENTRIES (0x29)"}, "refused by the lock: K_ERROR_TOO_MANY_ENTRIES (0x29)"),
        ({"code": 482918}, "another code"),
        ({"name": "SK B-2"}, "another name"),
        ({"allowed_from_date": START + timedelta(minutes=5)}, "another start"),
        ({"allowed_until_date": None}, "another end"),
        ({"allowed_week_days": 64}, "weekday or daily-time limits"),
        ({"allowed_from_time": 600}, "weekday or daily-time limits"),
        ({"enabled": False}, "disabled"),
        ({"enabled": None}, "disabled"),
        # Issue 15, defect 7: remote access switched on in Nuki Web was no difference at all.
        ({"remote_allowed": True}, "remote access"),
    ],
)
def test_every_way_a_code_can_fail_the_guest_is_a_difference(change: dict[str, Any], problem: str) -> None:
    assert problem in onlock.differences(auth(**change), "482917", START, END, "SK B-1")


def test_drift_classes_for_the_reconciler() -> None:
    assert onlock.drift_class([]) is None
    assert onlock.drift_class(["another code", "another end"]) == "wrong_code"
    assert onlock.drift_class(["disabled"]) == "wrong_window"


def test_a_webhook_is_a_look_only_when_it_is_complete_and_news() -> None:
    seen = START - timedelta(hours=1)
    fresh = auth(update_date=START)
    assert onlock.usable(fresh, seen, None)
    assert onlock.usable(fresh, None, START - timedelta(seconds=1))
    assert not onlock.usable(auth(update_date=seen), seen, None), "what we saw already"
    assert not onlock.usable(auth(update_date=seen + timedelta(seconds=3)), seen, None), "too close to tell"
    assert not onlock.usable(fresh, None, START + timedelta(minutes=1)), "from before the write it would confirm"
    assert not onlock.usable(auth(enabled=None, update_date=START), None, None), "Nuki's lean example"
    assert not onlock.usable(auth(update_date=None), None, None)


def test_remote_access_is_drift_and_a_webhook_that_does_not_say_it_is_no_look() -> None:
    """Issue 15, defect 7: StayKey's authorizations are exactly what it asked for, never with remote
    access; a webhook without `remoteAllowed` cannot say the code is as booked (a read-back can)."""
    assert onlock.drift_class(onlock.differences(auth(remote_allowed=True), "482917", START, END, "SK B-1")) == (
        "wrong_window"
    )
    app = auth(type=0, code=None, account_user_id=7, remote_allowed=True)
    assert "remote access" in onlock.differences(app, None, START, END, "SK B-1", app=True, user=7)
    seen = START - timedelta(hours=1)
    assert onlock.usable(auth(update_date=START), seen, None)
    assert not onlock.usable(auth(update_date=START, remote_allowed=None), seen, None)


def test_a_full_keypad_is_recognised_by_its_error() -> None:
    assert onlock.lock_full(auth(error="K_ERROR_TOO_MANY_ENTRIES (0x29): the keypad already holds 200 codes"))
    assert not onlock.lock_full(auth(error="K_ERROR_CODE_INVALID"))
    assert not onlock.lock_full(auth())
