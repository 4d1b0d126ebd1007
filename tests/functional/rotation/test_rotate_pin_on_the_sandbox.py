"""Rotating a booking's PIN against the Nuki sandbox (local/nuki_sandbox): StayKey's real services
and Nuki client, Nuki's asynchrony, webhooks and offline locks, on the simulator's virtual clock.
The simulator's invariants (local/sim/invariants.py) judge every step besides the assertions: the
guest is never told a PIN that does not open every door, and no code stays on a lock it should
not be on."""

from __future__ import annotations

from datetime import timedelta

import pytest

from staykey.core.drift import Do, Drift
from staykey.errors import Conflict
from tests.functional.rotation.helpers import (
    DOOR_1,
    DOOR_2,
    ENTRANCE,
    book_now,
    booking,
    codes,
    events,
    make_world,
    opens,
    rotation,
    status,
    violations,
)

NAME = "SK B-1"


def _active(webhooks: bool = True, **config: object):  # type: ignore[no-untyped-def]
    world = make_world(webhooks=webhooks, **config)
    book_now(world, "B-1")
    world.run_for(120)
    assert status(world, "B-1") == "active"
    return world


def test_a_two_lock_booking_rotated_while_active_keeps_the_old_pin_until_the_new_one_is_on_both() -> None:
    # Given an active booking on the room door and the shared entrance, its guest told its PIN,
    # and an entrance that takes a minute and a half to apply a write
    world = _active()
    old = booking(world)["pin"]
    assert [m.notice.pin for m in world.mailer.sent] == [old]
    world.sandbox.update_smartlock(DOOR_1, sync_delay=5)
    world.sandbox.update_smartlock(ENTRANCE, sync_delay=90)
    # When the shop asks for a new PIN
    answer = world.bookings.rotate_pin("B-1")
    # Then the answer is the booking with the PIN that works now, and the rotation under way
    assert answer.pin == old
    assert answer.to_api()["pinRotation"]["status"] == "pending"
    assert "pin" not in answer.to_api()["pinRotation"]
    new = answer.rotation.pin  # type: ignore[union-attr]
    assert new != old
    # And once the room door holds the new code, the old PIN still opens both doors, the booking
    # still answers the old PIN, and the guest has not been told anything
    world.run_for(60)
    assert codes(world, DOOR_1, NAME) == sorted([old, new])
    assert codes(world, ENTRANCE, NAME) == [old]
    assert booking(world)["pin"] == old
    assert status(world, "B-1") == "active"
    assert opens(world, DOOR_1, old)
    assert opens(world, ENTRANCE, old)
    assert len(world.mailer.sent) == 1
    # When the entrance applies it too
    world.run_for(180)
    # Then the booking switched to the new PIN, the guest was emailed it (after it was on both locks)
    item = booking(world)
    assert item["pin"] == new
    assert item["status"] == "active"
    assert rotation(world) is None
    assert [m.notice.pin for m in world.mailer.sent] == [old, new]
    assert world.mailer.sent[-1].notice.updated
    landed = max(
        world.loop.at_time(a.created) for lock in (DOOR_1, ENTRANCE) for a in world.auths_on(lock) if a.code == int(new)
    )
    assert world.mailer.sent[-1].at >= landed
    # And then the old codes are gone from both locks (confirmed by read-back), the new PIN opens both
    world.run_for(600)
    assert codes(world, DOOR_1, NAME) == [new]
    assert codes(world, ENTRANCE, NAME) == [new]
    assert not opens(world, DOOR_1, old)
    assert not opens(world, ENTRANCE, old)
    assert opens(world, DOOR_1, new)
    assert opens(world, ENTRANCE, new)
    stored = world.store.get_booking("B-1")
    assert stored is not None
    assert stored.rotationCodes == []
    assert stored.pinRotatedAt is not None
    # And the old PIN's claims are released, the new one's held
    for lock_id in (DOOR_1, ENTRANCE):
        claimed = {c.pin for c in world.store.codes_on_lock(lock_id) if c.booking_id == "B-1"}
        assert claimed == {new}
    # And the shop got one booking.changed for the PIN, never the PIN itself
    changed = [e for e in events(world) if e["type"] == "booking.changed"]
    assert [e["data"]["changes"] for e in changed] == [["pin"]]
    assert old not in str(events(world))
    assert new not in str(events(world))
    world.checker.sweep()
    assert not violations(world)


