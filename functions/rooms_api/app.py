"""PUT/GET /rooms/{roomId}, GET /rooms: the operator's rooms (a PUT asks Nuki about every lock
first, see staykey.services.rooms); GET /locks/{smartlockId}/activity:
what happened on a lock that was not a guest's; GET /health."""

from __future__ import annotations

import re
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from staykey import wiring
from staykey.api import make_resolver, parse_body, respond
from staykey.errors import NotFound, ValidationFailed
from staykey.models import ID_PATTERN, SMARTLOCK_ID_MAX, RoomIn
from staykey.observability import logger
from staykey.services.rooms import Rooms

app = make_resolver()


def _rooms() -> Rooms:
    return wiring.rooms()


@app.put("/rooms/<roomId>")
def put_room(roomId: str) -> Any:
    if not re.match(ID_PATTERN, roomId):
        raise ValidationFailed(
            "bad room id", details=[{"field": "roomId", "message": "must match [A-Za-z0-9._-]{1,64}"}]
        )
    room, created = _rooms().put(roomId, parse_body(app, RoomIn))
    return respond(201 if created else 200, room.to_api())


@app.get("/rooms/<roomId>")
def get_room(roomId: str) -> Any:
    if not re.match(ID_PATTERN, roomId):
        raise NotFound(f"room {roomId!r} does not exist")
    return respond(200, _rooms().get(roomId).to_api())


@app.get("/rooms")
def list_rooms() -> Any:
    return respond(200, {"items": [room.to_api() for room in _rooms().list()]})


@app.get("/locks/<smartlockId>/activity")
def get_lock_activity(smartlockId: str) -> Any:
    """What happened on a lock that was not a guest's: other codes and users, app and manual
    operations, failed keypad attempts. Guests' entries are under their bookings."""
    from staykey.services.activity import activity_limit

    valid = smartlockId.isascii() and smartlockId.isdigit() and len(smartlockId) <= 19
    if not valid or not 1 <= int(smartlockId) <= SMARTLOCK_ID_MAX:
        raise NotFound(f"lock {smartlockId!r} does not exist")
    limit = activity_limit(app.current_event.get_query_string_value("limit"))
    items = wiring.activity().for_lock(int(smartlockId), limit)
    return respond(200, {"items": [item.to_api() for item in items]})


@app.get("/health")
def health() -> Any:
    return respond(200, {"status": "ok"})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
