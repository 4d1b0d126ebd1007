"""The in-process rig for handler benchmarks: AWS is moto (``mock_aws``, built from template.yaml),
Nuki is the sandbox on a free port with zero latency, and the handlers are the template's modules,
invoked directly with API Gateway and SQS events, as Lambda would invoke them.

What this measures is the handlers' own work plus moto standing in for DynamoDB, SQS, Scheduler,
SES and Secrets Manager (moto's time counts in, so AWS calls look slower or faster than they are).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import in_process_environment

in_process_environment()

from local.kit import apigw  # noqa: E402 - after the environment
from local.kit.inprocess_aws import create_local_aws  # noqa: E402

NUKI_TOKEN = "local-nuki-token"  # noqa: S105 - the sandbox's documented local token
WEBHOOK_SECRET = "bench-webhook-secret-0123456789abcdef"  # noqa: S105 - a local test value


class Context:
    """The parts of a Lambda context that Powertools reads."""

    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:eu-central-1:123456789012:function:staykey-bench"

    def __init__(self, function_name: str = "staykey-bench") -> None:
        self.function_name = function_name
        self.aws_request_id = str(uuid.uuid4())

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


def api_event(method: str, path: str, resource: str, body: Any = None) -> dict[str, Any]:
    """A REST proxy event as the tests build it (path parameters come from `resource`)."""
    return apigw.api_event(method, path, body, resource=resource)


def webhook_event(raw: bytes, signature: str) -> dict[str, Any]:
    headers = {"Content-Type": "application/json; charset=UTF-8", "X-Nuki-Signature-SHA256": signature}
    return {
        "resource": "/webhooks/nuki",
        "path": "/webhooks/nuki",
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "pathParameters": None,
        "requestContext": {"resourcePath": "/webhooks/nuki", "httpMethod": "POST", "requestId": str(uuid.uuid4())},
        "body": base64.b64encode(raw).decode(),
        "isBase64Encoded": True,
    }


def sqs_event(bodies: list[str], queue_arn: str) -> dict[str, Any]:
    now_ms = str(int(datetime.now(UTC).timestamp() * 1000))
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "bench",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": now_ms,
                    "SenderId": "AROAEXAMPLE:staykey-nuki-webhook",
                    "ApproximateFirstReceiveTimestamp": now_ms,
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "eu-central-1",
            }
            for body in bodies
        ]
    }


def sign(raw: bytes) -> str:
    from local.nuki_sandbox import sign as sandbox_sign

    return sandbox_sign(WEBHOOK_SECRET, raw)


def fast_moto_query() -> None:
    """moto 5.2's Table.query looks at every item of the table, sorted, for each query (and its
    TransactWriteItems deep-copies the table); DynamoDB reads one partition. With thousands of
    items that makes moto, not the code under test, the figure. This makes a table query read its
    partition only (index queries are left as they are). Same results, partition-sized cost."""
    import threading

    from moto.dynamodb.models.table import Table

    if getattr(Table.query, "_bench", False):
        return
    local = threading.local()
    all_items, query = Table.all_items, Table.query

    def partition_items(self: Any) -> Any:
        hash_key = getattr(local, "hash_key", None)
        if hash_key is None:
            return all_items(self)
        part = dict.get(self.items, hash_key)
        if part is None:
            return []
        return list(part.values()) if self.range_key_attr else [part]

    def partition_query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        local.hash_key = hash_key if index_name is None else None
        try:
            return query(self, hash_key, *args, **kwargs)
        finally:
            local.hash_key = None

    partition_query._bench = True  # type: ignore[attr-defined]
    Table.all_items = partition_items  # type: ignore[method-assign]
    Table.query = partition_query  # type: ignore[method-assign]


@dataclass
class Calls:
    """AWS (botocore, moto behind it) and Nuki (HTTP to the sandbox) calls: how many, how long."""

    aws: dict[str, int] = field(default_factory=dict)
    aws_seconds: float = 0.0
    nuki: int = 0
    nuki_seconds: float = 0.0

    def reset(self) -> None:
        self.aws.clear()
        self.aws_seconds = self.nuki_seconds = 0.0
        self.nuki = 0


CALLS = Calls()


def _count_calls() -> None:
    """Wrap botocore's API call and requests' Session.request once, to count into CALLS."""
    import time

    import requests
    from botocore.client import BaseClient

    if getattr(BaseClient._make_api_call, "_bench", False):
        return
    make_api_call = BaseClient._make_api_call
    request = requests.Session.request

    def counted_api_call(self: Any, operation: str, params: Any) -> Any:
        started = time.perf_counter()
        try:
            return make_api_call(self, operation, params)
        finally:
            CALLS.aws_seconds += time.perf_counter() - started
            key = f"{self.meta.service_model.service_name}.{operation}"
            CALLS.aws[key] = CALLS.aws.get(key, 0) + 1

    def counted_request(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return request(self, method, url, *args, **kwargs)
        finally:
            CALLS.nuki_seconds += time.perf_counter() - started
            CALLS.nuki += 1

    counted_api_call._bench = True  # type: ignore[attr-defined]
    BaseClient._make_api_call = counted_api_call  # type: ignore[method-assign]
    requests.Session.request = counted_request  # type: ignore[method-assign]


@dataclass
class Rig:
    nuki_url: str
    sandbox: Any  # local.nuki_sandbox.NukiSandbox
    urls: dict[str, str]
    rooms: dict[str, list[int]] = field(default_factory=dict)
    _n: int = 0

    def handler(self, name: str) -> Any:
        import importlib

        return importlib.import_module(f"functions.{name}.app").lambda_handler

    def add_room(self, room_id: str, locks: list[int]) -> None:
        for lock_id in locks:
            self.sandbox.add_smartlock(smartlock_id=lock_id, name=f"Lock {lock_id}")
        event = api_event(
            "PUT",
            f"/rooms/{room_id}",
            "/rooms/{roomId}",
            {"name": f"Room {room_id}", "smartlockIds": locks, "timezone": "Europe/Berlin"},
        )
        answer = self.handler("rooms_api")(event, Context())
        assert answer["statusCode"] in (200, 201), answer
        self.rooms[room_id] = locks

    def booking_body(self, room_id: str, booking_id: str | None = None) -> dict[str, Any]:
        self._n += 1
        start = datetime.now(UTC) - timedelta(minutes=5)
        return {
            "bookingId": booking_id or f"B-{self._n:06d}",
            "roomId": room_id,
            "guest": {"name": "Ada Lovelace", "email": "ada@example.org", "locale": "en"},
            "checkIn": start.isoformat(timespec="seconds"),
            "checkOut": (start + timedelta(days=2)).isoformat(timespec="seconds"),
        }

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        answer = self.handler("booking_created")(api_event("POST", "/bookings", "/bookings", body), Context())
        assert answer["statusCode"] in (200, 201), answer
        return dict(json.loads(answer["body"]))


def _create_aws() -> dict[str, str]:
    return create_local_aws(
        os.environ["TABLE_NAME"],
        os.environ["SCHEDULE_GROUP_NAME"],
        os.environ["SENDER_EMAIL"],
        NUKI_TOKEN,
        WEBHOOK_SECRET,
    )


_MOTO_PATCHED: list[bool] = []


def _moto_as_the_local_stack_has_it() -> None:
    """Two of moto's own costs the local stack's server removes (local/moto_server.py), removed here
    too, once per process: every model instance moto makes is kept for its dashboard, and every
    TransactWriteItems deep-copies the whole table to roll back. Together each transaction kept a
    copy of the table for good: the handler benchmark's 1,000 webhooks (two transactions each) grew
    the process past 5 GB in three minutes and slowed every write with the table's size, measuring
    moto, not StayKey. Same answers; the items a transaction names are what it saves and restores."""
    if _MOTO_PATCHED:
        return
    from local.moto_server import cheap_transaction_rollback, untrack_model_instances

    untrack_model_instances()
    cheap_transaction_rollback()
    _MOTO_PATCHED.append(True)


@contextmanager
def rig(sync_delay: float = 0.0, latency: float = 0.0) -> Iterator[Rig]:
    """moto + a sandbox + the environment the handlers read; the webhook counted as registered."""
    from moto import mock_aws

    from local.nuki_sandbox import start_sandbox

    _count_calls()
    _moto_as_the_local_stack_has_it()
    fast_moto_query()
    with start_sandbox(port=0, token=NUKI_TOKEN, sync_delay=sync_delay, latency=latency) as sandbox, mock_aws():
        urls = _create_aws()
        os.environ.update(
            {
                "NUKI_API_URL": sandbox.url,
                "LIFECYCLE_QUEUE_URL": urls["lifecycle"],
                "WEBHOOK_QUEUE_URL": urls["webhooks"],
            }
        )
        from staykey import wiring

        wiring.reset()
        # As after tools.register_webhook: the lifecycle reads back on the webhook schedule.
        wiring.store().put_config("WEBHOOK", id=1, url="https://example.org/webhooks/nuki")
        try:
            yield Rig(nuki_url=sandbox.url, sandbox=sandbox.sandbox, urls=urls)
        finally:
            wiring.reset()
