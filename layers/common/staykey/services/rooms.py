"""Rooms: the operator's map from a room to its locks, zone and default times."""

from __future__ import annotations

from staykey.errors import NotFound
from staykey.models import Room, RoomIn
from staykey.store import Store
from staykey.timeutil import Clock


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
        # Looked after from now on (reconciled, polled), also once the room no longer lists them.
        self.store.register_locks(room.smartlockIds)
        return room, existing is None

    def get(self, room_id: str) -> Room:
        room = self.store.get_room(room_id)
        if room is None:
            raise NotFound(f"room {room_id!r} does not exist")
        return room

    def list(self) -> list[Room]:
        return self.store.list_rooms()
