"""What a look at a lock means for a booking's lock state: the first step of a round.

Every look, from any path (a read-back after a write, a `DEVICE_AUTHS` webhook usable as a look,
the reconciler's list), comes through `apply_look`, and through the one rule of what is on a lock
(`core.onlock.differences`): a write counts as confirmed only when the lock holds exactly what we
sent, and a booking keeps a lock `active` only while it holds exactly what the booking says.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from staykey.core import onlock
from staykey.core.looks import REMOVAL_LOOK_EVERY, SHARED_FIRST, provisioning_over, retry_delay, shared
from staykey.core.models import Booking, LockState, LockStatus
from staykey.core.round import CodeClaim, Context, IndexAuth, Look, Plan
from staykey.core.syncdelay import SyncSample

if TYPE_CHECKING:
    from staykey.nuki import SmartlockAuth

# Read-backs of an online lock that may miss a write before we send it again, and how long after
# the write at least: Nuki applies writes seconds later, sometimes tens of seconds (the sandbox's
# 10 s sync delay, `make bench`); three quick read-backs alone (1, 3, 6 s) would re-send a create
# that is merely slow, meet our own pending code (409) and fail the booking.
RESEND_AFTER_CHECKS = 3
RESEND_AFTER = timedelta(minutes=2)
# A create we look for after the booking ended (op "find") has not landed once the lock was online and
# read back without it for this long: Nuki applies writes seconds, at most tens of seconds, after it
# accepted them on an online lock.
FIND_ONLINE_WINDOW = timedelta(minutes=10)
# A delete Nuki accepted whose code is still listed this long after: sent again, after a sync. Longer
# than the sync delays seen (tens of seconds), so a delete that is merely slow is rarely sent twice
# (and one that is gets 423, as a change still pending does, and is tried again later).
RESEND_DELETE_AFTER = timedelta(seconds=60)
# On a lock whose sync delay is learned, a delete still listed after RESEND_LEARNED_FACTOR times that
# delay and RESEND_LEARNED_MARGIN (RESEND_LEARNED_MIN at least) is a ghost: its first look came at
# twice the delay and a second already (`core.syncdelay.removal_points`).
RESEND_LEARNED_FACTOR = 4.0
RESEND_LEARNED_MARGIN = timedelta(seconds=2)
RESEND_LEARNED_MIN = timedelta(seconds=10)


def resend_after(lock: LockState, ctx: Context) -> timedelta:
    """How long after its send a removal Nuki took and the lock still lists is sent again: on a lock
    not learned (or with webhooks registered), RESEND_DELETE_AFTER, longer than any sync delay seen;
    on a learned lock, a few times its delay. A ghost delete cost two minutes a try before: the stay's
    end, its share of EXPIRY_SPREAD_MINUTES and two or three ghosts made more than the 15 minutes a
    code may stay. Each try sent again waits longer (`looks.retry_delay` of the tries so far: 10, 20,
    40 s... two minutes at most), so a lock that keeps every delete waiting (offline) is not hammered."""
    estimate = ctx.sync_delays.get(lock.smartlockId)
    if estimate is None:
        after = RESEND_DELETE_AFTER
    else:
        after = max(RESEND_LEARNED_MIN, timedelta(seconds=RESEND_LEARNED_FACTOR * estimate) + RESEND_LEARNED_MARGIN)
    if lock.retries:
        after = max(after, timedelta(seconds=retry_delay(lock.retries, REMOVAL_LOOK_EVERY)))
    return after


# After a lock refused our code (a full keypad) and we deleted it: the next try, at the earliest.
REFUSED_RETRY_SECONDS = 900


def ours(b: Booking, lock: LockState, look: Look) -> tuple[SmartlockAuth | None, list[SmartlockAuth]]:
    """Our code on the lock in a look (the id we recorded, whatever its name or code now; else our
    name with the PIN we sent), and other codes of ours with earlier PINs (duplicates). On an app
    lock: our app authorization (the id we recorded; else our name with the account user we sent),
    and other app authorizations of ours for the guest (duplicates of a create sent twice). During a
    PIN rotation a keypad lock holds two codes of the booking, each tracked by its own lock state (a
    sibling): neither is the other's match or duplicate."""
    siblings = [s for s in b.slots_on(lock.smartlockId) if s is not lock]
    match = next((a for a in look.auths if lock.nukiId and a.id == lock.nukiId), None)
    if lock.access == "app":
        mine = [a for a in look.auths if a.name == b.authName and a.type == onlock.APP]
        # Every account user the booking has had: an authorization for a former one (a create sent
        # before the guest's email changed, landed late) is as much a duplicate (seed 133).
        users = {u for u in (lock.sentUser, *b.account.every_user()) if u is not None}
        if match is None:
            match = next((a for a in mine if a.account_user_id == (lock.sentUser or b.account.accountUserId)), None)
        return match, [a for a in mine if a is not match and a.account_user_id in users]
    mine = [a for a in look.auths if a.name == b.authName and a.type == onlock.KEYPAD]
    if match is None:
        want = lock.sentPin or b.target_pin(lock)
        taken = {s.nukiId for s in siblings if s.nukiId}
        match = next((a for a in mine if onlock.code_of(a) == want and a.id not in taken), None)
    stale = [
        a for a in mine if a is not match and onlock.code_of(a) in b.pinHistory and not _siblings_code(b, siblings, a)
    ]
    return match, stale


