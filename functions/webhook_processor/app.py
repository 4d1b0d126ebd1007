"""The webhook queue's consumer: each SQS record is one verified Nuki webhook body (queued by
nuki_webhook). DEVICE_LOGS are attributed and stored, DEVICE_AUTHS confirm our codes, DEVICE_STATUS
keeps the lock's state; failures are reported back as partial batch failures, so only the failed
records are retried (and land in the dead-letter queue after five tries)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from staykey import wiring
from staykey.observability import logger, tracer

processor = BatchProcessor(event_type=EventType.SQS)


def _received_at(record: SQSRecord) -> datetime | None:
    """When the receiver queued the webhook: orders DEVICE_STATUS deliveries (they carry no time)."""
    sent = record.attributes.sent_timestamp
    return datetime.fromtimestamp(int(sent) / 1000, UTC) if sent else None


def _webhook(record: SQSRecord) -> None:
    wiring.webhook_processor().process(record.body, _received_at(record))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=_webhook, processor=processor, context=context)
