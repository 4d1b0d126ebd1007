"""Backup codes (issue 16) against the Nuki sandbox, on the simulator's virtual clock: a room's pool
of codes on each keypad lock, given to a guest whose code cannot reach a lock in time (its bridge
offline) or on an operator's request, removed after the stay, the pool filled again. The
simulator's invariants judge every step besides the assertions (local/sim/backups.py: a backup
code the guest was told opens the door; one was given in time wherever one was ready)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from local.sim.world import World
from staykey.core.models import RoomIn
from staykey.errors import Conflict, ValidationFailed
from tests.sim.conftest import DOOR_1, DOOR_2, ENTRANCE, codes_on, make_world, status, violations


def _pooled_world(**config: object) -> World:
    world = make_world(webhooks=True, **config)
    world.put_room("r1", (DOOR_1, ENTRANCE), backupCodes=True)
    world.pools.run()
    world.run_for(120)
    return world


def _pool(world: World, lock_id: int) -> list[tuple[str, str, str | None]]:
    """The lock's backup codes that are not removed: (id, status, given to)."""
    return [
        (c.bookingId, c.status.value, c.staff.usedBy if c.staff else None)
        for c in world.store.pool_codes(lock_id)
        if c.status.value not in ("revoking", "revoked")
    ]


def _opens(world: World, lock_id: int, pin: str) -> bool:
    return bool(world.sandbox.keypad_entry(lock_id, int(pin), at=world.loop.now())["success"])


def _book_in(world: World, booking_id: str, hours: float, length: float = 30) -> None:
    start = world.loop.now() + timedelta(hours=hours)
    world.book(booking_id, "r1", start, start + timedelta(hours=length))


def _readiness_runs(world: World, hours: float) -> None:
    """The readiness function's runs (every 15 minutes), backup codes included, for `hours`."""
    for _ in range(int(hours * 4)):
        world.readiness.run()
        world.pools.run()
        world.run_for(900)


def test_each_keypad_lock_of_the_room_gets_its_pool_of_codes_known_to_no_one() -> None:
    world = _pooled_world()
    for lock_id in (DOOR_1, ENTRANCE):
        pool = _pool(world, lock_id)
        assert [s for _, s, _ in pool] == ["active"] * 3
        names = sorted(a.name for a in world.auths_on(lock_id) if a.name.startswith("SK P:"))
        assert len(names) == 3
    assert not _pool(world, DOOR_2)
    # never in a list of bookings or staff codes, never a PIN shared with another code on the lock
    codes, _ = world.staff.page(100)
    assert codes == []
    pins = [a.code for a in world.auths_on(DOOR_1)]
    assert len(pins) == len(set(pins))
    world.checker.sweep()
    assert not violations(world)


def test_a_lock_offline_from_before_the_deadline_to_after_check_in_gets_the_guest_a_backup_code() -> None:
    # Given a room with backup codes, and its door going offline 3 hours before a stay
    world = _pooled_world()
    world.set_online(DOOR_1, False)
    _book_in(world, "B-1", hours=3)
    # When the readiness runs go on until after check-in
    _readiness_runs(world, hours=3.5)
    # Then the guest was given one of the door's backup codes before the stay began
    item = world.booking_item("B-1")
    assert item is not None
    (given,) = item["backups"]
    assert given["smartlockId"] == DOOR_1
    assert item["status"] == "active"
    # And the email says which door takes which code; the shop got booking.backup_assigned
    notice = world.mailer.sent[-1].notice
    assert notice.doors == ((DOOR_1, f"Lock {DOOR_1}", given["pin"]),)
    assert world.mailer.sent[-1].at <= world.loop.at_time(world.shop["B-1"].valid_from)
    assert "booking.backup_assigned" in _event_types(world, "B-1")
    # And the backup code opens the offline door (the keypad talks to the lock), the booking's PIN
    # opens the entrance, and the entry is the guest's
    assert _opens(world, DOOR_1, given["pin"])
    assert world.guest_types_pin("B-1", DOOR_1)
    assert world.guest_types_pin("B-1", ENTRANCE)
    # When the door comes back, the stay ends, and the readiness runs go on
    world.set_online(DOOR_1, True)
    world.end("B-1", "checkout")
    _readiness_runs(world, hours=1)
    # Then the used backup code is gone from the door, and the pool is full again (a new code)
    assert not _opens(world, DOOR_1, given["pin"])
    pool = _pool(world, DOOR_1)
    assert len(pool) == 3
    assert given["poolId"] not in [p for p, _, _ in pool]
    assert all(s == "active" and u is None for _, s, u in pool)
    assert status(world, "B-1") == "revoked"
    world.poll_now()
    world.run_for(60)
    assert any(e.bookingId == "B-1" and e.smartlockId == DOOR_1 for e in world.activity.for_booking("B-1"))
    world.checker.sweep()
    assert not violations(world)


