"""3. Handler overhead and 5. webhook ingestion, in-process (`bench.rig`: moto, a zero-latency
sandbox, the handlers invoked directly).

3. Median and p95 of one invocation: create booking (``POST /bookings``: validation, PIN
   reservation transaction, schedule, the Nuki create, the follow-up message), get booking, and one
   ``DEVICE_LOGS`` webhook (the receiver: signature check and queueing; then the processor with that
   one record: attribution, check-in, store).
4. Webhook ingestion: `INGEST` distinct ``DEVICE_LOGS`` deliveries through the receiver, then the
   processor in batches of 10 (the template's ``BatchSize``), one container each, one thread:
   deliveries per second end to end (receiver + processor time).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bench.common import main, median, percentile
from bench.rig import CALLS, Context, Rig, api_event, rig, sign, sqs_event, webhook_event

SAMPLES = 200
INGEST = 1000
LOCKS = 10  # bookings are spread over rooms so no lock gets near its 200 codes


def _log_body(lock_id: int, nuki_id: str, auth_name: str) -> bytes:
    now = datetime.now(UTC)
    entry = {
        "id": secrets.token_hex(12),
        "smartlockId": lock_id,
        "deviceType": 4,
        "authId": nuki_id,
        "accountUserId": 0,
        "name": auth_name,
        "action": 1,
        "trigger": 255,
        "state": 0,
        "autoUnlock": False,
        "date": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        "source": 1,
    }
    return json.dumps({"feature": "DEVICE_LOGS", "smartlockLog": entry}, separators=(",", ":")).encode()


def measure(fn: Callable[[], None], n: int, warmup: int = 3) -> dict[str, Any]:
    """Median and p95 of `n` invocations: all of it, and the handler's own part (without the time
    inside AWS calls, i.e. moto, and Nuki calls); the AWS and Nuki calls one invocation makes."""
    for _ in range(warmup):
        fn()
    total, own, aws, nuki, calls = [], [], [], [], []
    for _ in range(n):
        CALLS.reset()
        started = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - started
        total.append(elapsed * 1000)
        own.append((elapsed - CALLS.aws_seconds - CALLS.nuki_seconds) * 1000)
        aws.append(CALLS.aws_seconds * 1000)
        nuki.append(CALLS.nuki)
        calls.append(dict(CALLS.aws))
    per_call = dict(calls[len(calls) // 2])
    return {
        "n": n,
        "median_ms": round(median(total), 2),
        "p95_ms": round(percentile(total, 95), 2),
        "own_median_ms": round(median(own), 2),
        "own_p95_ms": round(percentile(own, 95), 2),
        "aws_median_ms": round(median(aws), 2),
        "aws_calls": sum(per_call.values()),
        "aws_calls_by_operation": per_call,
        "nuki_calls": int(median(nuki)),
    }


def _active_booking(r: Rig) -> tuple[int, str, str]:
    """A booking whose code is confirmed on its lock: (lock, Nuki id, auth name)."""
    from staykey import wiring

    booking = r.create(r.booking_body("room-0", "B-ACTIVE"))
    lock_id = booking["locks"][0]["smartlockId"]
    r.sandbox.sync(lock_id)
    wiring.sync().run_job({"bookingId": "B-ACTIVE", "seq": wiring.store().get_booking("B-ACTIVE").checkSeq})
    stored = wiring.store().get_booking("B-ACTIVE")
    assert stored is not None
    assert stored.status.value == "active", stored
    nuki_id = stored.locks[0].nukiId
    assert nuki_id
    return lock_id, nuki_id, stored.authName


def run(quick: bool) -> dict[str, Any]:
    n = 40 if quick else SAMPLES
    ingest = 200 if quick else INGEST
    out: dict[str, Any] = {"samples": n}
    with rig() as r:
        for i in range(LOCKS):
            r.add_room(f"room-{i}", [17_100_000 + i])
        create = r.handler("booking_created")
        get = r.handler("bookings_api")
        receiver = r.handler("nuki_webhook")
        processor = r.handler("webhook_processor")
        queue_arn = "arn:aws:sqs:eu-central-1:123456789012:staykey-bench-webhooks"
        rooms = iter(range(10**9))

        def create_one() -> None:
            body = r.booking_body(f"room-{next(rooms) % LOCKS}")
            answer = create(api_event("POST", "/bookings", "/bookings", body), Context())
            assert answer["statusCode"] == 201, answer

        out["create_booking"] = measure(create_one, n)

        lock_id, nuki_id, auth_name = _active_booking(r)
        get_event = api_event("GET", "/bookings/B-ACTIVE", "/bookings/{bookingId}")

        def get_one() -> None:
            answer = get(get_event, Context())
            assert answer["statusCode"] == 200, answer

        out["get_booking"] = measure(get_one, n)

        def webhook_one() -> None:
            raw = _log_body(lock_id, nuki_id, auth_name)
            answer = receiver(webhook_event(raw, sign(raw)), Context())
            assert answer["statusCode"] == 200, answer
            result = processor(sqs_event([raw.decode()], queue_arn), Context())
            assert result == {"batchItemFailures": []}, result

        out["device_logs_webhook"] = measure(webhook_one, n)

        # Ingestion: the receiver for every delivery, then the processor 10 records at a time.
        bodies = [_log_body(lock_id, nuki_id, auth_name) for _ in range(ingest)]
        events = [webhook_event(raw, sign(raw)) for raw in bodies]
        from staykey import wiring

        before = len(wiring.store().list_activity("ACT#BOOKING#B-ACTIVE", 100_000))
        CALLS.reset()
        started = time.perf_counter()
        for event in events:
            assert receiver(event, Context())["statusCode"] == 200
        received = time.perf_counter()
        for i in range(0, ingest, 10):
            batch = [raw.decode() for raw in bodies[i : i + 10]]
            assert processor(sqs_event(batch, queue_arn), Context()) == {"batchItemFailures": []}
        done = time.perf_counter()
        own = (done - started) - CALLS.aws_seconds - CALLS.nuki_seconds
        stored = len(wiring.store().list_activity("ACT#BOOKING#B-ACTIVE", 100_000)) - before
        out["ingestion"] = {
            "deliveries": ingest,
            "stored": stored,
            "aws_calls_per_delivery": round(sum(CALLS.aws.values()) / ingest, 2),
            "own_per_s": round(ingest / own, 1),
            "receiver_per_s": round(ingest / (received - started), 1),
            "processor_per_s": round(ingest / (done - received), 1),
            "end_to_end_per_s": round(ingest / (done - started), 1),
        }
    return out


if __name__ == "__main__":
    main(run)
