"""When a booking's code belongs on its locks: from its provisioning time on (`provisionAt`:
`ProvisionLeadHours`, and its share of the spread, before `validFrom`; a staff code's at once).
Before that time a booking is `scheduled`: its PIN is reserved on its locks and nothing of it is on
them, so a far-future stay takes no slot of a lock's 200.

One rule for every way a booking's stay is set: its creation (`commands.new_booking`) and every
change (`commands.patch`), of the dates, of the room (a room with another check-in time moves the
stay as much), or both, in either direction: a change that brings the stay within the lead starts
provisioning, and one that puts it beyond the lead sends a `provisioning`, `active` or `failed`
booking back to `scheduled`. The sync engine takes off what had gone on (`Booking.code_off`,
`core.decide`), whatever look shows it there (a read-back, a webhook, the reconciler's list:
`core.observe`, `core.drift`), and the provisioning schedule puts it back at the lead, when the
guest is told the new stay (told means true: not before the code is on every lock).

Seed 112 of the simulator found the gap: only scheduled -> provisioning followed the lead. B112-9,
active in r1 (check-in 01:30 UTC) three days ahead, was moved to r3 (check-in 13:00 UTC): its stay
now began 11.5 hours beyond the lead, and it stayed `active` with its code on r3's locks.
"""

from __future__ import annotations

from datetime import datetime

from staykey.core.models import ENDED, Booking, BookingStatus, LockState, LockStatus
from staykey.core.round import CodeClaim


def due(b: Booking, now: datetime) -> bool:
    """Whether the booking's code belongs on its locks at `now`."""
    return b.staff is not None or b.provisionAt <= now


def follow(b: Booking, now: datetime) -> list[CodeClaim]:
    """The booking's status after its stay was set: `scheduled` before its provisioning time,
    provisioning from it on (a booking that is provisioning, active or failed stays so then). The
    claims to release: a PIN rotation in progress takes effect at once when the booking goes back
    to `scheduled` (nothing is to be confirmed on the locks before the lead), as one asked for
    while scheduled does, and frees the old PIN where nothing of it is on a lock."""
    if b.status in ENDED:
        return []
    if due(b, now):
        if b.status == BookingStatus.SCHEDULED:
            b.status = BookingStatus.PROVISIONING
        return []
    if b.status == BookingStatus.SCHEDULED:
        return []
    b.status, b.statusReason = BookingStatus.SCHEDULED, None
    for lock in b.locks:
        if lock.desired == "present" and nothing_on(lock):
            # Nothing of ours on it: it waits for the lead, as a new booking's lock does.
            lock.status, lock.error, lock.retryAt, lock.retries = LockStatus.PENDING, None, None, 0
            lock.stopped, lock.firstSentAt, lock.refused = False, None, False
    return _rotation_done(b, now)


def _rotation_done(b: Booking, now: datetime) -> list[CodeClaim]:
    """A rotation in progress of a booking gone back to `scheduled`: its PIN is the booking's now.
    Its new codes come off with the rest (their claims stay: the booking's codes carry that PIN);
    the old PIN is released on each lock nothing of it was sent to, and on the others once its code
    is confirmed gone (`core.observe.removed`)."""
    rotation = b.rotation
    if rotation is None:
        return []
    old = b.pin
    releases = [
        CodeClaim(lk.smartlockId, old)
        for lk in b.locks
        if lk.desired == "present" and lk.access == "keypad" and nothing_on(lk)
    ]
    for lock in b.rotationCodes:
        if lock.desired == "present":
            lock.desired = "absent"
    b.pin, b.rotation, b.pinRotatedAt = rotation.pin, None, now
    return releases


def nothing_on(lock: LockState) -> bool:
    """Whether a lock state records nothing of ours on its lock: no write, no id, no PIN sent or held."""
    return lock.op is None and lock.nukiId is None and lock.sentPin is None and lock.heldPin is None


__all__ = ["due", "follow", "nothing_on"]
