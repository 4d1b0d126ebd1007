"""Work where something happens (staykey.core.watch), with plain values: which locks are hot, what a
watcher run reads, which of Nuki's reads is cheapest, and which locks go to the reconciler."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from staykey.core import watch as w
from staykey.nuki import SmartlockAuth

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)
S = w.WatchSettings()


def lock(lock_id: int, *stays: tuple[datetime, datetime], seen: str | None = "x", **kw: object) -> w.LockWatch:
    return w.LockWatch(lock_id, {f"B{n}": s for n, s in enumerate(stays)}, seen=seen, seen_at=NOW - H, **kw)  # type: ignore[arg-type]


def test_a_lock_is_hot_from_its_codes_provisioning_until_an_hour_after_its_stay() -> None:
    stay = (NOW - 72 * H, NOW + 24 * H)
    assert lock(1, stay).hot(NOW, timedelta(seconds=S.hot_after))
    assert lock(1, (NOW - 10 * H, NOW - timedelta(minutes=59))).hot(NOW, timedelta(seconds=S.hot_after))
    assert not lock(1, (NOW - 10 * H, NOW - 2 * H)).hot(NOW, timedelta(seconds=S.hot_after))
    assert not lock(1, (NOW + H, NOW + 9 * H)).hot(NOW, timedelta(seconds=S.hot_after))
    assert not lock(1).hot(NOW, timedelta(seconds=S.hot_after))


def test_without_webhooks_hot_locks_are_read_every_hot_check_and_the_log_every_five_minutes() -> None:
    hot, idle = lock(1, (NOW - H, NOW + H)), lock(2)
    state = w.WatchState(log_polled_at=NOW - timedelta(minutes=5), hot_checked_at=NOW - timedelta(minutes=15))
    plan = w.plan_tick([hot, idle], state, NOW, S, webhooks=False)
    assert plan.poll_log
    assert plan.check == [1]
    assert plan.hot_check_due
    # Ten minutes after the last check: not due; the log is
    state = w.WatchState(log_polled_at=NOW - timedelta(minutes=5), hot_checked_at=NOW - timedelta(minutes=10))
    plan = w.plan_tick([hot, idle], state, NOW, S, webhooks=False)
    assert (plan.poll_log, plan.check) == (True, [])


def test_nothing_hot_nothing_signalled_a_run_reads_the_log_hourly_and_nothing_else() -> None:
    idle = [lock(n) for n in range(1, 50)]
    state = w.WatchState(log_polled_at=NOW - timedelta(minutes=30), hot_checked_at=NOW - 2 * H)
    assert w.plan_tick(idle, state, NOW, S, webhooks=False) == w.TickPlan(hot_check_due=True)
    state.log_polled_at = NOW - H
    assert w.plan_tick(idle, state, NOW, S, webhooks=False).poll_log


def test_with_webhooks_the_log_only_fills_gaps_unless_deliveries_lapsed_and_hot_locks_keep_their_look() -> None:
    hot = lock(1, (NOW - H, NOW + H))
    state = w.WatchState(log_polled_at=NOW - timedelta(minutes=20), hot_checked_at=NOW - timedelta(minutes=10))
    plan = w.plan_tick([hot], state, NOW, S, webhooks=True)
    assert (plan.poll_log, plan.check) == (False, [])
    state.hot_checked_at = NOW - timedelta(minutes=15)  # HotCheckMinutes, with webhooks too
    plan = w.plan_tick([hot], state, NOW, S, webhooks=True)
    assert (plan.poll_log, plan.check) == (False, [1])
    state.lapsed_until = NOW + H
    plan = w.plan_tick([hot], state, NOW, S, webhooks=True)
    assert (plan.poll_log, plan.check) == (True, [1])


def test_a_signalled_lock_is_read_at_once_and_goes_to_the_reconciler_whatever_its_codes() -> None:
    state = w.WatchState(log_polled_at=NOW, hot_checked_at=NOW)
    signalled = lock(7, check_at=NOW - timedelta(seconds=1))
    later = lock(8, check_at=NOW + timedelta(minutes=3))
    plan = w.plan_tick([signalled, later], state, NOW, S, webhooks=True)
    assert plan.check == [7]
    assert plan.forced == {7}


def test_a_stay_that_started_or_ended_since_the_lock_was_found_right_forces_a_look() -> None:
    started = lock(1, (NOW - timedelta(minutes=10), NOW + 9 * H))
    quiet = lock(2, (NOW - 9 * H, NOW + 9 * H))
    plan = w.plan_tick([started, quiet], w.WatchState(), NOW, S, webhooks=False)
    assert plan.check == [1, 2]
    assert plan.forced == {1}


def test_the_cheapest_read_by_fleet_size() -> None:
    # Unknown size: a read per lock
    assert w.choose_reader(5, None, 100, 2000) == "per-lock"
    # A small account: its whole list in one answer beats two reads
    assert w.choose_reader(2, 300, 100, 2000) == "account"
    assert w.choose_reader(1, 300, 100, 2000) == "per-lock"
    # A large account: pages (codes / 100) against one read per lock to look at
    assert w.choose_reader(700, 30_000, 100, 2000) == "paged"
    assert w.choose_reader(200, 30_000, 100, 2000) == "per-lock"
    assert w.reader_calls("paged", 700, 30_000, 100) == 300


def _auth(lock_id: int, n: int, **kw: object) -> SmartlockAuth:
    fields = {"id": f"{n:024x}", "smartlock_id": lock_id, "type": 13, "name": f"C{n}", "enabled": True, "code": 345678}
    return SmartlockAuth.model_validate({**fields, **kw})


def test_the_digest_changes_with_any_code_and_never_shows_it() -> None:
    a, b = _auth(1, 1), _auth(1, 2)
    assert w.digest([a, b]) == w.digest([b, a])
    assert w.digest([a]) != w.digest([a, b])
    assert w.digest([a]) != w.digest([_auth(1, 1, enabled=False)])
    assert "345678" not in w.digest([a])


def test_suspects_are_the_locks_whose_codes_changed_or_that_must_be_looked_at() -> None:
    listing = {1: [_auth(1, 1)], 2: [_auth(2, 2)]}
    watches = {
        1: lock(1, seen=w.digest(listing[1])),
        2: lock(2, seen="stale"),
        3: lock(3, seen=w.digest([])),  # holds nothing: missing from an account's list is right
    }
    assert w.suspects([1, 2, 3, 4], listing, watches, forced=set()) == [2, 4]
    assert w.suspects([1], listing, watches, forced={1}) == [1]
