"""DEVICE_AUTHS confirms our codes without waiting for a read-back and keeps others' codes in
mind; DEVICE_STATUS keeps each lock's last known state."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from local.kit.apigw import Context
from staykey import wiring
from staykey.core.models import BookingIn, BookingStatus, LockStatus
from staykey.nuki import SmartlockAuth
from tests.conftest import World, load_event
from tests.functional.activity.conftest import LOCK_A, LOCK_B, Pipeline, handler
from tests.functional.activity.helpers import auths_body, queued_bodies, sqs_event, webhook_event


@pytest.fixture
def wired(aws: dict[str, str], world: World, monkeypatch: pytest.MonkeyPatch) -> str:
    """The real wiring of the functions (wiring.activity() as deployed), with the test world's
    bookings, sync and Nuki in place of the real ones."""
    monkeypatch.setattr(wiring, "bookings", lambda: world.bookings)
    monkeypatch.setattr(wiring, "sync", lambda: world.sync)
    monkeypatch.setattr(wiring, "nuki", lambda: world.nuki)
    monkeypatch.setattr(wiring, "store", lambda: world.store)
    wiring.activity.cache_clear()
    return aws["webhooks"]


def post_and_process(queue_url: str, body: str) -> dict[str, Any]:
    response = handler("nuki_webhook")(webhook_event(body), Context())
    assert response["statusCode"] == 200, response
    return dict(handler("webhook_processor")(sqs_event(queue_url), Context()))


def test_a_device_auths_webhook_turns_a_provisioning_booking_active_without_a_read_back(
    wired: str, world: World
) -> None:
    # Given a booking whose code was sent to both locks, and Nuki announcing each applied change
    announced: list[tuple[int, SmartlockAuth, bool]] = []
    world.nuki.on_apply.append(lambda lock_id, auth, deleted: announced.append((lock_id, auth, deleted)))
    world.add_room()
    booking, _ = world.bookings.create(
        BookingIn.model_validate(
            {
                "bookingId": "B-1001",
                "roomId": "room-12",
                "guest": {"name": "Ada Lovelace", "email": "ada@example.org", "locale": "en"},
                "checkIn": "2026-11-27",
                "checkOut": "2026-11-29",
            }
        )
    )
    assert booking.status == BookingStatus.PROVISIONING
    # When the locks apply it and Nuki posts DEVICE_AUTHS for each, before any read-back is due
    world.nuki.apply()
    assert len(announced) == 2
    for _, auth, deleted in announced:
        assert post_and_process(wired, auths_body(auth, deleted)) == {"batchItemFailures": []}
    # Then the booking is active, the guest is told, and Nuki's auth list was never read
    booking = world.bookings.get("B-1001")
    assert booking.status == BookingStatus.ACTIVE
    assert [lock.status for lock in booking.locks] == [LockStatus.ACTIVE, LockStatus.ACTIVE]
    assert all(lock.nukiId and lock.authId for lock in booking.locks)
    assert world.nuki.count("list_auths") == 0
    assert len(world.mail.sent) == 1
    # And the confirmed ids are indexed for attributing the guest's entries
    for lock in booking.locks:
        assert world.store.booking_id_for_auth(lock.smartlockId, str(lock.authId)) == "B-1001"


def test_someone_elses_code_is_remembered_on_its_lock_and_forgotten_when_deleted(wired: str, world: World) -> None:
    # Given the recorded DEVICE_AUTHS of a code the host added for the cleaner
    body = load_event("nuki_webhook_device_auths.json")["body"]
    # When it is delivered
    assert post_and_process(wired, body) == {"batchItemFailures": []}
    # Then we know that code is taken on that lock (PIN allocation avoids it) and leave it alone
    codes = world.store.codes_on_lock(LOCK_A)
    assert [(c.pin, c.owner, c.nuki_id) for c in codes] == [("742915", "foreign", "65219648fe57075d71a6cb01")]
    assert world.nuki.calls == []
    # When Nuki reports it deleted
    deleted = json.dumps({**json.loads(body), "deleted": True})
    assert post_and_process(wired, deleted) == {"batchItemFailures": []}
    # Then the code is free again
    assert world.store.codes_on_lock(LOCK_A) == []


def test_device_status_keeps_the_locks_last_known_state(pipeline: Pipeline, world: World) -> None:
    # When the recorded DEVICE_STATUS arrives (keypad battery critical)
    status, _ = pipeline.post(webhook_event(load_event("nuki_webhook_device_status.json")["body"]))
    assert status == 200
    assert pipeline.process() == {"batchItemFailures": []}
    # Then the lock's state is kept for operators and the reconciler
    meta = world.store.get_lock_meta(LOCK_A)
    assert meta["online"] is True
    assert meta["serverState"] == 0
    assert meta["batteryCharge"] == 90
    assert meta["batteryCritical"] is False
    assert meta["keypadBatteryCritical"] is True
    assert meta["doorState"] == 2
    assert "statusAt" in meta


def test_an_older_status_delivered_late_does_not_replace_a_newer_one(pipeline: Pipeline, world: World) -> None:
    # Given the sample SQS batch: a DEVICE_LOGS and a DEVICE_STATUS (lock online) sent at 14:03:12
    event = load_event("webhook_processor_sqs.json")
    assert handler("webhook_processor")(event, Context()) == {"batchItemFailures": []}
    assert world.store.get_lock_meta(LOCK_A)["online"] is True
    # When a status saying "offline" that was queued earlier is processed after it
    offline = json.loads(event["Records"][1]["body"])
    offline["serverState"] = 4
    older = dict(event["Records"][1])
    older["body"] = json.dumps(offline)
    older["attributes"] = {**older["attributes"], "SentTimestamp": "1796133700000"}
    assert handler("webhook_processor")({"Records": [older]}, Context()) == {"batchItemFailures": []}
    # Then the newer state stays
    assert world.store.get_lock_meta(LOCK_A)["online"] is True
    # And a newer offline report does replace it
    newer = {**older, "attributes": {**older["attributes"], "SentTimestamp": "1796133900000"}}
    assert handler("webhook_processor")({"Records": [newer]}, Context()) == {"batchItemFailures": []}
    meta = world.store.get_lock_meta(LOCK_A)
    assert meta["online"] is False
    assert meta["statusAt"] == datetime.fromtimestamp(1796133900, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    # And the DEVICE_LOGS record of the sample batch was stored (on the lock: no booking here)
    assert [item["id"] for item in pipeline.lock_activity(LOCK_A)] == ["6751c2e4a8b0f21d3c9e4a17"]
    assert queued_bodies(pipeline.queue_url) == []
    assert LOCK_B not in (item["smartlockId"] for item in pipeline.log_items())


def test_a_signed_webhook_nested_too_deeply_to_read_is_dropped_not_retried(wired: str) -> None:
    """A body of 1,000 nested arrays (2 KB) made json.loads give up with RecursionError: the
    processor crashed and the message went round to the dead-letter queue. It is unreadable, counted
    and dropped, like any body the processor cannot understand."""
    body = '{"feature":"DEVICE_LOGS","x":' + "[" * 1000 + "]" * 1000 + "}"
    assert post_and_process(wired, body) == {"batchItemFailures": []}
