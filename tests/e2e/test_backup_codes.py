"""Backup codes over HTTP (issue 16), on a local stack of their own whose readiness function runs
every minute (ReadinessSchedule; it fills the pools and gives the backup codes): a room with backup
codes, its door offline before a stay, the guest's backup code in the booking and the email, the
operator's route, and the code gone after the stay."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from local.stack import LocalStack, StackConfig
from tests.e2e.conftest import FUNCTION_ENV, SYNC_DELAY
from tests.e2e.helpers import Shop, Sim, eventually, now

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def minute_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    config = StackConfig.from_env(
        environ={},
        gateway_port=0,
        nuki_port=0,
        aws_port=0,
        sync_delay=SYNC_DELAY,
        env=dict(FUNCTION_ENV),
        log_dir=Path(tmp_path_factory.mktemp("backup-stack")),
        parameters={"ReadinessSchedule": "rate(1 minute)", "BackupPoolSize": "2"},
    )
    with LocalStack(config) as running:
        yield running


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.trust_env = False
        yield s


def test_a_guest_whose_door_is_offline_gets_a_backup_code_that_opens_it(
    minute_stack: LocalStack, http: requests.Session
) -> None:
    shop, sim = Shop(minute_stack, http), Sim(minute_stack, http)
    door, entrance = sim.add_lock(), sim.add_lock()
    room_id = shop.put_room([door, entrance], backupCodes=True)
    # The pools are filled by the next readiness run: two codes on each lock
    eventually(lambda: len(sim.codes(door)) == 2 and len(sim.codes(entrance)) == 2, 150, "the pools filled")
    # Given the door goes offline, and a stay begins in an hour (its deadline, 2 hours before, passed)
    sim.set_online(door, False)
    start = now() + timedelta(hours=1)
    booking = shop.book(room_id, start, start + timedelta(days=1))
    booking_id = booking["bookingId"]
    # Then a readiness run gives the guest a backup code for the door, and the booking is active
    got = eventually(lambda: shop.get(booking_id)["backupCodes"], 150, "a backup code given")
    (given,) = got
    assert given["smartlockId"] == door
    assert given["pin"] != booking["pin"]
    active = shop.wait_status(booking_id, "active", timeout=30)
    assert active["locks"][0]["status"] != "active"  # the booking's own code has not reached the door
    # And the backup code opens the offline door (valid without end: at once), the booking's code
    # is on the entrance (from validFrom)
    assert sim.keypad(door, given["pin"])
    assert int(booking["pin"]) in sim.codes(entrance)
    # And the guest's email names the door and its code
    emails = eventually(lambda: [m for m in minute_stack.sent_emails() if booking_id in str(m)], 30, "the email")
    assert f"{given['pin'][:3]} {given['pin'][3:]}" in str(emails[-1])

    # And the shop heard booking.backup_assigned, without a PIN
    def heard() -> list[dict[str, object]]:
        events = http.get(f"{shop.url}/events?limit=100", headers=shop.headers, timeout=30).json()["items"]
        return [e for e in events if e["type"] == "booking.backup_assigned" and e["data"]["bookingId"] == booking_id]

    assigned = eventually(heard, 30, "booking.backup_assigned in the feed")
    assert given["pin"] not in str(assigned)
    # When the door is back and the guest checks out
    sim.set_online(door, True)
    r = shop.call("POST", f"/bookings/{booking_id}/checkout")
    assert r.status_code == 200, r.text
    # Then the backup code is gone from the door, and the pool is full again
    eventually(lambda: not sim.keypad(door, given["pin"]), 60, "the backup code removed")
    eventually(lambda: len([c for c in sim.codes(door) if c != int(booking["pin"])]) == 2, 150, "the pool refilled")


def test_an_operator_gives_a_backup_code_and_the_routes_refuse_what_cannot_be(
    minute_stack: LocalStack, http: requests.Session
) -> None:
    shop, sim = Shop(minute_stack, http), Sim(minute_stack, http)
    door = sim.add_lock()
    plain = sim.add_lock()
    room_id = shop.put_room([door], backupCodes=True, backupPoolSize=1)
    other_room = shop.put_room([plain])
    eventually(lambda: len(sim.codes(door)) == 1, 150, "the pool filled")
    booking = shop.book_now(room_id)
    booking_id = booking["bookingId"]
    shop.wait_status(booking_id, "active", timeout=20)
    # The operator asks for a backup code for the door: given, and in the answer
    # (the pool's code is on the door before StayKey has confirmed it: a 409 until then)
    r = eventually(
        lambda: (
            (a := shop.call("POST", f"/bookings/{booking_id}/backup-codes", {"smartlockIds": [door]})).status_code
            == 200
            and a
        ),
        60,
        "a backup code given once the pool's code is confirmed",
    )
    (given,) = r.json()["backupCodes"]
    assert sim.keypad(door, given["pin"])
    # A second booking of the room cannot have one (the only one is taken): 409, nothing given
    second = shop.book_now(room_id)
    r = shop.call("POST", f"/bookings/{second['bookingId']}/backup-codes", {"smartlockIds": [door]})
    assert r.status_code == 409, r.text
    assert shop.get(second["bookingId"])["backupCodes"] == []
    # A room without a pool: 409; bad bodies: 422 naming the field; an unknown booking: 404
    third = shop.book_now(other_room)
    assert shop.call("POST", f"/bookings/{third['bookingId']}/backup-codes", {}).status_code in (200, 409)
    r = shop.call("POST", f"/bookings/{booking_id}/backup-codes", {"smartlockIds": "door"})
    assert r.status_code == 422
    assert "smartlockIds" in r.text
    r = shop.call("POST", f"/bookings/{booking_id}/backup-codes", {"extra": 1})
    assert r.status_code == 422
    assert shop.call("POST", "/bookings/nobody-here/backup-codes").status_code == 404
    # A pool a lock cannot hold: 422 naming backupPoolSize, nothing written
    r = shop.call(
        "PUT",
        f"/rooms/{room_id}",
        {"name": "x", "smartlockIds": [door], "timezone": "Europe/Berlin", "backupCodes": True, "backupPoolSize": 21},
    )
    assert r.status_code == 422
    assert "backupPoolSize" in r.text