def sent_differences(b: Booking, lock: LockState, auth: SmartlockAuth) -> list[str]:
    """How `auth` differs from the write in flight on `lock` (what we sent)."""
    return onlock.differences(
        auth,
        lock.sentPin,
        lock.sentFrom,
        lock.sentUntil,
        b.authName,
        app=lock.access == "app",
        user=lock.sentUser,
        schedule=lock.sentSchedule,
    )


def booked_differences(b: Booking, lock: LockState, auth: SmartlockAuth) -> list[str]:
    """How `auth` differs from what the booking wants on `lock` now (a rotation's code: its own PIN)."""
    return onlock.differences(
        auth,
        b.target_pin(lock),
        b.validFrom,
        b.validUntil,
        b.authName,
        app=lock.access == "app",
        user=onlock.wanted_user(b, lock),
        schedule=b.schedule(),
    )


def _siblings_code(b: Booking, siblings: list[LockState], auth: SmartlockAuth) -> bool:
    """Whether `auth` is (or may be) the code another lock state of the booking tracks on this lock."""
    code = onlock.code_of(auth)
    return any(auth.id == s.nukiId or code in (s.sentPin, s.heldPin, b.target_pin(s)) for s in siblings)


def apply_look(b: Booking, lock: LockState, look: Look, ctx: Context, plan: Plan) -> None:
    """One look at one lock, through the one rule of `staykey.core.onlock`: every path comes here."""
    if look.stamp is not None and lock.seenAt is not None and look.stamp < lock.seenAt:
        return  # older than what we saw already (a reconciler's list read before a webhook we applied)
    sent = lock.opSentAt if lock.op is not None else None
    if look.complete and look.stamp is not None and sent is not None and look.stamp < sent:
        return  # a list read before the write in flight was sent (the shared look's) says nothing of it
    if not look.complete and look.auths and _about_a_sibling(b, lock, look):
        return  # a webhook about the booking's other code on this lock (a rotation's): not this one's news
    # A write nobody waits for is looked at on the minute: its looks say nothing of the sync delay.
    timing = None if shared(b, lock, ctx) else _timing(lock, look)
    if look.stamp is not None:
        lock.seenAt = look.stamp
    if look.complete:
        lock.recheck = False
    match, stale = ours(b, lock, look)
    if look.complete:
        plan.stale += [(lock.smartlockId, a.id) for a in stale]
    if lock.nukiId and lock.nukiId in look.deleted_ids:
        match = None
        gone = True
    else:
        gone = look.complete and match is None
    was = lock.op
    if match is not None:
        # A second authorization of the same account user beside ours (a create sent again after
        # the first seemed lost, both landed): "exactly one" does not hold until its delete (in
        # `plan.stale`) is seen done (seed 190: active and emailed with two on the lock). Nuki
        # keeps no app authorization unique (a keypad code's PIN is), so only a full list of the
        # lock can show ours alone: a webhook about one of them never confirms it (seed 3 with
        # staff codes: the webhook of the second create confirmed it beside the first).
        twin = lock.access == "app" and (
            not look.complete or any(a.account_user_id == match.account_user_id for a in stale)
        )
        _seen_code(b, lock, match, look, ctx, plan, twin)
    elif gone and b.code_off(lock) and stale and look.complete:
        # Our tracked code is gone but another code of ours with an earlier PIN is still on the
        # lock (an old create that landed late: a duplicate). Its delete in `plan.stale` is sent
        # once, unanswered; the lock is not `removed` while it is there: it becomes the code this
        # lock state removes, with the removal's retries and read-backs.
        adopt = stale[0]
        plan.stale.remove((lock.smartlockId, adopt.id))
        lock.nukiId, lock.authId = adopt.id, adopt.auth_id
        lock.op, lock.opChecks, lock.retryAt, lock.findSince = None, 0, None, None
        note = "an earlier code of ours is still on the lock; removing it"
        plan.logs.append((note, {"smartlock_id": lock.smartlockId}))
    elif gone:
        if not look.complete and b.code_off(lock) and _may_hold_more(b, lock):
            # The deletion of the code we tracked, told by a webhook: the lock may still hold an
            # earlier code of ours (another PIN the booking had). Only a read-back of the whole
            # list says the lock is clear: the removal stays in flight until one comes.
            lock.nukiId, lock.authId, lock.recheck = None, None, True
            lock.op, lock.opSentAt, lock.opChecks = "delete", ctx.now, 0
            return
        _seen_gone(b, lock, look, ctx.now, plan)
    landed = (was in ("create", "update") and lock.status == LockStatus.ACTIVE) or (
        was == "delete" and lock.status == LockStatus.REMOVED
    )
    if timing is not None and lock.op is None and landed:
        plan.sync_samples.append(SyncSample(lock.smartlockId, *timing))