def test_an_operator_can_give_a_backup_code_and_two_bookings_never_share_one() -> None:
    # Given a pool of one code per lock
    world = make_world(webhooks=True)
    world.put_room("r1", (DOOR_1, ENTRANCE), backupCodes=True, backupPoolSize=1)
    world.pools.run()
    world.run_for(120)
    # And two bookings of the room, the door offline
    world.set_online(DOOR_1, False)
    _book_in(world, "B-1", hours=1)
    _book_in(world, "B-2", hours=1.5)
    _book_in(world, "B-3", hours=30)
    world.run_for(60)
    # A stay beyond the deadline gets none yet (a backup code opens without end)
    with pytest.raises(Conflict, match="hours from now"):
        world.pools.assign("B-3", [DOOR_1])
    # When the operator gives B-1 a backup code for the door
    answer = world.pools.assign("B-1", [DOOR_1])
    (given,) = answer.backups
    assert answer.to_api()["backupCodes"][0]["pin"] == given.pin
    # Then B-2 cannot have one there (the only one is B-1's): a 409 naming the lock, nothing given
    with pytest.raises(Conflict, match=str(DOOR_1)):
        world.pools.assign("B-2", [DOOR_1])
    second = world.store.get_booking("B-2")
    assert second is not None
    assert second.backups == []
    # And asking again for B-1 gives it nothing more
    again = world.pools.assign("B-1", [DOOR_1])
    assert [b.poolId for b in again.backups] == [given.poolId]
    world.checker.sweep()
    assert not violations(world)


def test_the_pool_is_filled_again_after_an_offline_spell() -> None:
    world = _pooled_world()
    world.set_online(DOOR_1, False)
    _book_in(world, "B-1", hours=1, length=2)
    _readiness_runs(world, hours=1.5)
    item = world.booking_item("B-1")
    assert item is not None
    assert len(item["backups"]) == 1
    # The stay ends while the door is still offline: its backup code cannot be removed yet, and
    # no new one is made there while it is offline
    _readiness_runs(world, hours=2)
    assert status(world, "B-1") in ("revoking", "revoked")
    assert len([p for p in _pool(world, DOOR_1) if p[2] is None]) == 2
    # Once the door is back, the used code goes and the pool is full again
    world.set_online(DOOR_1, True)
    _readiness_runs(world, hours=1)
    pool = _pool(world, DOOR_1)
    assert len(pool) == 3
    assert all(s == "active" and u is None for _, s, u in pool)
    assert not _opens(world, DOOR_1, item["backups"][0]["pin"])
    world.checker.sweep()
    assert not violations(world)


def test_a_pool_larger_than_a_lock_can_hold_is_a_422_naming_the_field_and_nothing_is_sent() -> None:
    world = make_world(webhooks=True)
    world.rooms.max_codes = 4  # a lock that holds 4 keypad codes
    for n in range(3):
        assert world.add_foreign(DOOR_1, 734561 + n * 111, f"Filler {n}") is not None
    calls = len([c for c in world.link.calls if c.method != "GET"])
    with pytest.raises(ValidationFailed) as raised:
        world.rooms.put("r1", RoomIn.model_validate(_room(backupCodes=True, backupPoolSize=2)))
    assert [d["field"] for d in raised.value.details] == ["backupPoolSize"]
    assert str(DOOR_1) in raised.value.details[0]["message"]
    assert len([c for c in world.link.calls if c.method != "GET"]) == calls
    room = world.store.get_room("r1")
    assert room is not None
    assert not room.backupCodes
    # a size the schema refuses
    with pytest.raises(ValueError, match="backupPoolSize"):
        RoomIn.model_validate(_room(backupCodes=True, backupPoolSize=21))


