"""Readiness, pure: what Nuki reports of each lock in, `ok` or `at_risk` with reasons out; when a
check is due (48 and 4 hours before validFrom by default, and at every run while at risk)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from staykey.core import readiness as r
from staykey.core.commands import new_booking
from staykey.core.models import Booking, BookingIn, BookingStatus, Readiness, Room
from staykey.events.model import booking_events, booking_snapshot
from staykey.settings import load_settings

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
DOOR, ENTRANCE = 17000001, 17000099
OFFSETS = load_settings().readiness_offsets


def booking(start: datetime) -> Booking:
    room = Room(
        roomId="room-12",
        name="Room 12",
        smartlockIds=[DOOR, ENTRANCE],
        timezone="Europe/Berlin",
        access={str(DOOR): "app"},
        createdAt=NOW,
        updatedAt=NOW,
    )
    request = BookingIn.model_validate(
        {
            "bookingId": "B-1",
            "roomId": "room-12",
            "guest": {"name": "Ada", "email": "ada@example.org"},
            "checkIn": start.isoformat(),
            "checkOut": (start + timedelta(days=2)).isoformat(),
        }
    )
    return new_booking(request, room, (start, start + timedelta(days=2)), "482917", 0, timedelta(hours=72), NOW)


def fine(lock_id: int) -> r.LockReport:
    return r.LockReport(smartlock_id=lock_id, keypad_paired=lock_id == ENTRANCE, subscription="ACTIVE")


def test_the_default_offsets_are_48_and_4_hours() -> None:
    assert [timedelta(hours=48), timedelta(hours=4)] == OFFSETS


@pytest.mark.parametrize(
    ("lock_id", "report", "code"),
    [
        (DOOR, {"server_state": 4}, "offline"),
        (DOOR, {"server_state": 2}, "not_registered"),
        (DOOR, {"battery_critical": True, "battery_charge": 9}, "battery_critical"),
        (ENTRANCE, {"keypad_paired": False}, "no_keypad"),
        (ENTRANCE, {"keypad_battery_critical": True}, "keypad_battery_critical"),
        (ENTRANCE, {"subscription": "EXPIRED"}, "subscription"),
        (DOOR, {"found": False, "detail": "Nuki: 404"}, "unknown_lock"),
    ],
)
def test_each_finding_names_the_lock_and_the_reason(lock_id: int, report: dict[str, object], code: str) -> None:
    b = booking(NOW + timedelta(days=1))
    reports = {DOOR: fine(DOOR), ENTRANCE: fine(ENTRANCE)}
    reports[lock_id] = dataclasses.replace(fine(lock_id), **report)  # type: ignore[arg-type]
    result = r.assess(b, reports, NOW)
    assert result is not None
    assert result.status == "at_risk"
    assert [(x.smartlockId, x.code) for x in result.reasons] == [(lock_id, code)]
    assert f"lock {lock_id}" in result.reasons[0].message


def test_an_app_lock_needs_no_keypad_and_ignores_the_keypad_battery() -> None:
    b = booking(NOW + timedelta(days=1))
    door = r.LockReport(smartlock_id=DOOR, keypad_paired=False, keypad_battery_critical=True)
    result = r.assess(b, {DOOR: door, ENTRANCE: fine(ENTRANCE)}, NOW)
    assert result is not None
    assert (result.status, result.reasons) == ("ok", [])


def test_a_lock_nuki_could_not_be_asked_about_leaves_the_check_for_later() -> None:
    assert r.assess(booking(NOW + timedelta(days=1)), {DOOR: fine(DOOR)}, NOW) is None


def test_checks_fall_due_at_48_and_4_hours_once_each_and_at_every_run_while_at_risk() -> None:
    start = NOW + timedelta(days=3)
    b = booking(start)
    b.status = BookingStatus.SCHEDULED
    assert not r.due(b, start - timedelta(hours=49), OFFSETS)
    assert r.due(b, start - timedelta(hours=48), OFFSETS)
    b.readiness = Readiness(status="ok", checkedAt=start - timedelta(hours=47, minutes=50))
    assert not r.due(b, start - timedelta(hours=20), OFFSETS)
    assert r.due(b, start - timedelta(hours=3, minutes=55), OFFSETS)
    b.readiness = Readiness(status="ok", checkedAt=start - timedelta(hours=3, minutes=50))
    assert not r.due(b, start - timedelta(hours=1), OFFSETS)
    b.readiness = Readiness(status="at_risk", checkedAt=start - timedelta(hours=3, minutes=50))
    assert r.due(b, start - timedelta(hours=1), OFFSETS)
    assert r.due(b, start + timedelta(hours=1), OFFSETS)  # in the stay: until the cause is gone
    assert not r.due(b, start + timedelta(days=2), OFFSETS)  # the stay is over
    b.status = BookingStatus.CANCELLED
    assert not r.due(b, start - timedelta(hours=1), OFFSETS)


def test_a_booking_created_within_48_hours_is_checked_at_once() -> None:
    start = NOW + timedelta(hours=30)
    assert r.due(booking(start), NOW, OFFSETS)


def test_turning_at_risk_and_back_is_an_event_each() -> None:
    b = booking(NOW + timedelta(days=1))
    ok = r.assess(b, {DOOR: fine(DOOR), ENTRANCE: fine(ENTRANCE)}, NOW)
    assert ok is not None
    before = booking_snapshot(b)
    assert r.apply(b, ok)
    assert booking_events(before, b) == []  # checked and fine: nothing to say
    before = booking_snapshot(b)
    risky = r.assess(b, {DOOR: r.LockReport(smartlock_id=DOOR, server_state=4), ENTRANCE: fine(ENTRANCE)}, NOW)
    assert risky is not None
    assert r.apply(b, risky)
    events = booking_events(before, b)
    assert [e.type for e in events] == ["booking.at_risk"]
    assert events[0].data["readiness"]["reasons"][0]["code"] == "offline"
    # The same finding again changes nothing; its cause gone, the booking is ready again
    before = booking_snapshot(b)
    assert not r.apply(b, risky)
    assert booking_events(before, b) == []
    assert r.apply(b, ok)
    assert [e.type for e in booking_events(before, b)] == ["booking.ready"]


def test_a_change_to_other_locks_or_another_arrival_makes_the_check_due_again() -> None:
    """Found by the simulator (seed 4 of `python -m local.sim --stays 400`): a booking checked ok,
    then moved to a room with an offline lock, stayed ok until its next offset (or its arrival)."""
    from staykey.core.commands import Change, patch

    start = NOW + timedelta(hours=10)
    b = booking(start)
    b.status = BookingStatus.SCHEDULED
    checked = start - timedelta(hours=3, minutes=50)
    b.readiness = Readiness(status="ok", checkedAt=checked)
    at = start - timedelta(hours=2)
    assert not r.due(b, at, OFFSETS)

    def change(locks: tuple[int, ...], valid_from: datetime) -> Change:
        return Change(
            check_in=start,
            check_out=start + timedelta(days=2),
            valid_from=valid_from,
            valid_until=b.validUntil,
            room=None,
            locks=locks,
            pin=b.pin,
            lead=timedelta(hours=72),
            access=((DOOR, "app"), (ENTRANCE, "keypad"), (17000003, "keypad")),
        )

    patch(b, change((DOOR, ENTRANCE), b.validFrom), at)  # the same locks and arrival: still checked
    assert b.readiness is not None
    patch(b, change((DOOR, ENTRANCE, 17000003), b.validFrom), at)  # a lock more
    assert b.readiness is None
    assert r.due(b, at, OFFSETS)
    b.readiness = Readiness(status="ok", checkedAt=at)
    patch(b, change((DOOR, ENTRANCE, 17000003), b.validFrom - timedelta(hours=1)), at)  # arriving earlier
    assert b.readiness is None


@pytest.mark.parametrize(
    ("subscription", "ends", "finding"),
    [
        # cancelled at the end of its term, which comes before the stay ends (or before it begins)
        ("PENDING_CANCEL", NOW + timedelta(days=2), "before the stay ends"),
        ("PENDING_CANCEL", NOW + timedelta(hours=2), "before the stay ends"),
        ("PENDING_CANCEL", None, "which Nuki does not say"),
        ("ACTIVE", NOW - timedelta(hours=1), "expired at"),
        ("", None, "without a state"),
    ],
)
def test_a_subscription_that_ends_before_the_stay_or_has_no_state_is_a_finding(
    subscription: str, ends: datetime | None, finding: str
) -> None:
    """Issue 15, defect 6: readiness read only the subscription's state, so a PENDING_CANCEL one
    expiring before or during the stay, and one that reported no state, were `ok`."""
    b = booking(NOW + timedelta(days=1))  # the stay ends at NOW + 3 days
    door = dataclasses.replace(fine(DOOR), subscription=subscription, subscription_ends=ends)
    result = r.assess(b, {DOOR: door, ENTRANCE: fine(ENTRANCE)}, NOW)
    assert result is not None
    assert result.status == "at_risk"
    assert [(x.smartlockId, x.code) for x in result.reasons] == [(DOOR, "subscription")]
    assert finding in result.reasons[0].message


@pytest.mark.parametrize(
    ("subscription", "ends"),
    [
        ("PENDING_CANCEL", NOW + timedelta(days=4)),  # runs until after the stay
        ("ACTIVE", NOW + timedelta(days=2)),  # renews
        ("ACTIVE", None),
        (None, None),  # none reported: taken, as when the room was set up
    ],
)
def test_a_subscription_in_force_for_the_whole_stay_is_no_finding(
    subscription: str | None, ends: datetime | None
) -> None:
    b = booking(NOW + timedelta(days=1))
    door = dataclasses.replace(fine(DOOR), subscription=subscription, subscription_ends=ends)
    result = r.assess(b, {DOOR: door, ENTRANCE: fine(ENTRANCE)}, NOW)
    assert result is not None
    assert (result.status, result.reasons) == ("ok", [])


def test_a_lock_report_keeps_the_subscription_s_end_and_a_missing_state() -> None:
    from staykey.nuki import Smartlock

    def lock(subscription: dict[str, object] | None) -> Smartlock:
        body: dict[str, object] = {
            "smartlockId": DOOR,
            "accountId": 1,
            "type": 4,
            "authId": 1,
            "name": "Door",
            "favorite": False,
            "serverState": 0,
            "adminPinState": 0,
        }
        if subscription is not None:
            body["currentSubscription"] = subscription
        return Smartlock.model_validate(body)

    ends = "2026-12-02T09:00:00.000Z"
    report = r.LockReport.of(lock({"state": "PENDING_CANCEL", "expirationDate": ends}))
    assert (report.subscription, report.subscription_ends) == ("PENDING_CANCEL", datetime(2026, 12, 2, 9, tzinfo=UTC))
    assert r.LockReport.of(lock({"type": "B2B"})).subscription == ""
    assert r.LockReport.of(lock({"type": "B2B"})).meta()["subscription"] == "unknown"
    assert r.LockReport.of(lock(None)).subscription is None


def test_a_change_of_the_stay_s_end_makes_the_check_due_again() -> None:
    """Found by the simulator (seeds 7 and 12): a booking checked ok whose check-out moved (a
    subscription may end before the new end) kept its old `ok` until its arrival, while a lock's
    subscription had lapsed since the last check."""
    from staykey.core.commands import Change, patch

    start = NOW + timedelta(hours=10)
    b = booking(start)
    b.status = BookingStatus.SCHEDULED
    at = start - timedelta(hours=2)
    b.readiness = Readiness(status="ok", checkedAt=start - timedelta(hours=3, minutes=50))
    later = b.validUntil + timedelta(days=1)
    change = Change(
        check_in=start,
        check_out=later,
        valid_from=b.validFrom,
        valid_until=later,
        room=None,
        locks=(DOOR, ENTRANCE),
        pin=b.pin,
        lead=timedelta(hours=72),
        access=((DOOR, "app"), (ENTRANCE, "keypad")),
    )
    patch(b, change, at)
    assert b.readiness is None
    assert r.due(b, at, OFFSETS)
