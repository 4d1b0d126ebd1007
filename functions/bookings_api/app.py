"""GET, PATCH and DELETE /bookings/{bookingId}: read, change and cancel a booking;
GET /bookings/{bookingId}/activity: what the guest's code did on the locks, newest first."""

from __future__ import annotations

import re
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from staykey import wiring
from staykey.api import make_resolver, parse_body, respond
from staykey.errors import NotFound
from staykey.models import ID_PATTERN, BookingPatch
from staykey.observability import logger, tracer

app = make_resolver()


def _booking_id(raw: str) -> str:
    if not re.match(ID_PATTERN, raw):
        raise NotFound(f"booking {raw!r} does not exist")
    logger.append_keys(booking_id=raw)
    return raw


@app.get("/bookings/<bookingId>")
def get_booking(bookingId: str) -> Any:
    return respond(200, wiring.lifecycle().get(_booking_id(bookingId)).to_api())


@app.patch("/bookings/<bookingId>")
def patch_booking(bookingId: str) -> Any:
    booking_id = _booking_id(bookingId)
    change = parse_body(app, BookingPatch)
    return respond(200, wiring.lifecycle().patch(booking_id, change).to_api())


@app.delete("/bookings/<bookingId>")
def cancel_booking(bookingId: str) -> Any:
    return respond(200, wiring.lifecycle().cancel(_booking_id(bookingId)).to_api())


@app.get("/bookings/<bookingId>/activity")
def get_booking_activity(bookingId: str) -> Any:
    from staykey.services.activity import activity_limit

    limit = activity_limit(app.current_event.get_query_string_value("limit"))
    items = wiring.activity().for_booking(_booking_id(bookingId), limit)
    return respond(200, {"items": [item.to_api() for item in items]})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
