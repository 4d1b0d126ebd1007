"""The activity functions as template.yaml deploys them: routes, queue, schedule, least privilege;
and a receiver whose cold start does not load boto3 or requests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from local.cfn import functions, load_template, resources, routes
from tests.conftest import EVENTS

ROOT = Path(__file__).resolve().parents[3]


def props(logical_id: str) -> dict[str, Any]:
    return dict(load_template()["Resources"][logical_id]["Properties"])


def test_the_three_functions_are_deployed_under_the_stacks_name() -> None:
    deployed = functions()
    assert deployed["NukiWebhookFunction"].name_suffix == "nuki-webhook"
    assert deployed["NukiWebhookFunction"].module == "functions.nuki_webhook.app"
    assert deployed["WebhookProcessorFunction"].name_suffix == "webhook-processor"
    assert deployed["WebhookProcessorFunction"].sqs_queues == ("WebhookQueue",)
    assert deployed["LogPollerFunction"].name_suffix == "log-poller"
    assert [name for name, _ in deployed["LogPollerFunction"].schedules] == ["PollLogs", "SharedLooks"]


def test_routes_and_their_keys() -> None:
    by_route = {(r.method, r.path): r for r in routes()}
    webhook = by_route[("POST", "/webhooks/nuki")]
    assert webhook.function == "NukiWebhookFunction"
    assert webhook.api_key_required is False  # Nuki cannot send our API key; the signature guards it
    assert by_route[("GET", "/bookings/{bookingId}/activity")].api_key_required is True
    assert by_route[("GET", "/bookings/{bookingId}/activity")].function == "BookingsApiFunction"
    assert by_route[("GET", "/locks/{smartlockId}/activity")].api_key_required is True


def test_the_webhook_queue_retries_then_dead_letters_and_alarms() -> None:
    queue = props("WebhookQueue")
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 5
    assert queue["VisibilityTimeout"] >= 6 * props("WebhookProcessorFunction")["Timeout"]
    event = props("WebhookProcessorFunction")["Events"]["Webhooks"]["Properties"]
    assert event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    alarms = [a["Properties"] for a in resources("AWS::CloudWatch::Alarm").values()]
    watched = [a["Dimensions"][0]["Value"].value for a in alarms if a["Namespace"] == "AWS/SQS"]
    assert "WebhookDeadLetterQueue.QueueName" in watched


def test_the_watcher_runs_on_a_schedule_the_operator_can_change_and_log_polling_can_be_turned_off() -> None:
    schedule = props("LogPollerFunction")["Events"]["PollLogs"]["Properties"]
    assert schedule["ScheduleExpression"].value == "LogPollSchedule"
    assert "State" not in schedule  # the watcher also checks the hot locks: it always runs
    assert props("LogPollerFunction")["Environment"]["Variables"]["LOG_POLLING"].value == "LogPolling"
    assert json.loads(schedule["Input"]) == {"action": "poll-logs"}
    assert "DeadLetterConfig" in schedule
    assert "RetryPolicy" in schedule
    params = load_template()["Parameters"]
    assert params["LogPollSchedule"]["Default"] == "rate(5 minutes)"
    assert params["LogPolling"]["AllowedValues"] == ["ENABLED", "DISABLED"]


def _actions(policies: list[Any]) -> list[str]:
    found = []
    for policy in policies:
        for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
            actions = statement["Action"]
            found += actions if isinstance(actions, list) else [actions]
    return found


@pytest.mark.parametrize("logical_id", ["NukiWebhookFunction", "WebhookProcessorFunction", "LogPollerFunction"])
def test_no_wildcard_actions(logical_id: str) -> None:
    assert all("*" not in action for action in _actions(props(logical_id)["Policies"]))


def test_the_receiver_may_only_read_the_webhook_secret_and_queue_webhooks() -> None:
    policies = props("NukiWebhookFunction")["Policies"]
    assert [next(iter(p)) for p in policies] == ["AWSSecretsManagerGetSecretValuePolicy", "SQSSendMessagePolicy"]
    assert policies[0]["AWSSecretsManagerGetSecretValuePolicy"]["SecretArn"].value == "NukiWebhookSecret"


@pytest.mark.parametrize(
    "name",
    [
        "nuki_webhook_device_logs.json",
        "nuki_webhook_device_auths.json",
        "nuki_webhook_device_status.json",
        "webhook_processor_sqs.json",
        "log_poller_schedule.json",
        "bookings_api_get_activity.json",
        "rooms_api_get_lock_activity.json",
    ],
)
def test_sample_events_exist_and_parse(name: str) -> None:
    event = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    if "httpMethod" in event and event["body"]:
        json.loads(event["body"])  # webhook bodies are the JSON Nuki posts


def test_the_receivers_cold_start_loads_neither_boto3_nor_requests_nor_the_nuki_client() -> None:
    # (botocore itself comes with Powertools' Tracer in staykey.observability, as for every function.)
    code = (
        "import sys; import functions.nuki_webhook.app; "
        "print(sorted(m for m in ('boto3', 'requests', 'staykey.nuki', 'staykey.store') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "common"), str(ROOT)])}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
