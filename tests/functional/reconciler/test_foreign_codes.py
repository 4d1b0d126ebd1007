"""Codes that are not ours survive every run: never changed, never deleted, but counted and
remembered, so the PINs we choose never collide with them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

import pytest

from staykey.core.models import BookingStatus
from staykey.services import bookings as bookings_module
from tests.functional.reconciler.conftest import Rig, actions

LOCK, OTHER = 17000001, 17000099


def writes_on(rig: Rig, auth_id: str) -> list[tuple[str, object]]:
    """Every Nuki write that named this auth."""
    return [
        (name, args)
        for name, args in rig.world.nuki.calls
        if name in ("update_auth", "delete_auth", "delete_auths") and auth_id in repr(args)
    ]


def remembered(rig: Rig, lock_id: int) -> dict[str, str]:
    return {c.pin: c.owner for c in rig.world.store.codes_on_lock(lock_id)}


def test_foreign_codes_survive_every_run_through_a_whole_stay(rig: Rig) -> None:
    # Given a cleaner's code, and a code named like ours ("SK B-1001") whose code we never sent
    cleaner = rig.world.nuki.add_foreign(LOCK, 734159, "Cleaner")
    lookalike = rig.world.nuki.add_foreign(LOCK, 583917, "SK B-1001")
    # When the reconciler runs before, during and after the stay of booking B-1001
    rig.heal_until_quiet()
    assert remembered(rig, LOCK) == {"734159": "foreign", "583917": "foreign"}
    b = rig.book()
    rig.heal_until_quiet()
    rig.world.bookings.checkout("B-1001")
    rig.world.settle()
    rig.heal_until_quiet()
    rig.world.clock.set(b.validUntil + timedelta(days=2))
    rig.heal_until_quiet()
    # Then both are still on the lock, unchanged, and no write ever touched them
    assert rig.booking().status == BookingStatus.REVOKED
    on_lock = rig.world.nuki.locks[LOCK].auths
    assert on_lock[cleaner.id] == cleaner
    assert on_lock[lookalike.id] == lookalike
    assert writes_on(rig, cleaner.id) == []
    assert writes_on(rig, lookalike.id) == []
    # And they were counted as foreign, and their codes are remembered for the lock
    last = rig.run()
    assert [(p.foreign, p.ours) for p in last if p.smartlock_id == LOCK] == [(2, 0)]
    assert remembered(rig, LOCK) == {"734159": "foreign", "583917": "foreign"}
    # And our booking's PIN was never one of theirs
    assert b.pin not in ("734159", "583917")


def test_a_foreign_code_named_like_ours_is_not_ours_even_while_the_booking_is_active(rig: Rig) -> None:
    # Given an active booking B-1001 and, on one lock, another code under its very name
    b = rig.book()
    lookalike = rig.world.nuki.add_foreign(OTHER, 583917, b.authName)
    # When the reconciler runs
    plans = rig.run()
    # Then the lookalike is someone else's: left alone and remembered; ours is as booked
    on_other = [a.key()[1:3] for a in actions(plans) if a.smartlock_id == OTHER]
    assert on_other == [("ok", "none"), ("foreign", "remember")]
    rig.world.nuki.apply()
    rig.heal_until_quiet()
    assert rig.world.nuki.locks[OTHER].auths[lookalike.id] == lookalike
    assert writes_on(rig, lookalike.id) == []
    rig.active()


def test_a_copy_of_our_code_on_a_lock_the_booking_never_had_is_not_ours(rig: Rig) -> None:
    """Found by an adversarial run on the local stack: a host copied the guest's code (our name,
    the booking's PIN) to a third door in Nuki Web; the reconciler took it for a code of a moved
    booking and deleted it mid-stay. A code is ours by name and PIN only on a lock the booking
    has or had; a copy elsewhere is someone else's."""
    third = 17000003
    rig.world.nuki.add_lock(third)
    rig.world.add_room("room-14", locks=(third,), name="Room 14")
    b = rig.book()
    copy = rig.world.nuki.add_foreign(third, int(b.pin), b.authName)
    plans = rig.run()
    assert [a.key()[1:3] for a in actions(plans) if a.smartlock_id == third] == [("foreign", "remember")]
    rig.heal_until_quiet()
    assert rig.world.nuki.locks[third].auths[copy.id] == copy
    assert writes_on(rig, copy.id) == []
    rig.active()


def test_a_remembered_foreign_code_is_never_chosen_as_a_pin(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a code someone else put on a lock, seen by the reconciler
    rig.world.nuki.add_foreign(LOCK, 734159, "Neighbour")
    rig.run()
    # And a PIN generator whose first choice would be that very code
    proposals = ["734159", "493827", "586149"]

    def first_free(avoid: Iterable[str] = (), *_: object, **__: object) -> str:
        taken = set(avoid)
        return next(pin for pin in proposals if pin not in taken)

    monkeypatch.setattr(bookings_module, "generate_pin", first_free)
    # When a booking is made for the room
    b = rig.book()
    # Then it gets another PIN, at once, without a conflict on the lock
    assert b.pin == "493827"
    rig.active()
    assert rig.world.nuki.codes(LOCK)[734159] == "Neighbour"


def test_a_foreign_code_on_a_reserved_pin_makes_the_booking_choose_another(rig: Rig) -> None:
    # Given a booking far ahead: its PIN is reserved on the locks, not yet sent
    rig.book("B-2001", checkIn="2026-12-20", checkOut="2026-12-23")
    scheduled = rig.booking("B-2001")
    assert scheduled.status == BookingStatus.SCHEDULED
    # And someone adds that very PIN on one lock
    theirs = rig.world.nuki.add_foreign(LOCK, int(scheduled.pin), "Owner")
    # When the reconciler runs
    plans = rig.run()
    # Then it leaves their code alone and says what will happen
    note = next(a for a in actions(plans, drift="foreign"))
    assert (note.do.value, note.booking_id) == ("none", "B-2001")
    # When provisioning starts, the lock refuses our code (409) and the booking chooses another PIN
    rig.world.clock.set(scheduled.provisionAt)
    rig.world.bookings.start_provisioning("B-2001")
    rig.world.settle()
    b = rig.active("B-2001")
    assert b.pin != scheduled.pin
    # And their code is still there, untouched, and from now on remembered as theirs
    rig.run()
    assert rig.world.nuki.locks[LOCK].auths[theirs.id] == theirs
    assert writes_on(rig, theirs.id) == []
    assert remembered(rig, LOCK)[scheduled.pin] == "foreign"


def test_a_foreign_code_that_disappears_is_forgotten(rig: Rig) -> None:
    # Given a remembered foreign code
    theirs = rig.world.nuki.add_foreign(LOCK, 734159, "Cleaner")
    rig.run()
    assert remembered(rig, LOCK) == {"734159": "foreign"}
    # When its owner removes it and the reconciler runs
    del rig.world.nuki.locks[LOCK].auths[theirs.id]
    plans = rig.run()
    # Then its code is free again on that lock
    assert actions(plans, do="forget")[0].key() == (LOCK, "foreign", "forget", None, theirs.id)
    assert remembered(rig, LOCK) == {}
