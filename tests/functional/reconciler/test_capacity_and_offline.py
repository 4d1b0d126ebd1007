"""Capacity (Nuki's 200 keypad codes per lock) and offline locks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from staykey.core.models import BookingStatus, LockStatus
from staykey.services.reconciler import OFFLINE_RECHECK_SECONDS
from tests.functional.reconciler.conftest import Rig, actions

LOCK, OTHER = 17000001, 17000099


def keypad_codes(start: int = 311111) -> Iterator[int]:
    """Codes Nuki accepts (digits 1-9, not starting with 12), in increasing order."""
    code = start
    while True:
        if "0" not in str(code):
            yield code
        code += 1


def fill(rig: Rig, lock_id: int, count: int) -> list[str]:
    ids = []
    for _, code in zip(range(count), keypad_codes(), strict=False):
        ids.append(rig.world.nuki.add_foreign(lock_id, code, f"Staff {code}").id)
    return ids


def test_codes_are_counted_per_lock_with_a_warning_before_the_limit(rig: Rig) -> None:
    # Given one lock holding 185 keypad codes (others'), the other few
    fill(rig, LOCK, 185)
    rig.world.nuki.add_foreign(OTHER, 734159, "Cleaner")
    # When the reconciler runs
    rig.run()
    # Then each lock's count is kept, the fuller one warns with a metric of its own (a custom
    # metric per healthy lock would cost money for nothing: PerLockMetrics=all turns them on)
    assert rig.world.store.code_count(LOCK) == 185
    assert rig.world.store.code_count(OTHER) == 1
    assert rig.metrics.total("KeypadCodes", smartlockId=str(LOCK)) == 185
    assert rig.metrics.total("KeypadCodes", smartlockId=str(OTHER)) == 0
    assert max(v for n, v, d in rig.metrics.emitted if n == "KeypadCodes" and "smartlockId" not in d) == 185
    assert rig.metrics.total("LocksNearCapacity") == 1
    assert rig.world.store.get_lock_meta(LOCK)["foreignCodes"] == 185


def test_a_booking_waits_for_a_full_lock_and_says_why(rig: Rig) -> None:
    # Given a lock holding Nuki's limit of 200 keypad codes, counted by the reconciler
    staff = fill(rig, LOCK, 200)
    rig.run()
    # When a booking for its room is made
    b = rig.book(settle=False)
    # Then the code goes to the other lock only, and the full lock says why it waits
    sent_to = [args[0] for name, args in rig.world.nuki.calls if name == "create_keypad_code"]
    assert sent_to == [(OTHER,)]
    waiting = b.lock(LOCK)
    assert waiting is not None
    assert waiting.status == LockStatus.PENDING
    assert waiting.error is not None
    assert waiting.error.startswith("waiting: lock 17000001 holds 200 keypad codes, Nuki's limit")
    assert b.to_api()["locks"][0]["error"] == waiting.error
    assert b.status == BookingStatus.PROVISIONING
    # And it keeps waiting while the lock is full; the reconciler reports it and does not push
    rig.world.settle()
    plans = rig.run()
    assert actions(plans, drift="waiting")[0].key() == (LOCK, "waiting", "none", "B-1001", None)
    assert rig.booking().status == BookingStatus.PROVISIONING
    # When someone removes one of their codes
    del rig.world.nuki.locks[LOCK].auths[staff[0]]
    plans = rig.run()
    # Then the next run sees room on the lock and has the lifecycle put the code on
    assert actions(plans, drift="missing")[0].key() == (LOCK, "missing", "heal", "B-1001", None)
    rig.world.settle()
    done = rig.active()
    assert done.lock(LOCK).error is None  # type: ignore[union-attr]
    assert len(rig.world.nuki.locks[LOCK].auths) == 200


def test_an_offline_lock_is_skipped_recorded_and_counted(rig: Rig) -> None:
    # Given an active booking, one of whose locks goes offline after someone removed our code on it
    b = rig.book()
    del rig.world.nuki.locks[OTHER].auths[b.lock(OTHER).nukiId]  # type: ignore[union-attr, arg-type]
    rig.world.nuki.set_online(OTHER, False)
    before = len(rig.world.nuki.calls)
    # When the reconciler runs
    plans = rig.run()
    # Then the offline lock is skipped this round: not read, nothing written, recorded, counted
    assert [(p.smartlock_id, p.state) for p in plans] == [(LOCK, "online"), (OTHER, "offline")]
    assert actions(plans, drift="offline")[0].key() == (OTHER, "offline", "none", None, None)
    assert ("list_auths", OTHER) not in rig.world.nuki.calls[before:]
    assert rig.world.nuki.count("create_keypad_code") == 1
    assert rig.metrics.total("LockOffline") == 1
    assert rig.world.store.get_lock_meta(OTHER)["online"] is False
    # And the watcher is asked to look at it again in 15 minutes: one signal, not a queued job,
    # however many runs skip it (a job from each skipped run multiplied: simulator seed 34)
    look_again = rig.world.clock.now() + timedelta(seconds=OFFLINE_RECHECK_SECONDS)
    assert rig.world.store.lock_signals() == {OTHER: look_again}
    assert rig.queue.messages == []
    rig.world.clock.advance(minutes=5)
    rig.run()
    rig.run()
    assert rig.world.store.lock_signals() == {OTHER: look_again}
    assert rig.queue.messages == []
    # When it is back online, the next run puts the code back
    rig.world.nuki.set_online(OTHER, True)
    plans = rig.run()
    assert actions(plans, drift="missing")[0].smartlock_id == OTHER
    rig.world.settle()
    rig.active()
    assert rig.world.store.get_lock_meta(OTHER)["online"] is True
