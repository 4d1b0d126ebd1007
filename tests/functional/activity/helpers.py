"""Building blocks of the activity tests: keypad entries on FakeNuki's locks, webhook bodies as Nuki
sends them, signed API Gateway events, and the webhook queue turned into SQS events."""

from __future__ import annotations

import copy
import itertools
import json
from datetime import datetime
from typing import Any, Literal

from staykey.nuki import SmartlockAuth, SmartlockLog, sign
from tests.conftest import WEBHOOK_SECRET, load_event
from tests.fakes import FakeNuki

_LOG_IDS = itertools.count(1)


def next_log_id() -> str:
    """A 24-hex id like Nuki's, distinct from FakeNuki's auth ids."""
    return f"675{next(_LOG_IDS):021x}"


def keypad_entry(
    nuki: FakeNuki,
    smartlock_id: int,
    at: datetime,
    code: str | None = None,
    *,
    ref: Literal["id", "authId", "none"] = "id",
    log_id: str | None = None,
) -> SmartlockLog:
    """Someone types `code` on the lock's keypad at `at`: a successful unlock by the auth holding it,
    or state 224 (invalid code) with no auth. The entry goes into the lock's log and is returned."""
    lock = nuki.locks[smartlock_id]
    auth = next((a for a in lock.auths.values() if code is not None and a.code == int(code)), None)
    auth_ref: str | None = None
    if auth is not None and ref == "id":
        auth_ref = auth.id
    elif auth is not None and ref == "authId":
        auth_ref = str(auth.auth_id)
    log = SmartlockLog(
        id=log_id or next_log_id(),
        smartlock_id=smartlock_id,
        device_type=4,
        auth_id=auth_ref,
        name=auth.name if auth else "",
        action=1,
        trigger=255,
        state=0 if auth else 224,
        source=1,
        date=at,
    )
    lock.logs.append(log)
    return log


def app_unlock(
    nuki: FakeNuki, smartlock_id: int, at: datetime, name: str = "Host", *, log_id: str | None = None
) -> SmartlockLog:
    """The host opens the door with the Nuki app (trigger 5, no keypad)."""
    log = SmartlockLog(
        id=log_id or next_log_id(),
        smartlock_id=smartlock_id,
        auth_id="1",
        name=name,
        action=1,
        trigger=5,
        state=0,
        date=at,
    )
    nuki.locks[smartlock_id].logs.append(log)
    return log


def logs_body(log: SmartlockLog) -> str:
    """A DEVICE_LOGS body as Nuki posts it."""
    entry = log.model_dump(mode="json", by_alias=True, exclude_none=True)
    entry["date"] = log.date.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return json.dumps({"feature": "DEVICE_LOGS", "smartlockLog": entry})


def auths_body(auth: SmartlockAuth, deleted: bool = False) -> str:
    """A DEVICE_AUTHS body as Nuki posts it (it carries the code)."""
    payload = auth.model_dump(mode="json", by_alias=True, exclude_none=True)
    return json.dumps({"feature": "DEVICE_AUTHS", "deleted": deleted, "smartlockAuth": payload})


def webhook_event(
    body: str,
    signature: str | None = "sign",
    *,
    secret: str = WEBHOOK_SECRET,
    header: str = "X-Nuki-Signature-SHA256",
    base64_encoded: bool = False,
) -> dict[str, Any]:
    """POST /webhooks/nuki carrying `body`, shaped like events/nuki_webhook_device_logs.json.
    `signature="sign"` signs the body with `secret`; None leaves the header out."""
    import base64

    event = copy.deepcopy(load_event("nuki_webhook_device_logs.json"))
    raw = body.encode("utf-8")
    if signature == "sign":
        signature = sign(raw, secret)
    if signature is not None:
        event["headers"][header] = signature
        event["multiValueHeaders"][header] = [signature]
    event["body"] = base64.b64encode(raw).decode() if base64_encoded else body
    event["isBase64Encoded"] = base64_encoded
    return event


def sqs_event(queue_url: str) -> dict[str, Any]:
    """Everything waiting in the queue, as the SQS event source hands it to the function (the
    messages are taken off the queue)."""
    import boto3

    sqs = boto3.client("sqs")
    records = []
    while True:
        res = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"])
        messages = res.get("Messages", [])
        if not messages:
            break
        for m in messages:
            records.append(
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m.get("Attributes", {}),
                    "messageAttributes": {},
                    "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:eu-central-1:123456789012:staykey-test-webhooks",
                    "awsRegion": "eu-central-1",
                }
            )
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    return {"Records": records}


def queued_bodies(queue_url: str) -> list[str]:
    return [r["body"] for r in sqs_event(queue_url)["Records"]]
