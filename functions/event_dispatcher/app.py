"""The event dispatcher: new outbox items (``EVENT#``) from the table's DynamoDB stream, filtered by
the event source mapping, go to the feed (GET /events), the EventBridge bus and the webhook delivery
queue (`staykey.events.dispatch`). A chunk that fails is reported as the first failed record, so the
mapping retries it and everything after it, in order."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from staykey import wiring
from staykey.observability import logger, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return wiring.dispatcher().handle(event.get("Records") or [])
