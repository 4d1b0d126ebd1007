"""The activity world: the lifecycle world (moto, FakeNuki, FixedClock) plus the webhook receiver,
the webhook processor, the log poller and the activity routes, driven through their handlers."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from local.kit.apigw import Context, api_event, response_json
from local.kit.fakes import ListLockQueue
from staykey import wiring
from staykey.core.models import Booking, BookingIn, BookingStatus
from staykey.services.activity import Activity
from staykey.services.checks import LockChecks
from staykey.services.reconciler import Reconciler
from staykey.services.watch import Watcher, watch_settings
from staykey.settings import load_settings
from tests.conftest import World
from tests.functional.activity.helpers import sqs_event, webhook_event

# The stay of B-1001 in Europe/Berlin: 2026-11-27 15:00 to 2026-11-29 11:00 local.
STAY_START = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
LOCK_A, LOCK_B = 17000001, 17000099


def handler(name: str) -> Any:
    return importlib.import_module(f"functions.{name}.app").lambda_handler


@dataclass
class Pipeline:
    """Nuki's webhooks through the receiver and the queue into the processor; polls; API reads."""

    world: World
    activity: Activity
    queue_url: str

    def post(self, event: dict[str, Any]) -> tuple[int, Any]:
        response = handler("nuki_webhook")(event, Context())
        return response["statusCode"], response_json(response)

    def process(self) -> dict[str, Any]:
        """Hand everything queued to the webhook processor; its answer (partial batch failures)."""
        event = sqs_event(self.queue_url)
        if not event["Records"]:
            return {"batchItemFailures": []}
        return dict(handler("webhook_processor")(event, Context()))

    def deliver(self, *bodies: str) -> None:
        """Nuki posts each body (signed); the processor then works through the queue."""
        for body in bodies:
            status, answer = self.post(webhook_event(body))
            assert status == 200, answer
        assert self.process() == {"batchItemFailures": []}

    def poll(self) -> dict[str, Any]:
        """The account log's poller, as the watcher runs it when the log is due."""
        return wiring.log_poller().poll().to_dict()

    def watch(self) -> dict[str, Any]:
        """The watcher's function, as its schedule runs it."""
        return dict(handler("log_poller")({"action": "poll-logs"}, Context()))

    def get(self, path: str, resource: str, function: str, query: dict[str, str] | None = None) -> tuple[int, Any]:
        response = handler(function)(api_event("GET", path, resource=resource, query=query), Context())
        return response["statusCode"], response_json(response)

    def booking_activity(self, booking_id: str = "B-1001") -> list[dict[str, Any]]:
        status, body = self.get(f"/bookings/{booking_id}/activity", "/bookings/{bookingId}/activity", "bookings_api")
        assert status == 200, body
        return list(body["items"])

    def lock_activity(self, smartlock_id: int = LOCK_A) -> list[dict[str, Any]]:
        status, body = self.get(f"/locks/{smartlock_id}/activity", "/locks/{smartlockId}/activity", "rooms_api")
        assert status == 200, body
        return list(body["items"])

    def log_items(self) -> list[dict[str, Any]]:
        """Every stored activity item, as the table holds it."""
        import boto3

        res = boto3.client("dynamodb").scan(
            TableName=self.world.store.table_name,
            FilterExpression="begins_with(pk, :p)",
            ExpressionAttributeValues={":p": {"S": "LOG#"}},
        )
        return [self.world.store.codec.load(item) for item in res["Items"]]


def make_activity(world: World) -> Activity:
    return Activity(load_settings(), world.store, world.clock)


@pytest.fixture
def activity(world: World, monkeypatch: pytest.MonkeyPatch) -> Activity:
    """The activity service on the test world, and the functions wired to it."""
    service = make_activity(world)
    monkeypatch.setattr(wiring, "activity", lambda: service)
    monkeypatch.setattr(wiring, "bookings", lambda: world.bookings)
    monkeypatch.setattr(wiring, "sync", lambda: world.sync)
    monkeypatch.setattr(wiring, "store", lambda: world.store)
    monkeypatch.setattr(wiring, "nuki", lambda: world.nuki)
    monkeypatch.setattr(wiring, "background_nuki", lambda: world.nuki)
    monkeypatch.setattr(wiring, "watcher", lambda: make_watcher(world))
    return service


def make_watcher(world: World) -> Watcher:
    """The watcher as wired, on the world's clock, with an in-memory reconcile queue."""
    settings = load_settings()
    queue = ListLockQueue()
    nuki = lambda: world.nuki  # noqa: E731
    rec = Reconciler(settings, world.store, nuki, lambda: world.bookings, lambda: world.sync, queue, world.clock)  # type: ignore[arg-type]
    checks = LockChecks(settings, watch_settings(settings), world.store, nuki, rec, queue, world.clock)  # type: ignore[arg-type]
    return Watcher(watch_settings(settings), world.store, wiring.log_poller(), checks, world.clock)


@pytest.fixture
def pipeline(aws: dict[str, str], world: World, activity: Activity) -> Pipeline:
    return Pipeline(world, activity, aws["webhooks"])


def stay(world: World, booking_id: str = "B-1001", locks: tuple[int, ...] = (LOCK_A, LOCK_B)) -> Booking:
    """A room with `locks` and an active booking on it (PIN confirmed on every lock)."""
    if world.store.get_room("room-12") is None:
        world.add_room(locks=locks)
    world.bookings.create(
        BookingIn.model_validate(
            {
                "bookingId": booking_id,
                "roomId": "room-12",
                "guest": {"name": "Ada Lovelace", "email": "ada@example.org", "locale": "en"},
                "checkIn": "2026-11-27",
                "checkOut": "2026-11-29",
            }
        )
    )
    world.settle()
    booking = world.bookings.get(booking_id)
    assert booking.status == BookingStatus.ACTIVE
    return booking
