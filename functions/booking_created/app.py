"""POST /bookings: reserve a PIN for a booking and start putting it on the room's locks."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from staykey import wiring
from staykey.core.models import BookingIn
from staykey.edge.http import make_resolver, parse_body, respond
from staykey.observability import logger, tracer

app = make_resolver()


@app.post("/bookings")
def create_booking() -> Any:
    request = parse_body(app, BookingIn)
    logger.append_keys(booking_id=request.bookingId)
    booking, created = wiring.bookings().create(request)
    return respond(201 if created else 200, booking.to_api())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
