"""The dispatcher does what Scheduler, Lambda's async invocation and SQS event-source mappings do."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from local.aws import LocalResources, client
from local.dispatcher import Dispatcher, DispatcherConfig, at_instant, rate_seconds
from local.lambdas import Functions


class Recorder:
    def __init__(self, answer: Callable[[Any], Any] = lambda event: None) -> None:
        self.events: list[Any] = []
        self.answer = answer
        self._lock = threading.Lock()

    def __call__(self, event: Any, context: Any) -> Any:
        with self._lock:
            self.events.append(event)
        return self.answer(event)


def wait_for(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.fixture
def dispatcher(functions: Functions) -> Iterator[Dispatcher]:
    lines: list[str] = []
    d = Dispatcher(
        functions,
        DispatcherConfig(
            poll_interval=0.05, schedule_poll_interval=0.05, async_retry_delays=(0.05,), rate_events=False
        ),
        lines.append,
    )
    yield d
    d.stop()


def _at(moment: datetime) -> str:
    return f"at({moment.replace(tzinfo=None).isoformat(timespec='seconds')})"


def _schedule(resources: LocalResources, name: str, expression: str, target_arn: str, **kw: Any) -> None:
    client("scheduler", resources.endpoint).create_schedule(
        Name=name,
        GroupName=resources.schedule_groups[0],
        ScheduleExpression=expression,
        ScheduleExpressionTimezone=kw.pop("timezone", "UTC"),
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={
            "Arn": target_arn,
            "RoleArn": "arn:aws:iam::123456789012:role/scheduler",
            "Input": json.dumps(kw.pop("payload", {"action": "provision", "bookingId": name})),
            "RetryPolicy": {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400},
            "DeadLetterConfig": {"Arn": resources.queue_arn("ScheduleDeadLetterQueue")},
        },
        ActionAfterCompletion="DELETE",
        **kw,
    )


def _schedule_names(resources: LocalResources) -> set[str]:
    found = client("scheduler", resources.endpoint).list_schedules(GroupName=resources.schedule_groups[0])
    return {s["Name"] for s in found["Schedules"]}


def _drain(resources: LocalResources, queue: str) -> list[dict[str, Any]]:
    sqs = client("sqs", resources.endpoint)
    got = sqs.receive_message(
        QueueUrl=resources.queue_urls[queue], MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )
    return list(got.get("Messages", []))


def test_expressions() -> None:
    assert rate_seconds("rate(5 minutes)") == 300
    assert rate_seconds("rate(1 hour)") == 3600
    assert rate_seconds("cron(0 * * * ? *)") is None
    assert at_instant("at(2026-12-01T15:00:00)", "Europe/Berlin") == datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
    assert at_instant("at(2026-12-01T15:00:00)", None) == datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


def test_due_schedule_invokes_its_target_with_its_input_and_deletes_itself(
    resources: LocalResources, functions: Functions, dispatcher: Dispatcher
) -> None:
    provision = Recorder()
    functions["ProvisionFunction"].use_handler(provision)
    now = datetime.now(UTC)
    arn = resources.function_arn("ProvisionFunction")
    _schedule(resources, "due", _at(now - timedelta(seconds=1)), arn)
    _schedule(resources, "later", _at(now + timedelta(hours=1)), arn)
    # Due by its wall clock in UTC, but read in New York it is hours away.
    _schedule(resources, "new-york", _at(now - timedelta(seconds=1)), arn, timezone="America/New_York")
    dispatcher.start()

    wait_for(lambda: provision.events)
    assert provision.events == [{"action": "provision", "bookingId": "due"}]
    wait_for(lambda: "due" not in _schedule_names(resources))
    time.sleep(0.3)
    assert _schedule_names(resources) == {"later", "new-york"}
    assert len(provision.events) == 1


def test_a_failing_target_is_retried_as_lambda_async_invocation_then_dead_lettered(
    resources: LocalResources, functions: Functions, dispatcher: Dispatcher
) -> None:
    def boom(event: Any) -> Any:
        raise RuntimeError("lock service down")

    checkout = Recorder(boom)
    functions["CheckoutFunction"].use_handler(checkout)
    _schedule(
        resources,
        "expire",
        _at(datetime.now(UTC) - timedelta(seconds=1)),
        resources.function_arn("CheckoutFunction"),
        payload={"action": "expire", "bookingId": "B-1"},
    )
    dispatcher.start()

    # EventInvokeConfig.MaximumRetryAttempts is 2: three attempts, then the function's DLQ.
    messages = wait_for(lambda: _drain(resources, "ScheduleDeadLetterQueue"))
    assert len(checkout.events) == 3
    assert json.loads(messages[0]["Body"]) == {"action": "expire", "bookingId": "B-1"}
    assert messages[0]["MessageAttributes"]["ErrorMessage"]["StringValue"] == "lock service down"


def test_a_target_that_is_no_function_goes_to_the_schedule_dead_letter_queue(
    resources: LocalResources, dispatcher: Dispatcher
) -> None:
    _schedule(
        resources,
        "orphan",
        _at(datetime.now(UTC) - timedelta(seconds=1)),
        f"arn:aws:lambda:eu-central-1:123456789012:function:{resources.stack_name}-gone",
    )
    dispatcher.start()
    messages = wait_for(lambda: _drain(resources, "ScheduleDeadLetterQueue"))
    assert messages[0]["MessageAttributes"]["ERROR_CODE"]["StringValue"] == "ResourceNotFoundException"


def test_queue_batches_honour_reported_item_failures_and_redrive(
    resources: LocalResources, functions: Functions, dispatcher: Dispatcher
) -> None:
    def fail_some(event: Any) -> Any:
        failures = [{"itemIdentifier": r["messageId"]} for r in event["Records"] if json.loads(r["body"]).get("fail")]
        return {"batchItemFailures": failures}

    provision = Recorder(fail_some)
    functions["ProvisionFunction"].use_handler(provision)
    dispatcher.config.sqs_retry_visibility = 0  # failed records are visible again at once
    sqs = client("sqs", resources.endpoint)
    url = resources.queue_urls["LifecycleQueue"]
    for body in ({"n": 1}, {"n": 2, "fail": True}, {"n": 3}):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))
    dispatcher.start()

    # maxReceiveCount 5: the failing record is delivered five times, then moto moves it to the DLQ.
    dead = wait_for(lambda: _drain(resources, "LifecycleDeadLetterQueue"))
    assert json.loads(dead[0]["Body"]) == {"n": 2, "fail": True}
    bodies = [json.loads(r["body"]) for event in provision.events for r in event["Records"]]
    assert bodies.count({"n": 1}) == 1
    assert bodies.count({"n": 3}) == 1
    assert bodies.count({"n": 2, "fail": True}) == 5
    record = provision.events[0]["Records"][0]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == resources.queue_arn("LifecycleQueue")
    assert {"messageId", "receiptHandle", "body", "attributes", "md5OfBody", "awsRegion"} <= set(record)
    assert record["attributes"]["ApproximateReceiveCount"] == "1"


def test_delayed_messages_wait_for_their_delay(
    resources: LocalResources, functions: Functions, dispatcher: Dispatcher
) -> None:
    provision = Recorder()
    functions["ProvisionFunction"].use_handler(provision)
    sent = time.monotonic()
    client("sqs", resources.endpoint).send_message(
        QueueUrl=resources.queue_urls["LifecycleQueue"], MessageBody="{}", DelaySeconds=1
    )
    dispatcher.start()
    wait_for(lambda: provision.events)
    assert time.monotonic() - sent >= 0.9


def _observed_scheduler(resources: LocalResources, dispatcher: Dispatcher) -> Any:
    """A scheduler client from a session of its own whose calls the dispatcher observes, as the
    runtime has it observe the functions' boto3 default session."""
    import boto3

    from local.aws import LOCAL_CREDENTIALS

    session = boto3.session.Session(
        aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=resources.region,
    )
    dispatcher.observe(session.events)
    return session.client("scheduler", endpoint_url=resources.endpoint)


