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
