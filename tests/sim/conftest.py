"""Helpers for simulator tests: a small world (two rooms sharing an entrance) on a virtual clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from local.sim.world import SimConfig, World

START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
DOOR_1, DOOR_2, ENTRANCE = 17000001, 17000002, 17000099


def make_world(seed: int = 1, **config: Any) -> World:
    """Rooms r1 (door 1 + entrance) and r2 (door 2 + entrance), in Europe/Berlin. The reconciler and
    the log poller run only when a test calls them (periodic=False), unless it asks otherwise."""
    config.setdefault("periodic", False)
    config.setdefault("log_polling", False)
    world = World(seed, START, SimConfig(**config))
    for lock_id in (DOOR_1, DOOR_2, ENTRANCE):
        world.add_lock(lock_id)
    world.put_room("r1", (DOOR_1, ENTRANCE))
    world.put_room("r2", (DOOR_2, ENTRANCE))
    world.start()
    world.run_for(5)
    return world


def book_now(world: World, booking_id: str = "B-1", room: str = "r1", *, hours: float = 48, lead: float = 60) -> None:
    """A stay starting `lead` seconds from now, lasting `hours`."""
    start = world.loop.now() + timedelta(seconds=lead)
    world.book(booking_id, room, start, start + timedelta(hours=hours))


def status(world: World, booking_id: str) -> str:
    item = world.booking_item(booking_id)
    assert item is not None, f"{booking_id} is not stored"
    return str(item["status"])


def violations(world: World, *rules: str) -> list[str]:
    return [str(v) for v in world.checker.violations if not rules or v.rule in rules]


def codes_on(world: World, smartlock_id: int) -> dict[int, str]:
    return {a.code: a.name for a in world.auths_on(smartlock_id) if a.type == 13}


def our_auth(world: World, smartlock_id: int, booking_id: str) -> Any:
    pin = int(world.booking_item(booking_id)["pin"])  # type: ignore[index]
    return next(a for a in world.auths_on(smartlock_id) if a.code == pin)
