"""Each lock's sync delay, learned from the read-backs, and when to read a write back. Pure.

Nuki answers a write with 204 and applies it on the lock a sync delay later: a fraction of a second
on one lock, ten seconds on another, the same lock much the same from one write to the next. A
read-back before the write landed is a call that tells nothing; one long after it keeps the booking
waiting. So each lock keeps an estimate (`LOCK#/META` `syncDelay`, seconds from sending a write to
seeing it), and the first read-back of a write is timed just after it (`first_look`).

What a read-back teaches (`learn`): a write seen by the first look landed no later than that look
(an upper bound), so the estimate comes down a little (`DECAY`; a lock's first estimate starts well
below its first such bound, `FIRST_GUESS`) until a first look misses; a write
missed and then seen landed between the two looks, so the estimate becomes the middle of the two
(never more than doubling at once: a write that waited for an offline lock is no sync delay). A lock never
seen yet has no estimate and is read back on the configured backoff, as before.

Only a first look timed by the estimate (`tight`) brings the estimate down: a removal's first look,
twice the delay and a second, is an upper bound far above it that says nothing of a faster lock
(it brought the estimate down as often as the creates' looks, so a lock whose delay does not change
missed a first look every three writes or so, not six). A floor under the estimate (the look that
missed last) was tried and taken out: a slow afternoon raised it, and a lock fast again then kept
its bookings waiting for hundreds of writes (an adversarial review's replay).

Only read-backs count (a look at the whole list of an online lock, taken after the write was sent);
with webhooks registered the webhook confirms first and the read-backs keep their own, slower backoff.
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_ESTIMATE = 0.1  # seconds: below this, timing is all network
MAX_ESTIMATE = 120.0  # above this a write waits for something else than a sync (an offline lock)
DECAY = 0.97  # a first look that saw the write: the estimate comes down this much
FIRST_GUESS = 0.6  # the first estimate of a lock, as a share of when its first write was seen
FIRST_LOOK_FACTOR = 1.1
FIRST_LOOK_MARGIN = 0.15  # seconds
# After a first look that missed, the next one follows this soon (a share of the first, at least
# SECOND_LOOK_MIN seconds), then the configured backoff goes on.
SECOND_LOOK_SHARE = 0.2
SECOND_LOOK_MIN = 0.3
TIGHT_SLACK = 0.25  # seconds: a look this much after the estimate's first look is still that look
# A removal's first read-back: twice the learned delay and this margin, or REMOVAL_FIRST_LOOK seconds
# for a lock not learned (`removal_points`).
REMOVAL_MARGIN = 1.0
REMOVAL_FIRST_LOOK = 15.0


@dataclass(frozen=True)
class SyncSample:
    """What one read-back that saw a write tells about its lock's sync delay (seconds after the send)."""

    smartlock_id: int
    seen_after: float  # the look that saw it
    missed_after: float | None = None  # the latest look before it that did not (None: it was the first)


def tight(estimate: float | None, sample: SyncSample) -> bool:
    """Whether the look that saw the write was the first look the estimate timed (not a later one, nor
    a removal's, which come long after the delay)."""
    if estimate is None or sample.missed_after is not None:
        return False
    return sample.seen_after <= first_look(estimate) + TIGHT_SLACK


def learn(estimate: float | None, sample: SyncSample) -> float:
    """The lock's estimate after `sample`."""
    seen = max(MIN_ESTIMATE, sample.seen_after)
    if sample.missed_after is None:
        # An upper bound only; a first one may be loose (the configured backoff's first look is 1 s
        # after the send), so the estimate starts below it and a miss corrects it.
        if estimate is None:
            new = seen * FIRST_GUESS
        else:
            new = min(estimate * DECAY if tight(estimate, sample) else estimate, seen)
    else:
        # It landed between the two looks: the middle, never more than doubling at once.
        middle = (max(MIN_ESTIMATE, sample.missed_after) + seen) / 2
        new = middle if estimate is None else min(middle, 2 * estimate + 1.0)
    return round(min(MAX_ESTIMATE, max(MIN_ESTIMATE, new)), 3)


def first_look(estimate: float) -> float:
    """Seconds after the send to read a write back first, for a lock with this estimate."""
    return FIRST_LOOK_FACTOR * estimate + FIRST_LOOK_MARGIN


def look_points(estimate: float | None, backoff: list[float]) -> list[float]:
    """The read-back points of a write (seconds after its send; the last gap of `backoff` repeats
    beyond them): the lock's learned first look and one soon after it, then the configured backoff's
    points that lie beyond; the configured backoff alone for a lock not learned yet."""
    points: list[float] = []
    total = 0.0
    for gap in backoff:
        total += gap
        points.append(total)
    if estimate is None:
        return points
    first = first_look(estimate)
    second = first + max(SECOND_LOOK_MIN, SECOND_LOOK_SHARE * first)
    return [first, second, *(p for p in points if p > second + 0.5)]


def removal_points(estimate: float | None, backoff: list[float]) -> list[float]:
    """The read-back points of a removal (a delete in flight). Nobody waits for one: the stay is
    over, cancelled or moved, or a rotation's old code goes after the guest was told the new PIN;
    what it must meet is "gone within 15 minutes". The delete lands when it lands, and a look before
    that is a call that tells nothing (it was one in three). So its first look comes when it has
    surely landed: twice the lock's learned delay and REMOVAL_MARGIN, or REMOVAL_FIRST_LOOK for a lock
    not learned; then the backoff's points beyond (a removal still seen is sent again after
    REMOVAL_RESEND_AFTER_CHECKS looks, and looked at every two minutes at most: `core.looks`)."""
    first = 2 * estimate + REMOVAL_MARGIN if estimate is not None else REMOVAL_FIRST_LOOK
    later = [p for p in look_points(None, backoff) if p > first + 0.5]
    return [first, *later]


__all__ = [
    "MAX_ESTIMATE",
    "MIN_ESTIMATE",
    "SyncSample",
    "first_look",
    "learn",
    "look_points",
    "removal_points",
    "tight",
]
