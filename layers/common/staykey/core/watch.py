"""Work where something happens: which locks StayKey looks at, when, and with which of Nuki's reads.
Pure: the watcher (`services.watch`), the sweep (`services.reconciler`) and the simulator call these
with plain values.

A lock is **hot** while a stay of ours is on it or about to be: from the booking's provisioning time
(its code goes on) until `hot_after` after its end (its code comes off and is seen gone), and while it
is left by a booking that moved away. Hot locks are looked at often: their keypad codes every
`hot_check` seconds, and while any is hot the account's log every `log_hot` seconds (guests come and
go). Every other lock is idle: nothing of ours can change on it unless someone touches it, so it is
looked at by the full sweep (`ReconcileSchedule`, daily by default) and when a signal says it may
have drifted (a `DEVICE_AUTHS` we did not expect, a failed write, a lock back online).

With Nuki's webhooks registered, webhooks say what changes; polling the log only fills their gaps:
every `gap_fill` seconds, and as often as without webhooks while deliveries have lapsed
(`WatchState.lapsed_until`: polling found entries no webhook had brought). The hot locks' codes are
read every `hot_check` seconds either way: a change of a guest's code that no webhook told (a lost
delivery) is noticed within that, the promise the 15-minute reconcile period made before.

A look at a lock's keypad codes is compared with the digest of what the lock held when the
reconciler last found it right (`digest`): the same codes, with no stay of the lock starting or
ending since, need nothing more. Anything else goes to the reconciler with the list just read.

Which read to use (`choose_reader`): one `GET /smartlock/{id}/auth` per lock, the account's whole
list in one answer (`GET /smartlock/auth`, while it is small), or its pages (`/smartlock/auth/paged`,
`ceil(codes / page size)` calls): whichever costs fewer calls for the locks to look at now.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from staykey.nuki import SmartlockAuth

Reader = Literal["per-lock", "account", "paged"]
WATCH_SHARDS = 16  # the watch items are spread over this many partitions (no hot partition key)
DIGESTED = (0, 13)  # app authorizations and keypad codes: what StayKey puts on locks
# A run of the watcher this much early still counts as due (its schedule's runs drift by seconds).
TICK_SLACK = 60.0


@dataclass(frozen=True)
class WatchSettings:
    """How often what is looked at (seconds)."""

    hot_check: float = 900.0  # a hot lock's codes (with or without webhooks)
    log_hot: float = 300.0  # the account's log while a lock is hot, without webhooks
    gap_fill: float = 3600.0  # with webhooks: the log, to fill lost deliveries
    hot_after: float = 3600.0  # a lock stays hot this long after a stay's end
    lapse_hold: float = 7200.0  # polling as without webhooks this long after deliveries lapsed
    log_polling: bool = True  # LogPolling: DISABLED reads no log at all
    page_size: int = 100
    unpaged_max: int = 30000  # the account's whole list in one answer up to this many codes (about 13 MB)


@dataclass
class LockWatch:
    """What the watcher knows of one lock: its stays, what it held when last found right, a signal."""

    smartlock_id: int
    # booking -> (when its code goes on, when its stay ends)
    stays: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)
    seen: str | None = None  # digest of its keypad codes when the reconciler last found them right
    seen_at: datetime | None = None
    check_at: datetime | None = None  # a signal: look at it from this time on (`Store.lock_signals`)

    def hot(self, now: datetime, after: timedelta) -> bool:
        return any(start <= now <= end + after for start, end in self.stays.values())

    def crossed(self, since: datetime | None, now: datetime) -> bool:
        """A stay of this lock started or ended since `since` (None: never found right)."""
        if since is None:
            return True
        return any(since < t <= now for bounds in self.stays.values() for t in bounds)

    def signalled(self, now: datetime) -> bool:
        return self.check_at is not None and self.check_at <= now

    def expired(self, now: datetime, keep: timedelta) -> list[str]:
        """Stays long over: no reason to keep them."""
        return [booking_id for booking_id, (_, end) in self.stays.items() if end + keep < now]


@dataclass
class WatchState:
    """The watcher's own record (one item): when it last read the log and the hot locks, since when
    webhook deliveries lapsed, and the account's size at the last count."""

    log_polled_at: datetime | None = None
    hot_checked_at: datetime | None = None
    lapsed_until: datetime | None = None
    codes: int | None = None  # keypad codes on every lock of the account, at the last count
    locks: int | None = None
    hot: int | None = None  # hot locks at the last hot check
    # The account's whole list failed at this many codes (Nuki would not serve it, after retries), and when
    unpaged_failed: int | None = None
    unpaged_failed_at: datetime | None = None


@dataclass
class TickPlan:
    """What one run of the watcher does."""

    poll_log: bool = False
    check: list[int] = field(default_factory=list)  # locks whose codes to look at now
    forced: set[int] = field(default_factory=set)  # to the reconciler whatever their digest
    reader: Reader = "per-lock"
    hot: int = 0
    hot_check_due: bool = False
    prune: dict[int, list[str]] = field(default_factory=dict)  # lock -> stays to forget


def polling_as_without_webhooks(webhooks: bool, state: WatchState, now: datetime) -> bool:
    return not webhooks or (state.lapsed_until is not None and now < state.lapsed_until)


def hot_check_due(state: WatchState, now: datetime, s: WatchSettings) -> bool:
    """Whether the hot locks' codes are due (every `hot_check`, with or without webhooks: a change of
    a guest's code nobody told us about is noticed within that, as the 15-minute reconcile period
    promised): only then does a run read every lock's watch item."""
    every = timedelta(seconds=s.hot_check)
    return state.hot_checked_at is None or now - state.hot_checked_at >= every - timedelta(seconds=TICK_SLACK)


