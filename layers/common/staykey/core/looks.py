"""When the sync engine looks at a booking next (step 5 of a round, `core.decide`): the deadline an
unconfirmed code fails the booking at, the read-backs of a write in flight on its own backoff, the
next retry, the guest account's next try, the email's lease; whichever comes first.

A write nobody waits for (`shared`) is confirmed by the **shared look** (`services.shared`): one
read, every minute, of all the locks such writes are in flight on, delivered to every booking
waiting on them. Those writes are the removal of a code whose window has closed (it opens nothing:
only "gone within 15 minutes" is at stake) and the codes the provisioning schedule put on, hours
before the stay (nobody changed the booking since). Their own read-backs still come, as a fallback,
no sooner than SHARED_WAIT after the lock's last look; they teach nothing of the lock's sync delay
(a look on the minute is a loose bound). Everything else (a shop's booking, a change, a checkout, a
cancellation) keeps its own read-backs timed by the lock's sync delay."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from staykey.core import onlock, syncdelay
from staykey.core.models import CODE_WANTED, Booking, BookingStatus, LockState, LockStatus
from staykey.core.round import Context, Plan

REMOVAL_LOOK_EVERY = 120.0  # seconds, at most, between read-backs of a removal in its first hour
# Read-back points closer together than this are one look; no read-back is queued sooner.
MIN_LOOK_GAP = 0.2
# A read-back point passed this long ago and not looked at (its read-back failed) is not looked at
# now: the next one is. A point passed less long ago (the round that read another lock took that
# long) is looked at now.
LATE = 1.0
# A shared write's own read-back comes no sooner than this after its lock's last look, nor after its
# shared look is due: the shared look comes every minute (the SharedLooks schedule), and this leaves
# it the time to.
SHARED_WAIT = 100.0
# The shared look at a write may wait this long after its send (it is read from its own first
# read-back point on, by a run that reads for any write due): the writes of a minute (a removal: its
# code opens nothing, its tries must fit in 15 minutes) or of five (a code put on hours before its
# stay) are read together, not one run each.
SHARED_FIRST = {"delete": 60.0, "create": 300.0, "update": 300.0}
# A code the provisioning schedule put on is shared only while its stay starts later than this.
SHARED_HORIZON = timedelta(hours=1)


def deadline(b: Booking, lock: LockState, ctx: Context) -> datetime | None:
    """When an unconfirmed code fails the booking: validFrom, but never sooner than
    CONFIRM_MIN_SECONDS after it was first sent in this provisioning (`firstSentAt`: a confirmation
    keeps it until the provisioning is over, `stop_clocks`; a PATCH that changes what the lock must
    hold starts it afresh, `restart_clocks`). None: nothing unconfirmed, or failed already."""
    unconfirmed = b.wants_code(lock) and _trying(lock)
    if not unconfirmed or lock.status == LockStatus.FAILED or lock.firstSentAt is None:
        return None
    return max(b.validFrom, lock.firstSentAt + timedelta(seconds=ctx.settings.confirm_min_seconds))


def shared(b: Booking, lock: LockState, ctx: Context) -> bool:
    """Whether the write in flight on `lock` waits for the shared look rather than its own read-backs:
    nobody waits for it. A removal whose code's window has closed (it opens nothing any more); a
    code the provisioning schedule put on (`Booking.nobodyWaits`) while its stay is over an hour
    away. A staff code's removal (open-ended window), a rotation's, a checkout's or a cancellation's
    are not: a code that still opens a door is waited for. Nor is a removal sent again."""
    if not ctx.shared_looks or lock.opSentAt is None:
        return False
    if lock.op == "delete":
        # A removal sent again (a ghost: Nuki took it and never applied it) has its own read-backs,
        # seconds apart: its tries must fit in the 15 minutes a code may stay after its stay.
        return lock.retries == 0 and ctx.now >= (lock.sentUntil or b.validUntil)
    if lock.op in ("create", "update"):
        return b.nobodyWaits and b.validFrom - ctx.now > SHARED_HORIZON
    return False


def _shared_first(lock: LockState, ctx: Context) -> float:
    """Seconds from now to the soonest shared look at the write in flight (SHARED_FIRST after its send)."""
    sent = lock.opSentAt or ctx.now
    return SHARED_FIRST.get(lock.op or "", 0.0) - (ctx.now - sent).total_seconds()


def _shared_wait(lock: LockState, ctx: Context) -> float:
    """Seconds until a shared write's own read-back may come: SHARED_WAIT after its lock's last look,
    and after its soonest shared look."""
    last = _last_look(lock, ctx)
    since_last = SHARED_WAIT if last is None else SHARED_WAIT - (ctx.now - last).total_seconds()
    return max(since_last, _shared_first(lock, ctx) + SHARED_WAIT)


def provisioning_over(b: Booking, lock: LockState) -> bool:
    """Whether the provisioning `lock`'s code belongs to is over: the booking's own code once the
    booking is `active` or `failed` (told either way), a rotation's new code once the rotation is
    failed (or no more). While it goes on, a confirmed code keeps its deadline clock (`firstSentAt`),
    and a later write to its lock in the same provisioning (the link to a new guest's account user
    once it exists, a code written again after a change on the lock) keeps its deadline: a
    confirmation that restarted it (`firstSentAt` cleared, the next write's send the new start) let
    a booking stay `provisioning` past the deadline it was promised (seed 176: failed 18 minutes
    after the change's first send). Once it is over, the lock's next write is a new provisioning."""
    if any(lock is code for code in b.rotationCodes):
        return b.rotation_status() != "pending"
    return b.status in (BookingStatus.ACTIVE, BookingStatus.FAILED)


def stop_clocks(b: Booking) -> None:
    """A provisioning that is over stops the deadline clocks of the codes confirmed in it."""
    for lock in b.slots():
        if lock.status == LockStatus.ACTIVE and lock.op is None and provisioning_over(b, lock):
            lock.firstSentAt = None


def wanted(b: Booking, lock: LockState) -> tuple[object, ...]:
    """What the booking wants on `lock`: the PIN, the window, the account user, the schedule."""
    return b.target_pin(lock), b.validFrom, b.validUntil, onlock.wanted_user(b, lock), b.schedule()


def restart_clocks(b: Booking, before: list[tuple[LockState, tuple[object, ...]]], now: datetime) -> None:
    """A change of the booking by the shop (`PATCH`; `before`: each code and what it wanted before
    the change) is a provisioning of its own for every code whose content it changes: its deadline
    counts from now for a write in flight or waiting to be tried again (what it carries is outdated),
    else from its next send. A code the change does not touch keeps its clock."""
    for lock, was in before:
        if lock.desired == "present" and wanted(b, lock) != was:
            lock.firstSentAt = now if _trying(lock) else None


def _trying(lock: LockState) -> bool:
    """A create or an update in flight on `lock`, or one waiting to be tried again."""
    return lock.op in ("create", "update") or (
        lock.op is None and lock.retryAt is not None and lock.status == LockStatus.PENDING
    )


def removal_waits(lock: LockState, now: datetime) -> bool:
    """A removal waiting its share of EXPIRY_SPREAD_MINUTES after the stay (`core.commands.end`),
    not a retry after a failure (that one carries its error)."""
    return lock.retryAt is not None and lock.retryAt > now and lock.error is None


def plan_next_check(b: Booking, ctx: Context, plan: Plan) -> None:
    """Queue the next look: a read-back while a write is in flight (on the lock's read-back points,
    counted from when that write was sent, however many other triggers came meanwhile), or a
    wake-up when the next retry or deadline falls due. A wake-up never comes sooner than a second,
    and never for a time that passed: a due retry is acted on by the plan step, not waited for."""
    now = ctx.now
    slots = b.slots()
    gaps = []
    for lk in (lk for lk in slots if lk.op is not None):
        gap = max(_floor(lk, ctx), next_look(lk, ctx))
        if shared(b, lk, ctx):
            by = max(gap, _shared_first(lk, ctx))
            plan.shared_at.append((lk.smartlockId, now + timedelta(seconds=gap), now + timedelta(seconds=by)))
            gap = max(gap, _shared_wait(lk, ctx))
        gaps.append(gap)
    gaps += [REMOVAL_LOOK_EVERY for lk in slots if lk.recheck and lk.op is None]
    wake = [lk.retryAt for lk in slots if lk.op is None and lk.retryAt is not None and lk.status != LockStatus.REMOVED]
    if b.emailPending and b.emailLeaseUntil is not None and b.emailLeaseUntil > now:
        wake.append(b.emailLeaseUntil)  # a lease that ran out is taken again by the settle step
    if _account_retry_ahead(b, now):
        assert b.account.retryAt is not None
        wake.append(b.account.retryAt)
    if gaps:
        # A retry already due that the plan step left waiting (a rotation's other code on the same
        # lock has a write in flight: they take turns) is acted on at that write's next look; as a
        # wake-up of its own it would come back every second until then.
        wake = [w for w in wake if w > now]
    if not gaps and not wake:
        return
    # A deadline that falls before the next look is a look of its own: the booking fails, and
    # says why, when the deadline passes, not at whatever read-back comes after it.
    wake += [d for lk in slots if (d := deadline(b, lk, ctx)) is not None and d > now]
    waits = [max(1.0, (w - now).total_seconds()) for w in wake]
    b.checkSeq += 1
    plan.next_check_delay = max(MIN_LOOK_GAP, min(gaps + waits))


def _account_retry_ahead(b: Booking, now: datetime) -> bool:
    """A try of the guest's Nuki account user is due later, and a lock still needs it."""
    account = b.account
    return (
        account.retryAt is not None
        and account.retryAt > now
        and account.accountUserId is None
        and not account.stopped
        and b.status in CODE_WANTED
        and any(lk.desired == "present" and (lk.access == "app" or lk.link) for lk in b.locks)
    )


def _estimate(lock: LockState, ctx: Context) -> float | None:
    """The lock's learned sync delay for a write in flight (None: not learned, or webhooks registered)."""
    return ctx.sync_delays.get(lock.smartlockId) if lock.op in ("create", "update", "delete") else None


def look_due(lock: LockState, ctx: Context, b: Booking | None = None) -> bool:
    """Whether a follow-up reads this lock now. A booking's follow-up comes when the first of its
    locks' read-backs is due; a write in flight on another lock keeps its own read-back points (its
    own sync delay: the room's door after 0.5 s, the entrance after 2): it is read when one of them
    has passed since it was last looked at (or since its send), not at every other lock's look, which
    was a call that told nothing. Anything else a follow-up reads (a lock asked to be looked at, a
    removal's recheck) is due."""
    if lock.op not in ("create", "update", "delete") or lock.opSentAt is None:
        return True
    if b is not None and shared(b, lock, ctx) and _shared_wait(lock, ctx) > _near(lock, ctx):
        return False  # the shared look's: its own read-back waits
    last = lock.seenAt if lock.seenAt is not None and lock.seenAt > lock.opSentAt else lock.opSentAt
    if last > ctx.now:
        return True
    point = last + timedelta(seconds=next_look(lock, replace(ctx, now=last)))
    # As close to its point as `next_look` counts as one look with it: read now, or the point is lost.
    return point <= ctx.now + timedelta(seconds=_near(lock, ctx))


def _floor(lock: LockState, ctx: Context) -> float:
    """The soonest a lock's next read-back comes: a read-back timed by a learned sync delay may come
    sooner than a second; every other keeps the second between looks of the lock it always had (a
    lock not learned, webhooks registered), counted from its last look (or its write's send), so that
    a booking's other lock looked at just now does not push it past its point."""
    if _estimate(lock, ctx) is not None:
        return MIN_LOOK_GAP
    last = _last_look(lock, ctx)
    if last is None:
        return 1.0
    return max(MIN_LOOK_GAP, 1.0 - (ctx.now - last).total_seconds())


def _last_look(lock: LockState, ctx: Context) -> datetime | None:
    """The later of the lock's last look and its write's send, of those not after now (None: neither)."""
    return max((t for t in (lock.seenAt, lock.opSentAt) if t is not None and t <= ctx.now), default=None)


def _since(lock: LockState, ctx: Context) -> float:
    """Seconds from the send of the write in flight to the last look at its lock since (0: none)."""
    last = _last_look(lock, ctx)
    if lock.opSentAt is None or last is None:
        return 0.0
    return max(0.0, (last - lock.opSentAt).total_seconds())


def _near(lock: LockState, ctx: Context) -> float:
    """Read-back points closer than this to now are one look: MIN_LOOK_GAP for a learned first look,
    else the half second the backoff always kept."""
    return MIN_LOOK_GAP if _estimate(lock, ctx) is not None else 0.5


def retry_delay(retries: int, cap: float) -> float:
    """Seconds from a write's failed try to its next one (`retries`: its failed tries in a row)."""
    return float(min(cap, 5.0 * 2 ** min(retries, 8)))


def next_look(lock: LockState, ctx: Context) -> float:
    """Seconds to the next read-back of a write in flight: the first of its read-back points
    (`core.syncdelay.look_points`: the lock's learned first look, then the backoff; a removal's
    first look later, `removal_points`) that is still ahead. A removal is looked at every two
    minutes at least, for its first hour: a code must be gone within minutes of the end. A removal
    keeps the read-backs it has without webhooks when they are registered too: its webhook comes
    within seconds of the delete's landing, and one that does not come is a delete Nuki took and never
    applied (a ghost), which the webhooks' slower backoff (30, 90, 210 s before it was sent again)
    left on the lock for minutes a try."""
    delays = ctx.settings.confirm_backoff_seconds if lock.op == "delete" else ctx.backoff
    estimate = _estimate(lock, ctx)
    elapsed = max(0.0, (ctx.now - (lock.opSentAt or ctx.now)).total_seconds())
    if lock.op == "delete":
        points = syncdelay.removal_points(estimate, delays)
    else:
        points = syncdelay.look_points(estimate, delays)
    # The first point beyond the last look (one as near as `_near` to it was that look), unless it
    # passed over a second ago unread (a read-back that failed: it is not tried again at once).
    point = next((p for p in points if p > max(_since(lock, ctx) + _near(lock, ctx), elapsed - LATE)), None)
    if point is None:
        last, end = delays[-1], points[-1]
        point = end + last * (1 + (elapsed - end) // last)
    ahead = point - elapsed
    if lock.retries:
        # A retry is the same write sent again: its read-backs go on from the write's own backoff
        # (its retry delay, at most two minutes), not from the first second again: otherwise a
        # write Nuki keeps refusing for a while (423, 429, 5xx, 403 on a removal) is read back at
        # 1, 3, 6 s... after every retry, while the retry itself is still being answered.
        ahead = max(ahead, retry_delay(lock.retries, REMOVAL_LOOK_EVERY) - elapsed)
    if lock.op in ("delete", "find") and elapsed < 3600:
        ahead = min(ahead, REMOVAL_LOOK_EVERY)
    return ahead


__all__ = [
    "MIN_LOOK_GAP",
    "REMOVAL_LOOK_EVERY",
    "SHARED_WAIT",
    "deadline",
    "look_due",
    "next_look",
    "plan_next_check",
    "provisioning_over",
    "restart_clocks",
    "retry_delay",
    "shared",
    "stop_clocks",
    "wanted",
]
