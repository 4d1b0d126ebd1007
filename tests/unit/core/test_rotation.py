"""A PIN rotation's rules, called directly with plain values (staykey.core.commands.rotate,
staykey.core.decide, staykey.core.drift): the new code goes on as a second code, the booking
switches only once every lock holds it, the guest is told, and only then do the old codes go."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from staykey.core import commands
from staykey.core import decide as d
from staykey.core.drift import Do, Drift, LockFacts, LockPlan, classify
from staykey.core.models import Booking, BookingStatus, LockStatus
from staykey.core.round import CodeItem, Look, Outcome
from staykey.errors import Conflict
from tests.unit.core.test_decide import LOCKS, NOW, PIN, booking, ctx, on_lock

NEW = "639251"


def active() -> Booking:
    """A booking active on both locks, its guest told its PIN."""
    b = booking()
    d.decide(b, {}, ctx(NOW))
    d.after_outcome(b, Outcome(), ctx(NOW))
    at = NOW + timedelta(seconds=10)
    plan = d.decide(b, {lk: Look([on_lock(b, lk, update_date=at)], True, stamp=at) for lk in LOCKS}, ctx(at))
    assert b.status == BookingStatus.ACTIVE
    assert plan.email
    d.email_sent(b, plan.email_fingerprint, at)
    return b


def new_code(b: Booking, lock_id: int, **changes: object) -> object:
    fields = {"id": f"{lock_id + 1:024x}", "code": int(NEW)}
    fields.update(changes)
    return on_lock(b, lock_id, **fields)


def both(b: Booking, lock_id: int, at: object) -> Look:
    return Look(
        [on_lock(b, lock_id, code=int(PIN), update_date=at), new_code(b, lock_id, update_date=at)], True, stamp=at
    )  # type: ignore[list-item, arg-type]


def test_a_rotation_claims_the_new_pin_on_every_lock_and_puts_it_on_as_a_second_code() -> None:
    b = active()
    claims = commands.rotate(b, NEW, NOW + timedelta(minutes=1))
    assert sorted((c.smartlock_id, c.pin) for c in claims.claims) == [(lk, NEW) for lk in sorted(LOCKS)]
    assert claims.releases == []
    assert b.pin == PIN
    assert b.rotation is not None
    assert b.rotation.pin == NEW
    assert NEW in b.pinHistory
    at = NOW + timedelta(minutes=1)
    plan = d.decide(b, {}, ctx(at))
    # The booking's own code is left alone; the new one is a create of its own, with the new PIN
    assert plan.creates == []
    assert plan.deletes == []
    assert plan.updates == []
    assert plan.rotation is not None
    assert sorted(plan.rotation.creates) == sorted(LOCKS)
    assert plan.rotation.pin == NEW
    assert b.status == BookingStatus.ACTIVE
    assert b.to_api()["pin"] == PIN
    assert b.to_api()["pinRotation"]["status"] == "pending"


def test_the_booking_switches_only_once_every_lock_holds_the_new_code_then_tells_then_removes() -> None:
    b = active()
    commands.rotate(b, NEW, NOW + timedelta(minutes=1))
    at = NOW + timedelta(minutes=1)
    d.decide(b, {}, ctx(at))
    d.after_outcome(b, Outcome(), ctx(at))
    first, second = LOCKS
    # One lock holds both codes, the other only the old one: no switch, no email, no delete
    at += timedelta(seconds=10)
    plan = d.decide(
        b, {first: both(b, first, at), second: Look([on_lock(b, second, update_date=at)], True, stamp=at)}, ctx(at)
    )
    assert b.pin == PIN
    assert b.rotation is not None
    assert not plan.email
    assert not plan.deletes
    assert plan.rotation is None or not plan.rotation.deletes
    assert plan.stale == []  # neither code is the other's duplicate
    # Both do: the booking switches, the guest's email is due, the old codes wait for it
    at += timedelta(seconds=10)
    plan = d.decide(b, {second: both(b, second, at)}, ctx(at))
    assert b.pin == NEW
    assert b.rotation is None
    assert b.status == BookingStatus.ACTIVE
    assert plan.email
    assert plan.email_updated
    assert plan.rotation is None or not plan.rotation.deletes
    assert [lk.pin for lk in b.rotationCodes] == [PIN, PIN]
    assert all(lk.untilTold for lk in b.rotationCodes)
    assert all(lk.heldPin == NEW for lk in b.locks)
    # The guest was told: the old codes go, by their own ids
    d.email_sent(b, plan.email_fingerprint, at)
    at += timedelta(seconds=30)
    plan = d.decide(b, {}, ctx(at))
    assert plan.rotation is not None
    assert sorted(plan.rotation.deletes) == sorted((lk, f"{lk:024x}") for lk in LOCKS)
    # Confirmed gone: dropped, and the old PIN's claims released (the new one's kept)
    at += timedelta(seconds=30)
    plan = d.decide(b, {lk: Look([new_code(b, lk, update_date=at)], True, stamp=at) for lk in LOCKS}, ctx(at))  # type: ignore[list-item]
    assert b.rotationCodes == []
    assert sorted((c.smartlock_id, c.pin) for c in plan.releases) == [(lk, PIN) for lk in sorted(LOCKS)]
    assert b.status == BookingStatus.ACTIVE


def test_without_an_email_to_send_the_old_codes_go_at_the_switch() -> None:
    b = active()
    b.notifyGuest = False
    commands.rotate(b, NEW, NOW)
    d.decide(b, {}, ctx(NOW))
    at = NOW + timedelta(seconds=10)
    plan = d.decide(b, {lk: both(b, lk, at) for lk in LOCKS}, ctx(at))
    assert b.pin == NEW
    assert not plan.email
    assert plan.rotation is not None
    assert len(plan.rotation.deletes) == 2


def test_a_new_code_not_confirmed_in_time_fails_the_rotation_not_the_booking() -> None:
    b = active()
    commands.rotate(b, NEW, NOW)
    d.decide(b, {}, ctx(NOW))
    d.after_outcome(b, Outcome(), ctx(NOW))
    later = b.validFrom + timedelta(minutes=1)  # the deadline: validFrom, or 15 minutes after sending
    plan = d.decide(b, {}, ctx(later))
    assert b.status == BookingStatus.ACTIVE
    assert b.pin == PIN
    assert b.rotation_status() == "failed"
    assert ("ProvisioningFailed", {}) in plan.metrics
    assert "did not confirm" in (b.to_api()["pinRotation"]["statusReason"] or "")
    # A lock that confirms after all completes it
    at = later + timedelta(minutes=5)
    d.decide(b, {lk: both(b, lk, at) for lk in LOCKS}, ctx(at))
    assert b.pin == NEW
    assert b.rotation is None


def test_nuki_answers_a_rotation_write_for_its_code_only() -> None:
    b = active()
    commands.rotate(b, NEW, NOW)
    d.decide(b, {}, ctx(NOW))
    # Nuki refuses the new code on one lock: that lock of the rotation fails; the booking's code does not
    d.after_outcome(b, Outcome(rotation=Outcome(failed={LOCKS[0]: ("bad", 400)})), ctx(NOW))
    assert all(lk.status == LockStatus.ACTIVE for lk in b.locks)
    assert b.status == BookingStatus.ACTIVE
    assert b.rotation_status() == "failed"


def test_cancel_during_a_rotation_removes_both_codes() -> None:
    b = active()
    commands.rotate(b, NEW, NOW)
    d.decide(b, {}, ctx(NOW))
    at = NOW + timedelta(seconds=10)
    d.decide(b, {LOCKS[0]: both(b, LOCKS[0], at)}, ctx(at))
    commands.end(b, BookingStatus.CANCELLED, "cancelled", at)
    assert b.rotation is None
    plan = d.decide(b, {}, ctx(at))
    # The old codes (ids known) are deleted; the new code on the first lock too; the second lock's
    # create may still land: it is looked for
    assert sorted(plan.deletes) == sorted((lk, f"{lk:024x}") for lk in LOCKS)
    assert plan.rotation is not None
    assert plan.rotation.deletes == [(LOCKS[0], f"{LOCKS[0] + 1:024x}")]
    assert {lk.smartlockId: lk.op for lk in b.rotationCodes} == {LOCKS[0]: "delete", LOCKS[1]: "find"}


def test_a_due_retry_waiting_its_turn_on_a_lock_does_not_wake_the_booking_every_second() -> None:
    """Simulator seed 42 (issue 17): an earlier rotation's old code, its delete answered 423 and due
    again, waits while the new rotation's create is in flight on the same lock (they take turns).
    The create's next read-back wakes the booking for both; the due retry is no wake-up of its own
    (it came back every second for an hour: "waiting never spins")."""
    b = active()
    commands.rotate(b, NEW, NOW)
    d.decide(b, {}, ctx(NOW))
    d.after_outcome(b, Outcome(), ctx(NOW))
    lock_id = LOCKS[0]
    new = next(lk for lk in b.rotationCodes if lk.smartlockId == lock_id)
    assert new.op == "create"
    old = new.model_copy(
        update={
            "desired": "absent",
            "op": None,
            "status": LockStatus.ACTIVE,
            "nukiId": f"{lock_id + 7:024x}",
            "pin": "174567",
            "retries": 3,
            "retryAt": NOW - timedelta(seconds=1),
            "error": "retrying: Nuki answered 423",
        }
    )
    b.rotationCodes.insert(0, old)
    at = NOW + timedelta(seconds=1)
    plan = d.decide(b, {}, ctx(at))
    assert plan.rotation is None or not plan.rotation.deletes  # its turn comes after the create
    # ctx's backoff looks 5 s after the send: 4 s from now, not a second
    assert plan.next_check_delay == pytest.approx(4.0)


def test_a_scheduled_booking_just_gets_the_new_pin() -> None:
    b = booking()
    b.status = BookingStatus.SCHEDULED
    claims = commands.rotate(b, NEW, NOW)
    assert b.pin == NEW
    assert b.rotation is None
    assert b.rotationCodes == []
    assert sorted((c.smartlock_id, c.pin) for c in claims.releases) == [(lk, PIN) for lk in sorted(LOCKS)]


@pytest.mark.parametrize("status", [BookingStatus.REVOKING, BookingStatus.REVOKED, BookingStatus.CANCELLED])
def test_an_ended_booking_has_no_pin_to_rotate(status: BookingStatus) -> None:
    b = active()
    b.status = status
    with pytest.raises(Conflict, match=status.value):
        commands.rotate(b, NEW, NOW)


def test_asking_again_joins_the_rotation_in_progress() -> None:
    b = active()
    commands.rotate(b, NEW, NOW)
    assert commands.rotate(b, "751963", NOW).claims == []
    assert b.rotation is not None
    assert b.rotation.pin == NEW
    assert len(b.rotationCodes) == 2


def test_the_reconciler_counts_both_codes_of_a_rotation_as_the_bookings() -> None:
    b = active()
    commands.rotate(b, NEW, NOW)
    d.decide(b, {}, ctx(NOW))
    at = NOW + timedelta(seconds=10)
    lock_id = LOCKS[0]
    d.decide(b, {lock_id: both(b, lock_id, at)}, ctx(at))
    auths = both(b, lock_id, at).auths
    claims = [CodeItem(lock_id, pin, "booking", "B-1", b.authName, None) for pin in (PIN, NEW)]
    plan = classify(LockPlan(lock_id, at, auths=auths), LockFacts(claims, {"B-1": b}), 200, 900)
    assert (plan.ours, plan.foreign) == (2, 0)
    assert {(a.drift, a.do) for a in plan.actions} == {(Drift.OK, Do.NONE)}


# Per round: what each lock shows of the two codes ("old", "new", "both", "none"), and whether the
# guest's email went out when one was due.
SHOWS = st.sampled_from(["old", "new", "both", "none", "unseen"])


@settings(max_examples=200, deadline=None)
@given(rounds=st.lists(st.tuples(SHOWS, SHOWS, st.booleans()), min_size=1, max_size=10))
def test_property_the_old_code_is_never_deleted_before_the_switch_and_the_email(
    rounds: list[tuple[str, str, bool]],
) -> None:
    b = active()
    commands.rotate(b, NEW, NOW)
    d.decide(b, {}, ctx(NOW))
    d.after_outcome(b, Outcome(), ctx(NOW))
    old_ids = {f"{lk:024x}" for lk in LOCKS}
    told_new = False
    for step, (first, second, emailed) in enumerate(rounds, start=1):
        at = NOW + timedelta(seconds=30 * step)
        looks: dict[int, Look] = {}
        for lock_id, shows in zip(LOCKS, (first, second), strict=True):
            auths = {
                "old": [on_lock(b, lock_id, code=int(PIN), update_date=at)],
                "new": [new_code(b, lock_id, update_date=at)],
                "both": both(b, lock_id, at).auths,
                "none": [],
            }.get(shows)
            if auths is not None:
                looks[lock_id] = Look(list(auths), True, stamp=at)  # type: ignore[arg-type]
        was = b.pin
        plan = d.decide(b, looks, ctx(at))
        if b.pin != was:
            # Switched: every lock was last seen with the new code as booked
            assert all(lk.status == LockStatus.ACTIVE and lk.heldPin == NEW for lk in b.locks)
        deletes = set(plan.deletes) | set(plan.rotation.deletes if plan.rotation else [])
        if any(nuki_id in old_ids for _, nuki_id in deletes):
            assert b.pin == NEW, "the old code went before the switch"
            assert told_new, "the old code went before the guest was told the new PIN"
        if plan.email and emailed:
            d.email_sent(b, plan.email_fingerprint, at)
            told_new = told_new or b.pin == NEW


# ---------------------------------------------------------------- rooms opened with the Nuki app


def test_a_rotation_changes_only_keypad_codes_and_leaves_an_app_lock_as_it_is() -> None:
    # Given an active booking whose second lock the guest opens with the Nuki app
    b = active()
    keypad, app = sorted(LOCKS)
    b.lock(app).access = "app"  # type: ignore[union-attr]
    # When its PIN is rotated
    claims = commands.rotate(b, NEW, NOW + timedelta(minutes=1))
    # Then the new PIN is claimed, and goes on as a second code, on the keypad lock only
    assert [(c.smartlock_id, c.pin) for c in claims.claims] == [(keypad, NEW)]
    assert [lk.smartlockId for lk in b.rotationCodes] == [keypad]
    # And once the keypad lock holds it, the booking switches; the app lock is untouched
    at = NOW + timedelta(minutes=2)
    d.decide(b, {}, ctx(at))
    d.after_outcome(b, Outcome(), ctx(at))
    d.decide(b, {keypad: both(b, keypad, at)}, ctx(at))
    assert b.pin == NEW
    assert b.rotation is None
    app_lock = b.lock(app)
    assert app_lock is not None
    assert app_lock.access == "app"
    assert app_lock.desired == "present"
    assert all(lk.smartlockId == keypad for lk in b.rotationCodes)  # only the old keypad code goes


def test_a_booking_with_no_keypad_lock_has_no_pin_to_rotate() -> None:
    b = active()
    for lock in b.locks:
        lock.access = "app"
    with pytest.raises(Conflict, match="no keypad"):
        commands.rotate(b, NEW, NOW + timedelta(minutes=1))
    assert b.rotation is None
    assert b.rotationCodes == []


def test_a_rotation_whose_booking_moved_to_locks_without_a_keypad_is_dropped() -> None:
    """Found by the simulator (seed 18): a rotation asked for in a keypad room, then the booking
    moved to a room whose lock the guest opens with the app: the rotation stayed pending for good
    (nothing to switch on, nothing to fail). With no keypad lock left and none of its new codes
    wanted, it is dropped: the booking keeps its PIN, `pinRotation` is null."""
    b = active()
    commands.rotate(b, NEW, NOW + timedelta(minutes=1))
    at = NOW + timedelta(minutes=1)
    for lock in b.locks:
        lock.access = "app"  # as after the move: the locks of the new room take the app
    for lock in b.rotationCodes:
        lock.desired, lock.status = "absent", LockStatus.REMOVED
    d.decide(b, {}, ctx(at))
    assert b.rotation is None
    assert b.pin == PIN
    assert b.to_api()["pinRotation"] is None
