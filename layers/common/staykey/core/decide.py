"""The sync engine's decisions: one round, from a booking and what was seen of its locks to the
booking to save and the actions that follow. Pure: no AWS, no Nuki transport, no clock (the time
is in the `Context`); the simulator and the unit tests call it with plain values.

    decide(booking, looks, ctx)            -> Plan   (the booking, changed in place, is what to save)
    after_outcome(booking, outcome, ctx)   -> Plan   (after the plan's Nuki writes were answered)

A round:

1. apply each look to its lock (`core.observe.apply_look`);
2. plan the writes that bring each lock to what the booking wants and mark them in flight
   (`plan.creates`, `updates`, `deletes`, `resend_deletes`, `stale`);
3. fail, with its reason, a code not confirmed by its deadline (the write goes on);
4. settle the booking's status from its locks, and take the guest's email's lease once it is active;
5. plan the next look (`plan.next_check_delay`): the write's own backoff, the next retry, the next
   deadline, whichever is first.

The shell (`services.sync.Sync`) saves the booking with the plan's claims and releases in one
transaction (optimistic locking: on a conflict it reads again and decides again), then carries out
the plan: metrics, the follow-up, the Nuki writes, the auth index, the email.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timedelta

from staykey.core.looks import REMOVAL_LOOK_EVERY, deadline, plan_next_check, retry_delay, stop_clocks
from staykey.core.models import Booking, BookingStatus, LockState, LockStatus
from staykey.core.observe import apply_look, find_over, removed
from staykey.core.onlock import wanted_user
from staykey.core.rotation import switch
from staykey.core.round import Context, Look, Outcome, Plan
from staykey.core.text import email_key
from staykey.core.timeutil import iso_utc

EMAIL_LEASE = timedelta(minutes=2)
# Nuki refused a write with 403 (no subscription, no permission): tried again this often.
FORBIDDEN_RETRY_SECONDS = 3600


def decide(b: Booking, looks: Mapping[int, Look], ctx: Context, send: bool = True) -> Plan:
    """Steps 1-5 for `b` (changed in place) and the looks at its locks; `send=False` plans no writes."""
    plan = Plan()
    _round(b, looks, ctx, plan, send)
    return plan


def _round(b: Booking, looks: Mapping[int, Look], ctx: Context, plan: Plan, send: bool) -> None:
    now = ctx.now
    # The rotation's codes (a second code per lock while a PIN rotation runs, old codes being removed
    # after one) go through the same steps; their writes are a plan of their own (`plan.rotation`),
    # since they carry another PIN and Nuki answers them per lock.
    side = Plan()
    for lock in b.locks:
        if lock.smartlockId in looks:
            apply_look(b, lock, looks[lock.smartlockId], ctx, plan)
    for lock in b.rotationCodes:
        if lock.smartlockId in looks:
            apply_look(b, lock, looks[lock.smartlockId], ctx, side)
    switch(b, now, plan)
    if send:
        # A retry that falls due wakes the booking; every other retry of the booking that would
        # fall due within the next two minutes goes with it, so the booking's writes retry together
        # (one wake, one follow-up) instead of each on its own clock, out of phase.
        retry_by = now + timedelta(seconds=REMOVAL_LOOK_EVERY) if _retry_due(b, now) else now
        _plan_writes(b, b.locks, b.pin, ctx, plan, retry_by)
        if b.rotationCodes:
            _plan_writes(b, b.rotationCodes, b.rotation.pin if b.rotation else b.pin, ctx, side, retry_by)
    _check_deadlines(b, ctx, plan)
    _settle(b, now, plan)
    # Locks the booking moved away from are dropped once their code is gone (and remembered if
    # anything of ours was sent there: a late create landing there under our name is still ours to
    # remove, `core.drift`; on a lock never written to, a code under our name is someone's copy).
    live = (BookingStatus.PROVISIONING, BookingStatus.ACTIVE, BookingStatus.FAILED, BookingStatus.SCHEDULED)
    gone = [lk for lk in b.locks if lk.desired == "absent" and lk.status == LockStatus.REMOVED]
    if gone and b.status in live:
        b.formerLocks = sorted({*b.formerLocks, *(lk.smartlockId for lk in gone if lk.removedAt is not None)})
        b.locks = [lk for lk in b.locks if all(lk is not g for g in gone)]
    b.rotationCodes = [lk for lk in b.rotationCodes if not (lk.desired == "absent" and lk.status == LockStatus.REMOVED)]
    plan_next_check(b, ctx, plan)
    _merge(plan, side)
    b.updatedAt = now if (plan.writes() or looks) else b.updatedAt


def _merge(plan: Plan, side: Plan) -> None:
    """The rotation codes' round into the booking's: their writes as `plan.rotation`, the rest as one."""
    plan.claims += side.claims
    plan.releases += side.releases
    plan.index_auths += side.index_auths
    plan.metrics += side.metrics
    plan.logs += side.logs
    plan.warnings += side.warnings
    plan.stale += [s for s in side.stale if s not in plan.stale]
    side.stale = []
    if side.writes():
        plan.rotation = side


def after_outcome(b: Booking, outcome: Outcome, ctx: Context) -> Plan:
    """What Nuki answered to a plan's writes, applied to `b` (changed in place), and the round that
    follows without new writes (its status, deadlines and next look)."""
    now = ctx.now
    plan = Plan()
    _account_outcome(b, outcome, now)
    if outcome.account_user_failed is not None:
        for lock in b.locks:
            # Says why it waits (its retry, so its deadline, applies), or fails it for good: an app
            # lock with nothing on it yet, and one whose authorization is for a former guest (a new
            # email). Seed 32: the latter was left out, had no retry, so no deadline, and stayed
            # provisioning while Nuki was down instead of failing, with its reason, at the deadline.
            if lock.access == "app" and lock.op is None and b.wants_code(lock):
                waits_for_account(b, lock, now, plan)
    _answered(b, b.locks, outcome, now, plan)
    if outcome.rotation is not None:
        # The rotation codes on a lock take turns (one write in flight each): the one with a write.
        in_flight = [lk for lk in b.rotationCodes if lk.op is not None]
        _answered(b, in_flight, outcome.rotation, now, plan)
    _round(b, {}, ctx, plan, send=False)
    return plan


def _answered(b: Booking, locks: list[LockState], outcome: Outcome, now: datetime, plan: Plan) -> None:
    for lock in locks:
        lock_id = lock.smartlockId
        if lock_id in outcome.failed:
            reason, status = outcome.failed[lock_id]
            if lock.status != LockStatus.FAILED:
                plan.metrics.append(("ProvisioningFailed", {}))
            lock.status, lock.op, lock.error = LockStatus.FAILED, None, reason
            if status == 403:
                # No subscription or no permission: an operator's fix; tried again hourly until then.
                lock.retryAt = now + timedelta(seconds=FORBIDDEN_RETRY_SECONDS)
            else:
                lock.stopped = True  # a request no retry cures: a change of the booking retries it
        elif lock_id in outcome.transient:
            was = lock.op
            lock.op = None
            lock.error = f"retrying: {outcome.transient[lock_id]}"
            lock.retries += 1
            # A removal keeps trying every two minutes at most: a code must be gone within
            # minutes of the end, also after Nuki was out of reach for a while.
            cap = REMOVAL_LOOK_EVERY if b.code_off(lock) else 900
            lock.retryAt = now + timedelta(seconds=retry_delay(lock.retries, cap))
            if was == "update":
                lock.sentFrom = None  # it may not have arrived: send the update again when due
            if lock.desired == "absent" and lock.nukiId is None and lock.status != LockStatus.FAILED:
                lock.status = LockStatus.PENDING
        elif lock_id in outcome.foreign_conflict or lock_id in outcome.unsent:
            # Nothing of ours was written: the lock keeps what it held (if anything).
            lock.op, lock.sentPin = None, lock.heldPin
            if lock.status != LockStatus.FAILED:
                lock.status = LockStatus.PENDING
            if lock.heldPin is not None:
                lock.sentFrom, lock.sentUntil = None, None
        elif lock_id in outcome.vanished:
            lock.nukiId, lock.authId, lock.op, lock.heldPin = None, None, None, None


ACCOUNT_RETRY_CAP = 900.0  # seconds, at most, between tries of the guest's Nuki account user


def _account_outcome(b: Booking, outcome: Outcome, now: datetime) -> None:
    """The guest's Nuki account user: found or created (its id), or why not (again later, or never)."""
    account = b.account
    if outcome.account_user is not None:
        if account.accountUserId not in (None, outcome.account_user):  # another one now: still purged with us
            account.former = [*account.former, account.accountUserId]
        account.accountUserId, account.error, account.retryAt = outcome.account_user, None, None
        account.tries, account.stopped = 0, False
    elif outcome.account_user_failed is not None:
        reason, final = outcome.account_user_failed
        account.tries += 1
        account.error = reason
        account.stopped = final
        account.retryAt = None if final else now + timedelta(seconds=min(ACCOUNT_RETRY_CAP, 30.0 * 2**account.tries))


