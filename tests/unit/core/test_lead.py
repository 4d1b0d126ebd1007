"""When a booking's code belongs on its locks (staykey.core.lead): one rule for its creation and
every change, of the dates, of the room, or both. A change that puts the stay beyond the lead sends
the booking back to `scheduled`, its code comes off (its PIN stays reserved), and no look, webhook
or reconciler run turns it active before its lead. Seed 112: B112-9 moved to a room checking in
11.5 hours later stayed `active`, its code on the new room's locks."""

from __future__ import annotations

from datetime import timedelta

import pytest

from staykey.core import decide as d
from staykey.core.commands import Change, patch, rotate
from staykey.core.drift import Do, Drift, LockFacts, LockPlan, classify
from staykey.core.models import Booking, BookingStatus, LockStatus, Room
from staykey.core.round import CodeItem, Look
from tests.unit.core.test_decide import LOCKS, NOW, PIN, ctx, on_lock
from tests.unit.core.test_rotation import NEW, active

LEAD = timedelta(days=1)  # the lead of tests.unit.core.test_decide.booking
OTHER = Room(
    roomId="room-14",
    name="Room 14",
    smartlockIds=[17000002, LOCKS[1]],
    timezone="Europe/Berlin",
    checkInTime="23:00",
    createdAt=NOW,
    updatedAt=NOW,
)


def change(b: Booking, shift: timedelta, room: Room | None = None) -> Change:
    """The booking's stay `shift` later, in `room` (None: the same locks)."""
    locks = tuple(room.smartlockIds) if room else tuple(lk.smartlockId for lk in b.locks if lk.desired == "present")
    return Change(
        check_in=b.validFrom + shift,
        check_out=b.validUntil + shift,
        valid_from=b.validFrom + shift,
        valid_until=b.validUntil + shift,
        room=room,
        locks=locks,
        pin=b.pin,
        lead=LEAD,
        access=tuple((i, "keypad") for i in locks),
    )


AT = NOW + timedelta(minutes=1)
# An active stay that begins in 5 hours (NOW 09:00 UTC, the stay at 14:00; a lead of a day) moved by
# each of these: within the lead it stays active until its round sends the change; beyond, scheduled.
CASES = {
    "dates within the lead": (timedelta(hours=12), None, BookingStatus.ACTIVE),
    "dates beyond the lead": (timedelta(days=2), None, BookingStatus.SCHEDULED),
    "room, the same stay": (timedelta(0), OTHER, BookingStatus.ACTIVE),
    "room whose check-in time puts the stay beyond the lead": (timedelta(hours=21), OTHER, BookingStatus.SCHEDULED),
}


@pytest.mark.parametrize("case", list(CASES))
def test_one_rule_for_a_change_of_dates_room_or_both(case: str) -> None:
    shift, room, want = CASES[case]
    b = active()
    patch(b, change(b, shift, room), AT)
    assert b.status == want
    assert b.provisionAt == b.validFrom - LEAD


def test_a_booking_scheduled_again_takes_its_code_off_and_keeps_its_pin_reserved() -> None:
    b = active()
    patch(b, change(b, timedelta(days=2)), AT)
    plan = d.decide(b, {}, ctx(AT))
    assert sorted(lock_id for lock_id, _ in plan.deletes) == sorted(LOCKS)
    assert not plan.creates
    assert not plan.updates
    later = AT + timedelta(seconds=30)
    plan = d.decide(b, {lk: Look([], True, stamp=later) for lk in LOCKS}, ctx(later))
    assert b.status == BookingStatus.SCHEDULED
    assert [lk.status for lk in b.locks] == [LockStatus.REMOVED, LockStatus.REMOVED]
    assert [lk.desired for lk in b.locks] == ["present", "present"]
    assert plan.releases == []  # its PIN stays reserved on both locks
    assert not plan.email
    # Nothing more to do until the lead: no follow-up, no write
    assert plan.next_check_delay is None
    assert not d.decide(b, {}, ctx(later + timedelta(minutes=5))).writes()


def test_no_look_turns_a_scheduled_booking_active_its_code_seen_is_removed() -> None:
    b = active()
    patch(b, change(b, timedelta(days=2)), AT)
    d.decide(b, {}, ctx(AT), send=False)  # the change's round died before its deletes were sent
    later = AT + timedelta(seconds=5)
    # A webhook-like look showing the code as the booking now says (the new window): not a confirmation
    seen = {lk: Look([on_lock(b, lk, update_date=later)], False, stamp=later) for lk in LOCKS}
    plan = d.decide(b, seen, ctx(later))
    assert b.status == BookingStatus.SCHEDULED
    assert sorted(lock_id for lock_id, _ in plan.deletes) == sorted(LOCKS)
    assert not plan.email


def test_a_rotation_in_progress_takes_effect_when_the_booking_is_scheduled_again() -> None:
    b = active()
    rotate(b, NEW, AT)
    d.decide(b, {}, ctx(AT))  # the new codes are sent
    out = patch(b, change(b, timedelta(days=2)), AT + timedelta(seconds=1))
    assert (b.status, b.pin, b.rotation) == (BookingStatus.SCHEDULED, NEW, None)
    assert out.releases == []  # the old PIN is on the locks: freed once its code is gone
    assert {lk.desired for lk in b.rotationCodes} == {"absent"}
    plan = d.decide(b, {}, ctx(AT + timedelta(seconds=2)))
    assert sorted(lock_id for lock_id, _ in plan.deletes) == sorted(LOCKS)  # the old PIN's codes


def test_the_reconciler_has_a_scheduled_bookings_code_removed_not_left() -> None:
    b = active()
    patch(b, change(b, timedelta(days=2)), AT)
    lock_id = LOCKS[0]
    auths = [on_lock(b, lock_id, update_date=AT)]
    claims = [CodeItem(lock_id, PIN, "booking", "B-1", b.authName, None)]
    later = AT + timedelta(hours=1)
    plan = classify(LockPlan(lock_id, later, auths=auths), LockFacts(claims, {"B-1": b}), 200, 900)
    assert [(a.drift, a.do) for a in plan.actions] == [(Drift.NOT_DUE, Do.HEAL)]
