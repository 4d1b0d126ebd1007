"""The timeline's rules, with plain values: which step each kept event becomes, the order of steps
at one instant and of steps without a time, per-lock steps, and the words in German."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from staykey.console import i18n
from staykey.console.timeline import ORDER, STATUS_STEPS, TimelineContext, timeline
from staykey.core.models import Booking, LockState, LockStatus
from staykey.core.timeutil import format_local
from staykey.store import HistoryEntry

T0 = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)  # 00:30 CET on the night the clocks go forward


def _booking(**kw: object) -> Booking:
    base: dict[str, object] = {
        "bookingId": "B-1",
        "roomId": "room-12",
        "status": "revoked",
        "pin": "135790",
        "authName": "SK B-1",
        "validFrom": T0,
        "validUntil": T0 + timedelta(days=2),
        "checkIn": "2026-03-29",
        "checkOut": "2026-03-31",
        "timezone": "Europe/Berlin",
        "locks": [],
        "createdAt": T0,
        "updatedAt": T0 + timedelta(hours=5),
        "provisionAt": T0,
        "requestHash": "x",
    }
    return Booking.model_validate({**base, **kw})


def _event(minutes: int, type_: str, prior: str | None = "x", **data: object) -> HistoryEntry:
    return HistoryEntry(T0 + timedelta(minutes=minutes), type_, {"previousStatus": prior, **data}, f"evt_{minutes}")


def test_kept_events_become_steps_and_each_lock_its_own() -> None:
    door = LockState(
        smartlockId=1,
        status=LockStatus.REMOVED,
        sentAt=T0 + timedelta(seconds=1),
        firstConfirmedAt=T0 + timedelta(seconds=5),
        confirmedAt=T0 + timedelta(seconds=5),
        removedAt=T0 + timedelta(hours=4, seconds=3),
    )
    entrance = door.model_copy(
        update={
            "smartlockId": 2,
            "firstConfirmedAt": T0 + timedelta(seconds=9),
            "confirmedAt": T0 + timedelta(hours=2, seconds=9),  # again, after the change
            "removedAt": T0 + timedelta(hours=4, seconds=3),
        }
    )
    b = _booking(locks=[door, entrance], emailSentAt=T0 + timedelta(seconds=10), firstEntryAt=T0 + timedelta(hours=1))
    history = [
        _event(0, "booking.provisioning", None, checkIn="2026-03-29", checkOut="2026-03-30"),
        _event(0, "booking.active", statusReason=None),
        _event(
            120,
            "booking.changed",
            changes=["checkOut", "validUntil"],
            previous={"checkOut": "2026-03-30"},
            checkOut="2026-03-31",
        ),
        _event(120, "booking.changed", changes=["pin"], previous={}),
        _event(240, "booking.revoking", statusReason="checked out early"),
        _event(240, "booking.revoked", statusReason="checked out early"),
    ]
    history[1] = HistoryEntry(T0 + timedelta(seconds=9), "booking.active", {"previousStatus": "provisioning"}, "e1")
    history[-1] = HistoryEntry(
        T0 + timedelta(hours=4, seconds=3), "booking.revoked", {"previousStatus": "revoking"}, "e9"
    )
    events = timeline(TimelineContext(b, history=history))
    rows = [(e.kind, e.smartlock_id, e.label) for e in events]
    assert rows == [
        ("created", None, "created"),
        ("sent", None, "sent to Nuki"),
        ("confirmed", 1, "code confirmed on lock"),
        ("confirmed", 2, "code confirmed on lock"),
        ("active", None, "code on every lock"),
        ("emailed", None, "guest emailed"),
        ("first_entry", None, "first entry"),
        ("changed", None, "changed"),
        ("changed", None, "changed"),
        ("confirmed", 2, "code confirmed on lock"),
        ("checkout", None, "checked out early"),
        ("removed", 1, "code removed from lock"),
        ("removed", 2, "code removed from lock"),
        ("revoked", None, "code removed from every lock"),
    ]
    assert events[0].detail == "2026-03-29 - 2026-03-30"  # the stay as it was booked
    assert [e.detail for e in events if e.kind == "changed"] == ["checkOut 2026-03-30 → 2026-03-31", "PIN"]
    assert events[10].detail == ""  # the label says it
    # Times in the room's zone: before and after the clocks went forward.
    assert format_local(events[2].at, "Europe/Berlin") == "Sun 29 Mar 2026, 00:30 (Europe/Berlin, CET)"  # type: ignore[arg-type]
    assert format_local(events[-1].at, "Europe/Berlin") == "Sun 29 Mar 2026, 05:30 (Europe/Berlin, CEST)"  # type: ignore[arg-type]


def test_steps_without_a_time_go_where_their_kind_does() -> None:
    b = _booking(
        status="active",
        locks=[LockState(smartlockId=1, status=LockStatus.ACTIVE), LockState(smartlockId=2, status=LockStatus.ACTIVE)],
        emailSentAt=T0 + timedelta(hours=1),
        updatedAt=T0 + timedelta(hours=1),
    )
    events = timeline(TimelineContext(b))  # nothing kept: a booking from before
    assert [(e.kind, e.at is None) for e in events] == [
        ("created", False),
        ("sent", False),
        ("confirmed", True),
        ("confirmed", True),
        ("emailed", False),
        ("status", False),
    ]
    assert events[-1].label == "status now"


def test_a_failed_lock_says_why_at_the_failure() -> None:
    lock = LockState(smartlockId=1, status=LockStatus.FAILED, sentAt=T0, error="the lock refused the code: full")
    b = _booking(status="failed", statusReason="a lock refused the code", locks=[lock])
    history = [
        _event(0, "booking.provisioning", None),
        _event(3, "booking.failed", statusReason="a lock refused the code"),
    ]
    events = timeline(TimelineContext(b, history=history))
    failed = [e for e in events if e.kind == "failed"]
    assert [(e.smartlock_id, e.detail, e.at) for e in failed] == [
        (None, "a lock refused the code", T0 + timedelta(minutes=3)),
        (1, "the lock refused the code: full", T0 + timedelta(minutes=3)),
    ]


def test_every_timeline_word_has_a_german_translation() -> None:
    labels = {label for _, label in STATUS_STEPS.values()} | {"checked out early", "stay ended"}
    labels |= {
        "created",
        "sent to Nuki",
        "code confirmed on lock",
        "code removed from lock",
        "guest emailed",
        "first entry",
        "entry",
        "failed attempt",
        "operator action",
        "status now",
        "changed",
    }
    assert sorted(label for label in labels if label not in i18n.DE) == []
    assert set(ORDER) >= {kind for kind, _ in STATUS_STEPS.values()}
