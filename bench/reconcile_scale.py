"""6. Reconcile at scale: `LOCKS` locks with `CODES` keypad codes each, Nuki answering every call
after `LATENCY` seconds.

Setup. Each lock is a shared entrance in a room of its own. `OURS` of its codes are StayKey's
(active bookings, confirmed on the lock, as the lifecycle leaves them); the others were added by
other people and are already known (``foreign`` claims, as the reconciler's earlier runs leave
them). So this is the steady state of the 15-minute schedule: nothing to fix, everything to check.
The sandbox runs in a process of its own (`bench.sandbox_server`, filled through its Python API).
DynamoDB is `bench.ddb_stub`: an in-memory table behind a real boto3 client (boto3 serialises and
parses every call as with DynamoDB; moto would spend ~300 ms serialising each 150-code answer and
be the figure); its latency is zero here and modelled below.

Run. The real `Reconciler` with the real `NukiClient`, `reconcile_locks(concurrency=C)` with C the
template's ``ReconcileConcurrency`` default (5): at most C locks at once, as at most C reconcile-lock
invocations run at once in Lambda (the SQS event source's ``MaximumConcurrency``), each working
through its batch one lock after the other. Measured: wall time, Nuki calls (the sandbox's request
log), peak concurrent Nuki requests (counted around the client's HTTP calls), DynamoDB calls, the
process's CPU time.

One process on this machine shares one CPU lock (the GIL) between the C workers, the JSON parsing
of 150 codes per lock and moto; Lambda gives each of the C invocations a CPU share of its own. So
besides the wall time this reports a per-lock model for Lambda: Nuki calls x latency + DynamoDB calls
x an assumed DynamoDB latency + the measured CPU per lock scaled to a 256 MB function's CPU share.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import ROOT, in_process_environment, main
from bench.ddb_stub import InMemoryDynamoDB

in_process_environment()

LOCKS = 1000
CODES = 150
OURS = 10
LATENCY = 0.05
FIRST_LOCK = 20_000_001
DYNAMODB_LATENCY_S = 0.005  # assumed for the Lambda model: a DynamoDB call from Lambda in-region
LAMBDA_CPU_SHARE = 256 / 1769  # Lambda: 1,769 MB = one vCPU; MemorySize 256 MB


def _codes(rng: random.Random, n: int) -> list[int]:
    out: set[int] = set()
    while len(out) < n:
        code = int("".join(rng.choice("123456789") for _ in range(6)))
        if not str(code).startswith("12"):
            out.add(code)
    return sorted(out)


def _spec(locks: int, now: datetime) -> dict[str, Any]:
    rng = random.Random(7)
    spec: dict[str, Any] = {"locks": {}}
    for i in range(locks):
        lock_id = FIRST_LOCK + i
        entries = []
        for n, code in enumerate(_codes(rng, CODES)):
            if n < OURS:
                entries.append(
                    {
                        "name": f"SK R{lock_id}-{n}",
                        "code": code,
                        "from": (now - timedelta(days=1)).isoformat(),
                        "until": (now + timedelta(days=2)).isoformat(),
                        "ours": True,
                    }
                )
            else:
                entries.append({"name": f"Staff {n}", "code": code})
        spec["locks"][str(lock_id)] = entries
    return spec


def _fill_store(
    table: InMemoryDynamoDB, spec: dict[str, Any], ids: dict[str, dict[str, list[Any]]], now: datetime
) -> int:
    """Rooms, bookings, their claims and the foreign claims, straight into the table."""
    from staykey.core.models import Booking, BookingStatus, LockState, LockStatus, Room
    from staykey.store import Codec, Store

    codec = Codec()
    items = 0

    def put(item: dict[str, Any]) -> None:
        nonlocal items
        table.put(codec.dump(item))
        items += 1

    valid_from, valid_until = now - timedelta(days=1), now + timedelta(days=2)
    for lock_key, entries in spec["locks"].items():
        lock_id = int(lock_key)
        room = Room(
            roomId=f"entrance-{lock_id}",
            name=f"Entrance {lock_id}",
            smartlockIds=[lock_id],
            timezone="Europe/Berlin",
            checkInTime="15:00",
            checkOutTime="11:00",
            createdAt=now,
            updatedAt=now,
        )
        put({"pk": "ROOMS", "sk": f"ROOM#{room.roomId}", **room.model_dump(mode="json")})
        for entry in entries:
            pin = f"{entry['code']:06d}"
            nuki_id, auth_id = ids[lock_key][str(entry["code"])]
            if not entry.get("ours"):
                put(
                    {
                        "pk": f"LOCK#{lock_id}",
                        "sk": f"CODE#{pin}",
                        "owner": "foreign",
                        "authName": entry["name"],
                        "nukiId": nuki_id,
                        "smartlockId": lock_id,
                        "seenAt": now.isoformat(),
                    }
                )
                continue
            booking_id = entry["name"].removeprefix("SK ")
            booking = Booking(
                bookingId=booking_id,
                roomId=room.roomId,
                status=BookingStatus.ACTIVE,
                pin=pin,
                pinHistory=[pin],
                authName=entry["name"],
                validFrom=valid_from,
                validUntil=valid_until,
                checkIn=valid_from.isoformat(),
                checkOut=valid_until.isoformat(),
                timezone="Europe/Berlin",
                locks=[
                    LockState(
                        smartlockId=lock_id,
                        status=LockStatus.ACTIVE,
                        sentPin=pin,
                        heldPin=pin,
                        sentFrom=valid_from,
                        sentUntil=valid_until,
                        nukiId=nuki_id,
                        authId=auth_id,
                    )
                ],
                createdAt=now,
                updatedAt=now,
                provisionAt=valid_from - timedelta(hours=72),
                requestHash="bench",
            )
            put(Store.booking_item(booking))
            put({"pk": f"NAME#{booking.authName}", "sk": "NAME", "bookingId": booking_id})
            put(
                {
                    "pk": f"LOCK#{lock_id}",
                    "sk": f"CODE#{pin}",
                    "owner": "booking",
                    "bookingId": booking_id,
                    "authName": booking.authName,
                    "smartlockId": lock_id,
                }
            )
    return items


class InFlight:
    """Counts concurrent HTTP requests to Nuki (wraps requests.Session.request)."""

    def __init__(self) -> None:
        self.now = self.peak = self.total = 0
        self._lock = threading.Lock()

    def install(self) -> None:
        import requests

        request = requests.Session.request
        me = self

        def counted(session: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            with me._lock:
                me.now += 1
                me.total += 1
                me.peak = max(me.peak, me.now)
            try:
                return request(session, method, url, *args, **kwargs)
            finally:
                with me._lock:
                    me.now -= 1

        requests.Session.request = counted  # type: ignore[method-assign]


def _count_dynamodb() -> dict[str, float]:
    """DynamoDB calls by operation, and their request units ("RRU", "WRU") as DynamoDB bills them."""
    from botocore.client import BaseClient

    from bench.probe_runtime import dynamodb_units

    counts: dict[str, float] = {"RRU": 0.0, "WRU": 0.0}
    lock = threading.Lock()
    make_api_call = BaseClient._make_api_call

    def counted(self: Any, operation: str, params: Any) -> Any:
        answer = make_api_call(self, operation, params)
        if self.meta.service_model.service_name == "dynamodb":
            rru, wru = dynamodb_units(operation, params, answer)
            with lock:
                counts[operation] = counts.get(operation, 0) + 1
                counts["RRU"] += rru
                counts["WRU"] += wru
        return answer

    BaseClient._make_api_call = counted  # type: ignore[method-assign]
    return counts


def run(quick: bool) -> dict[str, Any]:
    locks = 100 if quick else LOCKS
    now = datetime.now(UTC).replace(microsecond=0)
    out: dict[str, Any] = {"locks": locks, "codes_per_lock": CODES, "ours_per_lock": OURS, "latency_s": LATENCY}
    with tempfile.TemporaryDirectory(prefix="staykey-bench-") as tmp:
        spec_file, ready = Path(tmp) / "spec.json", Path(tmp) / "ready.json"
        spec = _spec(locks, now)
        spec_file.write_text(json.dumps(spec), encoding="utf-8")
        started = time.monotonic()
        server = subprocess.Popen(
            [sys.executable, "-m", "bench.sandbox_server", "--spec", str(spec_file), "--ready", str(ready)],
            cwd=str(ROOT),
            stdin=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            while not ready.exists():
                if server.poll() is not None:
                    raise RuntimeError("the sandbox process exited")
                time.sleep(0.2)
            served = json.loads(ready.read_text(encoding="utf-8"))
            out["sandbox_fill_s"] = round(time.monotonic() - started, 1)
            table = InMemoryDynamoDB()
            started = time.monotonic()
            out["store_items"] = _fill_store(table, spec, served["ids"], now)
            out["store_fill_s"] = round(time.monotonic() - started, 1)
            out.update(_reconcile(served["url"], locks, table))
        finally:
            assert server.stdin is not None
            server.stdin.close()
            server.wait(timeout=30)
    return out


def _reconcile(url: str, locks: int, table: InMemoryDynamoDB) -> dict[str, Any]:
    import boto3
    import requests

    from local.cfn import load_template
    from local.kit.fakes import ListJobQueue, ListLockQueue, ListMailer
    from local.kit.services import engine
    from staykey.adapters.schedules import Scheduler
    from staykey.core.timeutil import SystemClock
    from staykey.nuki import NukiClient
    from staykey.services.reconciler import Reconciler
    from staykey.settings import load_settings
    from staykey.store import Store

    concurrency = int(load_template()["Parameters"]["ReconcileConcurrency"]["Default"])
    settings = load_settings()
    store = Store(settings.table_name, client=table.attach(boto3.client("dynamodb")))
    client = NukiClient(token="local-nuki-token", base_url=url, timeout=(3.05, 10.0))  # noqa: S106
    bookings, sync = engine(
        settings, store, lambda: client, Scheduler(settings), ListJobQueue(), ListMailer(), SystemClock()
    )
    rec = Reconciler(settings, store, lambda: client, lambda: bookings, lambda: sync, ListLockQueue(), SystemClock())
    http = requests.Session()
    http.trust_env = False
    http.delete(f"{url}/_sim/requests", timeout=10)
    flight = InFlight()
    flight.install()
    ddb = _count_dynamodb()
    wall, cpu = time.monotonic(), time.process_time()
    plans = rec.reconcile_locks(concurrency=concurrency)
    wall, cpu = time.monotonic() - wall, time.process_time() - cpu
    seen = http.get(f"{url}/_sim/requests", timeout=30).json()
    actions: dict[str, int] = {}
    for plan in plans:
        for action in plan.actions:
            key = f"{action.drift.value}/{action.do.value}"
            actions[key] = actions.get(key, 0) + 1
    nuki_calls = len(seen)
    rru, wru = ddb.pop("RRU"), ddb.pop("WRU")
    ddb_calls = int(sum(ddb.values()))
    per_lock_cpu = cpu / locks
    model_per_lock = (
        nuki_calls / locks * LATENCY + ddb_calls / locks * DYNAMODB_LATENCY_S + per_lock_cpu / LAMBDA_CPU_SHARE
    )
    return {
        "concurrency": concurrency,
        "locks_reconciled": len(plans),
        "codes_checked": sum(p.code_count or 0 for p in plans),
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "nuki_calls": nuki_calls,
        "nuki_calls_per_lock": round(nuki_calls / locks, 2),
        "peak_concurrent_nuki_calls": flight.peak,
        "dynamodb_calls": ddb_calls,
        "dynamodb_calls_by_operation": {k: int(v) for k, v in sorted(ddb.items())},
        "dynamodb_rru_per_lock": round(rru / locks, 2),
        "dynamodb_wru_per_lock": round(wru / locks, 2),
        "actions": dict(sorted(actions.items())),
        "cpu_ms_per_lock": round(per_lock_cpu * 1000, 1),
        "lambda_model_s_per_lock": round(model_per_lock, 3),
        "lambda_model_wall_s": round(model_per_lock * locks / concurrency, 1),
        "floor_s": round(nuki_calls * LATENCY / concurrency, 1),
    }


if __name__ == "__main__":
    main(run)
