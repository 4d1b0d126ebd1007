"""The webhook sender: deliveries from the event delivery queue, each signed (Standard Webhooks)
and posted to its endpoint, retried with backoff by re-queuing, dead-lettered when every attempt
failed (`staykey.events.sender`). The deliveries of a batch are posted at once (one slow endpoint
does not hold up the others); a record whose follow-up could not be queued is reported as a partial
batch failure and comes back."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from staykey import wiring
from staykey.observability import logger, tracer


def _one(record: dict[str, Any]) -> str | None:
    """None when the record is done, else its message id (to be retried)."""
    try:
        outcome = wiring.webhook_sender().handle(json.loads(record["body"]))
    except Exception:
        logger.exception("delivery could not be handled; it comes back")
        return str(record["messageId"])
    logger.debug("delivery handled", outcome=outcome)
    return None


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records") or []
    with ThreadPoolExecutor(max_workers=max(1, min(10, len(records)))) as pool:
        failed = [mid for mid in pool.map(_one, records) if mid is not None]
    return {"batchItemFailures": [{"itemIdentifier": mid} for mid in failed]}
