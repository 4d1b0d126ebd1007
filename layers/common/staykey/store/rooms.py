"""Rooms: ROOMS / ROOM#{roomId}."""

from __future__ import annotations

from typing import Any

from staykey.core.models import Room
from staykey.store.table import Table

BACKUP_ROOMS = "ROOMS#BACKUP"  # gsi1: the rooms with backup codes on


class RoomItems(Table):
    # -- rooms -----------------------------------------------------------------------------

    def put_room(self, room: Room) -> None:
        self._put(self._room_item(room))

    def reindex_room(self, room: Room) -> bool:
        """The room written again as it was read (into the index of `backup_rooms`), unless it was
        changed since (its `updatedAt`): False then, and the change that came wrote the index."""
        item = self._room_item(room)
        return self._put(item, "#u = :u", {"#u": "updatedAt"}, {":u": item["updatedAt"]})

    @staticmethod
    def _room_item(room: Room) -> dict[str, Any]:
        item = {"pk": "ROOMS", "sk": f"ROOM#{room.roomId}", **room.model_dump(mode="json")}
        if room.backupCodes:
            # The rooms with backup codes on, in an index of their own (`backup_rooms`): the pools'
            # run, every readiness run, read every room of the account for them.
            item |= {"gsi1pk": BACKUP_ROOMS, "gsi1sk": room.roomId}
        return item

    def backup_rooms(self) -> list[Room]:
        """The rooms with backup codes on (`Room.backupCodes`), from their index."""
        page = self.index_range("gsi1", BACKUP_ROOMS, want=100_000, budget=100_000)
        return [room for item in page.items if (room := Room.model_validate(item)).backupCodes]

    def get_room(self, room_id: str) -> Room | None:
        item = self._get("ROOMS", f"ROOM#{room_id}")
        return Room.model_validate(item) if item else None

    def list_rooms(self) -> list[Room]:
        return [Room.model_validate(item) for item in self._query("ROOMS", "ROOM#")]

    def rooms_page(self, limit: int, after: str | None = None) -> tuple[list[Room], str | None]:
        """Rooms in id order, `limit` at a time, after the room id `after`; (rooms, last id or None)."""
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :p AND begins_with(sk, :s)",
            "ExpressionAttributeValues": self._codec.dump({":p": "ROOMS", ":s": "ROOM#"}),
            "ConsistentRead": True,
            "Limit": limit,
        }
        if after is not None:
            kwargs["ExclusiveStartKey"] = self._codec.dump({"pk": "ROOMS", "sk": f"ROOM#{after}"})
        res = self.client.query(**kwargs)
        rooms = [Room.model_validate(self._codec.load(raw)) for raw in res.get("Items", [])]
        more = "LastEvaluatedKey" in res and len(rooms) == limit
        return rooms, rooms[-1].roomId if more and rooms else None