# ---------------------------------------------------------------------- step 2: writes


def _retry_due(b: Booking, now: datetime) -> bool:
    """Whether a retry of one of the booking's writes is due (what wakes the booking to retry)."""
    return any(
        lk.op is None and lk.retryAt is not None and lk.retryAt <= now and lk.status != LockStatus.REMOVED
        for lk in b.slots()
    )


def _plan_writes(
    b: Booking, locks: list[LockState], pin: str, ctx: Context, plan: Plan, retry_by: datetime | None = None
) -> None:
    """The writes that bring each of `locks` to what the booking wants (`pin`: what creates and
    updates carry, the booking's PIN or its rotation's). A retry due by `retry_by` (now, or a
    little later when another retry of the booking is due now) is acted on now."""
    now = ctx.now
    retry_by = max(now, retry_by or now)
    plan.pin, plan.valid_from, plan.valid_until = pin, b.validFrom, b.validUntil
    plan.schedule = b.schedule()
    for lock in locks:
        if lock.op in ("create", "update") and b.code_off(lock):
            # The booking ended (or was scheduled again) while a write was in flight: find what
            # landed and remove it.
            lock.op, lock.opSentAt, lock.opChecks, lock.findSince = "find", now, 0, None
            if lock.nukiId:
                lock.op = None
        if lock.op is not None:
            continue
        if any(o is not lock and o.smartlockId == lock.smartlockId and o.op is not None for o in locks):
            continue  # rotation codes on one lock take turns: Nuki answers per lock
        if lock.retryAt is not None:
            if lock.retryAt > retry_by:
                continue
            lock.retryAt = None  # due: it is acted on now, or nothing waits on it any more
        if b.wants_code(lock):
            if lock.stopped:
                continue  # refused for good (a bad request): a change of the booking retries it
            if lock.refused and lock.nukiId:
                # Make room for another try: the refused code goes first.
                plan.deletes.append((lock.smartlockId, lock.nukiId))
                lock.op, lock.opSentAt, lock.opChecks = "delete", now, 0
            elif waits_for_account(b, lock, now, plan):
                continue
            elif lock.nukiId is None:
                if lock.access == "keypad" and _waits_for_capacity(lock, ctx, plan):
                    continue
                _send(lock, b, now, plan)
            elif differs_from_sent(b, lock):
                _send(lock, b, now, plan)
        elif b.code_off(lock) and lock.status != LockStatus.REMOVED:
            if b.keeps_old_code(lock):
                continue  # the PIN the guest was last told keeps working until they are told the new one
            if lock.nukiId:
                plan.deletes.append((lock.smartlockId, lock.nukiId))
                lock.op, lock.opSentAt, lock.opChecks = "delete", now, 0
            elif lock.sentPin is None:
                if b.code_unwanted(lock):  # (a scheduled booking's lock with nothing sent waits for its lead)
                    removed(b, lock, plan, now)
            else:
                # A create may still land; look for it on the next read-backs.
                lock.op, lock.opSentAt, lock.opChecks, lock.findSince = "find", now, 0, None


