"""Removes a booking's code from its locks: early checkout (POST /bookings/{bookingId}/checkout)
and the one-time schedule at validUntil (EventBridge Scheduler input {"action": "expire", ...})."""

from __future__ import annotations

import re
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from staykey import wiring
from staykey.core.models import ID_PATTERN, STORED_ID_PATTERN
from staykey.edge.http import make_resolver, respond
from staykey.errors import NotFound
from staykey.observability import logger, tracer

app = make_resolver()


class ScheduledExpiry(BaseModel):
    action: str = Field(pattern="^expire$")
    bookingId: str = Field(pattern=STORED_ID_PATTERN)


@app.post("/bookings/<bookingId>/checkout")
def early_checkout(bookingId: str) -> Any:
    if not re.match(ID_PATTERN, bookingId):
        raise NotFound(f"booking {bookingId!r} does not exist")
    logger.append_keys(booking_id=bookingId)
    return respond(200, wiring.bookings().checkout(bookingId).to_api())


def _scheduled(event: dict[str, Any]) -> dict[str, Any]:
    job = ScheduledExpiry.model_validate(event)
    logger.append_keys(booking_id=job.bookingId)
    booking = wiring.bookings().expire(job.bookingId)
    return {"bookingId": booking.bookingId, "status": booking.status.value}


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "httpMethod" in event:
        return app.resolve(event, context)
    return _scheduled(event)
