"""Rooms: the operator's map from a room to its locks, zone and default times."""

from __future__ import annotations

import builtins
import re

from staykey.errors import NotFound
from staykey.models import Room, RoomIn
from staykey.pagination import decode_cursor, encode_cursor
from staykey.store import Store
from staykey.timeutil import Clock

ROOMS_LIMIT_DEFAULT = 100
ROOMS_LIMIT_MAX = 100
_ROOM_KEY = re.compile(r"[A-Za-z0-9._-]{1,64}")


class Rooms:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def put(self, room_id: str, room_in: RoomIn) -> tuple[Room, bool]:
        """Create or replace a room; (room, created). Existing bookings keep the locks they have."""
        now = self.clock.now()
        existing = self.store.get_room(room_id)
        room = Room(
            **room_in.model_dump(),
            roomId=room_id,
            createdAt=existing.createdAt if existing else now,
            updatedAt=now,
        )
        self.store.put_room(room)
        return room, existing is None

    def get(self, room_id: str) -> Room:
        room = self.store.get_room(room_id)
        if room is None:
            raise NotFound(f"room {room_id!r} does not exist")
        return room

    def list(self) -> list[Room]:
        return self.store.list_rooms()

    def page(
        self, limit: int = ROOMS_LIMIT_DEFAULT, cursor: str | None = None
    ) -> tuple[builtins.list[Room], str | None]:
        """Rooms by id, `limit` at a time: (rooms, nextCursor)."""
        after = decode_cursor(cursor, {"list": "rooms"}, _ROOM_KEY)
        rooms, last = self.store.rooms_page(limit, after)
        return rooms, encode_cursor(last, {"list": "rooms"}) if last else None
