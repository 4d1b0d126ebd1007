"""The operator console's pages with a season in the local stack: 1,000 bookings, 100 locks.

A local stack of its own (moto server, the template's functions behind the local gateway). The
season goes straight into the table through the store (`Store.create_booking`, the same write as
POST /bookings, without Nuki: 1,000 bookings in seconds, not minutes): 50 rooms of two locks (a
door and an entrance; 100 locks), stays of 1 to 14 nights over four months from 30 days ago,
statuses as a season has them (revoked before today, active now, scheduled later, a few failed
and cancelled), every lock's META as the reconciler and DEVICE_STATUS leave it, and 500 activity
entries. Then the local operator signs in and each page is fetched `REPEAT` times; the figure is
the time from request to the last byte on loopback (the gateway, the function, moto: all server
time; no browser), median and worst, the page's size, and the CPU time the runtime and the moto
server spent per request (from /proc: what a page costs, whatever else the machine runs; the wall
time depends on that too). Nothing asserts a time.
"""

from __future__ import annotations

import os
import random
import re
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from bench.common import main
from bench.season import cpu_seconds

BOOKINGS = 1000
ROOMS = 50
ENTRANCES = 50  # 50 room doors + 50 entrances: 100 locks
REPEAT = 10
PAGES = {
    "today": "/today",
    "bookings": "/bookings",
    "bookings filtered": "/bookings?status=active&from={today}&to={week}",
    "booking": "/bookings/B-0500",
    "locks": "/locks",
    "lock": "/locks/18000001",
    "activity": "/activity",
    "audit": "/audit",
}


def seed(stack: Any, rng: random.Random) -> None:
    os.environ.update({k: v for k, v in stack.environment().items() if k.startswith("AWS_")})
    assert stack.resources is not None
    seed_table(next(iter(stack.resources.of_type("AWS::DynamoDB::Table").values())), rng)


def seed_table(table: str, rng: random.Random) -> None:
    """The season, written into `table` (the AWS endpoint and credentials from the environment)."""
    from staykey.core.models import Booking, Guest, LockState, LockStatus, Room
    from staykey.core.pins import auth_name, generate_pin
    from staykey.core.timeutil import iso_utc
    from staykey.store import CodeClaim, Store

    store = Store(table)
    now = datetime.now(UTC).replace(microsecond=0)
    entrances = [18000001 + n for n in range(ENTRANCES)]
    rooms = []
    for n in range(ROOMS):
        room = Room(
            roomId=f"room-{n:02d}",
            name=f"Room {n + 1}",
            smartlockIds=[18001001 + n, entrances[n % ENTRANCES]],
            timezone="Europe/Berlin",
            createdAt=now,
            updatedAt=now,
        )
        store.put_room(room)
        rooms.append(room)
    store.register_locks(sorted({lock for room in rooms for lock in room.smartlockIds}))
    used: dict[int, set[str]] = {}
    items: list[dict[str, Any]] = []
    for n in range(BOOKINGS):
        room = rooms[n % ROOMS]
        start = now - timedelta(days=30) + timedelta(hours=rng.randrange(0, 120 * 24))
        end = start + timedelta(days=rng.randint(1, 14))
        if end < now:
            status = "revoked"
        elif start <= now:
            status = "active"
        else:
            status = "scheduled" if start - now > timedelta(hours=72) else "active"
        roll = rng.random()
        if status != "revoked" and roll < 0.02:
            status = "failed"
        elif status == "scheduled" and roll < 0.05:
            status = "cancelled"
        avoid = set().union(*(used.get(lock, set()) for lock in room.smartlockIds))
        pin = generate_pin(avoid)
        for lock in room.smartlockIds:
            used.setdefault(lock, set()).add(pin)
        lock_status = {"revoked": LockStatus.REMOVED, "active": LockStatus.ACTIVE, "failed": LockStatus.FAILED}
        booking = Booking(
            bookingId=f"B-{n:04d}",
            roomId=room.roomId,
            status=status,
            pin=pin,
            pinHistory=[pin],
            authName=auth_name(f"B-{n:04d}", 0),
            validFrom=start,
            validUntil=end,
            checkIn=iso_utc(start) or "",
            checkOut=iso_utc(end) or "",
            timezone=room.timezone,
            locks=[
                LockState(smartlockId=lock, status=lock_status.get(status, LockStatus.PENDING), heldPin=pin)
                for lock in room.smartlockIds
            ],
            createdAt=start - timedelta(days=20),
            updatedAt=min(now, end),
            provisionAt=start - timedelta(hours=72),
            requestHash="bench",
            emailSentAt=start - timedelta(hours=72) if status in ("active", "revoked") else None,
        )
        guest = Guest(
            name=rng.choice(["Ada Lovelace", "Zoë Müller", "Grace Hopper", "Alan Turing"]), email=f"g{n}@example.org"
        )
        claims = [] if status == "revoked" else [CodeClaim(lock, pin) for lock in room.smartlockIds]
        # The items create_booking writes in its transaction, written in batches (moto's
        # transactions are slow with a full table; the items are the same).
        items += [
            store.booking_item(booking),
            {"pk": f"NAME#{booking.authName}", "sk": "NAME", "bookingId": booking.bookingId},
            store.guest_item(booking, guest, end + timedelta(days=30)),
            *(store.code_item(c, booking) for c in claims),
        ]
    codec = store.codec
    for start in range(0, len(items), 25):
        batch = [{"PutRequest": {"Item": codec.dump(item)}} for item in items[start : start + 25]]
        while batch:
            res = store.client.batch_write_item(RequestItems={table: batch})
            batch = res.get("UnprocessedItems", {}).get(table, [])
    for lock in {lock for room in rooms for lock in room.smartlockIds}:
        store.update_lock_meta(
            lock,
            online=rng.random() > 0.03,
            codeCount=len(used.get(lock, ())) // 3,
            ourCodes=len(used.get(lock, ())) // 3,
            foreignCodes=rng.randint(0, 3),
            reconciledAt=iso_utc(now - timedelta(minutes=rng.randint(1, 15))),
            codesCountedAt=iso_utc(now - timedelta(minutes=rng.randint(1, 15))),
            statusAt=iso_utc(now - timedelta(minutes=rng.randint(1, 600))),
            batteryCharge=rng.randint(5, 100),
            batteryCritical=False,
            keypadBatteryCritical=rng.random() < 0.02,
        )
    for n in range(500):
        at = now - timedelta(minutes=rng.randint(1, 14 * 24 * 60))
        lock = rng.choice(entrances)
        store.put_activity(
            {
                "id": f"{n:024x}",
                "at": at,
                "smartlockId": lock,
                "action": 1,
                "trigger": 255,
                "source": 1,
                "state": 0,
                "bookingId": f"B-{rng.randrange(BOOKINGS):04d}",
                "via": "webhook",
            },
            at + timedelta(days=365),
        )


