"""The reconciler with the real Nuki client over HTTP, against the Nuki sandbox (local/nuki_sandbox):
Nuki's paths, bodies and asynchrony, not a fake's."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any, TypeVar

import pytest
import requests

from local.kit.fakes import ListJobQueue, ListLockQueue, ListMailer
from local.kit.services import engine
from staykey.adapters.schedules import Scheduler
from staykey.core.models import BookingIn, BookingStatus, RoomIn
from staykey.core.timeutil import FixedClock
from staykey.nuki import KeypadCodeCreate, NukiClient
from staykey.services.reconciler import Reconciler
from staykey.services.rooms import Rooms
from staykey.settings import load_settings
from staykey.store import Store

LOCK, OTHER = 17000001, 17000099
TOKEN = "test-token"
T = TypeVar("T")


def eventually(probe: Callable[[], T | None], timeout: float = 5.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.05)


@pytest.fixture
def sandbox_url() -> Iterator[str]:
    nuki_sandbox = pytest.importorskip("local.nuki_sandbox")
    running = nuki_sandbox.start_sandbox(port=0, token=TOKEN, sync_delay=0.05)
    yield running.url
    running.stop()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False  # loopback calls never go through a proxy from the environment
        yield session


def test_the_reconciler_heals_ours_and_spares_theirs_on_the_sandbox(
    aws: dict[str, str], clock: FixedClock, sandbox_url: str, http: requests.Session
) -> None:
    # Given the sandbox with two locks, the real client, and the booking services and reconciler on them
    for lock_id in (LOCK, OTHER):
        body = {"smartlockId": lock_id, "name": f"Door {lock_id}", "keypad": True, "online": True}
        assert http.post(f"{sandbox_url}/_sim/smartlocks", json=body, timeout=5).status_code == 201
    client = NukiClient(token=TOKEN, base_url=sandbox_url, session=http, max_total_seconds=5)
    settings = load_settings()
    store = Store(settings.table_name)
    jobs, mail = ListJobQueue(), ListMailer()
    bookings, sync = engine(settings, store, lambda: client, Scheduler(settings), jobs, mail, clock)
    queue = ListLockQueue()
    rec = Reconciler(
        settings, store, lambda: client, lambda: bookings, lambda: sync, queue, clock, metric=lambda *a, **k: None
    )
    room = {"name": "Room 12", "smartlockIds": [LOCK, OTHER], "timezone": "Europe/Berlin"}
    Rooms(store, clock, nuki=lambda: client).put("room-12", RoomIn.model_validate(room))

    def settle() -> None:
        for _ in range(20):
            if not jobs.jobs:
                return
            time.sleep(0.15)  # the sandbox applies writes after its sync delay
            clock.advance(seconds=max(delay for _, delay in jobs.jobs))
            for job in jobs.drain():
                sync.run_job(job)

    def codes(lock_id: int) -> dict[int, str]:
        return {a.code: a.name for a in client.list_auths(lock_id) if a.code is not None}

    booking = {
        "bookingId": "B-1001",
        "roomId": "room-12",
        "guest": {"name": "Ada Lovelace", "email": "ada@example.org"},
        "checkIn": "2026-11-27",
        "checkOut": "2026-11-29",
    }
    bookings.create(BookingIn.model_validate(booking))
    settle()
    b = bookings.get("B-1001")
    assert b.status == BookingStatus.ACTIVE
    # And a code someone else added under our booking's name, and our code deleted from one lock
    lookalike = KeypadCodeCreate(
        name=b.authName, code=583917, allowed_from=b.validFrom, allowed_until=b.validUntil + timedelta(days=9)
    )
    client.create_keypad_code([LOCK], lookalike)
    ours_on_other = b.lock(OTHER).nukiId  # type: ignore[union-attr]
    assert ours_on_other is not None
    client.delete_auth(OTHER, ours_on_other)
    eventually(lambda: 583917 in codes(LOCK) and int(b.pin) not in codes(OTHER))
    # When the reconciler plans and runs
    plans: list[Any] = [rec.reconcile_lock(lock_id) for lock_id in rec.locks()]
    found = {(a.smartlock_id, a.drift.value, a.do.value) for p in plans for a in p.actions}
    # Then the lookalike is someone else's, and our missing code is sent again through the sync engine
    assert (LOCK, "foreign", "remember") in found
    assert (OTHER, "missing", "heal") in found
    settle()
    assert bookings.get("B-1001").status == BookingStatus.ACTIVE
    eventually(lambda: codes(OTHER) == {int(b.pin): b.authName})
    assert codes(LOCK) == {int(b.pin): b.authName, 583917: b.authName}
    # And after checkout, only the other party's code is left
    bookings.checkout("B-1001")
    settle()
    assert bookings.get("B-1001").status == BookingStatus.REVOKED
    for lock_id in rec.locks():
        rec.reconcile_lock(lock_id)
    assert codes(LOCK) == {583917: b.authName}
    assert codes(OTHER) == {}
    assert {c.pin: c.owner for c in store.codes_on_lock(LOCK)} == {"583917": "foreign"}