def _timing(lock: LockState, look: Look) -> tuple[float, float | None] | None:
    """When a read-back looked, and when the one before it missed, in seconds after the write in flight
    was sent; None when this look tells nothing about the lock's sync delay (a webhook, an offline lock)."""
    if lock.op not in ("create", "update", "delete") or lock.opSentAt is None or look.stamp is None:
        return None
    if not look.complete or not look.timed or look.online is False:
        return None
    seen = (look.stamp - lock.opSentAt).total_seconds()
    missed = None
    if lock.opChecks > 0 and lock.seenAt is not None and lock.seenAt > lock.opSentAt:
        missed = (lock.seenAt - lock.opSentAt).total_seconds()
    return seen, missed


def _may_hold_more(b: Booking, lock: LockState) -> bool:
    """Whether the booking had PINs (`pinHistory`) besides the ones this lock state and its siblings
    carry, or (an app lock) account users besides the one this lock state sent to, so that an
    earlier code or authorization of ours may be on the lock besides the one we track."""
    if lock.access == "app" and any(u != lock.sentUser for u in b.account.every_user()):
        return True
    carried = {p for p in (lock.sentPin, lock.heldPin, b.target_pin(lock)) if p}
    for other in b.slots_on(lock.smartlockId):
        carried |= {p for p in (other.sentPin, other.heldPin, b.target_pin(other)) if p}
    return any(p not in carried for p in b.pinHistory)


def _about_a_sibling(b: Booking, lock: LockState, look: Look) -> bool:
    siblings = [s for s in b.slots_on(lock.smartlockId) if s is not lock]
    if not siblings:
        return False
    return all(a.id != lock.nukiId and _siblings_code(b, siblings, a) for a in look.auths)