def test_schedules_written_after_start_are_heard_from_the_call_and_never_listed_again(
    resources: LocalResources, functions: Functions, dispatcher: Dispatcher
) -> None:
    """Nothing polls work that grows with the season: after the one listing at start the
    dispatcher learns of schedules from the writes themselves and reads only those."""
    provision = Recorder()
    functions["ProvisionFunction"].use_handler(provision)
    scheduler = _observed_scheduler(resources, dispatcher)
    calls: list[str] = []
    dispatcher.scheduler.meta.events.register("before-call.scheduler.*", lambda model, **_: calls.append(model.name))
    dispatcher.start()
    wait_for(lambda: "ListSchedules" in calls)
    arn = resources.function_arn("ProvisionFunction")
    group = resources.schedule_groups[0]

    def create(name: str, when: datetime) -> None:
        scheduler.create_schedule(
            Name=name,
            GroupName=group,
            ScheduleExpression=_at(when),
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={"Arn": arn, "RoleArn": "arn:aws:iam::123456789012:role/s", "Input": json.dumps({"n": name})},
            ActionAfterCompletion="DELETE",
        )

    # A schedule due in a second, and one changed after it was written
    create("soon", datetime.now(UTC) + timedelta(seconds=1))
    create("moved", datetime.now(UTC) + timedelta(hours=5))
    scheduler.update_schedule(
        Name="moved",
        GroupName=group,
        ScheduleExpression=_at(datetime.now(UTC) - timedelta(seconds=1)),
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": arn, "RoleArn": "arn:aws:iam::123456789012:role/s", "Input": json.dumps({"n": "moved"})},
        ActionAfterCompletion="DELETE",
    )
    # And one deleted before it was due
    create("dropped", datetime.now(UTC) + timedelta(seconds=1))
    scheduler.delete_schedule(Name="dropped", GroupName=group)

    wait_for(lambda: len(provision.events) >= 2)
    time.sleep(1.5)
    assert sorted(e["n"] for e in provision.events) == ["moved", "soon"]
    assert _schedule_names(resources) == set()
    # One listing at start; after it, only the schedules written were read (and ours deleted)
    assert calls.count("ListSchedules") == 1
    before = len(calls)
    time.sleep(1.0)
    assert calls[before:] == [], "an idle dispatcher called the Scheduler API"
