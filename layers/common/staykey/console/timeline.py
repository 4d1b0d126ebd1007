"""A booking's timeline, from every source that knows something about it.

A source is anything with `events(context) -> list[TimelineEvent]`. Today's sources read what the
booking and its activity hold: the booking record (created, sent to Nuki, each lock's state,
emailed, first entry, the status now), the guest's activity entries, and the operators' audit
entries. A source of booking events (an event log) is added by putting it in `SOURCES`; events
that two sources report (the same kind, lock and second) are shown once, the first source's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from staykey.core.models import ActivityItem, Booking, BookingStatus, LockStatus
from staykey.services.audit import AuditEntry


@dataclass(frozen=True)
class TimelineEvent:
    at: datetime | None  # None: known to have happened, not when (sorted by the status's order)
    # created, sent, confirmed, rotation, emailed, first_entry, entry, failed_attempt, removed, status, action
    kind: str
    label: str  # an i18n key (see console.i18n)
    smartlock_id: int | None = None
    detail: str = ""
    source: str = "booking"
    order: int = 0  # among events without a time

    def key(self) -> tuple[str, int | None, str]:
        return (self.kind, self.smartlock_id, self.at.replace(microsecond=0).isoformat() if self.at else "")


@dataclass
class TimelineContext:
    booking: Booking
    activity: Sequence[ActivityItem] = ()
    audit: Sequence[AuditEntry] = ()
    extra: dict[str, object] = field(default_factory=dict)


class TimelineSource(Protocol):
    def events(self, ctx: TimelineContext) -> list[TimelineEvent]: ...


class BookingRecord:
    """What the booking item itself holds."""

    def events(self, ctx: TimelineContext) -> list[TimelineEvent]:
        b = ctx.booking
        out = [TimelineEvent(b.createdAt, "created", "created", detail=f"{b.checkIn} - {b.checkOut}")]
        if b.status != BookingStatus.SCHEDULED or any(lk.firstSentAt for lk in b.locks):
            sent = min((lk.firstSentAt for lk in b.locks if lk.firstSentAt), default=None)
            at = sent or (b.provisionAt if b.provisionAt > b.createdAt else b.createdAt)
            if b.status != BookingStatus.CANCELLED or sent:
                out.append(TimelineEvent(at, "sent", "sent to Nuki"))
        for n, lock in enumerate(b.locks):
            if lock.status == LockStatus.ACTIVE:
                out.append(TimelineEvent(None, "confirmed", "code confirmed on lock", lock.smartlockId, order=10 + n))
            if lock.status == LockStatus.REMOVED:
                ended = b.updatedAt if b.status in (BookingStatus.REVOKED, BookingStatus.CANCELLED) else None
                out.append(TimelineEvent(ended, "removed", "code removed from lock", lock.smartlockId, order=90 + n))
            if lock.status == LockStatus.FAILED:
                out.append(
                    TimelineEvent(None, "status", "failed", lock.smartlockId, detail=lock.error or "", order=80 + n)
                )
        if b.rotation is not None:
            out.append(TimelineEvent(b.rotation.requestedAt, "rotation", "PIN rotation requested"))
        if b.pinRotatedAt:
            out.append(TimelineEvent(b.pinRotatedAt, "rotation", "PIN rotated"))
        if b.emailSentAt:
            out.append(TimelineEvent(b.emailSentAt, "emailed", "guest emailed"))
        if b.firstEntryAt:
            out.append(TimelineEvent(b.firstEntryAt, "first_entry", "first entry"))
        out.append(
            TimelineEvent(
                b.updatedAt,
                "status",
                "status now",
                detail=b.status.value + (f": {b.statusReason}" if b.statusReason else ""),
            )
        )
        return out


class ActivityEntries:
    def events(self, ctx: TimelineContext) -> list[TimelineEvent]:
        return [
            TimelineEvent(
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
            TimelineEvent(
                entry.at,
                "action",
                "operator action",
                entry.smartlock_id,
                detail=f"{entry.action} by {entry.actor}: {entry.outcome}",
                source="audit",
            )
            for entry in ctx.audit
        ]


SOURCES: list[TimelineSource] = [BookingRecord(), ActivityEntries(), AuditEntries()]


def timeline(ctx: TimelineContext, sources: Sequence[TimelineSource] | None = None) -> list[TimelineEvent]:
    """Every source's events, each once, in time order (events without a time after the last
    timed event before them in the booking's course, by their `order`)."""
    seen: set[tuple[str, int | None, str]] = set()
    events: list[TimelineEvent] = []
    for source in sources if sources is not None else SOURCES:
        for event in source.events(ctx):
            if event.key() in seen:
                continue
            seen.add(event.key())
            events.append(event)
    timed = sorted((e for e in events if e.at is not None), key=lambda e: (e.at, e.order))
    untimed = sorted((e for e in events if e.at is None), key=lambda e: e.order)
    # Untimed confirmations go after "sent"; untimed removals and failures before "status now".
    out: list[TimelineEvent] = []
    for event in timed:
        if event.kind == "status" and event.label == "status now":
            out += [e for e in untimed if e.order >= 80 or (e.kind == "confirmed" and not _placed(out, e))]
            untimed = [e for e in untimed if e not in out]
        out.append(event)
        if event.kind == "sent":
            out += [e for e in untimed if e.kind == "confirmed"]
            untimed = [e for e in untimed if e.kind != "confirmed"]
    return out + untimed


def _placed(out: list[TimelineEvent], event: TimelineEvent) -> bool:
    return event in out