def _seen_code(
    b: Booking, lock: LockState, match: SmartlockAuth, look: Look, ctx: Context, plan: Plan, twin: bool = False
) -> None:
    """Our code is on the lock (`match`); what that means for the write in flight and the booking
    (`twin`: a duplicate of it is there too: not confirmed until a read-back shows it alone)."""
    now = ctx.now
    if lock.nukiId != match.id or lock.authId is None:
        lock.nukiId, lock.authId = match.id, match.auth_id
        expires = b.validUntil + timedelta(days=ctx.settings.activity_retention_days)
        plan.index_auths.append(IndexAuth(lock.smartlockId, b.bookingId, match.id, match.auth_id, expires))
    if match.error and (lock.op in ("find", "delete") or b.code_off(lock)):
        # Refused by a full lock as the booking stopped wanting it (it moved or ended as the write
        # landed; a create we looked for after the end): nobody is kept out, but the lock is full
        # for the next guest, the operator's news (Hypothesis examples, seed 181). It is deleted.
        _count_refusal(lock, match, plan)
    if lock.op == "find":
        lock.op, lock.opChecks = None, 0  # found what may have landed: the plan step deletes it now
        return
    if lock.op == "delete":
        lock.opChecks += 1
        sent = lock.opSentAt or now
        # The shared look comes on the minute, and a shared removal's own read-backs (its fallback,
        # when no shared look came) SHARED_WAIT apart: one that still lists the code a minute and
        # more after the send is as sure as three of the removal's own, seconds apart. Three of
        # those fallbacks would take five minutes and more, past the 15 a code may stay.
        fallback = shared(b, lock, ctx) and now - sent >= timedelta(seconds=SHARED_FIRST["delete"])
        checks = 1 if not look.timed or fallback else ctx.settings.removal_resend_after_checks
        if lock.opChecks >= checks and now - sent >= resend_after(lock, ctx):
            # Nuki took the delete and the code is still there ("ghost entries"): sync the lock
            # and delete again, as often as it takes, each try later than the one before.
            plan.resend_deletes.append((lock.smartlockId, match.id))
            lock.opSentAt = now
            lock.retries += 1
        return
    if b.code_off(lock):
        # Unwanted, or on the lock before its provisioning time (a scheduled booking's: `core.lead`).
        if lock.status == LockStatus.REMOVED and lock.op is None:
            # Our code showed up after we took it off (a late write landing): remove it again.
            lock.status = LockStatus.PENDING
            plan.logs.append(("our code reappeared on a lock; removing it", {"smartlock_id": lock.smartlockId}))
        return  # the plan step turns whatever is in flight into a removal
    if lock.op in ("create", "update"):
        if not sent_differences(b, lock, match) and twin:
            lock.opChecks += 1  # its read-backs go on: the duplicate's delete is sent this round
        elif not sent_differences(b, lock, match):
            confirmed(b, lock, plan, now)
        elif match.error:
            _refused_code(lock, match, plan)
        elif lock.op == "create" and look.complete:
            # A create lands whole: a full read showing our code (our name, the PIN we sent)
            # otherwise means it was changed on the lock after it landed (its window, or disabled,
            # in Nuki Web), not that it is still landing. Written again now, as with no write in
            # flight. (One whose PIN someone changed before any read-back recorded its id carries
            # nothing of our records but a name anyone can type: someone else's, left alone.)
            lock.op, lock.sentFrom, lock.retryAt = None, None, None
            plan.logs.append(
                ("our new code was changed on a lock; writing it again", {"smartlock_id": lock.smartlockId})
            )
        else:
            lock.opChecks += 1
            if look.online and unseen_long(lock, now):
                lock.op, lock.sentFrom = None, None  # the update never arrived: send it again
        return
    # No write in flight: does the lock hold what the booking wants?
    if not booked_differences(b, lock, match):
        if lock.status != LockStatus.ACTIVE and twin:
            lock.recheck = True  # looked at again once the duplicate's delete is done
        elif lock.status != LockStatus.ACTIVE:
            # A late confirmation (a lock back online after we gave up) or a code to adopt.
            lock.sentPin, lock.sentFrom, lock.sentUntil = b.target_pin(lock), b.validFrom, b.validUntil
            lock.sentSchedule = b.schedule()
            lock.sentUser = onlock.wanted_user(b, lock)
            confirmed(b, lock, plan, now)
    elif match.error:
        _refused_code(lock, match, plan)
    else:
        # On the lock but not as the booking says (changed in Nuki Web, an old write landing
        # late): not what we told anyone. Write it again, with the full restriction set.
        if lock.status == LockStatus.ACTIVE:
            lock.status = LockStatus.PENDING
            plan.metrics.append(("CodeChanged", {}))
            note = "our code was changed on a lock; writing it again"
            plan.logs.append((note, {"smartlock_id": lock.smartlockId}))
        lock.sentFrom, lock.retryAt = None, None


