"""Readiness: is every lock of a booking ready for the guest's arrival? Pure: what Nuki reported of
each lock (`LockReport`, from ``GET /smartlock/{id}``) in, the booking's `Readiness` out.

A lock is at risk when Nuki no longer knows it (404, 403), when it is offline (``serverState`` 4:
its bridge or Wi-Fi is down, or its battery is empty) or otherwise not registered with Nuki's
servers, when its battery is critical, when its Smart Hosting subscription is not in force (Nuki
refuses the Web API for it) or reports no state (nothing says it is in force), when it is in force
but ends (its ``expirationDate``) before the stay does: cancelled at the end of its term
(``PENDING_CANCEL``), or already past its date, and, for a lock the guest opens with the keypad,
when no keypad is paired or the keypad's battery is critical. Each finding names the lock and the
reason.

When a check is due (`due`): before the arrival at each of the offsets (by default 48 and 4 hours
before `validFrom`: the template's ReadinessCheckHours), once per offset (a booking made, or
changed, after an offset passed: at the next run); and at every run while the booking is at risk,
until its stay ends, so a finding clears itself when its cause is gone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from staykey.core.models import CODE_WANTED, Booking, BookingStatus, LockState, Readiness, ReadinessReason
from staykey.core.timeutil import iso_utc

if TYPE_CHECKING:
    from staykey.nuki import Smartlock

SERVER_OFFLINE = 4
IN_FORCE = frozenset({"ACTIVE", "PENDING_CANCEL"})
CHECKED = CODE_WANTED | {BookingStatus.SCHEDULED}


@dataclass(frozen=True)
class LockReport:
    """What Nuki reported of one lock (`GET /smartlock/{id}`), reduced to what readiness needs.
    `found` False: Nuki does not know the lock (or refuses it to us); `detail` says how."""

    smartlock_id: int
    found: bool = True
    server_state: int | None = 0
    keypad_paired: bool | None = None
    battery_critical: bool | None = None
    battery_charge: int | None = None
    keypad_battery_critical: bool | None = None
    doorsensor_battery_critical: bool | None = None
    subscription: str | None = None  # currentSubscription.state; None: none reported; "": no state
    subscription_ends: datetime | None = None  # currentSubscription.expirationDate
    detail: str | None = None

    @property
    def online(self) -> bool | None:
        return None if self.server_state is None else self.server_state != SERVER_OFFLINE

    @classmethod
    def of(cls, lock: Smartlock) -> LockReport:
        state = lock.state
        return cls(
            smartlock_id=lock.smartlock_id,
            server_state=lock.server_state,
            keypad_paired=lock.has_keypad,
            battery_critical=state.battery_critical if state else None,
            battery_charge=state.battery_charge if state else None,
            keypad_battery_critical=state.keypad_battery_critical if state else None,
            doorsensor_battery_critical=state.doorsensor_battery_critical if state else None,
            subscription=(lock.current_subscription.state or "") if lock.current_subscription else None,
            subscription_ends=lock.current_subscription.expiration_date if lock.current_subscription else None,
        )

    @classmethod
    def unknown(cls, smartlock_id: int, detail: str) -> LockReport:
        return cls(smartlock_id=smartlock_id, found=False, server_state=None, detail=detail)

    def meta(self) -> dict[str, object]:
        """The lock's last known state (LOCK#/META attributes) this report gives."""
        return {
            "online": self.online,
            "serverState": self.server_state,
            "keypadPaired": self.keypad_paired,
            "batteryCritical": self.battery_critical,
            "batteryCharge": self.battery_charge,
            "keypadBatteryCritical": self.keypad_battery_critical,
            "doorsensorBatteryCritical": self.doorsensor_battery_critical,
            "subscription": "none" if self.subscription is None else self.subscription or "unknown",
        }


