"""1. Nuki calls per booking, 2. time from POST /bookings to active, and the workload that 7. prices,
all on the local stack (`local.stack`: moto server, the Nuki sandbox, the template's functions behind
the local API Gateway and dispatcher), with the function defaults of the template.

The stack runs twice, side by side: with the webhook registered (as `make local` starts it) and without (the
polling/read-back configuration of an account without Nuki's Advanced API). The log poller's and
the reconciler's rate events are off (``LOCAL_RATE_EVENTS=off``): they run on schedules, not per
booking, and would add their calls to the count. The runtime is `bench.probe_runtime`, which
records every invocation (function, duration, AWS calls, DynamoDB units, log bytes). Every HTTP
function is called once first (`warm_up`), so the priced durations are mostly warm ones.

1. For `BOOKINGS` bookings at once, each on a room of its own with one lock: POST /bookings (the
   stay starts now), wait until ``active``, one GET /bookings (the shop's read), `ENTRIES` keypad
   entries by the guest, POST /bookings/{id}/checkout, wait until ``revoked``; then wait until
   every queue is empty (the last delayed read-backs have run) and count the Nuki API requests the
   sandbox saw (``GET /_sim/requests``). Then, once, the forum thread's method on the same sandbox
   (see `naive_booking`).
2. For each sync delay, `REPS` bookings one after the other: the time from sending POST /bookings to
   the booking being ``active`` in the table (polled every 20 ms straight from the table, not
   through the API, so the measurement adds no invocations).
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from bench.common import main, median

BOOKINGS = 4
ENTRIES = 4
DELAYS = (0.5, 2.0, 10.0)
REPS = {0.5: 5, 2.0: 3, 10.0: 2}
CALLS_SYNC_DELAY = 2.0  # the local stack's default NUKI_SIM_SYNC_DELAY_SECONDS
POLL = 0.02

_lock_ids = iter(range(19_000_001, 19_999_999))


@contextmanager
def probed_stack(webhooks: bool, probe_file: Path) -> Iterator[Any]:
    """The local stack on free ports with `bench.probe_runtime` as its runtime."""
    import local.stack as stack_module
    from local.stack import LocalStack, StackConfig

    real_spawn = stack_module.spawn

    def spawn(args: list[str], env: Any, stdout: Any, stderr: Any) -> Any:
        if args[1:3] == ["-m", "local.runtime"]:
            args = [args[0], "-m", "bench.probe_runtime", *args[3:]]
        return real_spawn(args, env, stdout, stderr)

    config = StackConfig.from_env(
        environ={},
        gateway_port=0,
        nuki_port=0,
        aws_port=0,
        sync_delay=CALLS_SYNC_DELAY,
        register_webhook=webhooks,
        log_dir=Path(os.environ["BENCH_STACK_LOGS"]) / ("webhooks" if webhooks else "polling")
        if os.environ.get("BENCH_STACK_LOGS")
        else None,
        # One container per function, so the warm-up warms them all.
        env={"LOCAL_RATE_EVENTS": "off", "LOCAL_FUNCTION_CONCURRENCY": "1", "BENCH_PROBE_FILE": str(probe_file)},
    )
    stack_module.spawn = spawn  # type: ignore[assignment]
    try:
        with LocalStack(config) as stack:
            yield stack
    finally:
        stack_module.spawn = real_spawn  # type: ignore[assignment]


class Driver:
    """The shop (HTTP API), the guest and the setup (sandbox control routes), the table (read only)."""

    def __init__(self, stack: Any) -> None:
        from local.aws import client
        from staykey.store import Store

        self.stack = stack
        self.http = requests.Session()
        self.http.trust_env = False
        self.headers = {"x-api-key": stack.config.api_key}
        table = next(iter(stack.resources.of_type("AWS::DynamoDB::Table").values()))
        self.store = Store(table, client=client("dynamodb", stack.aws_endpoint, stack.config.region))
        self.sqs = client("sqs", stack.aws_endpoint, stack.config.region)

    def sim(self, method: str, path: str, body: Any = None) -> Any:
        r = self.http.request(method, self.stack.nuki_url + path, json=body, timeout=30)
        assert r.status_code < 300, (path, r.status_code, r.text)
        return r.json() if r.content else None

    def api(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        r = self.http.request(method, self.stack.gateway_url + path, json=body, headers=self.headers, timeout=60)
        assert r.status_code < 300, (path, r.status_code, r.text)
        return dict(r.json())

    def room(self) -> tuple[str, int]:
        lock_id = next(_lock_ids)
        self.sim("POST", "/_sim/smartlocks", {"smartlockId": lock_id, "name": f"Lock {lock_id}"})
        room_id = f"room-{lock_id}"
        body = {"name": f"Room {lock_id}", "smartlockIds": [lock_id], "timezone": "Europe/Berlin"}
        self.api("PUT", f"/rooms/{room_id}", body)
        return room_id, lock_id

    def booking_body(self, room_id: str) -> dict[str, Any]:
        start = datetime.now(UTC)
        return {
            "bookingId": f"B-{uuid.uuid4().hex[:12]}",
            "roomId": room_id,
            "guest": {"name": "Ada Lovelace", "email": "ada@example.org", "locale": "en"},
            "checkIn": start.isoformat(timespec="seconds"),
            "checkOut": (start + timedelta(days=2)).isoformat(timespec="seconds"),
        }

    def wait_status(self, booking_id: str, status: str, timeout: float = 120.0) -> float:
        """Poll the table until the booking has `status`; the monotonic time it was first seen."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            booking = self.store.get_booking(booking_id)
            if booking is not None and booking.status.value == status:
                return time.monotonic()
            if booking is not None and booking.status.value == "failed":
                raise AssertionError(f"{booking_id} failed: {booking.statusReason}")
            time.sleep(POLL)
        raise AssertionError(f"{booking_id}: not {status} within {timeout}s")

    def queues_empty(self) -> bool:
        names = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")
        for name, url in self.stack.resources.queue_urls.items():
            if "DeadLetter" in name:
                continue
            attrs = self.sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=[*names, "ApproximateNumberOfMessagesDelayed"]
            )
            if any(int(attrs["Attributes"].get(n, 0)) for n in (*names, "ApproximateNumberOfMessagesDelayed")):
                return False
        return True

    def quiesce(self, timeout: float = 1200.0) -> float:
        """Wait until no queue holds a message (visible, in flight or delayed) twice in a row."""
        started = time.monotonic()
        calm = 0
        while time.monotonic() - started < timeout:
            calm = calm + 1 if self.queues_empty() else 0
            if calm >= 3:
                return time.monotonic() - started
            time.sleep(0.5)
        raise AssertionError("the stack did not come to rest")

    def nuki_requests(self) -> list[dict[str, Any]]:
        return list(self.sim("GET", "/_sim/requests"))