def plan_tick(
    watches: Iterable[LockWatch],
    state: WatchState,
    now: datetime,
    s: WatchSettings,
    webhooks: bool,
    signals: Mapping[int, datetime] | None = None,
) -> TickPlan:
    """What to read now, from the locks' stays and signals and when things were last read. `watches`
    holds every lock's item when the hot check is due (`hot_check_due`), else the signalled locks'
    only: the log's rate then goes by how many locks were hot at the last check (`WatchState.hot`)."""
    plan = TickPlan()
    eager = polling_as_without_webhooks(webhooks, state, now)
    after = timedelta(seconds=s.hot_after)
    slack = timedelta(seconds=TICK_SLACK)
    plan.hot_check_due = hot_check_due(state, now, s)
    listed: list[LockWatch] = list(watches)
    for w in listed:
        if signals and w.smartlock_id in signals:
            w.check_at = signals[w.smartlock_id]
    hot = [w for w in listed if w.hot(now, after)] if plan.hot_check_due else []
    plan.hot = len(hot) if plan.hot_check_due else (state.hot if state.hot is not None else 1)
    if s.log_polling:
        log_every = timedelta(seconds=s.log_hot if (eager and plan.hot) else s.gap_fill)
        plan.poll_log = state.log_polled_at is None or now - state.log_polled_at >= log_every - slack
    chosen: dict[int, LockWatch] = {w.smartlock_id: w for w in hot}
    chosen |= {w.smartlock_id: w for w in listed if w.signalled(now)}
    plan.check = sorted(chosen)
    plan.forced = {w.smartlock_id for w in chosen.values() if w.signalled(now) or w.crossed(w.seen_at, now)}
    plan.reader = choose_reader(len(plan.check), state.codes, s.page_size, s.unpaged_max)
    keep = after + timedelta(days=1)
    if plan.hot_check_due:
        plan.prune = {w.smartlock_id: gone for w in listed if (gone := w.expired(now, keep))}
    return plan


# How long a failed account-wide read keeps the account's list below the size it failed at.
UNPAGED_FAILURE_HOLD = timedelta(days=1)


def unpaged_cap(unpaged_max: int, state: WatchState, now: datetime) -> int:
    """The most codes the account's whole list is read for in one answer: UNPAGED_MAX, or less for a
    day after that list failed (Nuki documents no limit on its size: one that it would not serve is
    read in pages, or lock by lock, until then)."""
    failed, at = state.unpaged_failed, state.unpaged_failed_at
    if failed is None or at is None or now - at > UNPAGED_FAILURE_HOLD:
        return unpaged_max
    return min(unpaged_max, failed - 1)


def choose_reader(locks: int, codes: int | None, page_size: int, unpaged_max: int, paged: bool = True) -> Reader:
    """The read that costs fewer Nuki calls for `locks` locks, with `codes` keypad codes on the account
    (None: not counted yet, so one call per lock). Ties go to one call per lock (a fresh list each)."""
    if locks == 0 or codes is None:
        return "per-lock"
    if codes <= unpaged_max and locks > 1:
        return "account"
    if paged and -(-max(codes, 1) // page_size) < locks:
        return "paged"
    return "per-lock"


def reader_calls(reader: Reader, locks: int, codes: int | None, page_size: int) -> int:
    """The Nuki calls a read costs (for the log line and the benchmark)."""
    if reader == "per-lock" or codes is None:
        return locks
    if reader == "account":
        return 1
    return max(1, -(-codes // page_size))


def digest(auths: Iterable[SmartlockAuth]) -> str:
    """What a lock's keypad codes and app authorizations are, in 16 hex characters: the same ones with
    the same names, windows, limits, state, users, remote access and errors give the same digest
    (never a PIN in the clear)."""
    rows = sorted(
        "|".join(
            str(part)
            for part in (
                a.id,
                a.type,
                a.code,
                a.name,
                a.enabled,
                a.allowed_from_date and a.allowed_from_date.isoformat(),
                a.allowed_until_date and a.allowed_until_date.isoformat(),
                a.allowed_week_days,
                a.allowed_from_time,
                a.allowed_until_time,
                a.account_user_id,
                a.remote_allowed,
                a.error,
            )
        )
        for a in auths
        if a.type in DIGESTED
    )
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]


def suspects(
    check: Iterable[int], listing: Mapping[int, list[SmartlockAuth]], watches: Mapping[int, LockWatch], forced: set[int]
) -> list[int]:
    """The looked-at locks whose codes are not what they were when last found right (or that must go
    to the reconciler anyway): a lock missing from an account's listing holds no keypad code."""
    out = []
    for lock_id in check:
        watch = watches.get(lock_id)
        if lock_id in forced or watch is None or watch.seen != digest(listing.get(lock_id, [])):
            out.append(lock_id)
    return out


def lapsed(polled_new: int, now: datetime, s: WatchSettings) -> datetime | None:
    """Polling stored entries no webhook had brought: deliveries lapsed; poll as without them a while."""
    return now + timedelta(seconds=s.lapse_hold) if polled_new else None


__all__ = [
    "TICK_SLACK",
    "WATCH_SHARDS",
    "LockWatch",
    "Reader",
    "TickPlan",
    "WatchSettings",
    "WatchState",
    "choose_reader",
    "digest",
    "hot_check_due",
    "lapsed",
    "plan_tick",
    "polling_as_without_webhooks",
    "reader_calls",
    "suspects",
]
