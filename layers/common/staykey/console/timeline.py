"""A booking's timeline, from every source that knows something about it, each step at its time.

A source is anything with `events(context) -> list[TimelineEvent]`. The sources:

* **the booking's events** (`staykey.store.history`: every `booking.<status>` and `booking.changed`
  event, kept with the instant of its change, written in the same transaction as the change): the
  changes (shop PATCH, a new PIN), the checkout (early or at the end of the stay), the cancellation,
  a failure and its reason, the code on every lock, the code gone from every lock;
* **the booking record**: created, first sent to Nuki, each lock's confirmation and removal (the
  times the sync engine keeps on each lock's state), the guest emailed, the first entry;
* **the guest's activity**: every entry and failed attempt at a keypad with the booking's code;
* **the audit log**: what operators did in the console.

Bookings written before their events were kept (and locks before their times were) still get a
timeline: a step whose time is not known has none (shown in its place in the booking's course),
and the status now closes it. Steps that two sources report (the same kind, lock, second and
detail) are shown once, the first source's. The console shows every time in the room's zone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from staykey.core.models import ActivityItem, Booking, BookingStatus, LockStatus
from staykey.services.audit import AuditEntry
from staykey.store import HistoryEntry

# Where a step goes among steps of the same instant (and an untimed step among the others).
ORDER = {
    "created": 0,
    "sent": 10,
    "changed": 15,
    "confirmed": 20,
    "active": 30,
    "emailed": 40,
    "first_entry": 50,
    "entry": 55,
    "failed_attempt": 55,
    "action": 60,
    "failed": 70,
    "checkout": 80,
    "cancelled": 80,
    "removed": 90,
    "revoked": 95,
    "status": 99,
}

# Kept booking events that are not a status: a change, and the readiness checks' findings.
NOT_STATUS = frozenset({"booking.changed", "booking.at_risk", "booking.ready", "booking.backup_assigned"})

# A status event's step: (kind, label). The label is an i18n key (console.i18n).
STATUS_STEPS = {
    "scheduled": ("status", "scheduled"),
    "provisioning": ("status", "putting the code on the locks"),
    "active": ("active", "code on every lock"),
    "failed": ("failed", "failed"),
    "revoking": ("checkout", "checkout"),
    "revoked": ("revoked", "code removed from every lock"),
    "cancelled": ("cancelled", "cancelled"),
}
CHECKOUT_LABELS = {"checked out early": "checked out early", "stay ended": "stay ended"}


@dataclass(frozen=True)
class TimelineEvent:
    at: datetime | None  # None: known to have happened, not when (placed by its kind's order)
    kind: str  # created, sent, changed, confirmed, active, emailed, first_entry, entry, ...
    label: str  # an i18n key (see console.i18n)
    smartlock_id: int | None = None
    detail: str = ""
    source: str = "booking"
    order: int = 0  # among events of the same instant, and where an untimed event goes

    def key(self) -> tuple[str, int | None, str, str]:
        return (
            self.kind,
            self.smartlock_id,
            self.at.replace(microsecond=0).isoformat() if self.at else "",
            self.detail,
        )


def step(at: datetime | None, kind: str, label: str, smartlock_id: int | None = None, **kw: str) -> TimelineEvent:
    return TimelineEvent(at, kind, label, smartlock_id, order=ORDER.get(kind, 50), **kw)


@dataclass
class TimelineContext:
    booking: Booking
    activity: Sequence[ActivityItem] = ()
    audit: Sequence[AuditEntry] = ()
    history: Sequence[HistoryEntry] = ()
    extra: dict[str, object] = field(default_factory=dict)

    def last(self, *types: str) -> HistoryEntry | None:
        """The latest kept event of one of `types`."""
        return next((h for h in reversed(self.history) if h.type in types), None)

    def first(self) -> HistoryEntry | None:
        """The booking's first event (its first status, at its creation), if it was kept: then
        its history is complete."""
        return next(
            (h for h in self.history if h.type not in NOT_STATUS and h.data.get("previousStatus") is None),
            None,
        )


class TimelineSource(Protocol):
    def events(self, ctx: TimelineContext) -> list[TimelineEvent]: ...


class BookingEvents:
    """The booking's kept events: its changes and the steps of its status."""

    def events(self, ctx: TimelineContext) -> list[TimelineEvent]:
        out = []
        for h in ctx.history:
            if h.type == "booking.changed":
                out.append(step(h.at, "changed", "changed", detail=_changes(h.data), source="events"))
                continue
            status = h.type.removeprefix("booking.")
            if status not in STATUS_STEPS or h.data.get("previousStatus") is None:
                continue  # the first status is the "created" step
            kind, label = STATUS_STEPS[status]
            # The reason is the failure's, or the ending's where the label does not say it already.
            reason = str(h.data.get("statusReason") or "") if status in ("failed", "revoking", "cancelled") else ""
            if status == "revoking":
                label = CHECKOUT_LABELS.get(reason, label)
                reason = "" if reason in CHECKOUT_LABELS else reason
            if reason == label:
                reason = ""
            out.append(step(h.at, kind, label, detail=reason, source="events"))
        return out