def _templated(path: str) -> str:
    parts = [
        "{id}" if p.isdigit() or (len(p) == 24 and all(c in "0123456789abcdef" for c in p)) else p
        for p in path.split("/")
    ]
    return "/".join(parts)


def _by_route(requests_seen: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in requests_seen:
        key = f"{r['method']} {_templated(r['path'])}"
        out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items()))


def _stays(d: Driver, rooms: list[tuple[str, int]], entries: int) -> list[dict[str, float]]:
    """One stay per room, all at once; (seconds to active, seconds from checkout to revoked) each."""
    timings: list[dict[str, float]] = []
    errors: list[BaseException] = []

    def stay(room_id: str, lock_id: int) -> None:
        try:
            body = d.booking_body(room_id)
            sent = time.monotonic()
            booking = d.api("POST", "/bookings", body)
            active = d.wait_status(body["bookingId"], "active")
            d.api("GET", f"/bookings/{body['bookingId']}")
            for _ in range(entries):
                assert d.sim("POST", f"/_sim/smartlocks/{lock_id}/keypad", {"code": int(booking["pin"])})["success"]
            ended = time.monotonic()
            d.api("POST", f"/bookings/{body['bookingId']}/checkout")
            revoked = d.wait_status(body["bookingId"], "revoked")
            timings.append({"to_active": active - sent, "to_revoked": revoked - ended})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=stay, args=room) for room in rooms]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return timings


def happy_path(d: Driver, probe_file: Path) -> dict[str, Any]:
    """Measurement 1 (and the workload priced by 7): BOOKINGS stays at once on a fresh stack, then
    every delayed follow-up they queued (read-backs, the guest email's lease) until the stack rests."""
    rooms = [d.room() for _ in range(BOOKINGS)]
    d.sim("DELETE", "/_sim/requests")
    offset = probe_file.stat().st_size
    timings = _stays(d, rooms, ENTRIES)
    rest = d.quiesce()
    seen = d.nuki_requests()
    records = [json.loads(line) for line in probe_file.read_text(encoding="utf-8")[offset:].splitlines() if line]
    return {
        "bookings": BOOKINGS,
        "keypad_entries_per_booking": ENTRIES,
        "nuki_calls_total": len(seen),
        "nuki_calls_per_booking": len(seen) / BOOKINGS,
        "nuki_calls_by_route": _by_route(seen),
        "median_to_active_s": round(median([t["to_active"] for t in timings]), 2),
        "median_to_revoked_s": round(median([t["to_revoked"] for t in timings]), 2),
        "waited_for_rest_s": round(rest, 1),
        "probe": records,
    }


