"""The transactional outbox: every change a shop cares about is written with its event, in one
transaction; a save that fails writes no event; events carry ids and states, never a PIN or guest data.

Events are read here straight from the outbox items in the table (the dispatcher's input)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from staykey.core.models import BookingIn, BookingPatch, BookingStatus
from staykey.errors import ConcurrentModification
from staykey.events import model as events
from staykey.nuki import DeviceStatusWebhook, SmartlockState
from staykey.nuki import errors as ne
from staykey.services.activity import Activity
from staykey.store import CodeClaim, PinTaken, TxExtras
from tests.conftest import World
from tests.functional.activity.conftest import LOCK_A, LOCK_B, make_activity, stay
from tests.functional.activity.helpers import app_unlock, keypad_entry
from tests.functional.events.helpers import outbox, outbox_types

GUEST = {"name": "Ada Lovelace", "email": "ada@example.org", "locale": "en"}


def _book(world: World, booking_id: str = "B-1001", **changes: str) -> None:
    body = {"bookingId": booking_id, "roomId": "room-12", "guest": GUEST, "checkIn": "2026-11-27"}
    body["checkOut"] = "2026-11-29"
    body.update(changes)
    world.bookings.create(BookingIn.model_validate(body))


def test_a_guest_journey_writes_each_status_once_in_order_without_pin_or_guest_data(world: World) -> None:
    world.add_room()
    _book(world)
    world.settle()
    pin = world.bookings.get("B-1001").pin
    world.bookings.checkout("B-1001")
    world.settle()

    assert outbox_types(world, "B-1001") == [
        "booking.provisioning",
        "booking.active",
        "booking.revoking",
        "booking.revoked",
    ]
    items = outbox(world)
    bodies = [item["body"] for item in items]
    for body in bodies:
        assert pin not in body
        assert "Ada" not in body
        assert "ada@example.org" not in body
    active = next(json.loads(b) for b in bodies if '"booking.active"' in b)
    assert active["id"].startswith("evt_")
    assert active["data"]["bookingId"] == "B-1001"
    assert active["data"]["previousStatus"] == "provisioning"
    assert [lk["status"] for lk in active["data"]["locks"]] == ["active", "active"]
    assert len({json.loads(b)["id"] for b in bodies}) == len(bodies)


def test_a_booking_far_ahead_is_scheduled_and_a_changed_stay_is_booking_changed(world: World) -> None:
    world.add_room()
    _book(world, checkIn="2026-12-20", checkOut="2026-12-22")
    world.bookings.patch("B-1001", BookingPatch.model_validate({"checkOut": "2026-12-23"}))
    assert outbox_types(world, "B-1001") == ["booking.scheduled", "booking.changed"]
    changed = json.loads(outbox(world, "booking.changed")[0]["body"])["data"]
    assert changed["changes"] == ["checkOut", "validUntil"]
    assert changed["previous"] == {"checkOut": "2026-12-22", "validUntil": "2026-12-22T10:00:00Z"}
    assert changed["validUntil"] == "2026-12-23T10:00:00Z"


def test_a_failed_booking_carries_its_reason_and_a_cancellation_follows(world: World) -> None:
    world.add_room()
    world.nuki.fail("create_keypad_code", ne.NukiInvalidRequest("bad request", status=400))
    _book(world)
    world.settle()
    booking = world.bookings.get("B-1001")
    assert booking.status == BookingStatus.FAILED
    world.bookings.cancel("B-1001")
    assert outbox_types(world, "B-1001")[-2:] == ["booking.failed", "booking.cancelled"]
    failed = json.loads(outbox(world, "booking.failed")[0]["body"])["data"]
    assert failed["statusReason"] == booking.statusReason
    assert failed["statusReason"]


def test_a_save_that_fails_writes_no_event(world: World) -> None:
    world.add_room()
    _book(world, checkIn="2026-12-20", checkOut="2026-12-22")
    before = outbox(world)
    stale = world.store.get_booking("B-1001")
    fresh = world.store.get_booking("B-1001")
    assert stale is not None
    assert fresh is not None
    fresh.status = BookingStatus.CANCELLED
    world.store.save_booking(fresh)
    # A save based on an older read loses the optimistic lock: no booking change, no event.
    stale.status = BookingStatus.PROVISIONING
    with pytest.raises(ConcurrentModification):
        world.store.save_booking(stale)
    assert [i["eventType"] for i in outbox(world)] == [*(i["eventType"] for i in before), "booking.cancelled"]


def test_a_save_that_loses_a_pin_claim_writes_no_event(world: World) -> None:
    world.add_room()
    _book(world, booking_id="B-1", checkIn="2026-12-20", checkOut="2026-12-22")
    _book(world, booking_id="B-2", checkIn="2026-12-20", checkOut="2026-12-22")
    taken = world.bookings.get("B-1").pin
    booking = world.store.get_booking("B-2")
    assert booking is not None
    booking.status = BookingStatus.PROVISIONING
    # The transaction claims B-1's code on a shared lock: refused as a whole, event included.
    with pytest.raises(PinTaken):
        world.store.save_booking(booking, TxExtras(claims=[CodeClaim(LOCK_A, taken)]))
    assert outbox_types(world, "B-2") == ["booking.scheduled"]
    assert world.bookings.get("B-2").status == BookingStatus.SCHEDULED


def test_check_in_and_entries_are_written_with_the_activity_once(world: World) -> None:
    booking = stay(world)
    activity: Activity = make_activity(world)
    at = booking.validFrom + timedelta(hours=1)
    entry = keypad_entry(world.nuki, LOCK_A, at, booking.pin)
    assert activity.record(entry, via="webhook")
    assert not activity.record(entry, via="poll")  # the same entry again: no second event
    activity.record(keypad_entry(world.nuki, LOCK_B, at + timedelta(minutes=1), booking.pin), via="webhook")
    activity.record(keypad_entry(world.nuki, LOCK_A, at + timedelta(minutes=2), "111111"), via="webhook")
    activity.record(app_unlock(world.nuki, LOCK_A, at + timedelta(minutes=3)), via="webhook")

    assert outbox_types(world, "B-1001")[-3:] == ["guest.checked_in", "access.entry", "access.entry"]
    checked_in = json.loads(outbox(world, "guest.checked_in")[0]["body"])["data"]
    assert checked_in == {
        "bookingId": "B-1001",
        "smartlockId": LOCK_A,
        "firstEntryAt": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    lock_level = [json.loads(i["body"])["data"] for i in outbox(world, "access.entry") if i["pk"] == f"LOCK#{LOCK_A}"]
    # The wrong code and the host's app unlock are on the lock, without a booking.
    assert [(d["state"], d["trigger"], d["bookingId"]) for d in lock_level] == [
        ("invalid_code", "keypad", None),
        ("success", "app", None),
    ]
    for item in outbox(world):
        assert booking.pin not in item["body"]


def test_lock_state_transitions_are_events_and_repeats_are_not(world: World) -> None:
    activity = make_activity(world)

    def status(server_state: int, keypad_critical: bool = False) -> DeviceStatusWebhook:
        return DeviceStatusWebhook(
            feature="DEVICE_STATUS",
            smartlock_id=LOCK_A,
            server_state=server_state,
            state=SmartlockState(keypad_battery_critical=keypad_critical, battery_charge=40),
        )

    now = world.clock.now()
    activity.observe_status(status(0), now)
    activity.observe_status(status(4), now + timedelta(minutes=1))
    activity.observe_status(status(4), now + timedelta(minutes=2))
    activity.observe_status(status(0, keypad_critical=True), now + timedelta(minutes=3))
    activity.observe_status(status(0, keypad_critical=True), now + timedelta(minutes=4))
    # An older report delivered late changes nothing and says nothing.
    activity.observe_status(status(4), now + timedelta(seconds=30))
    assert outbox_types(world, f"LOCK#{LOCK_A}") == ["lock.offline", "lock.online", "lock.battery_critical"]
    battery = json.loads(outbox(world, "lock.battery_critical")[0]["body"])["data"]
    assert battery["becameCritical"] == ["keypad"]
    assert battery["critical"] == ["keypad"]


def test_the_capacity_warning_is_a_transition_of_the_reconcilers_count(world: World) -> None:
    store = world.store
    warn = 180

    def count(codes: int) -> None:
        fields = {"online": True, "codeCount": codes}
        store.update_lock_state(
            LOCK_A,
            fields,
            lambda old: events.lock_events(LOCK_A, old, fields, capacity_warning=warn, capacity_limit=200),
        )

    for codes in (150, 181, 190, 120, 185):
        count(codes)
    assert outbox_types(world, f"LOCK#{LOCK_A}") == ["lock.capacity_warning", "lock.capacity_warning"]
    assert store.get_lock_meta(LOCK_A)["codeCount"] == 185