def _refused_code(lock: LockState, match: SmartlockAuth, plan: Plan) -> None:
    """The lock stored our code with an error (a full keypad): it never opens the door. The
    booking fails and says why; the refused code is deleted, and the code goes on again later."""
    if _count_refusal(lock, match, plan):
        if lock.status != LockStatus.FAILED:
            plan.metrics.append(("ProvisioningFailed", {}))
        plan.logs.append(("the lock refused our code", {"smartlock_id": lock.smartlockId}))
    lock.status, lock.op, lock.retryAt = LockStatus.FAILED, None, None
    lock.error = f"the lock refused the code: {match.error}"


def _count_refusal(lock: LockState, match: SmartlockAuth, plan: Plan) -> bool:
    """A refused code is counted once per lock state (LockFull or CodeRefused); True: it was news."""
    if lock.refused:
        return False
    plan.metrics.append(("LockFull" if onlock.lock_full(match) else "CodeRefused", {}))
    lock.refused = True
    return True


def _seen_gone(b: Booking, lock: LockState, look: Look, now: datetime, plan: Plan) -> None:
    """Nothing of ours on the lock (a complete list without it, or its deletion)."""
    if lock.op == "find":
        # Only a lock that is online tells us the create will not land after all.
        if look.online is not False:
            lock.opChecks += 1
        if look.online:
            lock.findSince = lock.findSince or now
        elif look.online is False:
            lock.findSince = None
        return
    if lock.op == "delete" or (b.code_off(lock) and lock.nukiId is not None):
        if b.wants_code(lock):
            # Wanted again, and not on the lock: the refused code we deleted to make room goes on
            # again after a pause; a lock the booking came back to while its removal was in flight
            # (moved away and back) gets its code again now. Either way it is not `active`: the
            # booking turned active on a lock its code had just left (Hypothesis, seed 0).
            refused = lock.refused
            lock.nukiId, lock.authId, lock.op, lock.refused, lock.opChecks = None, None, None, False, 0
            lock.retryAt = now + timedelta(seconds=REFUSED_RETRY_SECONDS) if refused else None
            if lock.status == LockStatus.ACTIVE:
                lock.status = LockStatus.PENDING
            return
        removed(b, lock, plan, now)
        return
    if b.code_off(lock):
        return
    if lock.op in ("create", "update"):
        lock.opChecks += 1
        if lock.op == "create" and look.online and unseen_long(lock, now):
            # An online lock would have shown it by now: the create never reached Nuki
            # (a lost request, a dead invocation). Send it again.
            lock.op = None
            plan.logs.append(
                ("create not seen on an online lock; sending it again", {"smartlock_id": lock.smartlockId})
            )
        if lock.op == "update" and look.complete and lock.nukiId:
            # Our code vanished from the lock while we were changing it: create it again.
            lock.nukiId, lock.authId, lock.op = None, None, None
        return
    if lock.nukiId is not None and b.wants_code(lock):
        # Someone deleted our code; put it back (the plan step creates it again).
        plan.warnings.append(("our code disappeared from a lock", {"smartlock_id": lock.smartlockId}))
        plan.metrics.append(("CodeDisappeared", {}))
        lock.nukiId, lock.authId, lock.heldPin, lock.refused = None, None, None, False
        if lock.status == LockStatus.ACTIVE:
            lock.status = LockStatus.PENDING


