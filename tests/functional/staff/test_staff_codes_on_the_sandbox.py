"""Staff codes (issue 16) against the Nuki sandbox (local/nuki_sandbox), on the simulator's virtual
clock: StayKey's real services and Nuki client, Nuki's asynchrony, webhooks, and the sandbox's own
enforcement of Nuki's weekday and daily-time restrictions. The simulator's invariants judge every
step besides the assertions (a staff code is `active` only while every lock holds it with its
schedule; it is off every lock within 15 minutes of its removal; foreign codes are untouched)."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from local.sim import staff
from local.sim.world import SimConfig, World
from staykey.core.staff import StaffCodeIn, StaffCodePatch, to_api
from staykey.errors import ValidationFailed
from tests.sim.conftest import DOOR_1, DOOR_2, ENTRANCE, book_now, make_world, status, violations

MON_TO_FRI = 64 + 32 + 16 + 8 + 4
MORNING = {"allowedWeekDays": MON_TO_FRI, "allowedFromTime": 8 * 60, "allowedUntilTime": 12 * 60}


def _scripted(pin: str, seed: int) -> Callable[[str], str]:
    """A PIN source that offers `pin` first, then random digits."""
    digits, rng = iter(pin), random.Random(seed)
    return lambda alphabet: next(digits, None) or rng.choice(alphabet)


def _opens(world: World, lock_id: int, pin: str) -> bool:
    return bool(world.sandbox.keypad_entry(lock_id, int(pin), at=world.loop.now())["success"])


def _at(world: World, when: datetime) -> None:
    """Run the world on to `when` (UTC)."""
    world.run_for((when - world.loop.now()).total_seconds())


def _ours(world: World, lock_id: int, name: str) -> list[object]:
    return [a for a in world.auths_on(lock_id) if a.type == 13 and a.name == name]


def _pin(world: World, bid: str) -> str:
    item = world.booking_item(bid)
    assert item is not None
    return str(item["pin"])


def test_a_weekday_morning_code_opens_inside_its_schedule_and_not_outside_in_the_locks_zone() -> None:
    # Given the room's door and entrance keep Europe/Berlin time
    world = make_world(webhooks=True)
    for lock_id in (DOOR_1, ENTRANCE):
        world.sandbox.update_smartlock(lock_id, timezone="Europe/Berlin")
    # When the shop makes a Monday-to-Friday 08:00-12:00 staff code for room r1
    bid = staff.add(world, "cleaning-anna", rooms=("r1",), **MORNING)
    world.run_for(120)
    # Then it is active, on both locks, with exactly that schedule, under its own name
    assert status(world, bid) == "active"
    pin = _pin(world, bid)
    for lock_id in (DOOR_1, ENTRANCE):
        (auth,) = _ours(world, lock_id, "SK S:cleaning-anna")
        assert (auth.window.week_days, auth.window.from_time, auth.window.until_time) == (MON_TO_FRI, 480, 720)
    assert not _ours(world, DOOR_2, "SK S:cleaning-anna")
    # And it opens on Thursday at 10:00 Berlin time (09:00 UTC), not at 12:30, not on Saturday
    _at(world, datetime(2026, 11, 26, 9, 5, tzinfo=UTC))
    assert _opens(world, DOOR_1, pin)
    assert _opens(world, ENTRANCE, pin)
    _at(world, datetime(2026, 11, 26, 11, 30, tzinfo=UTC))  # 12:30 in Berlin
    assert not _opens(world, DOOR_1, pin)
    _at(world, datetime(2026, 11, 28, 9, 0, tzinfo=UTC))  # Saturday
    assert not _opens(world, DOOR_1, pin)
    _at(world, datetime(2026, 11, 30, 7, 30, tzinfo=UTC))  # Monday 08:30 in Berlin
    assert _opens(world, DOOR_1, pin)
    # And no guest ever gets it, and the entries are attributed to the staff code
    world.poll_now()
    world.run_for(60)
    mine = world.activity.for_booking(bid)
    assert len([i for i in mine if i.success]) >= 3
    world.checker.sweep()
    assert not violations(world)


def test_the_schedule_follows_the_locks_wall_clock_across_the_change_to_summer_time() -> None:
    # Given a world in the week Europe/Berlin moves its clocks forward (Sunday 28 March 2027)
    start = datetime(2027, 3, 25, 6, 0, tzinfo=UTC)
    world = World(3, start, SimConfig(periodic=False, log_polling=False, webhooks=True))
    world.add_lock(DOOR_1)
    world.sandbox.update_smartlock(DOOR_1, timezone="Europe/Berlin")
    world.put_room("r1", (DOOR_1,))
    world.start()
    world.run_for(5)
    bid = staff.add(world, "early", rooms=("r1",), **MORNING)
    world.run_for(120)
    assert status(world, bid) == "active"
    pin = _pin(world, bid)
    # Friday 26 March, winter time: 08:00 Berlin is 07:00 UTC
    _at(world, datetime(2027, 3, 26, 7, 5, tzinfo=UTC))
    assert _opens(world, DOOR_1, pin)
    # Monday 29 March, summer time: 08:00 Berlin is 06:00 UTC; 07:05 UTC is 09:05 there, 10:30 UTC is 12:30
    _at(world, datetime(2027, 3, 29, 6, 5, tzinfo=UTC))
    assert _opens(world, DOOR_1, pin)
    _at(world, datetime(2027, 3, 29, 10, 30, tzinfo=UTC))
    assert not _opens(world, DOOR_1, pin)
    world.checker.sweep()
    assert not violations(world)


def test_a_change_of_schedule_reaches_the_locks_and_a_rotation_and_removal_take_effect() -> None:
    world = make_world(webhooks=True)
    bid = staff.add(world, "maint", rooms=("r1",), **MORNING)
    world.run_for(120)
    old = _pin(world, bid)
    # When the shop makes it every day, all day
    staff.change(world, "maint", allowedWeekDays=127, allowedFromTime=0, allowedUntilTime=0)
    world.run_for(300)
    assert status(world, bid) == "active"
    for lock_id in (DOOR_1, ENTRANCE):
        (auth,) = _ours(world, lock_id, "SK S:maint")
        assert (auth.window.week_days, auth.window.from_time, auth.window.until_time) == (127, 0, 0)
    # And rotates its PIN: the new one is on both locks, the old one off them
    world.rotate(bid)
    world.run_for(600)
    new = _pin(world, bid)
    assert new != old
    for lock_id in (DOOR_1, ENTRANCE):
        assert [a.code for a in _ours(world, lock_id, "SK S:maint")] == [int(new)]
        assert _opens(world, lock_id, new)
        assert not _opens(world, lock_id, old)
    # And removes it: off both locks, `removed`, its claims released
    staff.remove(world, "maint")
    world.run_for(600)
    assert status(world, bid) == "revoked"
    assert to_api(world.staff.get("maint"))["status"] == "removed"
    for lock_id in (DOOR_1, ENTRANCE):
        assert not _ours(world, lock_id, "SK S:maint")
        assert not [c for c in world.store.codes_on_lock(lock_id) if c.booking_id == bid]
    world.checker.sweep()
    assert not violations(world)


def test_a_staff_code_deleted_in_nuki_web_is_put_back_by_the_reconciler() -> None:
    # Given an active staff code on an idle room (no stay near), without webhooks
    world = make_world(webhooks=False)
    bid = staff.add(world, "night", rooms=("r2",))
    world.run_for(3 * 3600)  # the watcher's hour after the change is over
    assert status(world, bid) == "active"
    pin = _pin(world, bid)
    # When someone deletes it from the door in Nuki Web
    (auth,) = _ours(world, DOOR_2, "SK S:night")
    world.sandbox.delete_auth_elsewhere(DOOR_2, auth.id)
    world.tampered[DOOR_2] = world.loop.t
    # And the reconciler's sweep runs
    world.reconcile_now()
    world.run_for(600)
    # Then the code is back on the door with the same PIN and schedule, and the staff code active
    assert [a.code for a in _ours(world, DOOR_2, "SK S:night")] == [int(pin)]
    assert _opens(world, DOOR_2, pin)
    assert status(world, bid) == "active"


def test_a_guest_is_never_given_a_staff_codes_pin_and_two_staff_codes_never_share_one() -> None:
    # Given a staff code on room r1 (door 1 and the entrance)
    world = make_world(webhooks=True)
    bid = staff.add(world, "anna", rooms=("r1",))
    world.run_for(120)
    taken = _pin(world, bid)
    # And PIN sources that offer that PIN first (then random digits)
    world.bookings.pin_choice = _scripted(taken, 7)
    world.staff.pin_choice = _scripted(taken, 8)
    # When a guest books room r2 (it shares the entrance) and another staff code is made for r1
    book_now(world, "B-1", room="r2")
    other = staff.add(world, "bob", rooms=("r1",))
    world.run_for(300)
    # Then neither got the staff code's PIN
    assert _pin(world, "B-1") != taken
    assert _pin(world, other) != taken
    assert status(world, "B-1") == "active"
    assert status(world, other) == "active"
    world.checker.sweep()
    assert not violations(world)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"roomIds": ["r1"], "allowedFromTime": 720, "allowedUntilTime": 480}, "allowedUntilTime"),
        ({"roomIds": ["r1"], "allowedFromTime": 600}, "allowedUntilTime"),
        ({"roomIds": ["r1"], "allowedUntilDate": "2100-01-01T00:00:00Z"}, "allowedUntilDate"),
        ({"roomIds": ["r1"], "allowedFromDate": "2031-01-01"}, "allowedFromDate"),
        ({"roomIds": ["r1"], "allowedWeekDays": 0}, "allowedWeekDays"),
        ({"roomIds": ["r1"], "allowedWeekDays": 128}, "allowedWeekDays"),
        ({"roomIds": ["r1"], "allowedFromDate": "2027-01-10", "allowedUntilDate": "2027-01-05"}, "allowedUntilDate"),
        ({"roomIds": ["r1"], "allowedUntilDate": "2026-01-05"}, "allowedUntilDate"),
        ({"smartlockIds": [17000555]}, "smartlockIds"),
        ({"roomIds": ["nowhere"]}, "roomIds"),
        ({}, "roomIds"),
        ({"roomIds": ["r1", "r1"]}, "roomIds"),
        ({"roomIds": ["r1"], "allowedFromDate": "2027-01-10T08:00"}, "allowedFromDate"),
    ],
)
def test_a_schedule_that_cannot_exist_or_a_lock_of_no_room_is_a_422_naming_the_field_and_nothing_is_sent(
    body: dict[str, object], field: str
) -> None:
    world = make_world(webhooks=True)
    calls = len(world.link.calls)
    request = {"staffCodeId": "bad", "name": "Bad", **body}
    with pytest.raises((ValidationFailed, ValueError)) as raised:
        world.staff.create(StaffCodeIn.model_validate(request))
    exc = raised.value
    if isinstance(exc, ValidationFailed):
        assert exc.status == 422
        assert [d["field"] for d in exc.details] == [field]
    else:  # pydantic's error: the edge answers it 422 naming the field (edge.http)
        assert field in str(exc)
    world.run_for(60)
    assert world.store.get_booking("staff~bad") is None
    assert len(world.link.calls) == calls
    assert all(not world.store.codes_on_lock(i) for i in (DOOR_1, DOOR_2, ENTRANCE))


def test_a_lock_opened_with_the_app_only_cannot_take_a_staff_code() -> None:
    world = make_world(webhooks=True)
    world.add_lock(17000777, keypad=False)
    world.put_room("app-room", (17000777,), access={"17000777": "app"})
    with pytest.raises(ValidationFailed) as raised:
        world.staff.create(StaffCodeIn.model_validate({"staffCodeId": "x", "name": "X", "roomIds": ["app-room"]}))
    assert [d["field"] for d in raised.value.details] == ["roomIds"]
    assert "Nuki app" in raised.value.details[0]["message"]


def test_staff_codes_are_in_no_list_of_bookings_and_get_no_readiness_check() -> None:
    world = make_world(webhooks=True)
    bid = staff.add(world, "anna", rooms=("r1",))
    book_now(world, "B-1")
    world.run_for(120)
    from staykey.services.search import BookingFilter, BookingSearch

    search = BookingSearch(world.store, world.clock)
    page = search.search(BookingFilter(), 100, None)
    assert [b["bookingId"] for b in page.to_api()["items"]] == ["B-1"]
    world.readiness.run()
    world.run_for(60)
    item = world.booking_item(bid)
    assert item is not None
    assert item.get("readiness") is None
    codes, _ = world.staff.page(10)
    assert [c.staff.staffCodeId for c in codes if c.staff] == ["anna"]
    # And a lock's code list names it as a staff code, not as a booking
    from staykey.services.locks import Locks

    listed = Locks(world.settings, world.store, world.clock).get(DOOR_1).to_api()["codeList"]
    mine = [c for c in listed if c.get("staffCodeId") == "anna"]
    assert len(mine) == 1
    assert mine[0]["bookingId"] is None
    assert mine[0]["staffCodeStatus"] == "active"


def test_a_staff_codes_weekdays_changed_in_nuki_web_are_put_back() -> None:
    # Given an active Monday-to-Friday code, with webhooks
    world = make_world(webhooks=True)
    bid = staff.add(world, "anna", rooms=("r1",), **MORNING)
    world.run_for(120)
    (auth,) = _ours(world, DOOR_1, "SK S:anna")
    # When someone adds the weekend to it in Nuki Web
    world.edit_in_nuki_web(DOOR_1, auth, week_days=127)
    world.run_for(20 * 60)
    # Then StayKey writes its schedule back (the webhook is a hint; the read-back decides)
    (auth,) = _ours(world, DOOR_1, "SK S:anna")
    assert auth.window.week_days == MON_TO_FRI
    assert status(world, bid) == "active"
    world.checker.sweep()
    assert not violations(world)


def test_a_lock_a_room_opens_with_the_app_is_refused_when_named_and_a_removed_id_is_not_reused() -> None:
    # Given a keyless back door that two rooms open with the app, one of them beside room r1's door
    world = make_world(webhooks=True)
    world.add_lock(17000777, keypad=False)
    world.put_room("app-1", (17000777,), access={"17000777": "app"})
    world.put_room("app-2", (DOOR_1, 17000777), access={"17000777": "app"})
    request = {"staffCodeId": "x", "name": "X", "smartlockIds": [17000777]}
    with pytest.raises(ValidationFailed) as raised:
        world.staff.create(StaffCodeIn.model_validate(request))
    assert [d["field"] for d in raised.value.details] == ["smartlockIds"]
    with pytest.raises(ValidationFailed) as raised:
        world.staff.create(StaffCodeIn.model_validate({**request, "smartlockIds": [], "roomIds": ["app-2"]}))
    assert [d["field"] for d in raised.value.details] == ["roomIds"]
    # And a lock one room opens with the app and another with its keypad takes it
    world.put_room("app-3", (ENTRANCE,), access={str(ENTRANCE): "app"})
    code, _ = world.staff.create(StaffCodeIn.model_validate({**request, "smartlockIds": [ENTRANCE]}))
    assert [lk.smartlockId for lk in code.locks] == [ENTRANCE]
    # A staff code removed keeps its id: the same id again is a 409 that says to use another
    bid = staff.add(world, "gone", rooms=("r2",))
    world.run_for(120)
    staff.remove(world, "gone")
    world.run_for(600)
    assert status(world, bid) == "revoked"
    again = {"staffCodeId": "gone", "name": "Another", "roomIds": ["r2"]}
    from staykey.errors import Conflict

    with pytest.raises(Conflict, match="another staffCodeId"):
        world.staff.create(StaffCodeIn.model_validate(again))


# ---------------------------------------------------------------------- adversarial review (helper-32)


def _active_code(world: World, staff_code_id: str, rooms: tuple[str, ...]) -> str:
    bid = staff.add(world, staff_code_id, rooms=rooms)
    world.run_for(120)
    assert status(world, bid) == "active"
    return bid


def test_a_change_read_before_a_rotation_switched_keeps_the_new_pin_f1() -> None:
    # Given a staff code read, then its PIN rotated (the switch done) before the change is written
    world = make_world(webhooks=True)
    bid = _active_code(world, "rot", ("r2",))
    stale = world.staff.get("rot")
    old = stale.pin
    world.rotate(bid)
    world.run_for(600)
    new = _pin(world, bid)
    assert new != old
    # When a change of name computed from what was read is written
    world.staff._live = lambda _id: stale  # type: ignore[method-assign]
    world.staff.patch("rot", StaffCodePatch.model_validate({"name": "Renamed"}))
    world.run_for(600)
    # Then the code keeps its new PIN on the locks, and the old one is not back
    assert _pin(world, bid) == new
    for lock_id in (DOOR_2, ENTRANCE):
        assert _opens(world, lock_id, new)
        assert not _opens(world, lock_id, old)
    world.checker.sweep()
    assert not violations(world)


def test_a_change_read_before_another_change_keeps_the_other_change_f2() -> None:
    # Given a staff code on r1 and r2, read; then another change drops r1 (written first)
    world = make_world(webhooks=True)
    _active_code(world, "two", ("r1", "r2"))
    stale = world.staff.get("two")
    world.staff.patch("two", StaffCodePatch.model_validate({"roomIds": ["r2"]}))
    world.run_for(600)
    # When a rename computed from the earlier read is written
    world.staff._live = lambda _id: stale  # type: ignore[method-assign]
    world.staff.patch("two", StaffCodePatch.model_validate({"name": "New phone"}))
    world.run_for(600)
    # Then r1's door no longer takes the code, and both changes hold
    code = to_api(world.staff.get("two"))
    assert code["roomIds"] == ["r2"]
    assert code["name"] == "New phone"
    assert not _opens(world, DOOR_1, code["pin"])
    world.checker.sweep()
    assert not violations(world)


def test_a_rename_keeps_the_locks_even_when_a_room_changed_since_f6() -> None:
    world = make_world(webhooks=True)
    _active_code(world, "keep", ("r1",))
    world.put_room("r1", (DOOR_1, ENTRANCE, DOOR_2))
    answer = world.staff.patch("keep", StaffCodePatch.model_validate({"name": "Renamed"}))
    assert [lk.smartlockId for lk in answer.locks if lk.desired == "present"] == [DOOR_1, ENTRANCE]


def test_a_replay_naming_the_rooms_zone_is_the_same_request_and_odd_ids_and_dates_are_named_f7_f9() -> None:
    world = make_world(webhooks=True)
    body = {"staffCodeId": "idem", "name": "I", "roomIds": ["r1"]}
    first, created = world.staff.create(StaffCodeIn.model_validate(body))
    assert created
    again, created = world.staff.create(StaffCodeIn.model_validate({**body, "timezone": "Europe/Berlin"}))
    assert not created
    assert again.pin == first.pin
    with pytest.raises(ValueError, match="only dots"):
        StaffCodeIn.model_validate({**body, "staffCodeId": ".."})
    with pytest.raises(ValidationFailed, match="dates") as raised:
        world.staff.create(
            StaffCodeIn.model_validate({**body, "staffCodeId": "past", "allowedUntilDate": "2026-11-20"})
        )
    assert "is in the past" in raised.value.details[0]["message"]


def test_a_change_onto_a_lock_where_a_rotations_pin_is_someone_elses_takes_another_rotation_pin_f4() -> None:
    # Given a staff code on r1 whose rotation waits for its door (offline)
    world = make_world(webhooks=True)
    bid = _active_code(world, "rp", ("r1",))
    world.set_online(DOOR_1, False)
    world.rotate(bid)
    world.run_for(60)
    pending = world.staff.get("rp").rotation
    assert pending is not None
    # And someone else's code with the rotation's PIN on r2's door, known to StayKey
    assert world.add_foreign(DOOR_2, int(pending.pin), "Hand made") is not None
    world.reconcile_all_now()
    world.run_for(120)
    # When the staff code is given r2 too
    answer = world.staff.patch("rp", StaffCodePatch.model_validate({"roomIds": ["r1", "r2"]}))
    # Then it is answered (not a 503), with another rotation PIN, and nothing of the hand code is touched
    assert answer.rotation is not None
    assert answer.rotation.pin != pending.pin
    world.set_online(DOOR_1, True)
    world.run_for(900)
    assert any(a.name == "Hand made" and a.code == int(pending.pin) for a in world.auths_on(DOOR_2))
    world.checker.sweep()
    assert not violations(world)
