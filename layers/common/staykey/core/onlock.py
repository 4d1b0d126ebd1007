"""What is on the lock: the one rule every path (webhook, read-back, reconciler) judges a code by.

A code of ours opens the door exactly for the stay when it carries the booking's PIN under the
booking's name (and, linked, the guest's Nuki account user), the lock stored it without an `error`
(a full keypad stores a code it refuses), it is enabled, it has no weekday or daily-time limits
(a staff code: exactly its schedule's),
no remote access (`remoteAllowed`: StayKey never asks for it; switched on in Nuki Web, it is
drift like a changed window), and its window is the booking's (Nuki may round; within
`WINDOW_TOLERANCE`). `differences` lists
how a code falls short; an empty list is the only thing that confirms a write or keeps a booking
`active`. An app authorization (type 0) is judged the same way, with the guest's Nuki account user
in the place of the PIN: it must be an app authorization of that account user, under the booking's
name, without an error, enabled, without limits, with the booking's window.

A webhook is only a claim about the lock. `usable` says whether one can stand for a look at the
lock: it must say everything `differences` needs, and be news (newer than what we saw last, and not
from before the write it would confirm). Anything else is a reason to read the lock back, never to
move a booking.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from staykey.core.models import Booking, LockState, Schedule
    from staykey.nuki import SmartlockAuth

# A window read back from Nuki may be rounded; anything within this counts as what we sent.
WINDOW_TOLERANCE = timedelta(seconds=61)
# Nuki's clock and ours: a webhook stamped this much before what we know is not taken as news.
CLOCK_SKEW = timedelta(seconds=5)
ALL_WEEK_DAYS = 127
TOO_MANY_ENTRIES = "K_ERROR_TOO_MANY_ENTRIES"
APP, KEYPAD = 0, 13  # SmartlockAuth.type of an app authorization and of a keypad code


def code_of(auth: SmartlockAuth) -> str | None:
    return None if auth.code is None else f"{auth.code:06d}"


def wanted_user(b: Booking, lock: LockState) -> int | None:
    """The Nuki account user the authorization on `lock` must carry: the guest's for app access and
    for a linked keypad code (once the guest has one), none for an unlinked keypad code."""
    if lock.access == "app" or lock.link:
        return b.account.accountUserId
    return None


def differences(
    auth: SmartlockAuth,
    pin: str | None,
    start: datetime | None,
    end: datetime | None,
    name: str,
    *,
    app: bool = False,
    user: int | None = None,
    schedule: Schedule | None = None,
) -> list[str]:
    """How `auth` differs from the code `pin` named `name` for [start, end] (or, `app`, from the app
    authorization of account user `user`); [] if it is exactly that. A keypad code with a `user`
    must be linked to that account user; a staff code's weekly `schedule` must be its limits
    exactly (None: no weekday or daily-time limits)."""
    problems = []
    if auth.error:
        problems.append(f"refused by the lock: {auth.error}")
    if app:
        if auth.type != APP:
            problems.append("another kind of authorization")
        if user is None or auth.account_user_id != user:
            problems.append("another account user")
    else:
        if pin is None or code_of(auth) != pin:
            problems.append("another code")
        if user is not None and auth.account_user_id != user:
            problems.append("another account user")
    if auth.name != name:
        problems.append("another name")
    for label, seen, wanted in (("start", auth.allowed_from_date, start), ("end", auth.allowed_until_date, end)):
        if seen is None or wanted is None or abs(seen - wanted) > WINDOW_TOLERANCE:
            problems.append(f"another {label}")
    if limits(auth) != (
        (ALL_WEEK_DAYS, 0, 0) if schedule is None else (schedule.weekDays, schedule.fromTime, schedule.untilTime)
    ):
        problems.append("weekday or daily-time limits")
    if auth.enabled is not True:
        problems.append("disabled")
    if auth.remote_allowed is True:
        problems.append("remote access")
    return problems


def limits(auth: SmartlockAuth) -> tuple[int, int, int]:
    """The weekdays and daily times `auth` opens on (absent: every day, all day)."""
    days = ALL_WEEK_DAYS if auth.allowed_week_days is None else auth.allowed_week_days
    return days, auth.allowed_from_time or 0, auth.allowed_until_time or 0


def drift_class(problems: list[str]) -> str | None:
    """The reconciler's name for a difference: "wrong_code" (code or name), "wrong_window", or None."""
    if not problems:
        return None
    if any(
        p in ("another code", "another name", "another account user", "another kind of authorization") for p in problems
    ):
        return "wrong_code"
    return "wrong_window"


def lock_full(auth: SmartlockAuth) -> bool:
    return bool(auth.error) and TOO_MANY_ENTRIES in str(auth.error)


def complete(auth: SmartlockAuth, needs_user: bool = False) -> bool:
    """Whether a webhook's auth says everything `differences` needs (Nuki's own example does not):
    whether it is enabled and allows remote access, a keypad code its code, an app authorization
    (or a code that must be linked) its account user."""
    return (
        auth.enabled is not None
        and auth.remote_allowed is not None
        and (auth.code is not None or auth.type != KEYPAD)
        and (auth.account_user_id is not None or not (needs_user or auth.type == APP))
        and auth.allowed_from_date is not None
        and auth.allowed_until_date is not None
        and auth.update_date is not None
    )


def usable(
    auth: SmartlockAuth, seen_at: datetime | None, op_sent_at: datetime | None, needs_user: bool = False
) -> bool:
    """Whether a webhook's (not deleted) auth can stand for a look at the lock: complete, and news."""
    if not complete(auth, needs_user) or auth.update_date is None:
        return False
    if seen_at is not None and auth.update_date <= seen_at + CLOCK_SKEW:
        return False  # what we saw already, or older: history, or too close to tell
    return not (op_sent_at is not None and auth.update_date < op_sent_at - CLOCK_SKEW)


__all__ = [
    "APP",
    "CLOCK_SKEW",
    "KEYPAD",
    "WINDOW_TOLERANCE",
    "code_of",
    "complete",
    "differences",
    "drift_class",
    "lock_full",
    "usable",
    "wanted_user",
]
