"""A PIN rotation with the real Nuki client over HTTP against the Nuki sandbox's server
(local/nuki_sandbox) and moto: Nuki's paths, bodies and asynchrony as a deployed stack meets them,
and the reconciler in the middle of it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from local.kit.fakes import ListJobQueue, ListLockQueue, ListMailer
from local.kit.services import engine
from staykey.adapters.schedules import Scheduler
from staykey.core.drift import Do, Drift
from staykey.core.models import BookingIn, BookingStatus, RoomIn
from staykey.core.timeutil import FixedClock
from staykey.nuki import NukiClient
from staykey.services.reconciler import Reconciler
from staykey.services.rooms import Rooms
from staykey.settings import load_settings
from staykey.store import Store

DOOR, ENTRANCE = 17000001, 17000099
TOKEN = "test-token"


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


def test_a_rotation_over_http_with_the_reconciler_in_between(
    aws: dict[str, str], clock: FixedClock, sandbox_url: str, http: requests.Session
) -> None:
    for lock_id in (DOOR, ENTRANCE):
        body = {"smartlockId": lock_id, "name": f"Door {lock_id}", "keypad": True, "online": True}
        assert http.post(f"{sandbox_url}/_sim/smartlocks", json=body, timeout=5).status_code == 201
    client = NukiClient(token=TOKEN, base_url=sandbox_url, session=http, max_total_seconds=5)
    settings = load_settings()
    store = Store(settings.table_name)
    jobs, mail = ListJobQueue(), ListMailer()
    bookings, sync = engine(settings, store, lambda: client, Scheduler(settings), jobs, mail, clock)
    rec = Reconciler(
        settings,
        store,
        lambda: client,
        lambda: bookings,
        lambda: sync,
        ListLockQueue(),
        clock,
        metric=lambda *a, **k: None,
    )
    room = {"name": "Room 12", "smartlockIds": [DOOR, ENTRANCE], "timezone": "Europe/Berlin"}
    Rooms(store, clock, nuki=lambda: client).put("room-12", RoomIn.model_validate(room))

    def settle() -> None:
        for _ in range(20):
            if not jobs.jobs:
                return
            time.sleep(0.15)  # the sandbox applies writes after its sync delay
            clock.advance(seconds=max(delay for _, delay in jobs.jobs))
            for job in jobs.drain():
                sync.run_job(job)

    def codes(lock_id: int) -> list[str]:
        return sorted(f"{a.code:06d}" for a in client.list_auths(lock_id) if a.name == "SK B-1001")

    booking = {
        "bookingId": "B-1001",
        "roomId": "room-12",
        "guest": {"name": "Ada Lovelace", "email": "ada@example.org"},
        "checkIn": "2026-11-27",
        "checkOut": "2026-11-29",
    }
    bookings.create(BookingIn.model_validate(booking))
    settle()
    old = bookings.get("B-1001").pin
    # The entrance goes offline; the rotation puts the new code on the room door only
    assert http.patch(f"{sandbox_url}/_sim/smartlocks/{ENTRANCE}", json={"online": False}, timeout=5).ok
    rotating = bookings.rotate_pin("B-1001")
    assert rotating.rotation is not None
    new = rotating.rotation.pin
    time.sleep(0.3)
    clock.advance(seconds=30)
    for job in jobs.drain():
        sync.run_job(job)
    assert codes(DOOR) == sorted([old, new])
    # The reconciler finds both codes on the room door to be the booking's, as booked
    plan = rec.reconcile_lock(DOOR)
    assert (plan.ours, plan.foreign) == (2, 0)
    assert {(a.drift, a.do) for a in plan.actions} == {(Drift.OK, Do.NONE)}
    assert codes(DOOR) == sorted([old, new])
    assert bookings.get("B-1001").pin == old
    # The entrance comes back: the rotation completes, the guest is told, the old codes go
    assert http.patch(f"{sandbox_url}/_sim/smartlocks/{ENTRANCE}", json={"online": True}, timeout=5).ok
    time.sleep(0.3)
    clock.advance(seconds=300)
    for job in jobs.drain():
        sync.run_job(job)
    settle()
    after = bookings.get("B-1001")
    assert after.pin == new
    assert after.status == BookingStatus.ACTIVE
    assert [m.pin for m in mail.sent] == [old, new]
    assert codes(DOOR) == [new]
    assert codes(ENTRANCE) == [new]
