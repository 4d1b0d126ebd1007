"""Webhook bodies that lack fields StayKey does not strictly need are hints, not noise: StayKey
reads back what they are about instead of dropping them. A DEVICE_STATUS also lets the readiness
checks look again at the bookings of its lock (a finding clears itself, or is found at once)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from local.kit.apigw import Context
from local.kit.fakes import ListLockQueue
from staykey import wiring
from staykey.core.models import BookingStatus, Readiness, ReadinessReason
from staykey.services.activity import Activity
from staykey.services.readiness import ReadinessChecks
from staykey.services.webhooks import WebhookProcessor
from staykey.settings import load_settings
from tests.conftest import World
from tests.functional.activity.conftest import LOCK_A, handler, stay
from tests.functional.activity.helpers import sqs_event, webhook_event


@pytest.fixture
def queue() -> ListLockQueue:
    return ListLockQueue()


@pytest.fixture
def wired(aws: dict[str, str], world: World, queue: ListLockQueue, monkeypatch: pytest.MonkeyPatch) -> str:
    """The webhook functions on the test world, with an in-memory reconcile queue."""
    readiness = ReadinessChecks(load_settings(), world.store, lambda: world.nuki, world.clock)  # type: ignore[arg-type, return-value]
    processor = WebhookProcessor(
        Activity(load_settings(), world.store, world.clock), world.sync, lambda: readiness, lambda: queue
    )
    monkeypatch.setattr(wiring, "webhook_processor", lambda: processor)
    monkeypatch.setattr(wiring, "readiness", lambda: readiness)
    return aws["webhooks"]


def deliver(queue_url: str, payload: dict[str, Any]) -> None:
    response = handler("nuki_webhook")(webhook_event(json.dumps(payload)), Context())
    assert response["statusCode"] == 200, response
    assert handler("webhook_processor")(sqs_event(queue_url), Context()) == {"batchItemFailures": []}


def test_a_device_auths_without_name_or_type_makes_stayKey_read_the_lock_back(wired: str, world: World) -> None:
    # Given an active booking, and our code changed in Nuki Web (its end moved)
    booking = stay(world)
    lock = booking.lock(LOCK_A)
    assert lock is not None
    assert lock.nukiId is not None
    auth = world.nuki.locks[LOCK_A].auths[lock.nukiId]
    world.nuki.locks[LOCK_A].auths[lock.nukiId] = auth.model_copy(
        update={"allowed_until_date": booking.validUntil + timedelta(days=5)}
    )
    reads = world.nuki.count("list_auths")
    # When Nuki's webhook about it says only the auth's id and its lock
    deliver(wired, {"feature": "DEVICE_AUTHS", "smartlockAuth": {"id": lock.nukiId, "smartlockId": LOCK_A}})
    # Then StayKey read that lock back, saw the change, and writes its code again
    assert world.nuki.count("list_auths") == reads + 1
    assert world.bookings.get("B-1001").status == BookingStatus.PROVISIONING
    assert world.nuki.count("update_auth") == 1


def test_a_device_auths_that_names_only_its_lock_puts_the_lock_on_the_reconcile_queue(
    wired: str, world: World, queue: ListLockQueue
) -> None:
    deliver(wired, {"feature": "DEVICE_AUTHS", "deleted": True, "smartlockAuth": {"smartlockId": LOCK_A}})
    assert [(job.smartlockId, job.reason) for job in queue.drain()] == [(LOCK_A, "hint")]


def test_a_body_that_names_no_lock_is_still_dropped(wired: str, world: World, queue: ListLockQueue) -> None:
    deliver(wired, {"feature": "DEVICE_AUTHS", "smartlockAuth": {"name": "SK B-1"}})
    assert queue.messages == []
    assert world.nuki.calls == []


def test_a_device_status_without_its_state_makes_stayKey_read_the_lock(wired: str, world: World) -> None:
    world.clock.set(datetime.now(UTC) + timedelta(minutes=1))  # read after the webhook was queued
    deliver(wired, {"feature": "DEVICE_STATUS", "smartlockId": LOCK_A})
    assert world.nuki.count("get_smartlock") == 1
    meta = world.store.get_lock_meta(LOCK_A)
    assert (meta["online"], meta["keypadPaired"], meta["subscription"]) == (True, True, "none")


def test_a_device_status_clears_an_at_risk_booking_at_once_when_its_cause_is_gone(wired: str, world: World) -> None:
    # Given a booking found at risk: its lock was offline
    stay(world)

    def at_risk(b: Any) -> None:
        reason = ReadinessReason(smartlockId=LOCK_A, code="offline", message=f"lock {LOCK_A} is offline")
        b.readiness = Readiness(status="at_risk", reasons=[reason], checkedAt=world.clock.now())

    world.store.update_booking("B-1001", at_risk)
    # When Nuki reports the lock online again (a complete DEVICE_STATUS)
    state = {"batteryCritical": False, "keypadBatteryCritical": False, "batteryCharge": 80}
    deliver(wired, {"feature": "DEVICE_STATUS", "smartlockId": LOCK_A, "serverState": 0, "state": state})
    # Then the booking is checked again at once and is ready
    readiness = world.bookings.get("B-1001").readiness
    assert readiness is not None
    assert readiness.status == "ok"


def test_a_device_status_reporting_a_problem_puts_an_upcoming_booking_at_risk_at_once(wired: str, world: World) -> None:
    stay(world)  # starts tomorrow: within the first check's 48 hours
    world.nuki.set_online(LOCK_A, False)
    deliver(
        wired,
        {"feature": "DEVICE_STATUS", "smartlockId": LOCK_A, "serverState": 4, "state": {"batteryCritical": False}},
    )
    readiness = world.bookings.get("B-1001").readiness
    assert readiness is not None
    assert [(r.smartlockId, r.code) for r in readiness.reasons] == [(LOCK_A, "offline")]