def run(quick: bool) -> dict[str, Any]:
    from local.stack import LocalStack, StackConfig

    repeat = 3 if quick else REPEAT
    config = StackConfig.from_env(environ={}, gateway_port=0, nuki_port=0, aws_port=0, register_webhook=False)
    out: dict[str, Any] = {"bookings": BOOKINGS, "locks": ROOMS + ENTRANCES, "repeat": repeat, "pages": {}}
    with LocalStack(config) as stack:
        started = time.monotonic()
        seed(stack, random.Random(14))
        out["seed_s"] = round(time.monotonic() - started, 1)
        http = requests.Session()
        http.trust_env = False
        base = stack.console_url
        form = http.get(f"{base}/login", timeout=30).text
        pre = re.search(r'name="pre" value="([^"]+)"', form)
        assert pre
        assert stack.operator
        r = http.post(
            f"{base}/login",
            data={"pre": pre.group(1), "next": "", "username": stack.operator[0], "password": stack.operator[1]},
            allow_redirects=False,
            timeout=30,
        )
        assert r.status_code == 303, r.text
        today = datetime.now(UTC).date()
        assert stack.moto is not None
        assert stack.moto.proc is not None
        assert stack.runtime is not None
        pids = {"runtime": stack.runtime.pid, "moto": stack.moto.proc.pid}
        out["load_at_start"] = round(os.getloadavg()[0], 2)
        for name, path in PAGES.items():
            url = base + path.format(today=today.isoformat(), week=(today + timedelta(days=7)).isoformat())
            times, size = [], 0
            http.get(url, timeout=60)  # warm: the first call of a container imports and connects
            cpu_before = {k: cpu_seconds(pid) for k, pid in pids.items()}
            for _ in range(repeat):
                t0 = time.perf_counter()
                r = http.get(url, timeout=60)
                times.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200, (name, r.status_code, r.text[:300])
                size = len(r.content)
            cpu = {k: (cpu_seconds(pid) - cpu_before[k]) * 1000 / repeat for k, pid in pids.items()}
            out["pages"][name] = {
                "median_ms": round(statistics.median(times), 1),
                "max_ms": round(max(times), 1),
                "bytes": size,
                # CPU time per request of the runtime (gateway, function, boto3) and the moto
                # server: what the page costs whatever else the machine runs.
                "cpu_ms": {k: round(v, 1) for k, v in cpu.items()},
            }
        assets = list(re.findall(r'(?:src|href)="([^"]+/static/[^"]+)"', http.get(base + "/today").text))
        out["static_bytes"] = sum(len(http.get(stack.gateway_url + a, timeout=30).content) for a in assets)
    return out


if __name__ == "__main__":
    main(run)
