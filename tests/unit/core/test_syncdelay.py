"""Each lock's learned sync delay (staykey.core.syncdelay) and the read-back times it gives a
round (core.decide.next_look), with plain values."""

from __future__ import annotations

from datetime import timedelta

import pytest

from staykey.core import decide as d
from staykey.core import syncdelay as sd
from staykey.core.round import Context, Look, Outcome
from staykey.settings import load_settings
from tests.unit.core.test_decide import LOCKS, NOW, booking, on_lock

BACKOFF = [1.0, 2.0, 3.0, 5.0]


def ctx(at: object, delays: dict[int, float | None]) -> Context:
    return Context(settings=load_settings(), now=at, backoff=BACKOFF, sync_delays=delays)  # type: ignore[arg-type]


def test_a_lock_not_learned_yet_is_read_back_on_the_configured_backoff() -> None:
    assert sd.look_points(None, BACKOFF) == [1.0, 3.0, 6.0, 11.0]


def test_a_learned_lock_is_read_back_just_after_its_delay_then_soon_after_then_on_the_backoff() -> None:
    points = sd.look_points(2.0, BACKOFF)
    first = sd.first_look(2.0)
    assert points[0] == pytest.approx(first) == pytest.approx(2.35)
    assert points[1] == pytest.approx(first + 0.2 * first)
    assert points[2:] == [6.0, 11.0]  # the backoff's points beyond the second look


def test_the_first_sample_is_a_loose_bound_and_starts_the_estimate_below_it() -> None:
    assert sd.learn(None, sd.SyncSample(1, seen_after=1.0)) == pytest.approx(0.6)


def test_seen_at_the_first_look_brings_the_estimate_down_slowly() -> None:
    assert sd.learn(2.0, sd.SyncSample(1, seen_after=2.35)) == pytest.approx(2.0 * sd.DECAY)
    # never above what was seen
    assert sd.learn(5.0, sd.SyncSample(1, seen_after=1.2)) == pytest.approx(1.2)


def test_missed_then_seen_takes_the_middle_but_never_more_than_doubles() -> None:
    assert sd.learn(2.0, sd.SyncSample(1, seen_after=3.0, missed_after=2.4)) == pytest.approx(2.7)
    # a write that waited an hour for an offline lock is no sync delay
    assert sd.learn(2.0, sd.SyncSample(1, seen_after=3600.0, missed_after=60.0)) == pytest.approx(5.0)
    assert sd.learn(100.0, sd.SyncSample(1, seen_after=900.0, missed_after=600.0)) == sd.MAX_ESTIMATE


def test_a_round_times_its_first_read_back_by_the_locks_estimate() -> None:
    b = booking()
    delays: dict[int, float | None] = {LOCKS[0]: 0.5, LOCKS[1]: 8.0}
    d.decide(b, {}, ctx(NOW, delays))
    plan = d.after_outcome(b, Outcome(), ctx(NOW, delays))
    # The first look is due for the faster lock: 1.1 x 0.5 + 0.15 s after the send
    assert plan.next_check_delay == pytest.approx(0.7)


def test_a_confirming_read_back_teaches_the_delay_and_a_webhook_does_not() -> None:
    b = booking()
    delays: dict[int, float | None] = dict.fromkeys(LOCKS, 1.0)
    d.decide(b, {}, ctx(NOW, delays))
    d.after_outcome(b, Outcome(), ctx(NOW, delays))
    first, second = LOCKS
    # The first look at 1.25 s misses on both locks
    early = NOW + timedelta(seconds=1.25)
    plan = d.decide(b, {lock: Look([], True, stamp=early) for lock in LOCKS}, ctx(early, delays))
    assert plan.sync_samples == []
    # The second sees the first lock's code: it landed between the two looks
    later = NOW + timedelta(seconds=1.6)
    plan = d.decide(b, {first: Look([on_lock(b, first)], True, stamp=later)}, ctx(later, delays))
    assert plan.sync_samples == [sd.SyncSample(first, seen_after=1.6, missed_after=1.25)]
    # A webhook confirming the second lock is no read-back: nothing learned
    plan = d.decide(b, {second: Look([on_lock(b, second)], False, stamp=later)}, ctx(later, delays))
    assert plan.sync_samples == []


def test_a_removal_is_read_back_once_it_has_surely_landed() -> None:
    # Nobody waits for a removal: its first look is after twice the learned delay and a second
    # (15 s for a lock not learned), then the backoff's points beyond
    assert sd.removal_points(2.0, BACKOFF) == [5.0, 6.0, 11.0]
    assert sd.removal_points(None, BACKOFF) == [15.0]
    assert sd.removal_points(None, [1.0, 2.0, 3.0, 5.0, 8.0, 15.0, 30.0]) == [15.0, 19.0, 34.0, 64.0]


