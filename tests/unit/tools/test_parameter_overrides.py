"""`LOCAL_PARAMETER_OVERRIDES` (local.aws.parse_parameter_overrides): as `sam deploy
--parameter-overrides` takes them, a value with a space quoted as a shell quotes it."""

from __future__ import annotations

import pytest

from local.aws import LocalAwsError, parse_parameter_overrides


def test_a_schedule_with_a_space_can_be_overridden_when_quoted() -> None:
    """Found by an adversarial run: `LogPollSchedule=rate(1 minute)` was split at its space."""
    raw = "'LogPollSchedule=rate(1 minute)' HotCheckMinutes=2 ReconcileSchedule=\"rate(1 hour)\""
    assert parse_parameter_overrides(raw) == {
        "LogPollSchedule": "rate(1 minute)",
        "HotCheckMinutes": "2",
        "ReconcileSchedule": "rate(1 hour)",
    }


@pytest.mark.parametrize("raw", ["HotCheckMinutes", "'LogPollSchedule=rate(1 minute)"])
def test_what_is_not_key_value_is_refused_naming_it(raw: str) -> None:
    with pytest.raises(LocalAwsError, match="parameter override"):
        parse_parameter_overrides(raw)
