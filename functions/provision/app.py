"""Puts codes on locks and confirms them: the one-time provisioning schedule at validFrom - lead
(input {"action": "provision", "bookingId": ...}) and the lifecycle queue's delayed follow-ups
(SQS records {"bookingId": ..., "seq": n}), reported back as partial batch failures."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from staykey import wiring
from staykey.core.models import STORED_ID_PATTERN
from staykey.observability import logger, tracer

processor = BatchProcessor(event_type=EventType.SQS)


class ScheduledProvision(BaseModel):
    action: str = Field(pattern="^provision$")
    bookingId: str = Field(pattern=STORED_ID_PATTERN)


class FollowUp(BaseModel):
    bookingId: str = Field(pattern=STORED_ID_PATTERN)
    seq: int
    at: str | None = Field(default=None, max_length=40)  # when to read back (the queue delays by whole seconds)


def _follow_up(record: SQSRecord) -> None:
    job = FollowUp.model_validate(json.loads(record.body))
    logger.append_keys(booking_id=job.bookingId)
    wiring.sync().run_job(job.model_dump(exclude_none=True))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "Records" in event:
        return process_partial_response(event=event, record_handler=_follow_up, processor=processor, context=context)
    job = ScheduledProvision.model_validate(event)
    logger.append_keys(booking_id=job.bookingId)
    booking = wiring.bookings().start_provisioning(job.bookingId)
    return {"bookingId": booking.bookingId, "status": booking.status.value}