def test_with_one_lock_offline_the_old_pin_keeps_working_and_the_rotation_completes_when_it_is_back() -> None:
    # Given an active booking whose entrance goes offline
    world = _active()
    old = booking(world)["pin"]
    world.set_online(ENTRANCE, False)
    # When the PIN is rotated, and 20 minutes pass
    new = world.bookings.rotate_pin("B-1").rotation.pin  # type: ignore[union-attr]
    world.run_for(20 * 60)
    # Then the rotation failed there (visible, with its reason, alarmed), the booking is active on
    # the old PIN, which opens both doors, and the guest was told nothing new
    state = rotation(world)
    assert state is not None
    assert state["status"] == "failed"
    assert f"lock {ENTRANCE}" in state["statusReason"]
    assert {lk["smartlockId"]: lk["status"] for lk in state["locks"]} == {DOOR_1: "active", ENTRANCE: "failed"}
    assert world.metric_counts["ProvisioningFailed"] >= 1
    item = booking(world)
    assert (item["status"], item["pin"]) == ("active", old)
    assert opens(world, DOOR_1, old)
    assert opens(world, ENTRANCE, old)
    assert len(world.mailer.sent) == 1
    # When the lock comes back
    world.set_online(ENTRANCE, True)
    world.run_for(30 * 60)
    # Then the rotation completed: the new PIN on both locks, the guest told, the old codes gone
    assert booking(world)["pin"] == new
    assert rotation(world) is None
    assert world.mailer.sent[-1].notice.pin == new
    assert codes(world, DOOR_1, NAME) == [new]
    assert codes(world, ENTRANCE, NAME) == [new]
    world.checker.sweep()
    assert not violations(world)


def test_a_rotation_while_scheduled_just_reserves_another_pin() -> None:
    # Given a booking four days ahead: scheduled, its PIN reserved, nothing on the locks
    world = make_world(webhooks=True)
    book_now(world, "B-1", lead=4 * 24 * 3600)
    world.run_for(10)
    old = booking(world)["pin"]
    calls = len(world.link.calls)
    # When it is rotated
    answer = world.bookings.rotate_pin("B-1")
    # Then the answer has the new PIN at once, nothing was sent to Nuki, and the claims moved
    assert answer.status.value == "scheduled"
    assert answer.pin != old
    assert answer.rotation is None
    assert len(world.link.calls) == calls
    for lock_id in (DOOR_1, ENTRANCE):
        assert {c.pin for c in world.store.codes_on_lock(lock_id) if c.booking_id == "B-1"} == {answer.pin}
    assert [e["data"]["changes"] for e in events(world) if e["type"] == "booking.changed"] == [["pin"]]
    # And when its time comes, the new PIN goes onto the locks, and the old one never did
    world.run_for(26 * 3600)
    assert status(world, "B-1") == "active"
    assert codes(world, DOOR_1, NAME) == [answer.pin]
    assert codes(world, ENTRANCE, NAME) == [answer.pin]
    assert [m.notice.pin for m in world.mailer.sent] == [answer.pin]
    assert not violations(world)


def test_cancel_during_a_rotation_removes_both_codes() -> None:
    # Given a rotation half done: the room door holds both codes, the entrance is offline
    world = _active()
    old = booking(world)["pin"]
    world.set_online(ENTRANCE, False)
    new = world.bookings.rotate_pin("B-1").rotation.pin  # type: ignore[union-attr]
    world.run_for(60)
    assert codes(world, DOOR_1, NAME) == sorted([old, new])
    # When the shop cancels
    world.end("B-1", "cancel")
    world.run_for(300)
    # Then both codes are off the online lock, the booking is cancelled, the rotation gone
    assert status(world, "B-1") == "cancelled"
    assert codes(world, DOOR_1, NAME) == []
    assert rotation(world) is None
    # And the entrance loses the old code (and never keeps the new one) once it is back
    world.set_online(ENTRANCE, True)
    world.run_for(1800)
    assert codes(world, ENTRANCE, NAME) == []
    for lock_id in (DOOR_1, ENTRANCE):
        assert [c for c in world.store.codes_on_lock(lock_id) if c.booking_id == "B-1"] == []
    assert [m.notice.pin for m in world.mailer.sent] == [old]
    world.checker.sweep()
    assert not violations(world)


def test_checkout_during_a_rotation_revokes_only_once_both_codes_are_gone() -> None:
    world = _active()
    world.sandbox.update_smartlock(ENTRANCE, sync_delay=60)
    world.bookings.rotate_pin("B-1")
    world.run_for(30)
    world.end("B-1", "checkout")
    world.run_for(60)
    assert status(world, "B-1") == "revoking"
    world.run_for(900)
    assert status(world, "B-1") == "revoked"
    assert codes(world, DOOR_1, NAME) == []
    assert codes(world, ENTRANCE, NAME) == []
    assert not violations(world)