def _room(**extra: object) -> dict[str, object]:
    return {"name": "Room r1", "smartlockIds": [DOOR_1, ENTRANCE], "timezone": "Europe/Berlin", **extra}


def _event_types(world: World, booking_id: str) -> list[str]:
    import json

    items = [world.store.codec.load(raw) for pk, raw in world.dispatched if pk == f"BOOKING#{booking_id}"]
    return [json.loads(str(i["body"]))["type"] for i in items]


def test_a_booking_moved_to_another_room_loses_the_backup_code_of_the_door_it_left() -> None:
    world = _pooled_world()
    world.set_online(DOOR_1, False)
    _book_in(world, "B-1", hours=1)
    _readiness_runs(world, hours=0.5)
    item = world.booking_item("B-1")
    assert item is not None
    (given,) = item["backups"]
    world.set_online(DOOR_1, True)
    world.patch("B-1", roomId="r2")
    world.run_for(15 * 60)
    item = world.booking_item("B-1")
    assert item is not None
    assert item["backups"] == []
    assert not _opens(world, DOOR_1, given["pin"])
    world.checker.sweep()
    assert not violations(world)


# ---------------------------------------------------------------------- adversarial review (helper-34)


def _given(world: World) -> tuple[World, dict[str, object]]:
    """A booking of r1 given a backup code for its offline door (stay in an hour)."""
    world.set_online(DOOR_1, False)
    _book_in(world, "B-1", hours=1)
    _readiness_runs(world, hours=0.5)
    item = world.booking_item("B-1")
    assert item is not None
    (given,) = item["backups"]
    return world, given


def test_a_code_taken_twice_for_one_booking_goes_back_or_goes_and_none_stays_after_the_stay_f1_f9() -> None:
    world = _pooled_world()
    world.set_online(DOOR_1, False)
    _book_in(world, "B-1", hours=1)
    world.run_for(60)
    # Two requests at once took a code each for B-1 (each read B-1 without one)
    first = world.pools._take(DOOR_1, "B-1")
    second = next(c for c in world.store.pool_codes(DOOR_1) if c.staff and c.staff.usedBy is None)
    assert second.staff is not None
    second.staff.usedBy = "B-1"
    second = world.store.save_booking(second)
    assert first is not None
    # The first is recorded; the second is not (B-1 has one for the door) and goes back to the pool
    assert world.pools._give("B-1", DOOR_1, first, "x")
    assert not world.pools._give("B-1", DOOR_1, second, "x")
    from staykey.services.backup import _untake

    _untake(world.store, second.bookingId, "B-1")
    back = world.store.get_booking(second.bookingId)
    assert back is not None
    assert back.staff is not None
    assert back.staff.usedBy is None
    # And one taken and never recorded (the request died) is removed with the stay's end
    third = next(c for c in world.store.pool_codes(DOOR_1) if c.staff and c.staff.usedBy is None)
    assert third.staff is not None
    third.staff.usedBy = "B-1"
    world.store.save_booking(third)
    world.set_online(DOOR_1, True)
    world.end("B-1", "cancel")
    world.run_for(600)
    _readiness_runs(world, hours=0.5)
    assert not [
        c for c in world.store.pool_codes(DOOR_1) if c.staff and c.staff.usedBy == "B-1" and c.status.value == "active"
    ]
    # A cancelled booking is given nothing (a request racing the cancellation)
    code = world.pools._take(DOOR_1, "B-1")
    assert code is not None
    assert not world.pools._give("B-1", DOOR_1, code, "x")


def test_a_backup_code_that_stops_opening_the_door_takes_the_booking_out_of_active_f2() -> None:
    world, given = _given(_pooled_world())
    assert status(world, "B-1") == "active"
    # Someone changes the backup code's PIN in Nuki Web
    auth = next(a for a in world.auths_on(DOOR_1) if a.code == int(str(given["pin"])))
    world.edit_in_nuki_web(DOOR_1, auth, code=753159)
    world.run_for(120)
    # Then, while the door is offline (the code cannot be written back), the backup code does not
    # open it and the booking is not active
    item = world.booking_item("B-1")
    assert item is not None
    assert not _opens(world, DOOR_1, str(given["pin"]))
    assert item["status"] != "active"
    # And once the door is back, the code is written back and the booking active again
    world.set_online(DOOR_1, True)
    world.run_for(3600)
    assert _opens(world, DOOR_1, str(given["pin"]))
    assert status(world, "B-1") == "active"
    world.checker.sweep()
    assert not violations(world)


