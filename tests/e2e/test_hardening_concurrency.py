"""Concurrency over HTTP against the local stack: requests that race really race (a barrier lets
them go at once; the local gateway runs each function in up to four containers at a time).

* 10 identical ``POST /bookings`` at once: one booking (one 201, nine 200 with the same PIN) and
  one Nuki write (one ``PUT /smartlock/{id}/auth`` in the sandbox's request log).
* 50 bookings at once for 50 rooms that share one entrance lock: 50 distinct PINs, each on its
  room's door and all 50 on the entrance, as the sandbox's lock state shows once they are active.

The module has a local stack of its own: its 50 rooms and 52 locks would otherwise stay in the
session's stack, where every log-poll and reconcile run then reads them all, and slow down the
timing-sensitive tests that follow. Its ProvisionLeadHours is 0 and the 50 stays start 30 s after
they are booked: the 50 answers then do not wait for Nuki (on two cores, 50 bookings that each
write to Nuki at once would queue past API Gateway's 29 s integration timeout behind the local
stack's four containers per function; Lambda would run 50 at once), and the codes go onto the
locks when the 50 one-time schedules fire, all at once as well.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
import requests

from local.stack import LocalStack, StackConfig
from tests.e2e.conftest import FUNCTION_ENV, SYNC_DELAY
from tests.e2e.helpers import Shop, Sim, eventually, new_id, now
from tests.e2e.pins import LEDGER

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    logs = tmp_path_factory.mktemp("concurrency") / "logs"
    config = StackConfig.from_env(
        environ={},
        gateway_port=0,
        nuki_port=0,
        aws_port=0,
        sync_delay=SYNC_DELAY,
        env=dict(FUNCTION_ENV),
        log_dir=logs,
        parameters={"ProvisionLeadHours": "0"},
    )
    with LocalStack(config) as running:
        yield running
    LEDGER.add_logs(logs)  # its logs join the session's PIN-in-logs check


@pytest.fixture
def shop(own_stack: LocalStack, session: requests.Session) -> Shop:
    return Shop(own_stack, session)


@pytest.fixture
def sim(own_stack: LocalStack, session: requests.Session) -> Sim:
    return Sim(own_stack, session)


def _at_once(n: int, call: Any) -> list[requests.Response]:
    barrier = threading.Barrier(n)

    def go(i: int) -> requests.Response:
        barrier.wait(timeout=30)
        return call(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(go, range(n)))


def test_ten_identical_bookings_at_once_make_one_booking_and_one_nuki_write(shop: Shop, sim: Sim) -> None:
    lock = sim.add_lock()
    room_id = shop.put_room([lock])
    start = now()
    body = shop.booking_body(room_id, start, start + timedelta(days=2))
    assert sim.call("DELETE", "/_sim/requests").status_code in (200, 204)

    answers = _at_once(10, lambda _: shop.call("POST", "/bookings", body))

    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200] * 9 + [201], [(r.status_code, r.text[:200]) for r in answers]
    assert {r.json()["bookingId"] for r in answers} == {body["bookingId"]}
    pins = {r.json()["pin"] for r in answers}
    assert len(pins) == 1, pins
    active = shop.wait_status(body["bookingId"], "active", timeout=20)
    assert active["pin"] in pins
    writes = [r for r in sim.requests() if r["method"] == "PUT" and r["path"] == f"/smartlock/{lock}/auth"]
    assert len(writes) == 1, writes
    assert sim.codes(lock) == [int(active["pin"])]


def test_fifty_bookings_at_once_on_a_shared_entrance_get_fifty_distinct_pins(shop: Shop, sim: Sim) -> None:
    entrance = sim.add_lock()
    doors = [sim.add_lock() for _ in range(50)]
    rooms = [shop.put_room([door, entrance], room_id=new_id("room")) for door in doors]
    start = now() + timedelta(seconds=30)

    def book(i: int) -> requests.Response:
        return shop.call("POST", "/bookings", shop.booking_body(rooms[i], start, start + timedelta(days=2)))

    answers = _at_once(50, book)

    assert [r.status_code for r in answers] == [201] * 50, [r.text[:200] for r in answers if r.status_code != 201]
    bookings = [r.json() for r in answers]
    pins = [b["pin"] for b in bookings]
    assert len(set(pins)) == 50, "two bookings share a PIN on the entrance"

    def all_active() -> list[dict[str, Any]] | None:
        current = [shop.get(b["bookingId"]) for b in bookings]
        failed = [c for c in current if c["status"] == "failed"]
        assert not failed, failed[0]
        return current if all(c["status"] == "active" for c in current) else None

    assert {b["status"] for b in bookings} <= {"scheduled", "provisioning"}
    active = eventually(all_active, 120, "all 50 bookings active", interval=2.0)
    final_pins = {b["pin"] for b in active}
    assert len(final_pins) == 50
    # The sandbox's own state: the entrance holds exactly these 50 codes, each door its booking's.
    assert sorted(sim.codes(entrance)) == sorted(int(p) for p in final_pins)
    for door, booking in zip(doors, active, strict=True):
        assert sim.codes(door) == [int(booking["pin"])]