def naive_booking(d: Driver) -> dict[str, Any]:
    """The forum thread's method, written with plain requests against the same sandbox: create the
    code with PUT /smartlock/{id}/auth, poll GET /smartlock/{id}/auth every second until a code
    with our name shows up, and delete it with DELETE /smartlock/{id}/auth/{id} at the end (not
    checked: nothing in the thread reads it back)."""
    lock_id = next(_lock_ids)
    d.sim("POST", "/_sim/smartlocks", {"smartlockId": lock_id, "name": f"Lock {lock_id}"})
    d.sim("DELETE", "/_sim/requests")
    base = d.stack.nuki_url
    nuki = requests.Session()
    nuki.trust_env = False
    nuki.headers["Authorization"] = f"Bearer {d.stack.config.nuki_token}"
    name = f"Guest {uuid.uuid4().hex[:8]}"
    start = datetime.now(UTC)
    sent = time.monotonic()
    r = nuki.put(
        f"{base}/smartlock/{lock_id}/auth",
        json={
            "name": name,
            "type": 13,
            "code": 483726,
            "allowedFromDate": start.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "allowedUntilDate": (start + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "allowedWeekDays": 127,
            "remoteAllowed": False,
        },
        timeout=10,
    )
    assert r.status_code == 204, r.text
    auth_id = None
    while auth_id is None:
        time.sleep(1.0)
        listed = nuki.get(f"{base}/smartlock/{lock_id}/auth", timeout=10).json()
        auth_id = next((a["id"] for a in listed if a.get("name") == name), None)
    found = time.monotonic() - sent
    r = nuki.delete(f"{base}/smartlock/{lock_id}/auth/{auth_id}", timeout=10)
    assert r.status_code == 204, r.text
    seen = d.nuki_requests()
    return {"nuki_calls": len(seen), "nuki_calls_by_route": _by_route(seen), "seconds_to_seen": round(found, 2)}


def time_to_active(d: Driver, quick: bool) -> dict[str, Any]:
    """Measurement 2: POST /bookings to active, per sync delay."""
    out: dict[str, Any] = {}
    for delay in DELAYS:
        d.sim("PUT", "/_sim/config", {"syncDelaySeconds": delay})
        samples = []
        for _ in range(1 if quick else REPS[delay]):
            room_id, _lock = d.room()
            body = d.booking_body(room_id)
            sent = time.monotonic()
            d.api("POST", "/bookings", body)
            samples.append(d.wait_status(body["bookingId"], "active", timeout=delay * 3 + 60) - sent)
        m = median(samples)
        out[str(delay)] = {
            "delay_s": delay,
            "samples_s": [round(s, 3) for s in samples],
            "median_s": round(m, 3),
            "ratio": round(m / delay, 2),
            "goal_s": round(1.2 * delay + 0.5, 2),
            "within_goal": m <= 1.2 * delay + 0.5,
            "spread_s": round(statistics.pstdev(samples), 3) if len(samples) > 1 else 0.0,
        }
    d.sim("PUT", "/_sim/config", {"syncDelaySeconds": CALLS_SYNC_DELAY})
    return out


def warm_up(d: Driver) -> None:
    """Every HTTP function once, on routes that read the table and answer an error (no booking is
    made, so nothing is left queued): their containers, clients and secrets are warm."""
    base, key = d.stack.gateway_url, d.headers
    d.http.get(f"{base}/health", timeout=30)
    d.http.get(f"{base}/bookings/B-none", headers=key, timeout=30)
    d.http.post(f"{base}/bookings/B-none/checkout", headers=key, timeout=30)
    d.http.post(f"{base}/bookings", json=d.booking_body("room-none"), headers=key, timeout=30)
    d.http.post(f"{base}/webhooks/nuki", data=b"{}", timeout=30)


def run(quick: bool) -> dict[str, Any]:
    global BOOKINGS
    if quick:
        BOOKINGS = 2
    from contextlib import ExitStack

    from bench.common import in_process_environment

    in_process_environment()
    out: dict[str, Any] = {"sync_delay_for_calls_s": CALLS_SYNC_DELAY}
    modes = {"webhooks": True, "polling": False}
    with tempfile.TemporaryDirectory(prefix="staykey-bench-") as tmp, ExitStack() as stacks:
        drivers: dict[str, Driver] = {}
        probes: dict[str, Path] = {}
        for mode, webhooks in modes.items():
            probes[mode] = Path(tmp) / f"probe-{mode}.jsonl"
            probes[mode].touch()
            started = time.monotonic()
            stack = stacks.enter_context(probed_stack(webhooks, probes[mode]))
            drivers[mode] = Driver(stack)
            out[mode] = {"webhook": stack.webhook, "stack_start_s": round(time.monotonic() - started, 1)}
            warm_up(drivers[mode])
        # 1 on both stacks at once: most of it is waiting for the last delayed follow-ups.
        errors: list[BaseException] = []

        def one(mode: str) -> None:
            try:
                out[mode]["happy_path"] = happy_path(drivers[mode], probes[mode])
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=one, args=(mode,)) for mode in modes]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        out["naive"] = naive_booking(drivers["webhooks"])
        # 2, one stack after the other (the other one idles).
        for mode in modes:
            out[mode]["time_to_active"] = time_to_active(drivers[mode], quick)
    return out


if __name__ == "__main__":
    main(run)