def test_a_backup_code_that_stopped_opening_the_door_is_replaced_by_another_ready_one_at_the_next_run() -> None:
    """Simulator seed 111 (backup in time): a guest's backup code was disabled in Nuki Web 22 minutes
    before the stay while Nuki answered 5xx (it could not be written back), the door's other backup
    codes ready; the pools' run gave nothing more (a lock counted as having a backup code whether or
    not it held), and the guest arrived with a code that did not open."""
    world, given = _given(_pooled_world())
    assert status(world, "B-1") == "active"
    emails = len(world.mailer.sent)
    # Someone disables the guest's backup code in Nuki Web; the door is offline (no write-back)
    auth = next(a for a in world.auths_on(DOOR_1) if a.code == int(str(given["pin"])))
    world.edit_in_nuki_web(DOOR_1, auth, enabled=False)
    world.run_for(120)
    assert status(world, "B-1") != "active"
    assert not _opens(world, DOOR_1, str(given["pin"]))
    # When the next readiness run comes
    world.pools.run()
    world.run_for(60)
    # Then the guest holds another of the door's backup codes in its place, and it opens the door
    item = world.booking_item("B-1")
    assert item is not None
    (again,) = item["backups"]
    assert again["smartlockId"] == DOOR_1
    assert again["poolId"] != given["poolId"]
    assert _opens(world, DOOR_1, str(again["pin"]))
    # And the booking is active again, the guest emailed the new code, the shop told
    assert item["status"] == "active"
    assert len(world.mailer.sent) == emails + 1
    assert world.mailer.sent[-1].notice.doors == ((DOOR_1, f"Lock {DOOR_1}", again["pin"]),)
    assert _event_types(world, "B-1").count("booking.backup_assigned") == 2
    # And a code that holds is kept: asking again gives nothing more
    assert [b.poolId for b in world.pools.assign("B-1", [DOOR_1]).backups] == [again["poolId"]]
    # And the replaced code ends (its PIN was told to the guest: never given again), gone once the
    # door is back
    old = world.store.get_booking(str(given["poolId"]))
    assert old is not None
    assert old.status.value in ("revoking", "revoked")
    world.set_online(DOOR_1, True)
    world.run_for(1800)
    assert int(str(given["pin"])) not in codes_on(world, DOOR_1)
    assert _opens(world, DOOR_1, str(again["pin"]))
    world.checker.sweep()
    assert not violations(world)


def test_a_stay_moved_days_ahead_loses_its_backup_code_f4() -> None:
    world, given = _given(_pooled_world())
    world.set_online(DOOR_1, True)
    sb = world.shop["B-1"]
    assert sb.valid_from is not None
    assert sb.valid_until is not None
    world.patch("B-1", checkIn=sb.valid_from + timedelta(days=20), checkOut=sb.valid_until + timedelta(days=20))
    world.run_for(900)
    item = world.booking_item("B-1")
    assert item is not None
    assert item["backups"] == []
    assert not _opens(world, DOOR_1, str(given["pin"]))
    world.checker.sweep()
    assert not violations(world)


def test_a_smaller_pool_never_removes_a_code_given_since_the_pool_was_read_f3() -> None:
    world, given = _given(_pooled_world())
    world.pools._end_code(str(given["poolId"]), "the pool is smaller now", unused_only=True)
    code = world.store.get_booking(str(given["poolId"]))
    assert code is not None
    assert code.status.value == "active"