def unseen_long(lock: LockState, now: datetime) -> bool:
    """The write in flight on `lock` was missed by enough read-backs, long enough, to be lost."""
    sent_long_ago = lock.opSentAt is None or now - lock.opSentAt >= RESEND_AFTER
    return lock.opChecks >= RESEND_AFTER_CHECKS and sent_long_ago


def find_over(lock: LockState, now: datetime) -> bool:
    """A create we looked for will not land: the lock has been online, and read back without it,
    for FIND_ONLINE_WINDOW since we sent it. (An offline lock keeps a write pending for days.)"""
    if lock.findSince is None or lock.opChecks < RESEND_AFTER_CHECKS:
        return False
    since = max(lock.findSince, lock.opSentAt or lock.findSince)
    return now - since >= FIND_ONLINE_WINDOW


def confirmed(b: Booking, lock: LockState, plan: Plan, now: datetime) -> None:
    if lock.heldPin and lock.heldPin != lock.sentPin and lock.access == "keypad":
        plan.releases.append(CodeClaim(lock.smartlockId, lock.heldPin))
    lock.heldPin = lock.sentPin
    lock.status, lock.op, lock.error, lock.opChecks, lock.retryAt = LockStatus.ACTIVE, None, None, 0, None
    if provisioning_over(b, lock):  # else the deadline clock runs on: `looks.provisioning_over`
        lock.firstSentAt = None
    lock.retries, lock.refused, lock.findSince = 0, False, None
    lock.firstConfirmedAt, lock.confirmedAt = lock.firstConfirmedAt or now, now
    plan.metrics.append(("PinConfirmed", {}))
    plan.logs.append(("code confirmed on lock", {"smartlock_id": lock.smartlockId}))


def removed(b: Booking, lock: LockState, plan: Plan, now: datetime) -> None:
    sent_something = lock.nukiId is not None or lock.sentPin is not None or lock.heldPin is not None
    pin = b.target_pin(lock)
    pins: set[str] = {p for p in (lock.heldPin, lock.sentPin, pin) if p is not None}
    if not b.code_unwanted(lock):
        pins.discard(pin)  # moved away and back: the code goes on again under the same claim
    for other in b.slots_on(lock.smartlockId):
        kept = other.status != LockStatus.REMOVED or not b.code_unwanted(other)  # off, its PIN reserved
        if other is not lock and kept and other.access == "keypad":
            # The booking's other code on this lock (a PIN rotation's) keeps the claim of its PIN.
            pins -= {b.target_pin(other), other.sentPin or "", other.heldPin or ""}
    if lock.access == "app":
        if b.code_unwanted(lock):
            plan.releases.append(CodeClaim(lock.smartlockId, "", app=True))
        pins = set()
    for pin in pins:
        plan.releases.append(CodeClaim(lock.smartlockId, str(pin)))
    lock.status, lock.op, lock.error, lock.opChecks, lock.retryAt = (
        LockStatus.REMOVED,
        None,
        None,
        0,
        None,
    )
    lock.nukiId, lock.authId, lock.heldPin, lock.sentPin, lock.firstSentAt = None, None, None, None, None
    lock.retries, lock.refused, lock.findSince, lock.sentUser = 0, False, None, None
    if sent_something:  # a lock that never had anything of ours keeps no removal time
        lock.removedAt = now
    plan.metrics.append(("CodeRemoved", {}))
    plan.logs.append(("code removed from lock", {"smartlock_id": lock.smartlockId}))


__all__ = [
    "FIND_ONLINE_WINDOW",
    "RESEND_AFTER",
    "RESEND_AFTER_CHECKS",
    "RESEND_DELETE_AFTER",
    "apply_look",
    "booked_differences",
    "confirmed",
    "find_over",
    "ours",
    "removed",
    "sent_differences",
    "unseen_long",
]