def test_a_look_long_after_the_estimate_teaches_nothing_about_a_faster_lock() -> None:
    # A removal's first look, twice the delay and a second: an upper bound far above the estimate
    removal = sd.SyncSample(1, seen_after=5.0)
    assert not sd.tight(2.0, removal)
    assert sd.learn(2.0, removal) == pytest.approx(2.0)
    # ... but one below the estimate still brings it down to what was seen
    assert sd.learn(2.0, sd.SyncSample(1, seen_after=1.5)) == pytest.approx(1.5)
    # the first look timed by the estimate does
    assert sd.tight(2.0, sd.SyncSample(1, seen_after=sd.first_look(2.0)))


def _sent(b: object, at: object, lock_id: int, seen: object = None) -> None:
    for slot in b.slots():  # type: ignore[attr-defined]
        if slot.smartlockId == lock_id:
            slot.op, slot.opSentAt, slot.seenAt = "create", at, seen


def test_a_follow_up_reads_the_locks_whose_read_back_is_due_not_every_lock_in_flight() -> None:
    from staykey.core.looks import look_due

    b = booking()
    fast, slow = LOCKS
    _sent(b, NOW, fast)
    _sent(b, NOW, slow)
    delays: dict[int, float | None] = {fast: 0.5, slow: 2.0}
    at = NOW + timedelta(seconds=sd.first_look(0.5))
    # The door's first look (0.7 s): the entrance, 2 s, is not read (a call that told nothing)
    assert look_due(b.slots_on(fast)[0], ctx(at, delays))
    assert not look_due(b.slots_on(slow)[0], ctx(at, delays))
    later = NOW + timedelta(seconds=sd.first_look(2.0))
    assert look_due(b.slots_on(slow)[0], ctx(later, delays))


def test_a_point_that_another_locks_look_brought_near_is_not_skipped() -> None:
    from staykey.core.looks import look_due, next_look

    b = booking()
    learned, cold = LOCKS
    # The lock not learned was looked at 1 s after the send (missed); the learned one is read at
    # 2.55 s. The cold lock's next point, 3 s, is near: it is read now with it, or 0.45 s later,
    # never skipped to the backoff's next point (6 s: the booking waited twice as long)
    _sent(b, NOW, learned)
    _sent(b, NOW, cold, seen=NOW + timedelta(seconds=1))
    delays: dict[int, float | None] = {learned: 2.0, cold: None}
    at = NOW + timedelta(seconds=2.55)
    slot = b.slots_on(cold)[0]
    assert look_due(slot, ctx(at, delays)) or next_look(slot, ctx(at, delays)) == pytest.approx(0.45)
    assert next_look(slot, ctx(at, delays)) == pytest.approx(0.45)


def test_a_ghost_delete_is_sent_again_within_seconds_on_a_learned_lock_each_try_later() -> None:
    from staykey.core.observe import RESEND_DELETE_AFTER, resend_after

    b = booking()
    learned, cold = LOCKS
    slot, other = b.slots_on(learned)[0], b.slots_on(cold)[0]
    delays: dict[int, float | None] = {learned: 2.0, cold: None}
    # Four times the delay and 2 s, 10 s at least; a minute on a lock not learned
    assert resend_after(slot, ctx(NOW, delays)) == timedelta(seconds=10)
    assert resend_after(other, ctx(NOW, delays)) == RESEND_DELETE_AFTER == timedelta(seconds=60)
    delays[learned] = 10.0
    assert resend_after(slot, ctx(NOW, delays)) == timedelta(seconds=42)
    # Each try sent again waits longer: a lock that keeps every delete waiting is not hammered
    slot.retries = 3
    assert resend_after(slot, ctx(NOW, delays)) == timedelta(seconds=42)
    slot.retries = 5
    assert resend_after(slot, ctx(NOW, delays)) == timedelta(seconds=120)


def test_a_removal_keeps_its_read_backs_when_webhooks_are_registered() -> None:
    from staykey.core.looks import next_look

    b = booking()
    slot = b.slots_on(LOCKS[0])[0]
    slot.op, slot.opSentAt = "delete", NOW
    hooks = Context(settings=load_settings(), now=NOW, backoff=[30.0, 60.0, 120.0], sync_delays={})
    # Its first look when it has surely landed on a lock not learned (15 s), not the webhooks'
    # 30 s: a ghost delete sends no webhook, and was left three such looks (3.5 minutes) a try
    assert next_look(slot, hooks) == pytest.approx(15.0)
    # A create keeps the webhooks' backoff: the webhook confirms it first
    slot.op = "create"
    assert next_look(slot, hooks) == pytest.approx(30.0)
