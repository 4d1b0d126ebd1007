"""Gone means gone, found by `make simulate` (seeds 95, 103, 112): a booking is `revoked`, and a
lock state `removed`, only when none of the booking's codes is on the lock, on every path; an old
code after a PIN rotation goes once the guest was told the new PIN, and on a door the booking left."""

from __future__ import annotations

from datetime import timedelta

from staykey.core import commands
from staykey.core import decide as d
from staykey.core.models import BookingStatus, LockStatus
from staykey.core.round import Look, Outcome
from tests.unit.core.test_decide import LOCKS, NOW, PIN, on_lock
from tests.unit.core.test_decide import ctx as make_ctx
from tests.unit.core.test_rotation import NEW, active, both

EARLIER = "905316"  # a PIN the booking had before (a 409 made it choose another)
DUPLICATE = "d" * 24  # the id of an old create of that PIN that landed late


def ended_with_a_late_duplicate():  # type: ignore[no-untyped-def]
    b = active()
    b.pinHistory.insert(0, EARLIER)
    at = NOW + timedelta(hours=1)
    commands.end(b, BookingStatus.REVOKING, "checkout", at)
    plan = d.decide(b, {}, make_ctx(at))
    assert sorted(plan.deletes) == sorted((lk, f"{lk:024x}") for lk in LOCKS)
    d.after_outcome(b, Outcome(), make_ctx(at))
    return b, at


def test_seed_103_a_lock_is_not_removed_while_an_earlier_code_of_ours_is_on_it() -> None:
    b, at = ended_with_a_late_duplicate()
    first, second = LOCKS
    at += timedelta(seconds=30)
    late = on_lock(b, first, id=DUPLICATE, code=int(EARLIER))
    plan = d.decide(b, {first: Look([late], True, stamp=at), second: Look([], True, stamp=at)}, make_ctx(at))
    # Our tracked code is gone from the first lock, but the late duplicate is there: not removed,
    # not revoked; the duplicate is this lock's removal now (tracked, retried, read back), not a
    # delete sent once whatever Nuki answers
    assert b.lock(first).status != LockStatus.REMOVED  # type: ignore[union-attr]
    assert b.lock(second).status == LockStatus.REMOVED  # type: ignore[union-attr]
    assert b.status == BookingStatus.REVOKING
    assert (first, DUPLICATE) in plan.deletes
    assert (first, DUPLICATE) not in plan.stale
    assert b.lock(first).op == "delete"  # type: ignore[union-attr]
    # Nuki could not take it (423): tried again
    d.after_outcome(b, Outcome(transient={first: "423"}), make_ctx(at))
    assert b.status == BookingStatus.REVOKING
    at += timedelta(minutes=3)
    plan = d.decide(b, {first: Look([late], True, stamp=at)}, make_ctx(at))
    assert (first, DUPLICATE) in plan.deletes
    d.after_outcome(b, Outcome(), make_ctx(at))
    # Gone: now the lock is clear, and the booking revoked
    at += timedelta(seconds=30)
    d.decide(b, {first: Look([], True, stamp=at)}, make_ctx(at))
    assert b.lock(first).status == LockStatus.REMOVED  # type: ignore[union-attr]
    assert b.status == BookingStatus.REVOKED


def test_seed_103_a_deletion_webhook_leaves_the_lock_to_a_read_back_when_an_earlier_pin_may_be_on_it() -> None:
    b, at = ended_with_a_late_duplicate()
    first, second = LOCKS
    at += timedelta(seconds=30)
    told = {lk: Look([], False, deleted_ids={f"{lk:024x}"}) for lk in LOCKS}
    d.decide(b, told, make_ctx(at))
    assert b.status == BookingStatus.REVOKING
    assert all(lk.recheck and lk.op == "delete" and lk.status != LockStatus.REMOVED for lk in b.locks)
    at += timedelta(minutes=1)
    d.decide(b, {first: Look([], True, stamp=at), second: Look([], True, stamp=at)}, make_ctx(at))
    assert b.status == BookingStatus.REVOKED


def test_a_deletion_webhook_is_final_when_the_booking_had_no_other_pin() -> None:
    b = active()
    at = NOW + timedelta(hours=1)
    commands.end(b, BookingStatus.REVOKING, "checkout", at)
    d.decide(b, {}, make_ctx(at))
    d.after_outcome(b, Outcome(), make_ctx(at))
    d.decide(b, {lk: Look([], False, deleted_ids={f"{lk:024x}"}) for lk in LOCKS}, make_ctx(at))
    assert b.status == BookingStatus.REVOKED


def switched_and_told():  # type: ignore[no-untyped-def]
    b = active()
    at = NOW + timedelta(minutes=1)
    commands.rotate(b, NEW, at)
    d.decide(b, {}, make_ctx(at))
    d.after_outcome(b, Outcome(), make_ctx(at))
    at += timedelta(seconds=10)
    plan = d.decide(b, {lk: both(b, lk, at) for lk in LOCKS}, make_ctx(at))
    assert b.pin == NEW
    assert plan.email
    assert all(lk.untilTold for lk in b.rotationCodes)
    assert plan.rotation is None or not plan.rotation.deletes  # the old codes wait for the email
    return b, plan, at


def test_seed_95_the_old_code_goes_once_the_guest_was_told_even_if_another_email_is_due_later() -> None:
    b, plan, at = switched_and_told()
    d.email_sent(b, plan.email_fingerprint, at)
    # Nuki refuses the removals for a while (403 spell): tried again
    at += timedelta(seconds=30)
    plan = d.decide(b, {}, make_ctx(at))
    assert plan.rotation is not None
    assert len(plan.rotation.deletes) == 2
    d.after_outcome(b, Outcome(rotation=Outcome(transient=dict.fromkeys(LOCKS, "403"))), make_ctx(at))
    # Meanwhile the stay changes: the guest is to be emailed again. They know the new PIN already:
    # the old codes do not wait for that email
    b.validUntil += timedelta(days=1)
    assert b.awaits_notice()
    at += timedelta(minutes=5)
    plan = d.decide(b, {}, make_ctx(at))
    assert plan.rotation is not None
    assert sorted(lk for lk, _ in plan.rotation.deletes) == sorted(LOCKS)


def test_seed_95_an_old_code_on_a_door_the_booking_left_goes_before_the_email() -> None:
    b, plan, at = switched_and_told()
    _, second = LOCKS
    b.lock(second).desired = "absent"  # type: ignore[union-attr]  # moved: this door is no longer the guest's
    at += timedelta(seconds=30)
    plan = d.decide(b, {}, make_ctx(at))
    assert plan.rotation is not None
    assert [lk for lk, _ in plan.rotation.deletes] == [second]  # the first door's old code waits for the email


def test_seed_112_a_lock_left_during_a_rotation_keeps_its_old_pin_at_the_switch() -> None:
    b = active()
    commands.rotate(b, NEW, NOW)
    d.decide(b, {}, make_ctx(NOW))
    d.after_outcome(b, Outcome(), make_ctx(NOW))
    first, second = LOCKS
    # The booking leaves the second lock (its code and the rotation's still to come off there)
    for lock in b.slots_on(second):
        lock.desired = "absent"
    at = NOW + timedelta(seconds=10)
    d.decide(b, {first: both(b, first, at)}, make_ctx(at))
    assert b.pin == NEW  # switched: every lock the booking uses holds the new code
    left = next(lk for lk in b.locks if lk.smartlockId == second)
    assert b.target_pin(left) == PIN  # the code it carries, not the booking's new PIN
