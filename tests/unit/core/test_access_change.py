"""A move between rooms that name the same lock with another `access` (issue 15, defect 5): the lock
takes the new kind (a keypad code instead of an app authorization, or the other way round); the new
one is confirmed before the old one goes, and the old one goes once the guest was told what applies.
Before, the lock kept its old kind: the old access stayed on, and the new one never went on."""

from __future__ import annotations

from datetime import timedelta

import pytest

from staykey.core import decide as d
from staykey.core import drift
from staykey.core.commands import Change, patch
from staykey.core.models import Booking, BookingStatus, LockStatus, Room
from staykey.core.round import CodeClaim, CodeItem, Look
from tests.unit.core.test_app_access import DOOR, ENTRANCE, NOW, USER, app_auth, booking, code, ctx, room

APP_ID, OLD_CODE_ID, NEW_CODE_ID = "a" * 24, "c" * 24, "d" * 24


def active(r: Room) -> Booking:
    """A booking in `r`, active on both locks, its guest told."""
    b = booking(r)
    b.account.accountUserId = USER
    d.decide(b, {}, ctx(NOW))
    door = app_auth(b) if r.access_of(DOOR) == "app" else code(b, id=OLD_CODE_ID, smartlock_id=DOOR)
    plan = d.decide(b, {DOOR: Look([door], True, stamp=NOW), ENTRANCE: Look([code(b)], True, stamp=NOW)}, ctx(NOW))
    assert b.status == BookingStatus.ACTIVE
    d.email_sent(b, plan.email_fingerprint, NOW)
    return b


def move(b: Booking, to: Room) -> list[CodeClaim]:
    change = Change(
        check_in=NOW,
        check_out=NOW,
        valid_from=b.validFrom,
        valid_until=b.validUntil,
        room=to,
        locks=tuple(to.smartlockIds),
        pin=b.pin,
        lead=timedelta(days=1),
        access=tuple((i, to.access_of(i)) for i in to.smartlockIds),
    )
    return patch(b, change, NOW + timedelta(minutes=1)).claims


@pytest.mark.parametrize("direction", ["app_to_keypad", "keypad_to_app"])
def test_a_move_that_changes_how_the_guest_opens_a_lock_puts_the_new_kind_on_before_the_old_goes(
    direction: str,
) -> None:
    app_room, keypad_room = room(), room(roomId="room-14", access={})
    before, after = (app_room, keypad_room) if direction == "app_to_keypad" else (keypad_room, app_room)
    b = active(before)
    old_kind, new_kind = before.access_of(DOOR), after.access_of(DOOR)
    old_id = APP_ID if old_kind == "app" else OLD_CODE_ID
    claims = move(b, after)
    door = b.lock(DOOR)
    assert door is not None
    assert (door.access, door.status, door.nukiId) == (new_kind, LockStatus.PENDING, None)
    assert CodeClaim(DOOR, "", app=True) in claims if new_kind == "app" else CodeClaim(DOOR, b.pin) in claims
    [old] = [s for s in b.rotationCodes if s.smartlockId == DOOR]
    assert (old.access, old.desired, old.untilReplaced, old.nukiId) == (old_kind, "absent", True, old_id)

    # The new kind goes on; the old one stays while the new one is not confirmed
    t = NOW + timedelta(minutes=2)
    plan = d.decide(b, {}, ctx(t))
    assert (plan.app_creates if new_kind == "app" else plan.creates) == [DOOR]
    assert plan.rotation is None or not plan.rotation.deletes
    new_auth = app_auth(b) if new_kind == "app" else code(b, id=NEW_CODE_ID, smartlock_id=DOOR)
    old_auth = app_auth(b) if old_kind == "app" else code(b, id=OLD_CODE_ID, smartlock_id=DOOR)
    t += timedelta(seconds=30)
    plan = d.decide(b, {DOOR: Look([old_auth, new_auth], True, stamp=t)}, ctx(t))
    assert door.status == LockStatus.ACTIVE
    assert b.status == BookingStatus.ACTIVE
    # ... and until the guest is told what applies now (the move calls for an email)
    assert plan.email
    assert plan.rotation is None or not plan.rotation.deletes
    assert old.status != LockStatus.REMOVED
    d.email_sent(b, plan.email_fingerprint, t)
    t += timedelta(seconds=30)
    plan = d.decide(b, {}, ctx(t))
    assert plan.rotation is not None
    assert plan.rotation.deletes == [(DOOR, old_id)]
    t += timedelta(seconds=30)
    plan = d.decide(b, {DOOR: Look([new_auth], True, stamp=t)}, ctx(t))
    assert [s for s in b.rotationCodes if s.smartlockId == DOOR] == []
    assert door.status == LockStatus.ACTIVE
    released = CodeClaim(DOOR, "", app=True) if old_kind == "app" else CodeClaim(DOOR, b.pin)
    assert released in plan.releases


def test_the_reconciler_puts_the_new_kind_on_and_keeps_the_old_one_until_then() -> None:
    """The move saved, its round never ran (an invocation died): the reconciler finds the new kind
    missing (healed: the engine sends it) and keeps the old one, never a duplicate to delete."""
    b = active(room())  # the door opened with the app
    move(b, room(roomId="room-14", access={}))  # now with the keypad
    t = NOW + timedelta(minutes=2)
    lock = drift.LockPlan(smartlock_id=DOOR, at=t + timedelta(hours=1))
    lock.auths = [app_auth(b)]
    claims = [
        CodeItem(DOOR, "", "app", b.bookingId, b.authName, None),
        CodeItem(DOOR, b.pin, "booking", b.bookingId, b.authName, None),
    ]
    facts = drift.LockFacts(claims=claims, bookings={b.bookingId: b})
    drift.classify(lock, facts, max_codes=200, stall_seconds=3600)
    by_auth = {a.auth_id: a for a in lock.actions if a.auth_id}
    assert (by_auth[APP_ID].drift, by_auth[APP_ID].do) == (drift.Drift.PENDING, drift.Do.NONE)  # kept for now
    assert [(a.drift, a.do) for a in lock.actions if not a.auth_id] == [(drift.Drift.MISSING, drift.Do.HEAL)]
    assert not [a for a in lock.actions if a.do in (drift.Do.DELETE, drift.Do.RELEASE_APP)]
