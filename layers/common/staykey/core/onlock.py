"""What is on the lock: the one rule every path (webhook, read-back, reconciler) judges a code by.

A code of ours opens the door exactly for the stay when it carries the booking's PIN under the
booking's name, the lock stored it without an `error` (a full keypad stores a code it refuses),
it is enabled, it has no weekday or daily-time limits, and its window is the booking's (Nuki may
round; within `WINDOW_TOLERANCE`). `differences` lists how a code falls short; an empty list is
the only thing that confirms a write or keeps a booking `active`.

A webhook is only a claim about the lock. `usable` says whether one can stand for a look at the
lock: it must say everything `differences` needs, and be news (newer than what we saw last, and not
from before the write it would confirm). Anything else is a reason to read the lock back, never to
move a booking.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from staykey.nuki import SmartlockAuth

# A window read back from Nuki may be rounded; anything within this counts as what we sent.
WINDOW_TOLERANCE = timedelta(seconds=61)
# Nuki's clock and ours: a webhook stamped this much before what we know is not taken as news.
CLOCK_SKEW = timedelta(seconds=5)
ALL_WEEK_DAYS = 127
TOO_MANY_ENTRIES = "K_ERROR_TOO_MANY_ENTRIES"


def code_of(auth: SmartlockAuth) -> str | None:
    return None if auth.code is None else f"{auth.code:06d}"


def differences(
    auth: SmartlockAuth, pin: str | None, start: datetime | None, end: datetime | None, name: str
) -> list[str]:
    """How `auth` differs from the code `pin` named `name` for [start, end]; [] if it is exactly that."""
    problems = []
    if auth.error:
        problems.append(f"refused by the lock: {auth.error}")
    if pin is None or code_of(auth) != pin:
        problems.append("another code")
    if auth.name != name:
        problems.append("another name")
    for label, seen, wanted in (("start", auth.allowed_from_date, start), ("end", auth.allowed_until_date, end)):
        if seen is None or wanted is None or abs(seen - wanted) > WINDOW_TOLERANCE:
            problems.append(f"another {label}")
    if (
        auth.allowed_week_days not in (None, ALL_WEEK_DAYS)
        or auth.allowed_from_time not in (None, 0)
        or auth.allowed_until_time not in (None, 0)
    ):
        problems.append("weekday or daily-time limits")
    if auth.enabled is not True:
        problems.append("disabled")
    return problems


def drift_class(problems: list[str]) -> str | None:
    """The reconciler's name for a difference: "wrong_code" (code or name), "wrong_window", or None."""
    if not problems:
        return None
    if any(p in ("another code", "another name") for p in problems):
        return "wrong_code"
    return "wrong_window"


def lock_full(auth: SmartlockAuth) -> bool:
    return bool(auth.error) and TOO_MANY_ENTRIES in str(auth.error)


def complete(auth: SmartlockAuth) -> bool:
    """Whether a webhook's auth says everything `differences` needs (Nuki's own example does not)."""
    return (
        auth.enabled is not None
        and auth.code is not None
        and auth.allowed_from_date is not None
        and auth.allowed_until_date is not None
        and auth.update_date is not None
    )


def usable(auth: SmartlockAuth, seen_at: datetime | None, op_sent_at: datetime | None) -> bool:
    """Whether a webhook's (not deleted) auth can stand for a look at the lock: complete, and news."""
    if not complete(auth) or auth.update_date is None:
        return False
    if seen_at is not None and auth.update_date <= seen_at + CLOCK_SKEW:
        return False  # what we saw already, or older: history, or too close to tell
    return not (op_sent_at is not None and auth.update_date < op_sent_at - CLOCK_SKEW)


__all__ = [
    "CLOCK_SKEW",
    "WINDOW_TOLERANCE",
    "code_of",
    "complete",
    "differences",
    "drift_class",
    "lock_full",
    "usable",
]
