"""A PIN rotation completes (a step of the sync engine's round, `core.decide`): the booking takes the
new PIN once its new code is confirmed on every keypad lock. A rotation changes only keypad codes:
an app authorization (the guest's Nuki account user) has no PIN and is left as it is."""

from __future__ import annotations

from datetime import datetime

from staykey.core.models import CODE_WANTED, Booking, LockState, LockStatus
from staykey.core.round import Plan


def switch(b: Booking, now: datetime, plan: Plan) -> None:
    """A rotation whose new code is confirmed on every lock the booking uses, as booked: the booking
    takes the new PIN (its codes become the booking's), and the old codes become codes to remove
    (once the guest has been told the new PIN, `LockState.untilTold`). Until then the old code keeps
    working, whatever happens to the new one."""
    rotation = b.rotation
    if rotation is None or b.status not in CODE_WANTED:
        return
    present = [lk for lk in b.locks if lk.desired == "present" and lk.access == "keypad"]  # app locks: no PIN
    fresh = {lk.smartlockId: lk for lk in b.rotationCodes if lk.desired == "present"}

    def ready(lock: LockState | None) -> bool:
        return (
            lock is not None
            and lock.status == LockStatus.ACTIVE
            and lock.op is None
            and lock.heldPin == rotation.pin
            and lock.sentFrom == b.validFrom
            and lock.sentUntil == b.validUntil
            and lock.sentSchedule == b.schedule()
        )

    if not present:
        if not any(lk.desired == "present" for lk in b.rotationCodes):
            # The booking moved to locks without a keypad: nothing is left to rotate (a rotation
            # asked for there is a 409); its new codes on the locks it left go as any code does.
            # Found by the simulator (seed 18): the rotation stayed pending for good.
            b.rotation = None
            plan.logs.append(("PIN rotation dropped: the booking's locks have no keypad now", {}))
        return
    if not all(ready(fresh.get(lk.smartlockId)) for lk in present):
        return
    old_pin = b.pin
    for n, lock in enumerate(b.locks):
        if lock.desired != "present" and lock.access == "keypad":
            # A lock the booking is leaving (a move) still carries the old PIN, or is being
            # cleared of it: it keeps that PIN as its own, not the booking's new one.
            if lock.status != LockStatus.REMOVED and lock.pin is None:
                lock.pin = old_pin
            continue
        if lock.desired != "present" or lock.access != "keypad":
            continue
        new = fresh[lock.smartlockId]
        b.rotationCodes.remove(new)
        new.pin = None
        b.locks[n] = new
        lock.pin, lock.desired, lock.untilTold = old_pin, "absent", True
        lock.error, lock.retryAt, lock.retries, lock.stopped = None, None, 0, False
        if lock.status == LockStatus.FAILED:
            lock.status = LockStatus.PENDING
        b.rotationCodes.append(lock)
    b.pin, b.rotation, b.pinRotatedAt = rotation.pin, None, now
    plan.metrics.append(("PinRotated", {}))
    plan.logs.append(("PIN rotated: the new code is confirmed on every lock; the old one goes", {}))
