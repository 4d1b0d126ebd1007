"""A change that puts a booking's stay beyond its provisioning lead sends it back to `scheduled`: its
code comes off the locks (its PIN stays reserved there) and goes on again at its lead, when the
guest is told the new stay, as for a booking made that far ahead. One rule (`core.lead`) for a
change of the dates, of the room (whose check-in time moves the stay), or both: the simulator's
seed 112 had B112-9 moved from a room checking in at 01:30 to one checking in at 13:00 three days
ahead, and it stayed `active`, its code on the new room's locks 11.5 hours before its lead."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import boto3
import pytest

from staykey.adapters.schedules import schedule_name
from staykey.core.models import Booking, BookingIn, BookingPatch, BookingStatus, RoomIn
from tests.conftest import World

A, B, C = 17000001, 17000099, 17000002
LEAD_CAME = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)  # 72 h before the stay's 15:00 CET


def _active(world: World) -> Booking:
    """B-1001 in room-12 (A, B) from 2026-11-29, provisioned at its lead and confirmed; room-2 (C)
    checks in at 20:00."""
    world.add_room(locks=(A, B))
    world.rooms.put(
        "room-2",
        RoomIn.model_validate({"name": "R2", "smartlockIds": [C], "timezone": "Europe/Berlin", "checkInTime": "20:00"}),
    )
    body = {
        "bookingId": "B-1001",
        "roomId": "room-12",
        "guest": {"name": "Ada Lovelace", "email": "ada@example.org", "locale": "en"},
        "checkIn": "2026-11-29",
        "checkOut": "2026-12-01",
    }
    b, _ = world.bookings.create(BookingIn.model_validate(body))
    assert b.status == BookingStatus.SCHEDULED
    world.clock.set(LEAD_CAME)
    world.bookings.start_provisioning("B-1001")
    world.settle()
    b = world.bookings.get("B-1001")
    assert b.status == BookingStatus.ACTIVE
    assert int(b.pin) in world.nuki.codes(A)
    assert len(world.mail.sent) == 1
    return b


def _provision_schedule(booking_id: str) -> str:
    client = boto3.client("scheduler")
    name = schedule_name("provision", booking_id)
    return str(client.get_schedule(Name=name, GroupName=os.environ["SCHEDULE_GROUP_NAME"])["ScheduleExpression"])


CHANGES = {
    "dates": ({"checkIn": "2026-12-03", "checkOut": "2026-12-05"}, (A, B), "2026-11-30T14:00:00"),
    "room": ({"roomId": "room-2"}, (C,), "2026-11-26T19:00:00"),
    "room and dates": (
        {"roomId": "room-2", "checkIn": "2026-12-03", "checkOut": "2026-12-05"},
        (C,),
        "2026-11-30T19:00:00",
    ),
}


@pytest.mark.parametrize("kind", list(CHANGES))
def test_an_active_booking_whose_stay_moves_beyond_the_lead_is_scheduled_again(world: World, kind: str) -> None:
    change, locks, lead = CHANGES[kind]
    before = _active(world)
    world.clock.advance(seconds=600)
    answer = world.bookings.patch("B-1001", BookingPatch.model_validate(change))
    assert answer.status == BookingStatus.SCHEDULED
    assert answer.provisionAt.isoformat() == lead + "+00:00"
    world.settle()
    b = world.bookings.get("B-1001")
    assert b.status == BookingStatus.SCHEDULED
    assert b.pin == before.pin
    # Gone from every lock, the old room's and the new one's: a stay that far ahead takes no slot.
    assert {lock_id: world.nuki.codes(lock_id) for lock_id in (A, B, C)} == {A: {}, B: {}, C: {}}
    # Its PIN stays reserved on the locks it will use, and only there.
    for lock_id in (A, B, C):
        held = [(c.pin, c.booking_id) for c in world.store.codes_on_lock(lock_id)]
        assert held == ([(b.pin, "B-1001")] if lock_id in locks else [])
    assert _provision_schedule("B-1001") == f"at({lead})"
    assert len(world.mail.sent) == 1  # nothing new on the locks: nothing new to tell yet
    # Its lead comes: the code goes on the room's locks with the new stay, and the guest is told.
    world.clock.set(b.provisionAt)
    world.bookings.start_provisioning("B-1001")
    world.settle()
    b = world.bookings.get("B-1001")
    assert b.status == BookingStatus.ACTIVE
    assert {lock_id for lock_id in (A, B, C) if int(b.pin) in world.nuki.codes(lock_id)} == set(locks)
    assert [n.updated for n in world.mail.sent] == [False, True]


def test_a_change_within_the_lead_keeps_the_code_on_the_locks(world: World) -> None:
    _active(world)
    answer = world.bookings.patch("B-1001", BookingPatch.model_validate({"checkOut": "2026-12-03"}))
    assert answer.status == BookingStatus.PROVISIONING
    world.settle()
    b = world.bookings.get("B-1001")
    assert b.status == BookingStatus.ACTIVE
    assert int(b.pin) in world.nuki.codes(A)


def test_a_rotation_in_progress_takes_effect_when_the_stay_moves_beyond_the_lead(world: World) -> None:
    before = _active(world)
    rotating = world.bookings.rotate_pin("B-1001")
    assert rotating.rotation is not None
    new_pin = rotating.rotation.pin
    world.nuki.apply()  # the new codes land beside the old ones, not confirmed yet
    answer = world.bookings.patch(
        "B-1001", BookingPatch.model_validate({"checkIn": "2026-12-03", "checkOut": "2026-12-05"})
    )
    assert answer.status == BookingStatus.SCHEDULED
    assert answer.rotation is None
    assert answer.pin == new_pin
    world.settle()
    b = world.bookings.get("B-1001")
    assert (b.status, b.pin, b.rotationCodes) == (BookingStatus.SCHEDULED, new_pin, [])
    assert world.nuki.codes(A) == {}
    assert world.nuki.codes(B) == {}
    for lock_id in (A, B):  # the new PIN reserved, the old one free again
        assert [(c.pin, c.booking_id) for c in world.store.codes_on_lock(lock_id)] == [(new_pin, "B-1001")]
    assert before.pin != new_pin
    world.clock.set(b.provisionAt)
    world.bookings.start_provisioning("B-1001")
    world.settle()
    b = world.bookings.get("B-1001")
    assert b.status == BookingStatus.ACTIVE
    assert list(world.nuki.codes(A)) == [int(new_pin)]


def test_a_booking_scheduled_again_and_then_cancelled_frees_its_pin(world: World) -> None:
    _active(world)
    world.bookings.patch("B-1001", BookingPatch.model_validate({"checkIn": "2026-12-03", "checkOut": "2026-12-05"}))
    world.settle()
    world.bookings.cancel("B-1001")
    world.settle()
    assert world.bookings.get("B-1001").status == BookingStatus.CANCELLED
    assert world.store.codes_on_lock(A) == []
    assert world.store.codes_on_lock(B) == []
