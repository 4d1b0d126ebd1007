"""What the shop's (and the operator's) commands do to a booking: pure changes of a `Booking`,
with the code claims to write and release in the same transaction. The shell
(`services.bookings.Bookings`) reads the booking, applies one of these, saves it (optimistic
locking: on a conflict it reads again and applies again), and then lets the sync engine run.

A command that no longer applies to the booking as read (it ended meanwhile, its PIN changed)
raises `Conflict` or answers `None`, as its docstring says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from staykey.core import lead as lead_rule
from staykey.core.looks import restart_clocks, wanted
from staykey.core.models import (
    ENDED,
    MAX_STAY_DAYS,
    AccessKind,
    Booking,
    BookingIn,
    BookingStatus,
    Guest,
    LockState,
    LockStatus,
    PinRotation,
    Room,
    stay_point_json,
)
from staykey.core.pins import auth_name
from staykey.core.round import CodeClaim
from staykey.core.timeutil import iso_utc
from staykey.errors import Conflict, ValidationFailed
from staykey.nuki.accounts import NUKI_LANGUAGES, nuki_language


@dataclass
class Claims:
    """The code claims a command writes, and those it releases, with the booking."""

    claims: list[CodeClaim] = field(default_factory=list)
    releases: list[CodeClaim] = field(default_factory=list)


def check_window(valid_from: datetime, valid_until: datetime, room: Room, now: datetime) -> None:
    """A stay's window the shop may ask for: after check-in, in the future, at most MAX_STAY_DAYS
    long and at most three years ahead; ValidationFailed naming the field otherwise."""
    start = valid_from + timedelta(minutes=room.accessBeforeMinutes)
    end = valid_until - timedelta(minutes=room.accessAfterMinutes)
    details = []
    if end <= start:
        message = f"must be after checkIn ({iso_utc(end)} is not after {iso_utc(start)})"
        details.append({"field": "checkOut", "message": message})
    elif end <= now:
        details.append({"field": "checkOut", "message": f"is in the past ({iso_utc(end)})"})
    elif end - start > timedelta(days=MAX_STAY_DAYS):
        details.append({"field": "checkOut", "message": f"a stay may last at most {MAX_STAY_DAYS} days"})
    elif start - now > timedelta(days=3 * 366):
        details.append({"field": "checkIn", "message": "is more than three years away"})
    if details:
        raise ValidationFailed("the stay's dates do not make a valid window", details=details)


def new_booking(
    request: BookingIn,
    room: Room,
    window: tuple[datetime, datetime],
    pin: str,
    name_attempt: int,
    lead: timedelta,
    now: datetime,
) -> Booking:
    """A booking for `request` in `room`, its PIN reserved, scheduled or provisioning by its lead."""
    valid_from, valid_until = window
    b = Booking(
        bookingId=request.bookingId,
        roomId=room.roomId,
        status=BookingStatus.SCHEDULED,
        pin=pin,
        pinHistory=[pin],
        authName=auth_name(request.bookingId, name_attempt),
        validFrom=valid_from,
        validUntil=valid_until,
        checkIn=stay_point_json(request.checkIn),
        checkOut=stay_point_json(request.checkOut),
        timezone=room.timezone,
        notifyGuest=request.notifyGuest,
        locks=[lock_state(room, lock_id) for lock_id in room.smartlockIds],
        createdAt=now,
        updatedAt=now,
        provisionAt=valid_from - lead,
        requestHash=request.request_hash(),
    )
    lead_rule.follow(b, now)
    return b


def lock_state(room: Room, smartlock_id: int) -> LockState:
    """A new lock of a booking in `room`: how the guest opens it, and whether its code is linked."""
    access = room.access_of(smartlock_id)
    return LockState(smartlockId=smartlock_id, access=access, link=access == "keypad" and room.linkKeypadCodes)


def claims_for(room: Room, pin: str) -> list[CodeClaim]:
    """What a new booking in `room` claims on each lock: its PIN on a keypad lock (so no other
    booking takes it there), its place on an app lock (so the reconciler knows it is there)."""
    return [claim(smartlock_id, room.access_of(smartlock_id), pin) for smartlock_id in room.smartlockIds]


def claim(smartlock_id: int, access: str, pin: str) -> CodeClaim:
    return CodeClaim(smartlock_id, pin) if access == "keypad" else CodeClaim(smartlock_id, "", app=True)


def start_provisioning(b: Booking, now: datetime) -> None:
    """Its provisioning time came: a scheduled booking starts putting its code on the locks."""
    if b.status == BookingStatus.SCHEDULED:
        b.status = BookingStatus.PROVISIONING
        b.updatedAt = now
        b.nobodyWaits = True  # until someone changes the booking (`core.looks.shared`)


def end(b: Booking, target: BookingStatus, reason: str, now: datetime, wait: datetime | None = None) -> Claims | None:
    """The stay ends (checkout, expiry) or is cancelled: every lock's code must go (its removal not
    before `wait`: EXPIRY_SPREAD_MINUTES). None: it had ended already."""
    if b.status in ENDED:
        return None
    out = Claims()
    b.status, b.statusReason, b.updatedAt = target, reason, now
    b.rotation = None  # a PIN rotation in progress ends too: both codes come off
    for lock in b.slots():
        kept = lock.desired == "present" and lock.status == LockStatus.REMOVED  # taken off, its PIN kept
        lock.desired = "absent"
        if lock.status == LockStatus.FAILED and lock.op is None:
            reset(lock)
        if lock.sentPin is None and lock.op is None and (lock.status != LockStatus.REMOVED or kept):
            # Nothing was ever sent to this lock, or what was is gone: nothing to remove.
            lock.status = LockStatus.REMOVED
            out.releases.append(claim(lock.smartlockId, lock.access, b.target_pin(lock)))
    b.rotationCodes = [lk for lk in b.rotationCodes if lk.status != LockStatus.REMOVED]
    for lock in (lk for lk in b.slots() if wait is not None and wait > now and lk.status != LockStatus.REMOVED):
        lock.retryAt = wait
    if target == BookingStatus.REVOKING and all(lk.status == LockStatus.REMOVED for lk in b.slots()):
        b.status = BookingStatus.REVOKED
    return out


def check_guest(room_id: str, locks: list[LockState], guest: Guest | None) -> None:
    """Locks a guest opens with the Nuki app (or whose codes are linked to the guest's Nuki account
    user) need the guest's email, and a language Nuki's app speaks (its invitation comes in that
    language); ValidationFailed naming the field otherwise. Nothing is written anywhere before this."""
    if not any(lk.access == "app" or lk.link for lk in locks):
        return
    app = any(lk.access == "app" for lk in locks)
    why = "app access (a Nuki account user)" if app else "keypad codes linked to the guest's Nuki account user"
    details = []
    if guest is None or not guest.email:
        details.append({"field": "guest.email", "message": f"is required: room {room_id!r} has {why}"})
    elif nuki_language(guest.locale) is None:
        details.append(
            {
                "field": "guest.locale",
                "message": f"must be a language Nuki's app speaks ({', '.join(NUKI_LANGUAGES)}): room "
                f"{room_id!r} has {why}, and Nuki invites the guest in that language",
            }
        )
    if details:
        raise ValidationFailed("the guest cannot get a Nuki account user", details=details)


@dataclass(frozen=True)
class Change:
    """A PATCH as the shell resolved it: the new stay points and window, the room if it moves, the
    locks the booking uses after it, and the PIN it has after it."""

    check_in: date | datetime
    check_out: date | datetime
    valid_from: datetime
    valid_until: datetime
    room: Room | None  # set: the booking moves to this room (its locks and zone)
    locks: tuple[int, ...]
    pin: str
    lead: timedelta
    # How the guest opens each lock after the change (the room's, or the booking's own): keypad or app.
    access: tuple[tuple[int, AccessKind], ...] = ()
    # The guest's email changed: their Nuki account user is found or created again.
    new_guest_email: bool = False
    rotation_pin: str | None = None  # a PIN rotation in progress: its new PIN after the change

    def access_of(self, smartlock_id: int) -> AccessKind:
        return dict(self.access).get(smartlock_id, "keypad")


def patch(b: Booking, change: Change, now: datetime) -> Claims:
    """Change the stay, the room or the PIN (the guest data lives elsewhere); the locks follow."""
    changeable(b)  # an expiry or cancellation may have won the race
    out, before = Claims(), [(lock, wanted(b, lock)) for lock in b.slots()]
    old_pin, old_window = b.pin, (b.validFrom, b.validUntil)
    present = {lk.smartlockId for lk in b.locks if lk.desired == "present"}
    added = [lock_id for lock_id in change.locks if lock_id not in present]
    if change.room is not None:
        b.roomId, b.timezone = change.room.roomId, change.room.timezone
    if change.new_guest_email:
        b.account = b.account.renewed()
    link = change.room.linkKeypadCodes if change.room is not None else any(lk.link for lk in b.locks)
    switched = _switch_access(b, change, link, old_pin, out)
    b.checkIn = stay_point_json(change.check_in)
    b.checkOut = stay_point_json(change.check_out)
    b.validFrom, b.validUntil = change.valid_from, change.valid_until
    b.provisionAt = change.valid_from - change.lead
    b.updatedAt, b.nobodyWaits = now, False  # whoever changed it waits for the change
    if change.pin != old_pin:
        out.claims += [CodeClaim(i, change.pin) for i in change.locks if change.access_of(i) == "keypad"]
        out.claims += [claim(i, "app", "") for i in added if change.access_of(i) == "app"]
        out.releases += [
            CodeClaim(lk.smartlockId, old_pin) for lk in b.locks if lk.heldPin != old_pin and lk.access == "keypad"
        ]
        b.pin = change.pin
        b.pinHistory.append(change.pin)
        out.claims += [claim(i, "app", "") for i in switched if change.access_of(i) == "app"]
    else:
        out.claims += [claim(i, change.access_of(i), change.pin) for i in [*added, *switched]]
    for lock in b.locks:
        if lock.smartlockId in change.locks:
            lock.desired = "present"
            lock.pin = None  # the booking's code again (a lock left during a rotation kept its old PIN)
            if lock.status == LockStatus.FAILED:
                reset(lock)
            if lock.op == "find":
                # Back on a lock we were leaving: the create we sent is wanted again.
                lock.op = "create"
        else:
            lock.desired = "absent"
            if lock.sentPin is None and lock.op is None:
                lock.status = LockStatus.REMOVED
                out.releases.append(claim(lock.smartlockId, lock.access, old_pin))
    b.locks += [
        LockState(smartlockId=i, access=change.access_of(i), link=change.access_of(i) == "keypad" and link)
        for i in added
        if b.lock(i) is None
    ]
    _rotation_follows(b, change, out)
    fresh = added or switched
    if b.readiness is not None and b.readiness.status == "ok" and (fresh or (b.validFrom, b.validUntil) != old_window):
        # Checked for other locks or another stay (its end too: a subscription may end before the
        # new one does): due again at the next run (an at-risk one is at every run).
        b.readiness = None
    if b.status == BookingStatus.FAILED:
        b.status, b.statusReason, b.pinChoices = BookingStatus.PROVISIONING, None, 1
    out.releases += lead_rule.follow(b, now)  # scheduled before its lead, in both directions
    restart_clocks(b, before, now)
    return out


def _switch_access(b: Booking, change: Change, link: bool, old_pin: str, out: Claims) -> list[int]:
    """A lock the booking keeps, opened another way after the change (a move between rooms that
    name it with another `access`): it gets a new lock state of the new kind, sent as a new lock's
    is; the old one becomes a code to remove (`untilReplaced`, in `rotationCodes`, keeping its own
    PIN), which stays on the lock until the new one is confirmed and the guest told what applies
    (`Booking.keeps_old_code`). Issue 15, defect 5: the lock kept its old kind, the old access
    stayed on and the new one never went on. The ids of the locks switched."""
    switched = []
    for n, old in enumerate(b.locks):
        kind = change.access_of(old.smartlockId)
        if old.smartlockId not in change.locks or old.access == kind:
            continue
        switched.append(old.smartlockId)
        back = [s for s in b.rotationCodes if s.smartlockId == old.smartlockId and s.untilReplaced and s.access == kind]
        for lock in back:  # back to the kind it had: the old code it was replacing is wanted again
            b.rotationCodes.remove(lock)
            lock.untilReplaced, lock.pin = False, None
        new = back[0] if back else LockState(smartlockId=old.smartlockId, access=kind, link=kind == "keypad" and link)
        b.locks[n] = new
        old.desired, old.untilReplaced, old.untilTold = "absent", True, False
        old.pin = old.pin or (old_pin if old.access == "keypad" else None)
        if old.status == LockStatus.FAILED and old.op is None:
            reset(old)
        if old.sentPin is None and old.op is None and old.nukiId is None:
            old.status = LockStatus.REMOVED  # nothing of the old kind ever went on: nothing to remove
            out.releases.append(claim(old.smartlockId, old.access, b.target_pin(old)))
        else:
            b.rotationCodes.append(old)
    return switched


def _rotation_follows(b: Booking, change: Change, out: Claims) -> None:
    """A PIN rotation in progress follows a change of the booking's locks: its new code goes on the
    locks the booking takes (claimed there), and comes off those it leaves. A new window reaches
    its codes by the engine's usual writes. `change.rotation_pin` differs when the rotation's PIN
    was taken on a new lock: its codes take the new one. Only keypad locks carry a rotation's code
    (an app lock has no PIN)."""
    rotation = b.rotation
    if rotation is None:
        return
    keypad = [i for i in change.locks if change.access_of(i) == "keypad"]
    for lock in b.rotationCodes:
        if lock.desired == "present" and lock.smartlockId not in keypad:
            lock.desired = "absent"  # a lock the booking leaves: its new code comes off (if it went on)
            if lock.sentPin is None and lock.op is None:
                lock.status = LockStatus.REMOVED
                out.releases.append(CodeClaim(lock.smartlockId, b.target_pin(lock)))
        elif lock.desired == "absent" and lock.pin == rotation.pin and lock.smartlockId in keypad:
            lock.desired = "present"  # back on a lock it was leaving: the code sent there is wanted again
            if lock.op == "find":
                lock.op = "create"
    b.rotationCodes = [lk for lk in b.rotationCodes if not (lk.desired == "absent" and lk.status == LockStatus.REMOVED)]
    wanted = [lk for lk in b.rotationCodes if lk.desired == "present"]
    pin = change.rotation_pin or rotation.pin
    claim = set(keypad) - {lk.smartlockId for lk in wanted}
    if pin != rotation.pin:
        out.releases += [CodeClaim(lk.smartlockId, rotation.pin) for lk in wanted if lk.heldPin != rotation.pin]
        for lock in wanted:
            lock.pin = pin
        rotation.pin = pin
        b.pinHistory.append(pin)
        claim = set(keypad)
    for lock in wanted:
        if lock.status == LockStatus.FAILED:
            reset(lock)
    b.rotationCodes += [
        LockState(smartlockId=lock_id, pin=pin, link=_linked(b, lock_id))
        for lock_id in keypad
        if lock_id not in {lk.smartlockId for lk in wanted}
    ]
    out.claims += [CodeClaim(lock_id, pin) for lock_id in sorted(claim)]


def rotate(b: Booking, pin: str, now: datetime) -> Claims:
    """Rotate the booking's PIN to `pin` (chosen free on every lock of the booking; claimed there in
    the same transaction). A scheduled booking (nothing on its locks yet) just reserves the new PIN.
    Otherwise the new code goes onto every lock as a second code while the old one keeps working
    (`Booking.rotation`); the engine switches the booking to it once every lock confirmed it
    (`core.decide`). A rotation already in progress is joined (its failed locks start afresh):
    asking twice is asking once. Only keypad codes rotate: an app authorization (the guest's Nuki
    account user) has no PIN and is left as it is. Conflict: the booking has ended, or has no
    keypad code at all (every lock of its room is opened with the app)."""
    if b.status in ENDED:
        raise Conflict(f"booking {b.bookingId!r} is {b.status.value}: an ended booking has no PIN to rotate")
    keypad = [lk for lk in b.locks if lk.access == "keypad"]
    if b.locks and not keypad:
        raise Conflict(f"booking {b.bookingId!r} has no keypad code: its guest opens with the Nuki app (no PIN)")
    out = Claims()
    if b.rotation is not None:
        rotate_again(b, now)
        return out
    present = [lk.smartlockId for lk in keypad if lk.desired == "present"]
    out.claims += [CodeClaim(lock_id, pin) for lock_id in present]
    b.pinHistory.append(pin)
    b.updatedAt, b.nobodyWaits = now, False
    if b.status == BookingStatus.SCHEDULED:
        # Nothing of it belongs on the locks yet (what a change left there frees its PIN once gone).
        out.releases += [
            CodeClaim(lk.smartlockId, b.pin) for lk in keypad if lk.desired == "present" and lead_rule.nothing_on(lk)
        ]
        b.pin, b.pinRotatedAt = pin, now
        return out
    b.rotation = PinRotation(pin=pin, requestedAt=now)
    b.rotationCodes += [LockState(smartlockId=lock_id, pin=pin, link=_linked(b, lock_id)) for lock_id in present]
    return out


def _linked(b: Booking, smartlock_id: int) -> bool:
    """Whether the booking's keypad code on this lock is linked to the guest's account user (a
    rotation's code on it is linked alike)."""
    lock = b.lock(smartlock_id)
    return lock is not None and lock.link


def rotate_again(b: Booking, now: datetime) -> None:
    """A rotation asked for while one is in progress: the same rotation, its failed locks afresh."""
    if b.rotation is None:
        return
    for lock in b.rotationCodes:
        if lock.desired == "present" and lock.status == LockStatus.FAILED:
            reset(lock)
    b.rotation.choices = 1
    b.updatedAt, b.nobodyWaits = now, False


def rotation_conflict(
    b: Booking, old_pin: str, pin: str, conflicts: set[int], max_choices: int, now: datetime
) -> Claims | None:
    """Someone else's code holds the rotation's new PIN on a lock (409): the rotation takes `pin`
    instead, or its locks fail (the old PIN keeps working) once it chose `max_choices` times.
    None: the rotation's PIN changed meanwhile (or it ended)."""
    rotation = b.rotation
    if rotation is None or rotation.pin != old_pin:
        return None
    out = Claims()
    wanted = [lk for lk in b.rotationCodes if lk.desired == "present"]
    if rotation.choices >= max_choices:
        for lock in wanted:
            if lock.smartlockId in conflicts:
                lock.status, lock.op, lock.stopped = LockStatus.FAILED, None, True
                lock.error = "every PIN we chose was already on the lock (409 conflict)"
        return out
    out.claims += [CodeClaim(lk.smartlockId, pin) for lk in wanted]
    out.releases += [CodeClaim(lk.smartlockId, old_pin) for lk in wanted if lk.heldPin != old_pin]
    for lock in wanted:
        lock.pin = pin
    rotation.pin, rotation.choices = pin, rotation.choices + 1
    b.pinHistory.append(pin)
    b.updatedAt = now
    return out


def resend_email(b: Booking, now: datetime) -> None:
    """Forget what the guest was told: the engine's settle step sends the notice again."""
    if b.emailPending and b.emailLeaseUntil is not None and b.emailLeaseUntil > now:
        raise Conflict(f"an email to the guest of {b.bookingId!r} is being sent right now")
    b.emailFingerprint, b.emailError, b.emailPending, b.emailLeaseUntil = None, None, None, None
    b.updatedAt = now


def retry(b: Booking, now: datetime) -> None:
    """A failed booking's failed locks get a fresh start, as a PATCH gives them."""
    if b.status != BookingStatus.FAILED:
        raise Conflict(f"booking {b.bookingId!r} is {b.status.value}; only a failed booking can be retried")
    for lock in b.locks:
        if lock.desired == "present" and lock.status == LockStatus.FAILED:
            reset(lock)
    if b.account.accountUserId is None and (b.account.stopped or b.account.error):
        # The guest's account user that Nuki refused (a 403, a name it would not take) is tried
        # afresh too: the cause was fixed, or the retry is pointless (found by an adversarial run:
        # a retry failed again at once, without a call to Nuki).
        b.account = b.account.renewed()
    b.status, b.statusReason, b.pinChoices, b.updatedAt, b.nobodyWaits = BookingStatus.PROVISIONING, None, 1, now, False


def choose_again(
    b: Booking, old_pin: str, pin: str, conflicts: set[int], lock_ids: list[int], max_choices: int, now: datetime
) -> Claims | None:
    """Someone else's code holds the booking's PIN on a lock (409): take `pin` instead, or fail the
    booking once it chose `max_choices` times. None: the PIN changed meanwhile (nothing to do)."""
    if b.pin != old_pin:
        return None
    out = Claims()
    if b.pinChoices >= max_choices:
        for lock in b.locks:
            if lock.smartlockId in conflicts:
                lock.status, lock.op = LockStatus.FAILED, None
                lock.error = "every PIN we chose was already on the lock (409 conflict)"
        b.status = BookingStatus.FAILED
        b.statusReason = "code conflict on the lock"
        return out
    out.claims += [CodeClaim(lock_id, pin) for lock_id in lock_ids]
    out.releases += [
        CodeClaim(lk.smartlockId, old_pin) for lk in b.locks if lk.heldPin != old_pin and lk.access == "keypad"
    ]
    b.pin, b.pinChoices, b.updatedAt = pin, b.pinChoices + 1, now
    b.pinHistory.append(pin)
    return out


def reset(lock: LockState) -> None:
    """A failed lock gets a fresh start (a PATCH retries it; an ending booking removes what landed).
    A refused code on it stays known, so it is deleted before the next try."""
    lock.status, lock.error, lock.op = LockStatus.PENDING, None, None
    lock.firstSentAt, lock.opChecks, lock.retryAt, lock.retries, lock.stopped = None, 0, None, 0, False


def changeable(b: Booking) -> None:
    if b.status in ENDED:
        raise Conflict(f"booking {b.bookingId!r} is {b.status.value} and cannot change")


def stay_point(raw: str) -> Any:
    """A stored stay point (`checkIn`/`checkOut`) as the date or UTC instant it is."""
    from datetime import UTC

    if len(raw) == 10:
        return date.fromisoformat(raw)
    return datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(UTC)


__all__ = [
    "Change",
    "Claims",
    "changeable",
    "check_guest",
    "check_window",
    "choose_again",
    "claim",
    "claims_for",
    "end",
    "lock_state",
    "new_booking",
    "patch",
    "resend_email",
    "reset",
    "retry",
    "rotate",
    "rotate_again",
    "rotation_conflict",
    "start_provisioning",
    "stay_point",
]