class BookingRecord:
    """What the booking item itself holds: created, first sent, each lock's confirmation and
    removal, emailed, first entry. For a booking created before its events were kept (its history
    does not start with its creation), what its locks did not record yet is shown as before: a
    lock's confirmation without a time, a removal at the end, and the status now."""

    def events(self, ctx: TimelineContext) -> list[TimelineEvent]:
        b = ctx.booking
        first = ctx.first()
        stay = f"{first.data.get('checkIn')} - {first.data.get('checkOut')}" if first else f"{b.checkIn} - {b.checkOut}"
        out = [step(b.createdAt, "created", "created", detail=stay)]
        sent = [lk.sentAt for lk in b.locks if lk.sentAt]
        if sent:
            out.append(step(min(sent), "sent", "sent to Nuki"))
        elif first is None and b.status not in (BookingStatus.SCHEDULED, BookingStatus.CANCELLED):
            out.append(step(_legacy_sent_at(ctx), "sent", "sent to Nuki"))
        for lock in b.locks:
            confirmed = sorted({at for at in (lock.firstConfirmedAt, lock.confirmedAt) if at is not None})
            for seen in confirmed:
                out.append(step(seen, "confirmed", "code confirmed on lock", lock.smartlockId))
            if not confirmed and first is None and lock.status == LockStatus.ACTIVE:
                out.append(step(None, "confirmed", "code confirmed on lock", lock.smartlockId))
            if lock.removedAt is not None:
                out.append(step(lock.removedAt, "removed", "code removed from lock", lock.smartlockId))
            elif first is None and lock.status == LockStatus.REMOVED:
                ended = ctx.last("booking.revoked", "booking.cancelled")
                gone = ended.at if ended else (b.updatedAt if b.status in _ENDED_FOR_GOOD else None)
                out.append(step(gone, "removed", "code removed from lock", lock.smartlockId))
            if lock.status == LockStatus.FAILED:
                failed = ctx.last("booking.failed")
                out.append(
                    step(failed.at if failed else None, "failed", "failed", lock.smartlockId, detail=lock.error or "")
                )
        if b.rotation is not None:
            out.append(step(b.rotation.requestedAt, "rotation", "PIN rotation requested"))
        if b.pinRotatedAt:
            out.append(step(b.pinRotatedAt, "rotation", "PIN rotated"))
        if b.emailSentAt:
            out.append(step(b.emailSentAt, "emailed", "guest emailed"))
        if b.firstEntryAt:
            out.append(step(b.firstEntryAt, "first_entry", "first entry"))
        if first is None:
            reason = f": {b.statusReason}" if b.statusReason else ""
            out.append(step(b.updatedAt, "status", "status now", detail=b.status.value + reason))
        return out


class ActivityEntries:
    def events(self, ctx: TimelineContext) -> list[TimelineEvent]:
        return [
            step(
                item.at,
                "entry" if item.success else "failed_attempt",
                "entry" if item.success else "failed attempt",
                item.smartlockId,
                detail=f"{item.action} ({item.trigger})",
                source="activity",
            )
            for item in ctx.activity
        ]


class AuditEntries:
    def events(self, ctx: TimelineContext) -> list[TimelineEvent]:
        return [
            step(
                entry.at,
                "action",
                "operator action",
                entry.smartlock_id,
                detail=f"{entry.action} by {entry.actor}: {entry.outcome}",
                source="audit",
            )
            for entry in ctx.audit
        ]


SOURCES: list[TimelineSource] = [BookingEvents(), BookingRecord(), ActivityEntries(), AuditEntries()]
_ENDED_FOR_GOOD = (BookingStatus.REVOKED, BookingStatus.CANCELLED)


def timeline(ctx: TimelineContext, sources: Sequence[TimelineSource] | None = None) -> list[TimelineEvent]:
    """Every source's steps, each once, in time order (at one instant, by kind); a step without a
    time goes before the first step of a later kind."""
    seen: set[tuple[str, int | None, str, str]] = set()
    events: list[TimelineEvent] = []
    for source in sources if sources is not None else SOURCES:
        for event in source.events(ctx):
            if event.key() in seen:
                continue
            seen.add(event.key())
            events.append(event)
    out = sorted((e for e in events if e.at is not None), key=_when)
    for event in sorted((e for e in events if e.at is None), key=lambda e: e.order):
        later = next((i for i, e in enumerate(out) if e.order > event.order), len(out))
        out.insert(later, event)
    return out


def _when(event: TimelineEvent) -> tuple[datetime, int]:
    """Time order to the millisecond (kept events keep milliseconds), then the order of kinds."""
    assert event.at is not None
    return event.at.replace(microsecond=event.at.microsecond // 1000 * 1000), event.order


def _legacy_sent_at(ctx: TimelineContext) -> datetime:
    """When a booking whose locks did not keep their first send went to Nuki: the write in flight,
    the start of provisioning (its kept event), or provisionAt."""
    b = ctx.booking
    sent = [lk.firstSentAt for lk in b.locks if lk.firstSentAt]
    if sent:
        return min(sent)
    started = ctx.last("booking.provisioning")
    if started is not None:
        return started.at
    return b.provisionAt if b.provisionAt > b.createdAt else b.createdAt


def _changes(data: dict[str, Any]) -> str:
    """`checkOut 2026-11-28 → 2026-11-27, PIN` from a booking.changed event's data (never a PIN)."""
    previous = data.get("previous")
    previous = previous if isinstance(previous, dict) else {}
    changes = [str(c) for c in data.get("changes") or []]
    parts = []
    for name in changes:
        if name == "pin":
            parts.append("PIN")
        elif name in ("validFrom", "validUntil") and ("checkIn" in changes or "checkOut" in changes):
            continue  # the stay points say it
        elif name == "smartlockIds":
            now = [lk.get("smartlockId") for lk in data.get("locks") or [] if isinstance(lk, dict)]
            parts.append(f"locks {_show(previous.get(name))} → {_show(now)}")
        else:
            parts.append(f"{name} {_show(previous.get(name))} → {_show(data.get(name))}")
    return ", ".join(parts)


def _show(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return "-" if value is None else str(value)
