"""The events world: the lifecycle world (moto, FakeNuki, FixedClock) plus what template.yaml adds
for events (the bus, the delivery queue and its dead-letter queue), the table's stream read as the
event source mapping reads it (filters from the template), and the three functions' handlers."""

from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from local import cfn
from local.kit.apigw import Context, api_event, response_json
from local.streams import StreamReader, matches, parse_filters
from staykey import wiring
from tests.conftest import World


def handler(name: str) -> Any:
    return importlib.import_module(f"functions.{name}.app").lambda_handler


def template_filters() -> list[dict[str, Any]]:
    props = cfn.load_template()["Resources"]["EventDispatcherFunction"]["Properties"]
    return parse_filters(props["Events"]["Outbox"]["Properties"]["FilterCriteria"])


@dataclass
class Events:
    world: World
    reader: StreamReader
    bus: str
    delivery_url: str
    dead_letter_url: str
    bus_copy_url: str  # a queue subscribed to the bus with a rule, as an AWS-native consumer would

    def pump(self) -> int:
        """Hand the new outbox records of the stream to the dispatcher; how many."""
        records = [r for r in self.reader.read() if matches(template_filters(), r)]
        if records:
            answer = handler("event_dispatcher")({"Records": records}, Context())
            assert answer == {"batchItemFailures": []}
        return len(records)

    def api(
        self, method: str, path: str, resource: str, body: Any = None, query: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        raw = None if body is None else (body if isinstance(body, str) else json.dumps(body))
        event = api_event(method, path, resource=resource, body=raw, query=query)
        response = handler("events_api")(event, Context())
        return response["statusCode"], response_json(response) if response.get("body") else None

    def events(self, after: str | None = None, limit: int | None = None) -> dict[str, Any]:
        query = {k: str(v) for k, v in (("after", after), ("limit", limit)) if v is not None}
        status, body = self.api("GET", "/events", "/events", query=query or None)
        assert status == 200, body
        return dict(body)

    def all_events(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = self.events(cursor, 100)
            out += page["items"]
            cursor = page["next"]
            if not page["hasMore"]:
                return out

    def queued(self, url: str | None = None) -> list[dict[str, Any]]:
        sqs = boto3.client("sqs")
        out = []
        while True:
            res = sqs.receive_message(QueueUrl=url or self.delivery_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            if not res.get("Messages"):
                return out
            for m in res["Messages"]:
                out.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=url or self.delivery_url, ReceiptHandle=m["ReceiptHandle"])


@pytest.fixture
def events_world(aws: dict[str, str], world: World, monkeypatch: pytest.MonkeyPatch) -> Events:
    sqs, bus_client = boto3.client("sqs"), boto3.client("events")
    table = world.store.table_name
    delivery = sqs.create_queue(QueueName=f"{table}-deliveries")["QueueUrl"]
    dead = sqs.create_queue(QueueName=f"{table}-deliveries-dlq")["QueueUrl"]
    copy = sqs.create_queue(QueueName=f"{table}-bus-copy")["QueueUrl"]
    bus = f"{table}-events"
    bus_client.create_event_bus(Name=bus)
    copy_arn = sqs.get_queue_attributes(QueueUrl=copy, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus_client.put_rule(Name="shop-bookings", EventBusName=bus, EventPattern=json.dumps({"source": ["staykey"]}))
    bus_client.put_targets(Rule="shop-bookings", EventBusName=bus, Targets=[{"Id": "copy", "Arn": copy_arn}])
    env = {
        "EVENT_BUS_NAME": bus,
        "EVENT_DELIVERY_QUEUE_URL": delivery,
        "EVENT_DELIVERY_DLQ_URL": dead,
        "WEBHOOK_SECRET_PREFIX": f"{table}/webhook-endpoints/",
        "WEBHOOK_ALLOW_LOOPBACK": "true",
        "WEBHOOK_RESOLVE": "hosts",  # never DNS from a test
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    wiring.reset()
    monkeypatch.setattr(wiring, "store", lambda: world.store)
    monkeypatch.setattr(wiring, "bookings", lambda: world.bookings)
    monkeypatch.setattr(wiring, "sync", lambda: world.sync)
    arn = boto3.client("dynamodb").describe_table(TableName=table)["Table"]["LatestStreamArn"]
    reader = StreamReader(boto3.client("dynamodbstreams"), arn, os.environ["AWS_DEFAULT_REGION"])
    return Events(world, reader, bus, delivery, dead, copy)