def differs_from_sent(b: Booking, lock: LockState) -> bool:
    """What the booking wants on `lock` is not what was last sent there (a change to send)."""
    pin = lock.access == "keypad" and lock.sentPin != b.target_pin(lock)
    return (
        pin
        or lock.sentUser != wanted_user(b, lock)
        or lock.sentFrom != b.validFrom
        or lock.sentUntil != b.validUntil
        or lock.sentSchedule != b.schedule()
    )


def waits_for_account(b: Booking, lock: LockState, now: datetime, plan: Plan) -> bool:
    """True when a write on `lock` waits for the guest's Nuki account user (an app lock, or a
    linked keypad code the first time round). The account user is asked for (`plan.account_user`)
    when it is due; an app lock waits, and says why, while it cannot be had; a linked keypad code
    goes on unlinked then (the link only shows the guest's name in Nuki Web), and is linked by an
    update once the account user exists."""
    account = b.account
    if (lock.access != "app" and not lock.link) or account.accountUserId is not None:
        return False
    due = not account.stopped and b.guest is not None and (account.retryAt is None or account.retryAt <= now)
    if lock.access == "keypad":
        plan.account_user = plan.account_user or due
        return due and not account.tries
    lock.firstSentAt = lock.firstSentAt or now  # waiting counts as trying: the deadline applies
    if lock.status == LockStatus.ACTIVE:
        lock.status = LockStatus.PENDING  # what it holds is not for the guest's account user (a new guest)
    if due:
        plan.account_user = True
        return True
    if account.stopped or b.guest is None:
        why = account.error or "the guest's data (their email) is no longer kept"
        if lock.status != LockStatus.FAILED:
            plan.metrics.append(("ProvisioningFailed", {}))
        lock.status, lock.stopped = LockStatus.FAILED, True
        lock.error = f"the guest's Nuki account user could not be created: {why}"
        return True
    lock.error = f"waiting: the guest's Nuki account user could not be created yet ({account.error}); trying again"
    lock.retryAt = account.retryAt
    return True