def test_the_reconciler_counts_both_codes_of_a_rotation_as_the_bookings() -> None:
    # Given a rotation pending on the entrance (offline), both codes on the room door
    world = _active(webhooks=False)
    old = booking(world)["pin"]
    world.set_online(ENTRANCE, False)
    new = world.bookings.rotate_pin("B-1").rotation.pin  # type: ignore[union-attr]
    world.run_for(60)
    assert codes(world, DOOR_1, NAME) == sorted([old, new])
    # When the reconciler plans the room door
    plan = world.reconciler.plan_lock(DOOR_1)
    # Then both codes are ours and as booked: no duplicate, nothing foreign, nothing to delete
    assert plan.ours == 2
    assert plan.foreign == 0
    assert {(a.drift, a.do) for a in plan.actions} == {(Drift.OK, Do.NONE)}
    # And a run changes nothing on the lock
    world.reconciler.reconcile_lock(DOOR_1)
    world.run_for(60)
    assert codes(world, DOOR_1, NAME) == sorted([old, new])
    # When someone deletes the new code in Nuki Web, the reconciler puts it back
    ours = next(a for a in world.auths_on(DOOR_1) if a.code == int(new))
    world.sandbox.delete_auth_elsewhere(DOOR_1, ours.id)
    world.tampered[DOOR_1] = world.loop.t
    world.run_for(5)
    plan = world.reconciler.reconcile_lock(DOOR_1)
    assert (Drift.MISSING, Do.HEAL) in {(a.drift, a.do) for a in plan.actions}
    world.run_for(120)
    assert codes(world, DOOR_1, NAME) == sorted([old, new])
    # And once the entrance is back the rotation completes; a later run finds only the new code
    world.set_online(ENTRANCE, True)
    world.run_for(1800)
    assert booking(world)["pin"] == new
    for lock_id in (DOOR_1, ENTRANCE):
        plan = world.reconciler.reconcile_lock(lock_id)
        assert plan.ours == 1
        assert {(a.drift, a.do) for a in plan.actions} == {(Drift.OK, Do.NONE)}
    world.checker.sweep()
    assert not violations(world)


def test_the_old_code_stays_until_the_guest_has_been_told_the_new_pin() -> None:
    # Given SES refusing the next two emails (throttling)
    world = _active()
    old = booking(world)["pin"]
    world.mailer.fail_next = 2
    # When the PIN is rotated and the new code lands on both locks
    new = world.bookings.rotate_pin("B-1").rotation.pin  # type: ignore[union-attr]
    world.run_for(30)
    # Then the booking switched, but the old PIN (the one the guest knows) still opens both doors
    assert booking(world)["pin"] == new
    assert [m.notice.pin for m in world.mailer.sent] == [old]
    assert opens(world, DOOR_1, old)
    assert opens(world, ENTRANCE, old)
    # And once SES took the email, the old codes go
    world.run_for(15 * 60)
    assert [m.notice.pin for m in world.mailer.sent] == [old, new]
    assert codes(world, DOOR_1, NAME) == [new]
    assert codes(world, ENTRANCE, NAME) == [new]
    world.checker.sweep()
    assert not violations(world)


def test_a_move_to_another_room_during_a_rotation_takes_the_new_code_along() -> None:
    # Given a rotation pending (the entrance slow), the booking moves from room 1 to room 2
    world = _active()
    old = booking(world)["pin"]
    world.sandbox.update_smartlock(ENTRANCE, sync_delay=90)
    new = world.bookings.rotate_pin("B-1").rotation.pin  # type: ignore[union-attr]
    world.run_for(20)
    world.patch("B-1", roomId="r2")
    world.run_for(1800)
    # Then the booking has the new PIN on room 2's locks only, and nothing is left on room 1's door
    item = booking(world)
    assert item["pin"] == new
    assert item["status"] == "active"
    assert codes(world, DOOR_2, NAME) == [new]
    assert codes(world, ENTRANCE, NAME) == [new]
    assert codes(world, DOOR_1, NAME) == []
    assert old not in {c.pin for c in world.store.codes_on_lock(DOOR_1)}
    world.checker.sweep()
    assert not violations(world)


def test_a_window_change_during_a_rotation_reaches_both_codes() -> None:
    world = _active()
    world.sandbox.update_smartlock(ENTRANCE, sync_delay=60)
    world.bookings.rotate_pin("B-1")
    world.run_for(10)
    until = world.shop["B-1"].valid_until + timedelta(days=1)  # type: ignore[operator]
    world.patch("B-1", checkOut=until)
    world.run_for(1800)
    item = booking(world)
    assert item["status"] == "active"
    assert rotation(world) is None
    for lock_id in (DOOR_1, ENTRANCE):
        (code,) = [a for a in world.auths_on(lock_id) if a.name == NAME]
        assert f"{code.code:06d}" == item["pin"]
        assert code.window.until_date == until
    assert world.mailer.sent[-1].notice.valid_until == until
    world.checker.sweep()
    assert not violations(world)


def test_asking_again_during_a_rotation_joins_it() -> None:
    world = _active()
    world.set_online(ENTRANCE, False)
    first = world.bookings.rotate_pin("B-1").rotation.pin  # type: ignore[union-attr]
    world.run_for(60)
    again = world.bookings.rotate_pin("B-1")
    assert again.rotation is not None
    assert again.rotation.pin == first
    world.set_online(ENTRANCE, True)
    world.run_for(1800)
    assert booking(world)["pin"] == first
    assert not violations(world)


def test_rotating_an_ended_booking_is_409_naming_its_status_and_writes_nothing() -> None:
    world = _active()
    world.end("B-1", "cancel")
    world.run_for(600)
    before = (len(world.link.calls), booking(world)["version"], len(events(world)))
    with pytest.raises(Conflict, match="cancelled") as refused:
        world.bookings.rotate_pin("B-1")
    assert refused.value.status == 409
    world.run_for(60)
    assert (len(world.link.calls), booking(world)["version"], len(events(world))) == before
