"""PUT/GET /rooms/{roomId}, GET /rooms: the operator's rooms (a PUT asks Nuki about every lock
first, see staykey.services.rooms); GET /locks, GET /locks/{smartlockId}: what we know of each
lock (online, batteries, codes, upcoming bookings); GET /locks/{smartlockId}/activity: what
happened on a lock that was not a guest's; GET /health."""

from __future__ import annotations

import re
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from staykey import wiring
from staykey.core.models import ID_PATTERN, RoomIn
from staykey.edge.http import make_resolver, parse_body, respond
from staykey.edge.pagination import Query
from staykey.errors import NotFound, ValidationFailed
from staykey.observability import logger
from staykey.services.rooms import ROOMS_LIMIT_DEFAULT, ROOMS_LIMIT_MAX, Rooms

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


def _query(allowed: tuple[str, ...]) -> Query:
    event = app.current_event
    return Query(event.query_string_parameters, event.multi_value_query_string_parameters, allowed)


@app.get("/rooms")
def list_rooms() -> Any:
    q = _query(("limit", "cursor"))
    rooms, cursor = _rooms().page(q.limit(ROOMS_LIMIT_DEFAULT, ROOMS_LIMIT_MAX), q.get("cursor"))
    return respond(200, {"items": [room.to_api() for room in rooms], "nextCursor": cursor})


@app.get("/locks")
def list_locks() -> Any:
    from staykey.services.locks import LOCKS_LIMIT_DEFAULT, LOCKS_LIMIT_MAX

    q = _query(("limit", "cursor"))
    views, cursor = wiring.locks().page(q.limit(LOCKS_LIMIT_DEFAULT, LOCKS_LIMIT_MAX), q.get("cursor"))
    return respond(200, {"items": [view.to_api() for view in views], "nextCursor": cursor})


@app.get("/locks/<smartlockId>")
def get_lock(smartlockId: str) -> Any:
    from staykey.services.locks import lock_id_from_path

    lock_id = lock_id_from_path(smartlockId)
    _query(())
    return respond(200, wiring.locks().get(lock_id).to_api())


@app.get("/locks/<smartlockId>/activity")
def get_lock_activity(smartlockId: str) -> Any:
    """What happened on a lock that was not a guest's: other codes and users, app and manual
    operations, failed keypad attempts. Guests' entries are under their bookings."""
    from staykey.services.activity import ACTIVITY_LIMIT_DEFAULT, ACTIVITY_LIMIT_MAX
    from staykey.services.locks import lock_id_from_path

    lock_id = lock_id_from_path(smartlockId)
    q = _query(("limit", "cursor"))
    limit = q.limit(ACTIVITY_LIMIT_DEFAULT, ACTIVITY_LIMIT_MAX)
    items, cursor = wiring.activity().page_for_lock(lock_id, limit, q.get("cursor"))
    return respond(200, {"items": [item.to_api() for item in items], "nextCursor": cursor})


@app.get("/health")
def health() -> Any:
    return respond(200, {"status": "ok"})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
