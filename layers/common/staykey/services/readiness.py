"""Readiness checks: find the problem days ahead, not at the door (core.readiness decides).

A schedule (the template's ReadinessSchedule, every 15 minutes) runs `run`: every booking whose stay
has not ended and starts within the first check offset (48 hours) is looked at; when a check is
due (an offset passed since its last check, or it is at risk) each of its locks is read with
``GET /smartlock/{id}`` (once per run, however many bookings share it), the findings go on the
booking as `readiness` (`ok`, or `at_risk` with its reasons), and the lock's state goes to its
LOCK#/META item (online, batteries, keypad, subscription: an account without webhooks learns them
here). A booking that turns at risk emits `booking.at_risk` (and `booking.ready` when it clears:
both derived by the store from the change, staykey.events.model); every run emits the gauge
`BookingsAtRisk` (upcoming bookings at risk, 0 included), which an alarm watches, so the alarm
clears itself with its cause. `recheck_lock` re-checks at once the at-risk bookings of one lock
(a DEVICE_STATUS webhook, or a body too lean to say what changed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from staykey.core import readiness as rules
from staykey.core.models import Booking, BookingStatus
from staykey.core.readiness import LockReport
from staykey.core.timeutil import Clock
from staykey.events import model as events
from staykey.nuki import errors as nuki_errors
from staykey.observability import count, logger
from staykey.services.search import BookingFilter, BookingSearch
from staykey.services.sync import rewrite
from staykey.store import Store

if TYPE_CHECKING:
    from staykey.nuki import NukiClient
    from staykey.settings import Settings

LIVE = (BookingStatus.SCHEDULED, BookingStatus.PROVISIONING, BookingStatus.ACTIVE, BookingStatus.FAILED)


@dataclass
class ReadinessRun:
    looked_at: int = 0
    checked: list[str] = field(default_factory=list)
    at_risk: list[str] = field(default_factory=list)  # upcoming bookings at risk after the run
    unreachable: list[int] = field(default_factory=list)  # locks Nuki could not be asked about

    def to_dict(self) -> dict[str, Any]:
        return {
            "lookedAt": self.looked_at,
            "checked": len(self.checked),
            "atRisk": len(self.at_risk),
            "unreachableLocks": self.unreachable,
        }


# A run that needs this many locks reads them all in one `GET /smartlock` (`ReadinessChecks._reports`).
READINESS_LIST_MIN = 3


class ReadinessChecks:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        nuki: Callable[[], NukiClient],
        clock: Clock,
        metric: Callable[..., None] = count,
    ) -> None:
        self.settings = settings
        self.store = store
        self._nuki = nuki
        self.clock = clock
        self.metric = metric

    @property
    def nuki(self) -> NukiClient:
        return self._nuki()

    def run(self) -> ReadinessRun:
        """The scheduled run (see the module docstring)."""
        now = self.clock.now()
        offsets = self.settings.readiness_offsets
        horizon = now + offsets[0] + timedelta(minutes=1)
        # Without the guests: a run reads each booking's dates, status and readiness (a check reads
        # its booking again), never its guest data.
        found = BookingSearch(self.store, self.clock).all(
            BookingFilter(statuses=LIVE, start=now, end=horizon), guests=False
        )
        report = ReadinessRun(looked_at=len(found))
        due = {lk.smartlockId for b in found if rules.due(b, now, offsets) for lk in b.locks if lk.desired == "present"}
        seen = self._reports(due)
        for booking in found:
            current = booking
            if rules.due(booking, now, offsets):
                current = self.check(booking.bookingId, seen) or booking
                report.checked.append(booking.bookingId)
            if current.readiness is not None and current.readiness.status == "at_risk" and current.validFrom > now:
                report.at_risk.append(booking.bookingId)
        report.unreachable = sorted(lock_id for lock_id, r in seen.items() if r is None)
        self.metric("BookingsAtRisk", len(report.at_risk))
        logger.info("readiness checked", **report.to_dict())
        return report

    def refresh_lock(self, smartlock_id: int) -> list[Booking]:
        """A hint that a lock changed (a webhook too lean to say how): read it back, record its
        state, and check the bookings that use it (`recheck_lock`)."""
        seen = {smartlock_id: self._report(smartlock_id)}
        report = seen[smartlock_id]
        problem = report is not None and (not report.found or report.online is False or bool(report.battery_critical))
        return self.recheck_lock(smartlock_id, problem=problem, seen=seen)

    def recheck_lock(
        self, smartlock_id: int, *, problem: bool = False, seen: dict[int, LockReport | None] | None = None
    ) -> list[Booking]:
        """Check again, now, the at-risk bookings that use this lock (their cause may be gone); and,
        when the lock reported a `problem`, every booking on it whose checks have begun (the
        problem is found now, not at the next check)."""
        ids = {c.booking_id for c in self.store.claims_on_lock(smartlock_id) if c.booking_id and c.owner != "foreign"}
        if not ids:
            return []
        bookings = self.store.get_bookings(sorted(ids))
        now = self.clock.now()
        seen = {} if seen is None else seen
        first = self.settings.readiness_offsets[0]
        out = []
        for b in bookings.values():
            if b.staff is not None:
                continue  # a staff code has no arrival to be ready for
            at_risk = b.readiness is not None and b.readiness.status == "at_risk"
            begun = problem and b.validFrom - first <= now < b.validUntil and b.status in LIVE
            if (at_risk and rules.due(b, now, self.settings.readiness_offsets)) or begun:
                checked = self.check(b.bookingId, seen)
                if checked is not None:
                    out.append(checked)
        return out

    def check(self, booking_id: str, seen: dict[int, LockReport | None] | None = None) -> Booking | None:
        """Check every lock of one booking now and put the result on it; None when Nuki could not
        be asked about one of its locks (the check waits for a run that can), or no such booking."""
        seen = {} if seen is None else seen
        booking = self.store.get_booking(booking_id)
        if booking is None:
            return None
        for lock in booking.locks:
            if lock.desired == "present" and lock.smartlockId not in seen:
                seen[lock.smartlockId] = self._report(lock.smartlockId)
        reports = {lock_id: r for lock_id, r in seen.items() if r is not None}
        now = self.clock.now()
        if rules.assess(booking, reports, now) is None:
            return None
        changed: list[bool] = []

        def put(b: Booking) -> None:
            result = rules.assess(b, reports, now)
            if result is not None:
                changed.append(rules.apply(b, result))
                b.updatedAt = now if changed[-1] else b.updatedAt

        try:
            saved, _ = rewrite(self.store, booking_id, put, now)
        except KeyError:
            return None
        readiness = saved.readiness
        if readiness is not None and changed and changed[-1]:
            if readiness.status == "at_risk":
                self.metric("BookingAtRisk", 1)
                logger.warning(
                    "booking at risk before its arrival",
                    booking_id=booking_id,
                    reasons=[f"{r.smartlockId}:{r.code}" for r in readiness.reasons],
                )
            else:
                logger.info("booking ready for its arrival", booking_id=booking_id)
        return saved

    def _reports(self, lock_ids: set[int]) -> dict[int, LockReport | None]:
        """The run's locks from one `GET /smartlock` (every lock of the account) when it needs at
        least READINESS_LIST_MIN of them: a fleet's stays start at the same hour, so one run checks
        hundreds of locks, and one answer costs Nuki less than a call per lock (issue 17). A lock
        missing from the list, or the list refused (not merely unavailable), is read on its own (`_report`)."""
        if len(lock_ids) < READINESS_LIST_MIN:
            return {}
        try:
            listed = {lock.smartlock_id: lock for lock in self.nuki.list_smartlocks()}
        except nuki_errors.NukiAuthError as exc:
            if exc.status == 401:  # our token: counted and alarmed by the client's hook; no check now
                return dict.fromkeys(lock_ids)
            return {}
        except nuki_errors.NukiError as exc:
            logger.warning("readiness: the account's locks could not be listed", error=type(exc).__name__)
            # Nuki busy or down (429, 5xx, timeouts, after the client's retries): a call per lock now
            # would only add to it; the checks wait for the next run. Anything else: read each lock.
            return dict.fromkeys(lock_ids) if exc.retryable else {}
        now, out = self.clock.now(), dict[int, LockReport | None]()
        for lock_id in sorted(lock_ids & set(listed)):
            out[lock_id] = report = LockReport.of(listed[lock_id])
            self._record(report, now)
        return out

    def _report(self, smartlock_id: int) -> LockReport | None:
        """What Nuki says of the lock now (and recorded as its last known state); None when Nuki
        could not be asked."""
        try:
            report = LockReport.of(self.nuki.get_smartlock(smartlock_id))
        except nuki_errors.NukiNotFound as exc:
            report = LockReport.unknown(smartlock_id, f"Nuki: {exc.status}")
        except nuki_errors.NukiAuthError as exc:
            if exc.status == 401:  # our token, not the lock: counted and alarmed by the client's hook
                return None
            report = LockReport.unknown(smartlock_id, f"Nuki: {exc.status}")
        except nuki_errors.NukiError as exc:
            logger.warning("readiness: lock could not be read", smartlock_id=smartlock_id, error=type(exc).__name__)
            return None
        if report.found:
            self._record(report, self.clock.now())
        return report

    def _record(self, report: LockReport, at: datetime) -> None:
        fields = report.meta()
        lock_id = report.smartlock_id
        try:
            self.store.update_lock_state(
                lock_id, fields, lambda old: events.lock_events(lock_id, old, fields), stamp=("statusAt", at)
            )
        except Exception as exc:  # the readiness result does not depend on it
            logger.warning("lock state not recorded", smartlock_id=lock_id, error=type(exc).__name__)


__all__ = ["ReadinessChecks", "ReadinessRun"]
