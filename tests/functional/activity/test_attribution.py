"""DEVICE_LOGS webhooks: each entry stored once, under the booking whose code was used or under its
lock, and the guest's first successful keypad entry recorded as the booking's check-in."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from staykey.core.models import BookingStatus
from tests.conftest import World, load_event
from tests.functional.activity.conftest import LOCK_A, LOCK_B, STAY_START, Pipeline, stay
from tests.functional.activity.helpers import app_unlock, keypad_entry, logs_body, webhook_event


def test_a_guest_entry_is_attributed_to_the_booking_and_checks_the_guest_in(pipeline: Pipeline, world: World) -> None:
    # Given an active booking on two locks
    booking = stay(world)
    # When the guest types the PIN on the keypad of the room door and Nuki posts the log entry
    entry = keypad_entry(world.nuki, LOCK_A, STAY_START + timedelta(minutes=3, seconds=11), booking.pin)
    pipeline.deliver(logs_body(entry))
    # Then the booking's activity shows it, with readable names
    assert pipeline.booking_activity() == [
        {
            "id": entry.id,
            "at": "2026-11-27T14:03:11Z",
            "smartlockId": LOCK_A,
            "action": "unlock",
            "trigger": "keypad",
            "source": "keypad_code",
            "success": True,
            "state": "success",
        }
    ]
    # And the booking records the check-in
    assert world.bookings.get("B-1001").to_api()["firstEntryAt"] == "2026-11-27T14:03:11Z"
    # And nothing of it lands on the lock's own activity
    assert pipeline.lock_activity(LOCK_A) == []


@pytest.mark.parametrize("ref", ["id", "authId"])
def test_entries_are_attributed_by_either_of_nukis_auth_ids(pipeline: Pipeline, world: World, ref: str) -> None:
    # Given the log carries the auth's 24-hex id, or its numeric authId (Nuki does not say which)
    booking = stay(world)
    entry = keypad_entry(world.nuki, LOCK_B, STAY_START, booking.pin, ref=ref)  # type: ignore[arg-type]
    # When it is delivered, it is the booking's either way
    pipeline.deliver(logs_body(entry))
    assert [item["id"] for item in pipeline.booking_activity()] == [entry.id]
    assert pipeline.log_items()[0]["attributedBy"] == "authId"


def test_without_a_known_auth_id_the_unique_auth_name_attributes_the_entry(pipeline: Pipeline, world: World) -> None:
    # Given the recorded sample: an entry by "SK B-1001" whose auth id we never saw
    stay(world)
    event = load_event("nuki_webhook_device_logs.json")
    assert json.loads(event["body"])["smartlockLog"]["name"] == "SK B-1001"
    # When it is delivered
    pipeline.deliver(event["body"])
    # Then the name attributes it to B-1001, and it is its check-in
    items = pipeline.booking_activity()
    assert [item["id"] for item in items] == ["6751c2e4a8b0f21d3c9e4a17"]
    assert pipeline.log_items()[0]["attributedBy"] == "name"
    assert world.bookings.get("B-1001").to_api()["firstEntryAt"] == "2026-12-01T14:03:11Z"


def test_our_name_on_a_lock_that_is_not_the_bookings_is_not_the_guests(pipeline: Pipeline, world: World) -> None:
    # Given B-1001 on lock A only, and an entry on lock 17000002 under the name "SK B-1001"
    stay(world, locks=(LOCK_A,))
    body = load_event("nuki_webhook_device_logs.json")["body"].replace(str(LOCK_A), "17000002")
    pipeline.deliver(body)
    # Then it is kept, but not as the guest's
    assert pipeline.booking_activity() == []
    assert world.bookings.get("B-1001").firstEntryAt is None
    assert pipeline.log_items()[0]["gsi1pk"] == "ACT#LOCK#17000002"


def test_the_same_delivery_twice_is_stored_once(pipeline: Pipeline, world: World) -> None:
    booking = stay(world)
    entry = keypad_entry(world.nuki, LOCK_A, STAY_START, booking.pin)
    # When Nuki delivers the same entry twice (and once more after processing)
    pipeline.deliver(logs_body(entry), logs_body(entry))
    pipeline.deliver(logs_body(entry))
    # Then there is one item and one activity entry
    assert len(pipeline.log_items()) == 1
    assert len(pipeline.booking_activity()) == 1


def test_out_of_order_deliveries_give_the_earliest_entry_as_first_entry(pipeline: Pipeline, world: World) -> None:
    booking = stay(world)
    first = keypad_entry(world.nuki, LOCK_B, STAY_START + timedelta(minutes=5), booking.pin)
    second = keypad_entry(world.nuki, LOCK_A, STAY_START + timedelta(minutes=7), booking.pin)
    evening = keypad_entry(world.nuki, LOCK_A, STAY_START + timedelta(hours=6), booking.pin)
    # When the later entries arrive first
    pipeline.deliver(logs_body(evening))
    assert world.bookings.get("B-1001").to_api()["firstEntryAt"] == "2026-11-27T20:00:00Z"
    pipeline.deliver(logs_body(second), logs_body(first))
    # Then firstEntryAt is the earliest entry, whatever the order
    assert world.bookings.get("B-1001").to_api()["firstEntryAt"] == "2026-11-27T14:05:00Z"
    # And a late repeat of a later one does not move it
    pipeline.deliver(logs_body(evening), logs_body(second))
    assert world.bookings.get("B-1001").to_api()["firstEntryAt"] == "2026-11-27T14:05:00Z"
    # And the activity is newest first
    assert [item["id"] for item in pipeline.booking_activity()] == [evening.id, second.id, first.id]


def test_first_entry_is_kept_when_the_lifecycle_saves_the_booking_afterwards(pipeline: Pipeline, world: World) -> None:
    booking = stay(world)
    pipeline.deliver(logs_body(keypad_entry(world.nuki, LOCK_A, STAY_START, booking.pin)))
    # When the lifecycle changes the booking (early checkout) after the check-in was recorded
    world.bookings.checkout("B-1001")
    world.settle()
    # Then the check-in is still there
    ended = world.bookings.get("B-1001")
    assert ended.status == BookingStatus.REVOKED
    assert ended.to_api()["firstEntryAt"] == "2026-11-27T14:00:00Z"


def test_a_lifecycle_save_racing_with_the_check_in_retries_instead_of_overwriting_it(
    pipeline: Pipeline, world: World
) -> None:
    booking = stay(world)
    entry = keypad_entry(world.nuki, LOCK_A, STAY_START, booking.pin)
    delivered = []

    def change(b: object) -> None:
        # The check-in lands between the lifecycle's read and its write (first attempt only)
        if not delivered:
            delivered.append(True)
            pipeline.deliver(logs_body(entry))

    # When the lifecycle's optimistic update races with the webhook
    saved = world.store.update_booking("B-1001", change)  # type: ignore[arg-type]
    # Then its first write lost the race, it re-read, and firstEntryAt survived
    assert saved.to_api()["firstEntryAt"] == "2026-11-27T14:00:00Z"
    assert world.bookings.get("B-1001").to_api()["firstEntryAt"] == "2026-11-27T14:00:00Z"


def test_an_entry_by_someone_elses_code_lands_on_the_lock_not_on_a_booking(pipeline: Pipeline, world: World) -> None:
    # Given the cleaner's own code on the room door, next to the guest's
    stay(world)
    world.nuki.add_foreign(LOCK_A, 734926, name="Cleaner")
    # When the cleaner opens the door
    entry = keypad_entry(world.nuki, LOCK_A, STAY_START + timedelta(hours=1), "734926")
    pipeline.deliver(logs_body(entry))
    # Then the guest's activity and check-in are untouched, and the lock shows the entry
    assert pipeline.booking_activity() == []
    assert world.bookings.get("B-1001").firstEntryAt is None
    assert [(item["id"], item["trigger"], item["success"]) for item in pipeline.lock_activity(LOCK_A)] == [
        (entry.id, "keypad", True)
    ]


def test_failed_attempts_and_app_operations_are_kept_on_the_lock(pipeline: Pipeline, world: World) -> None:
    stay(world)
    # When someone types a wrong code, and later the host unlocks with the app
    wrong = keypad_entry(world.nuki, LOCK_A, STAY_START + timedelta(minutes=1), "987651")
    host = app_unlock(world.nuki, LOCK_A, STAY_START + timedelta(minutes=2))
    pipeline.deliver(logs_body(wrong), logs_body(host))
    # Then both are on the lock, newest first, the failed attempt readable as such
    assert pipeline.lock_activity(LOCK_A) == [
        {
            "id": host.id,
            "at": "2026-11-27T14:02:00Z",
            "smartlockId": LOCK_A,
            "action": "unlock",
            "trigger": "app",
            "source": "default",
            "success": True,
            "state": "success",
        },
        {
            "id": wrong.id,
            "at": "2026-11-27T14:01:00Z",
            "smartlockId": LOCK_A,
            "action": "unlock",
            "trigger": "keypad",
            "source": "keypad_code",
            "success": False,
            "state": "invalid_code",
        },
    ]
    assert pipeline.booking_activity() == []


def test_activity_items_keep_the_booking_id_but_no_guest_data_or_pin(pipeline: Pipeline, world: World) -> None:
    booking = stay(world)
    pipeline.deliver(logs_body(keypad_entry(world.nuki, LOCK_A, STAY_START, booking.pin)))
    (item,) = pipeline.log_items()
    assert item["bookingId"] == "B-1001"
    text = json.dumps(item)
    for private in (booking.pin, "Ada", "Lovelace", "ada@example.org", booking.authName):
        assert private not in text
    # And it expires after the retention period (DynamoDB TTL)
    assert item["expiresAt"] == int((STAY_START + timedelta(days=365)).timestamp())


def test_other_features_are_acknowledged_and_ignored(pipeline: Pipeline, world: World) -> None:
    body = json.dumps({"feature": "DEVICE_MASTERDATA", "smartlockId": LOCK_A, "name": "Room 12"})
    pipeline.deliver(body)
    assert pipeline.log_items() == []


def test_a_signed_body_that_is_not_a_payload_we_understand_is_dropped_not_retried(
    pipeline: Pipeline, world: World
) -> None:
    for body in ("not json", "[1, 2]", '{"feature": "DEVICE_LOGS", "smartlockLog": {"id": 5}}'):
        assert pipeline.post(webhook_event(body))[0] == 200
    assert pipeline.process() == {"batchItemFailures": []}
    assert pipeline.log_items() == []


def test_a_failing_record_is_reported_alone_for_retry(
    pipeline: Pipeline, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    booking = stay(world)
    good = keypad_entry(world.nuki, LOCK_A, STAY_START, booking.pin)
    bad = keypad_entry(world.nuki, LOCK_B, STAY_START, booking.pin)
    original = pipeline.activity.record

    def flaky(log, **kw):  # type: ignore[no-untyped-def]
        if log.id == bad.id:
            raise RuntimeError("DynamoDB hiccup")
        return original(log, **kw)

    monkeypatch.setattr(pipeline.activity, "record", flaky)
    for body in (logs_body(good), logs_body(bad)):
        assert pipeline.post(webhook_event(body))[0] == 200
    answer = pipeline.process()
    # Then only the failed record goes back to the queue; the other is stored
    assert len(answer["batchItemFailures"]) == 1
    assert [item["id"] for item in pipeline.log_items()] == [good.id]
