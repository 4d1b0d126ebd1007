"""A StayKey with the real Nuki client over HTTP against the Nuki sandbox (local/nuki_sandbox):
Nuki's paths, bodies, asynchrony and account users, not a fake's; moto for AWS; StayKey's clock is
a FixedClock the test moves (the sandbox keeps its own, real, short sync delay). The shop's
requests go through the functions' handlers, as API Gateway calls them."""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest
import requests

from local.kit.apigw import Context, api_event, response_json
from local.kit.fakes import ListJobQueue, ListLockQueue, ListMailer
from local.nuki_sandbox import RunningSandbox, start_sandbox
from staykey import wiring
from staykey.adapters.schedules import Scheduler
from staykey.core.models import Booking
from staykey.core.timeutil import FixedClock
from staykey.nuki import NukiClient
from staykey.services.accounts import AccountUsers
from staykey.services.activity import Activity
from staykey.services.bookings import Bookings
from staykey.services.polling import LogPoller
from staykey.services.readiness import ReadinessChecks
from staykey.services.reconciler import Reconciler
from staykey.services.rooms import Rooms
from staykey.services.sync import Sync
from staykey.services.writes import NukiWriter
from staykey.settings import load_settings
from staykey.store import Store

TOKEN = "access-token"
DOOR, ENTRANCE = 17000001, 17000099
ROUTES = {
    ("POST", "/bookings"): "booking_created",
    ("GET", "/bookings/{bookingId}"): "bookings_api",
    ("PATCH", "/bookings/{bookingId}"): "bookings_api",
    ("GET", "/bookings/{bookingId}/activity"): "bookings_api",
    ("POST", "/bookings/{bookingId}/checkout"): "checkout",
    ("PUT", "/rooms/{roomId}"): "rooms_api",
    ("GET", "/rooms/{roomId}"): "rooms_api",
}


@dataclass
class Rig:
    """The whole of StayKey that app access and readiness pass through, on the sandbox."""

    sandbox: RunningSandbox
    http: requests.Session
    nuki: NukiClient
    store: Store
    clock: FixedClock
    jobs: ListJobQueue
    mail: ListMailer
    bookings: Bookings
    sync: Sync
    rooms: Rooms
    accounts: AccountUsers
    readiness: ReadinessChecks
    activity: Activity
    poller: LogPoller
    reconciler: Reconciler
    metrics: list[tuple[str, float]]

    # -- the shop, through the handlers

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        resource = next(r for (m, r) in ROUTES if m == method and _matches(r, path))
        module = importlib.import_module(f"functions.{ROUTES[(method, resource)]}.app")
        response = module.lambda_handler(api_event(method, path, body, resource=resource), Context())
        return response["statusCode"], response_json(response)

    def booking(self, booking_id: str = "B-1001") -> Booking:
        found = self.store.get_booking(booking_id, self.clock.now())
        assert found is not None
        return found

    # -- Nuki's side (the sandbox's control routes)

    def add_lock(self, smartlock_id: int, **fields: Any) -> None:
        body = {"smartlockId": smartlock_id, "name": f"Door {smartlock_id}", **fields}
        assert self.http.post(f"{self.sandbox.url}/_sim/smartlocks", json=body, timeout=5).status_code == 201

    def patch_lock(self, smartlock_id: int, **fields: Any) -> None:
        response = self.http.patch(f"{self.sandbox.url}/_sim/smartlocks/{smartlock_id}", json=fields, timeout=5)
        assert response.status_code == 200, response.text

    def auths(self, smartlock_id: int) -> list[dict[str, Any]]:
        state = self.http.get(f"{self.sandbox.url}/_sim/smartlocks/{smartlock_id}", timeout=5).json()
        return list(state["auths"])

    def account_users(self) -> list[dict[str, Any]]:
        return list(self.http.get(f"{self.sandbox.url}/_sim/account-users", timeout=5).json())

    def writes(self) -> list[str]:
        """Every write StayKey sent to Nuki (method and path), in order."""
        requests_seen = self.http.get(f"{self.sandbox.url}/_sim/requests", timeout=5).json()
        return [f"{r['method']} {r['path']}" for r in requests_seen if r["method"] != "GET"]

    def opens_with_app(self, smartlock_id: int, account_user_id: int, at: datetime) -> bool:
        body = {"accountUserId": account_user_id, "date": at.isoformat().replace("+00:00", "Z")}
        result = self.http.post(f"{self.sandbox.url}/_sim/smartlocks/{smartlock_id}/app", json=body, timeout=5)
        return bool(result.json()["success"])

    def types_pin(self, smartlock_id: int, pin: str, at: datetime) -> bool:
        body = {"code": int(pin), "date": at.isoformat().replace("+00:00", "Z")}
        result = self.http.post(f"{self.sandbox.url}/_sim/smartlocks/{smartlock_id}/keypad", json=body, timeout=5)
        return bool(result.json()["success"])

    # -- time

    def settle(self, rounds: int = 40, *, until_quiet: bool = True) -> None:
        """Let the sandbox apply what it accepted, and run the queued follow-ups, until none is left
        (or, `until_quiet` False, `rounds` times: a write waiting for an offline lock keeps looking)."""
        for _ in range(rounds):
            if not self.jobs.jobs:
                return
            time.sleep(0.12)  # the sandbox's sync delay
            self.clock.advance(seconds=max(delay for _, delay in self.jobs.jobs))
            for job in self.jobs.drain():
                self.sync.run_job(job)
        if until_quiet:
            raise AssertionError(f"still follow-ups after {rounds} rounds: {self.jobs.jobs}")

    def at(self, when: datetime) -> None:
        self.clock.set(when)

    def outbox(self) -> list[str]:
        """The types of every event the store wrote to the outbox (in no particular order)."""
        res = boto3.client("dynamodb").scan(
            TableName=self.store.table_name,
            FilterExpression="begins_with(sk, :e)",
            ExpressionAttributeValues={":e": {"S": "EVENT#"}},
        )
        return [self.store._codec.load(item)["eventType"] for item in res["Items"]]