def _send(lock: LockState, b: Booking, now: datetime, plan: Plan) -> None:
    """Mark a create (no code of ours known on the lock) or an update as in flight."""
    if lock.nukiId is None:
        if lock.sentPin is not None and lock.sentPin == b.target_pin(lock):
            plan.resent.append(lock.smartlockId)
        (plan.app_creates if lock.access == "app" else plan.creates).append(lock.smartlockId)
        _mark(lock, "create", b, now)
    elif differs_from_sent(b, lock):
        plan.updates.append((lock.smartlockId, lock.nukiId))
        _mark(lock, "update", b, now)


def _mark(lock: LockState, op: str, b: Booking, now: datetime) -> None:
    lock.op = op  # type: ignore[assignment]
    lock.opSentAt, lock.opChecks = now, 0
    if lock.status != LockStatus.FAILED:
        lock.status = LockStatus.PENDING  # a failed lock stays failed (and says so) until confirmed
    if lock.error and lock.error.startswith("waiting: "):
        lock.error = None
    lock.firstSentAt = lock.firstSentAt or now
    lock.sentAt = lock.sentAt or now
    lock.sentPin, lock.sentFrom, lock.sentUntil = b.target_pin(lock), b.validFrom, b.validUntil
    lock.sentUser = wanted_user(b, lock)
    lock.sentSchedule = b.schedule()


def _waits_for_capacity(lock: LockState, ctx: Context, plan: Plan) -> bool:
    """True when a create must wait: the lock holds Nuki's limit of keypad codes, as last counted
    (the reconciler's count of every keypad code listed on the lock). The lock says why, and the
    engine looks again in 15 minutes. A lock never counted never waits."""
    held = ctx.code_counts.get(lock.smartlockId)
    limit = ctx.settings.max_codes_per_lock
    if held is None or held < limit:
        if lock.error and lock.error.startswith("waiting: "):
            lock.error = None
        return False
    lock.error = (
        f"waiting: lock {lock.smartlockId} holds {held} keypad codes, Nuki's limit is {limit}; "
        "the code goes on as soon as one is removed"
    )
    lock.retryAt = ctx.now + timedelta(minutes=15)
    plan.recount.append(lock.smartlockId)
    lock.firstSentAt = lock.firstSentAt or ctx.now  # waiting counts as trying: the deadline applies
    plan.metrics.append(("ProvisioningWaitsForCapacity", {}))
    return True


# ---------------------------------------------------------------------- step 3: deadlines


def _check_deadlines(b: Booking, ctx: Context, plan: Plan) -> None:
    """A code not confirmed by its deadline fails the booking (it says why, a metric and an alarm
    follow); the write goes on all the same: read-backs and retries continue, and a confirmation
    that comes later makes the booking active after all."""
    now = ctx.now
    for lock in b.slots():
        due = deadline(b, lock, ctx)
        if due is not None and now >= due:
            if lock.op:
                lock.error = (
                    f"Nuki accepted the code but the lock did not confirm it by {iso_utc(due)}; "
                    "the lock is probably offline"
                )
            elif lock.error and lock.error.startswith("waiting: "):
                why = lock.error.removeprefix("waiting: ")
                lock.error = f"the code could not go on by {iso_utc(due)}: {why}"
            else:
                lock.error = f"Nuki could not be reached until {iso_utc(due)}: {lock.error}"
            lock.status = LockStatus.FAILED
            plan.metrics.append(("ProvisioningFailed", {}))
        if lock.op == "find" and find_over(lock, now):
            # We never saw the code arrive on a lock that was online long enough: nothing to delete.
            # The reconciler deletes it should it land after all.
            removed(b, lock, plan, now)


# ---------------------------------------------------------------------- step 4: status and email


