"""The shared look (staykey.services.shared) on the simulator: a code the provisioning schedule puts
on and a removal after the stay are confirmed by the minute's look at their locks, with no read-back
of their own; a ghost delete (204, never applied) is still found and sent again within minutes."""

from __future__ import annotations

from datetime import timedelta

from tests.sim.conftest import DOOR_1, DOOR_2, ENTRANCE, codes_on, make_world, status, violations


def _own_reads(world, booking_id: str) -> int:  # type: ignore[no-untyped-def]
    """Read-backs the booking's own invocations made (`GET /smartlock/{id}/auth`)."""
    return sum(
        1
        for c in world.link.calls
        if c.method == "GET" and c.path.endswith("/auth") and booking_id in c.by and not c.by.startswith("shared")
    )


def _shared_reads(world) -> int:  # type: ignore[no-untyped-def]
    return sum(1 for c in world.link.calls if c.method == "GET" and c.by.startswith("shared-look"))


def _season(env: dict[str, str]):  # type: ignore[no-untyped-def]
    world = make_world(webhooks=False, periodic=True, env=env)
    start = world.loop.now() + timedelta(days=4)  # beyond the 72 h lead: the schedule provisions it
    world.book("B-A", "r1", start, start + timedelta(days=1))
    world.book("B-B", "r2", start, start + timedelta(days=1))
    return world, start


def test_codes_nobody_waits_for_are_confirmed_by_the_shared_look() -> None:
    world, start = _season({})
    world.run_for((start - world.loop.now()).total_seconds() - 70 * 3600)  # two hours past the lead
    assert status(world, "B-A") == "active"
    assert status(world, "B-B") == "active"
    for booking_id in ("B-A", "B-B"):
        assert _own_reads(world, booking_id) == 0, "confirmed by the shared look, no read-back of its own"
    assert _shared_reads(world) >= 1
    # after the stay: both codes off every lock, the bookings revoked, again without their own reads
    world.run_for((start + timedelta(days=1, minutes=30) - world.loop.now()).total_seconds())
    assert status(world, "B-A") == "revoked"
    assert status(world, "B-B") == "revoked"
    for lock_id in (DOOR_1, DOOR_2, ENTRANCE):
        assert not codes_on(world, lock_id)
    for booking_id in ("B-A", "B-B"):
        assert _own_reads(world, booking_id) == 0
    world.checker.sweep()
    assert not violations(world)


def test_switched_off_every_write_reads_back_on_its_own() -> None:
    world, start = _season({"SHARED_LOOKS": "DISABLED"})
    world.run_for((start - world.loop.now()).total_seconds() - 70 * 3600)
    assert status(world, "B-A") == "active"
    assert _own_reads(world, "B-A") >= 2  # door and entrance
    assert _shared_reads(world) == 0


def test_a_ghost_delete_found_by_the_shared_look_is_sent_again_in_time() -> None:
    world, start = _season({})
    end = start + timedelta(days=1)
    world.run_for((end - world.loop.now()).total_seconds() - 60)
    assert status(world, "B-A") == "active"
    world.sandbox.set_faults(ghost_deletes=1)  # Nuki answers 204 to the next delete and never applies it
    world.run_for(20 * 60)
    assert status(world, "B-A") == "revoked"
    assert status(world, "B-B") == "revoked"
    for lock_id in (DOOR_1, DOOR_2, ENTRANCE):
        assert not codes_on(world, lock_id)
    world.checker.sweep()
    assert not violations(world)