def test_the_pools_run_reads_the_pools_of_pooled_locks_only_and_forgets_a_pool_gone() -> None:
    """Issue 17 at fleet scale: the pools' run (every readiness run) read the pool of every lock of
    the account, a query per lock (10,000 at 10,000 locks), and every room twice. It reads the locks
    that have or had a pool (`Store.mark_pooled`), and once the rooms with backup codes on (their
    own index), never the list of every room."""
    world = _pooled_world()
    world.put_room("r2", (DOOR_2,))
    world.store.register_locks([DOOR_2, 17000123, 17000124])
    asked: list[int] = []
    lists: list[int] = []
    backup_rooms = []
    pool_codes, list_rooms, indexed = world.store.pool_codes, world.store.list_rooms, world.store.backup_rooms
    world.store.pool_codes = lambda lock_id: asked.append(lock_id) or pool_codes(lock_id)  # type: ignore[method-assign]
    world.store.list_rooms = lambda: lists.append(1) or list_rooms()  # type: ignore[method-assign]
    world.store.backup_rooms = lambda: backup_rooms.append(1) or indexed()  # type: ignore[method-assign]
    world.pools.run()
    assert set(asked) == {DOOR_1, ENTRANCE}  # not DOOR_2 nor the registered locks with no pool
    assert lists == []
    assert len(backup_rooms) == 1
    assert [r.roomId for r in indexed()] == ["r1"]
    # Backup codes turned off: the codes go; a run an hour later forgets the pools gone
    world.put_room("r1", (DOOR_1, ENTRANCE), backupCodes=False)
    world.pools.run()
    world.run_for(600)
    assert _pool(world, DOOR_1) == []
    world.run_for(3600)
    world.pools.run()
    asked.clear()
    world.pools.run()
    assert asked == []
    assert sorted(world.store.pooled_locks()) == []
    world.checker.sweep()
    assert not violations(world)


def test_pools_and_rooms_stored_before_their_indexes_are_found_once_and_their_codes_go() -> None:
    """Found by an adversarial review (helper-36): data as a deployment before the indexes left it
    (pool codes on the locks, no POOLS marks, rooms with backup codes out of their index) kept its
    pool codes on the locks for good once backup codes were turned off. The first run reads every
    room and every registered lock once (CONFIG BACKUP_INDEXES), and a full pool is marked too."""
    world = _pooled_world()
    assert len(_pool(world, DOOR_1)) == 3
    for lock_id in (DOOR_1, ENTRANCE):
        world.store.unmark_pooled(lock_id, world.loop.now() + timedelta(days=1))
    world.store.delete_config("BACKUP_INDEXES")
    room = world.store.get_room("r1")
    assert room is not None
    world.store._put({"pk": "ROOMS", "sk": "ROOM#r1", **room.model_dump(mode="json")})  # out of the index
    assert world.store.pooled_locks() == []
    assert world.store.backup_rooms() == []
    world.pools.run()
    assert sorted(world.store.pooled_locks()) == sorted((DOOR_1, ENTRANCE))
    assert [r.roomId for r in world.store.backup_rooms()] == ["r1"]
    world.put_room("r1", (DOOR_1, ENTRANCE), backupCodes=False)
    for _ in range(4):
        world.pools.run()
        world.run_for(900)
    assert _pool(world, DOOR_1) == []
    assert _pool(world, ENTRANCE) == []
    world.checker.sweep()
    assert not violations(world)


@pytest.mark.parametrize("change_after_hours", [None, 2.6])
def test_the_backup_in_time_rule_fails_a_booking_left_without_one_even_after_a_late_check_out_change(
    monkeypatch: pytest.MonkeyPatch, change_after_hours: float | None
) -> None:
    """The simulator's rule must be able to fail (helper-37): with backup codes never given, a guest
    whose door is offline from before the deadline breaks it, also when a later check-out was asked
    for 24 minutes before the stay (the rule's window restarts only at a move into the room or onto
    the lock, or a start moved earlier; it restarted at any change of dates, and emptied)."""
    from staykey.services.backup import BackupPools

    monkeypatch.setattr(BackupPools, "assign", lambda self, booking_id, *a, **kw: self.store.get_booking(booking_id))
    world = _pooled_world()
    world.set_online(DOOR_1, False)
    _book_in(world, "B-1", hours=3)
    for minute in range(int(3.5 * 60)):
        if minute % 15 == 0:
            world.readiness.run()
            world.pools.run()
        if change_after_hours is not None and minute == int(change_after_hours * 60):
            sb = world.shop["B-1"]
            world.patch("B-1", checkOut=sb.valid_until + timedelta(hours=1))  # type: ignore[operator]
        world.run_for(60)
        world.checker.sweep()  # the checker's periodic sweep: it samples the pools' ready codes
    assert any("backup_in_time" in v for v in violations(world))