def _settle(b: Booking, now: datetime, plan: Plan) -> None:
    present = [lk for lk in b.locks if lk.desired == "present"]
    before = b.status
    if b.status in (BookingStatus.PROVISIONING, BookingStatus.FAILED, BookingStatus.ACTIVE):
        # A lock the guest was given a backup code for (services.backup) is open to them either way.
        if present and all(
            (lk.status == LockStatus.ACTIVE and lk.op is None) or b.covered(lk.smartlockId) for lk in present
        ):
            b.status, b.statusReason = BookingStatus.ACTIVE, None
        elif any(lk.status == LockStatus.FAILED for lk in present):
            b.status = BookingStatus.FAILED
            b.statusReason = "; ".join(
                f"lock {lk.smartlockId}: {lk.error or 'not confirmed yet; trying again'}"
                for lk in present
                if lk.error or lk.status == LockStatus.FAILED
            )
        else:
            b.status = BookingStatus.PROVISIONING
        stop_clocks(b)
    elif b.status == BookingStatus.REVOKING and all(lk.status == LockStatus.REMOVED for lk in b.slots()):
        b.status = BookingStatus.REVOKED
    if b.status != before:
        plan.logs.append((f"booking {b.status.value}", {"previous": before.value}))
        plan.metrics.append((f"Booking{b.status.value.capitalize()}", {}))
    # A round that asks for the guest's account user changes the locks next: the guest is told after.
    if b.status == BookingStatus.ACTIVE and b.notifyGuest and b.guest is not None and not plan.account_user:
        # An outbox with a lease: the invocation that takes the lease sends; the email counts as
        # sent only once SES took it. Should the sender die, the lease runs out and a follow-up
        # sends again (a guest may rarely get it twice; never not at all).
        # The booking item outlives the guest data (GUEST_DATA_RETENTION_DAYS): the address
        # enters its fingerprint only as a one-way tag, enough to notice a new address.
        address = hashlib.sha256(f"{b.bookingId}:{email_key(b.guest.email)}".encode()).hexdigest()[:12]
        fingerprint = f"{b.notice_fingerprint()}:{address}"
        if b.emailFingerprint == f"{b.notice_fingerprint()}:{b.guest.email}":
            b.emailFingerprint = fingerprint  # written before the tag: same notice, no second email
        lease_free = b.emailLeaseUntil is None or b.emailLeaseUntil <= now
        if fingerprint != b.emailFingerprint and lease_free:
            if b.emailPending != fingerprint:
                b.emailAttempts = 0
            b.emailPending, b.emailLeaseUntil = fingerprint, now + EMAIL_LEASE
            plan.email, plan.email_updated = True, b.emailFingerprint is not None
            plan.email_fingerprint = fingerprint


# ---------------------------------------------------------------------- the email's outbox

EMAIL_MAX_ATTEMPTS = 8
# SES errors that no retry will cure.
EMAIL_PERMANENT = {"MessageRejected", "MailFromDomainNotVerifiedException", "ConfigurationSetDoesNotExistException"}


def email_sent(b: Booking, fingerprint: str, now: datetime) -> None:
    """SES took the email under the outbox's lease: the guest was told this notice."""
    if b.emailPending == fingerprint:
        b.emailFingerprint, b.emailSentAt, b.emailError = fingerprint, now, None
        b.emailPending, b.emailLeaseUntil, b.emailAttempts = None, None, 0


def email_failed(b: Booking, fingerprint: str, code: str, ctx: Context) -> Plan:
    """SES refused the email (`code`): tried again with backoff under a new lease, or given up on
    (the booking stays active; an alarm tells the operator) after a refusal no retry cures or
    EMAIL_MAX_ATTEMPTS tries."""
    plan = Plan()
    if b.emailPending != fingerprint:
        return plan
    b.emailAttempts += 1
    if code in EMAIL_PERMANENT or b.emailAttempts >= EMAIL_MAX_ATTEMPTS:
        b.emailFingerprint, b.emailPending, b.emailLeaseUntil = fingerprint, None, None
        b.emailError = f"the guest email could not be sent: {code}"
        return plan
    b.emailLeaseUntil = ctx.now + timedelta(seconds=min(3600, 60 * 2 ** (b.emailAttempts - 1)))
    plan_next_check(b, ctx, plan)
    return plan


__all__ = [
    "EMAIL_LEASE",
    "EMAIL_MAX_ATTEMPTS",
    "EMAIL_PERMANENT",
    "FORBIDDEN_RETRY_SECONDS",
    "REMOVAL_LOOK_EVERY",
    "after_outcome",
    "deadline",
    "decide",
    "differs_from_sent",
    "email_failed",
    "email_sent",
    "waits_for_account",
]
