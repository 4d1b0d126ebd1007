"""POST /webhooks/nuki: only correctly signed bodies get in, exactly as Nuki sent them."""

from __future__ import annotations

import boto3
import pytest

from staykey import wiring
from staykey.adapters import secrets
from staykey.nuki import sign
from staykey.settings import get_settings
from tests.conftest import WEBHOOK_SECRET, load_event
from tests.functional.activity.conftest import Pipeline
from tests.functional.activity.helpers import queued_bodies, webhook_event

SAMPLE = load_event("nuki_webhook_device_logs.json")["body"]


def rebuild_receiver() -> None:
    """A cold start: settings, secret cache and receiver built again (the other services stay wired)."""
    get_settings.cache_clear()
    secrets.clear_cache()
    wiring.webhook_receiver.cache_clear()


def test_a_correctly_signed_recorded_body_is_accepted_and_queued_byte_for_byte(pipeline: Pipeline) -> None:
    # Given the recorded DEVICE_LOGS delivery, signed with our webhook secret as Nuki signs it
    event = load_event("nuki_webhook_device_logs.json")
    signature = sign(event["body"].encode("utf-8"), WEBHOOK_SECRET)
    event["headers"]["X-Nuki-Signature-SHA256"] = signature
    # When Nuki posts it
    status, body = pipeline.post(event)
    # Then it is accepted, and the queue holds the body exactly as it came (not re-serialised)
    assert (status, body) == (200, {"status": "accepted"})
    assert queued_bodies(pipeline.queue_url) == [SAMPLE]


def test_a_base64_encoded_body_is_verified_over_the_decoded_bytes(pipeline: Pipeline) -> None:
    # Given API Gateway passed the body base64-encoded
    event = webhook_event(SAMPLE, base64_encoded=True)
    # When it arrives, it is verified over the bytes Nuki signed and queued as text
    assert pipeline.post(event)[0] == 200
    assert queued_bodies(pipeline.queue_url) == [SAMPLE]


def test_the_signature_header_name_is_case_insensitive(pipeline: Pipeline) -> None:
    event = webhook_event(SAMPLE, header="x-nuki-signature-sha256")
    assert pipeline.post(event)[0] == 200


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(webhook_event(SAMPLE, signature=None), id="missing"),
        pytest.param(webhook_event(SAMPLE, signature=""), id="empty"),
        pytest.param(webhook_event(SAMPLE, secret="someone-elses-secret"), id="forged with another secret"),
        pytest.param(webhook_event(SAMPLE, signature="0" * 64), id="made up"),
        pytest.param(webhook_event(SAMPLE, signature="not hex at all"), id="malformed"),
        pytest.param(
            {**webhook_event(SAMPLE), "body": SAMPLE.replace('"state": 0', '"state": 9')},
            id="body changed after signing",
        ),
        pytest.param(
            {**webhook_event(SAMPLE), "body": SAMPLE.replace(", ", ",")},
            id="same JSON, other bytes",
        ),
    ],
)
def test_bad_or_missing_signatures_get_401_and_nothing_is_queued_or_stored(
    pipeline: Pipeline, event: dict[str, object]
) -> None:
    # When a delivery with a bad or missing signature arrives
    status, body = pipeline.post(event)
    # Then it is refused, and nothing reaches the queue or the table
    assert status == 401
    assert body["code"] == "unauthorized"
    assert queued_bodies(pipeline.queue_url) == []
    assert pipeline.process() == {"batchItemFailures": []}
    assert pipeline.log_items() == []


def test_an_oversized_body_gets_413_before_anything_else(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the webhook secret cannot even be read (so only a size check can answer)
    boto3.client("secretsmanager").delete_secret(
        SecretId=get_settings().nuki_webhook_secret_name, ForceDeleteWithoutRecovery=True
    )
    rebuild_receiver()
    big = '{"feature": "DEVICE_LOGS", "pad": "' + "x" * 70_000 + '"}'
    for event in (webhook_event(big, secret="irrelevant"), webhook_event(big, base64_encoded=True)):
        # When a body larger than WEBHOOK_MAX_BODY_BYTES arrives, signed or not
        status, body = pipeline.post(event)
        # Then it is refused as too large without being verified or queued
        assert status == 413, body
    assert queued_bodies(pipeline.queue_url) == []


def test_a_body_that_is_not_base64_when_it_says_so_is_refused(pipeline: Pipeline) -> None:
    event = {**webhook_event(SAMPLE), "isBase64Encoded": True, "body": "not base64!"}
    assert pipeline.post(event)[0] == 400
    assert queued_bodies(pipeline.queue_url) == []


def test_after_a_re_registration_the_new_secret_is_accepted_at_once(pipeline: Pipeline) -> None:
    # Given a warm receiver that has cached the current secret
    assert pipeline.post(webhook_event(SAMPLE))[0] == 200
    # When the webhook is registered again and Nuki signs with the new secret
    boto3.client("secretsmanager").put_secret_value(
        SecretId=get_settings().nuki_webhook_secret_name, SecretString="the-new-secret"
    )
    # Then the receiver reads the secret again instead of refusing until its cache expires
    assert pipeline.post(webhook_event(SAMPLE, secret="the-new-secret"))[0] == 200
    # And the old secret no longer works
    assert pipeline.post(webhook_event(SAMPLE))[0] == 401
    assert len(queued_bodies(pipeline.queue_url)) == 2


def test_when_the_queue_is_unavailable_nuki_gets_503(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_QUEUE_URL", pipeline.queue_url + "-gone")
    rebuild_receiver()
    status, body = pipeline.post(webhook_event(SAMPLE))
    assert status == 503
    assert "Traceback" not in str(body)