def findings(lock: LockState, report: LockReport, until: datetime, now: datetime) -> list[ReadinessReason]:
    """What puts the guest's stay (ending at `until`) at risk on this lock; [] when it is ready."""
    lock_id = lock.smartlockId

    def reason(code: str, message: str) -> ReadinessReason:
        return ReadinessReason(smartlockId=lock_id, code=code, message=f"lock {lock_id} {message}")

    if not report.found:
        return [reason("unknown_lock", f"is not in the Nuki account any more ({report.detail or 'not found'})")]
    out = []
    if report.server_state == SERVER_OFFLINE:
        out.append(reason("offline", "is offline: Nuki cannot reach it (its bridge, Wi-Fi or battery)"))
    elif report.server_state not in (None, 0):
        state = report.server_state
        out.append(reason("not_registered", f"is not registered with Nuki's servers (serverState {state})"))
    if report.battery_critical:
        charge = f" ({report.battery_charge}%)" if report.battery_charge is not None else ""
        out.append(reason("battery_critical", f"has a critical battery{charge}: change it before the guest arrives"))
    if lock.access == "keypad":
        if report.keypad_paired is False:
            out.append(reason("no_keypad", "has no keypad paired, and the guest opens it with a keypad code"))
        elif report.keypad_battery_critical:
            out.append(reason("keypad_battery_critical", "has a keypad with a critical battery"))
    problem = subscription_problem(report, until, now)
    if problem is not None:
        out.append(reason("subscription", problem))
    return out


def not_in_force(report: LockReport, now: datetime) -> str | None:
    """Why the lock's Smart Hosting subscription is not in force now (Nuki refuses the Web API for
    such a lock), or None: no state, a state not in force, or past its expirationDate. A lock that
    reports none is taken (accounts without Smart Hosting report none). The one rule for setting a
    room up (`services.rooms`) and, with the stay's end, for readiness (`subscription_problem`)."""
    state, ends = report.subscription, report.subscription_ends
    if state is None:
        return None
    if state == "":
        return "has a Smart Hosting subscription without a state: nothing says it is in force"
    if state not in IN_FORCE:
        return f"has a Smart Hosting subscription that is {state}, not active"
    if ends is not None and ends <= now:
        return f"has a Smart Hosting subscription ({state}) that expired at {iso_utc(ends)}"
    return None


def subscription_problem(report: LockReport, until: datetime, now: datetime) -> str | None:
    """Why the lock's Smart Hosting subscription threatens a stay ending at `until`, or None: not in
    force now (`not_in_force`), or cancelled at the end of a term that ends before the stay does
    (or that Nuki does not say)."""
    problem = not_in_force(report, now)
    if problem or report.subscription is None:
        return problem
    state, ends = report.subscription, report.subscription_ends
    if state == "PENDING_CANCEL" and ends is None:
        return "has a Smart Hosting subscription cancelled at the end of its term, which Nuki does not say"
    if state == "PENDING_CANCEL" and ends is not None and ends < until:
        return f"has a Smart Hosting subscription cancelled at {iso_utc(ends)}, before the stay ends ({iso_utc(until)})"
    return None


def assess(b: Booking, reports: Mapping[int, LockReport], now: datetime) -> Readiness | None:
    """The booking's readiness from what Nuki reported of each of its locks; None when a lock the
    booking uses was not reported (Nuki could not be asked: the check waits for a run that can)."""
    present = [lock for lock in b.locks if lock.desired == "present"]
    if any(lock.smartlockId not in reports for lock in present):
        return None
    reasons = [r for lock in present for r in findings(lock, reports[lock.smartlockId], b.validUntil, now)]
    return Readiness(status="at_risk" if reasons else "ok", reasons=reasons, checkedAt=now)


def due(b: Booking, now: datetime, offsets: Sequence[timedelta]) -> bool:
    """Whether the booking's locks are to be checked now (see the module docstring)."""
    if b.status not in CHECKED or b.validUntil <= now:
        return False
    last = b.readiness.checkedAt if b.readiness else None
    if b.readiness is not None and b.readiness.status == "at_risk":
        return True
    if b.validFrom <= now:
        return False
    marks = [b.validFrom - offset for offset in offsets if b.validFrom - offset <= now]
    return bool(marks) and (last is None or last < max(marks))


def apply(b: Booking, readiness: Readiness) -> bool:
    """Put `readiness` on the booking; whether what it says changed (its status or its findings)."""
    before = b.readiness
    b.readiness = readiness
    if before is None:
        return True
    return (before.status, [(r.smartlockId, r.code) for r in before.reasons]) != (
        readiness.status,
        [(r.smartlockId, r.code) for r in readiness.reasons],
    )


__all__ = ["LockReport", "apply", "assess", "due", "findings", "not_in_force", "subscription_problem"]
