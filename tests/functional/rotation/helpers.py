"""Helpers for the PIN rotation tests: the simulator's world (StayKey's real services and Nuki
client against the Nuki sandbox, `local/nuki_sandbox`, on a virtual clock), so a lock can be
offline for an hour in a test that takes seconds."""

from __future__ import annotations

import json
from typing import Any

from local.sim.world import World
from tests.sim.conftest import DOOR_1, DOOR_2, ENTRANCE, book_now, make_world, status, violations

__all__ = [
    "DOOR_1",
    "DOOR_2",
    "ENTRANCE",
    "book_now",
    "booking",
    "codes",
    "events",
    "make_world",
    "opens",
    "rotation",
    "status",
    "violations",
]


def booking(world: World, booking_id: str = "B-1") -> dict[str, Any]:
    item = world.booking_item(booking_id)
    assert item is not None, f"{booking_id} is not stored"
    return item


def rotation(world: World, booking_id: str = "B-1") -> dict[str, Any] | None:
    """The booking's `pinRotation` as the shop reads it."""
    stored = world.store.get_booking(booking_id)
    assert stored is not None
    return stored.to_api()["pinRotation"]


def codes(world: World, smartlock_id: int, name: str) -> list[str]:
    """The PINs of the codes named `name` on the lock, as Nuki holds them now."""
    return sorted(f"{a.code:06d}" for a in world.auths_on(smartlock_id) if a.type == 13 and a.name == name)


def opens(world: World, smartlock_id: int, pin: str) -> bool:
    """Someone types `pin` on the lock's keypad: does the door open?"""
    return bool(world.sandbox.keypad_entry(smartlock_id, int(pin), at=world.loop.now())["success"])


def events(world: World, booking_id: str = "B-1") -> list[dict[str, Any]]:
    """The booking's events as the outbox handed them on (the simulator's dispatcher takes each
    event item as it is written), oldest first."""
    items = [world.store.codec.load(raw) for pk, raw in world.dispatched if pk == f"BOOKING#{booking_id}"]
    found = [json.loads(str(i["body"])) for i in items]
    return sorted(found, key=lambda e: str(e["id"]))