def _matches(resource: str, path: str) -> bool:
    parts, want = resource.strip("/").split("/"), path.strip("/").split("/")
    return len(parts) == len(want) and all(p.startswith("{") or p == w for p, w in zip(parts, want, strict=True))


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    running = start_sandbox(port=0, token=TOKEN, sync_delay=0.05)
    yield running
    running.stop()


@pytest.fixture
def rig(
    aws: dict[str, str], clock: FixedClock, sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Rig]:
    with requests.Session() as http:
        http.trust_env = False  # loopback calls never go through a proxy from the environment
        client = NukiClient(token=TOKEN, base_url=sandbox.url, session=http, max_total_seconds=5)
        settings = load_settings()
        store = Store(settings.table_name)
        jobs, mail = ListJobQueue(), ListMailer()
        metrics: list[tuple[str, float]] = []
        accounts = AccountUsers(settings, store, lambda: client, clock)
        writer = NukiWriter(store, lambda: client, clock, accounts)
        sync = Sync(settings, store, lambda: client, jobs, mail, clock, writer, pin_choice=_pins())
        bookings = Bookings(settings, store, Scheduler(settings), clock, sync)
        readiness = ReadinessChecks(
            settings, store, lambda: client, clock, metric=lambda n, v=1, *a: metrics.append((n, v))
        )
        activity = Activity(settings, store, clock)
        reconciler = Reconciler(
            settings, store, lambda: client, lambda: bookings, lambda: sync, ListLockQueue(), clock, metric=_quiet
        )
        rig = Rig(
            sandbox,
            http,
            client,
            store,
            clock,
            jobs,
            mail,
            bookings,
            sync,
            Rooms(store, clock, nuki=lambda: client),
            accounts,
            readiness,
            activity,
            LogPoller(activity, lambda: client),
            reconciler,
            metrics,
        )
        for name, value in {
            "bookings": bookings,
            "sync": sync,
            "store": store,
            "activity": activity,
            "accounts": accounts,
            "readiness": readiness,
        }.items():
            monkeypatch.setattr(wiring, name, lambda value=value: value)
        monkeypatch.setattr(wiring, "nuki", lambda: client)
        yield rig


def _quiet(*_: Any, **__: Any) -> None:
    pass


def _pins() -> Callable[[str], str]:
    import random

    return random.Random(15).choice


def stay_body(room_id: str = "room-12", booking_id: str = "B-1001", **kw: Any) -> dict[str, Any]:
    return {
        "bookingId": booking_id,
        "roomId": room_id,
        "guest": {"name": "Ada Lovelace", "email": "ada@example.org", "locale": "en"},
        "checkIn": "2026-11-27",
        "checkOut": "2026-11-29",
        **kw,
    }


def later(rig: Rig, **delta: float) -> datetime:
    return rig.clock.now() + timedelta(**delta)
