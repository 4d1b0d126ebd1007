"""The watcher's signals (store.watch: signal_lock, take_signal, clear_signal; services.watch): a
signal said while the watcher is looking at a lock for an earlier one is not cleared with it."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from tests.conftest import World
from tests.functional.activity.conftest import LOCK_A, make_watcher, stay


def test_a_signal_written_during_the_watchers_look_survives_it(world: World, activity: Any) -> None:
    """Found by an adversarial run (in-process: the interleaving is injected): the reconcile run the
    watcher had just queued found the lock offline and asked for a look in 15 minutes; signal_lock
    kept the earlier, due signal instead, and the watcher then cleared that one. The lock was not
    looked at again until the daily sweep."""
    stay(world)
    now = world.clock.now()
    world.store.signal_lock(LOCK_A, now)  # e.g. a DEVICE_AUTHS we did not expect
    watcher = make_watcher(world)
    original = watcher.checks.check
    later = now + timedelta(seconds=900)

    def check_then_a_signal(lock_id: int, *a: Any, **kw: Any) -> str:
        out = original(lock_id, *a, **kw)
        world.store.signal_lock(lock_id, later)  # the reconcile run: offline, look again in 15 minutes
        return out

    watcher.checks.check = check_then_a_signal  # type: ignore[method-assign]
    watcher.tick()
    assert world.store.lock_signals().get(LOCK_A) == later


def test_a_signal_looked_at_is_cleared_and_one_not_yet_due_waits(world: World, activity: Any) -> None:
    stay(world)
    now = world.clock.now()
    world.store.signal_lock(LOCK_A, now)
    make_watcher(world).tick()
    assert world.store.lock_signals() == {}
    # A later one waits for its time, and an earlier one said meanwhile goes first
    world.store.signal_lock(LOCK_A, now + timedelta(minutes=10))
    world.store.signal_lock(LOCK_A, now + timedelta(minutes=5))
    world.store.signal_lock(LOCK_A, now + timedelta(minutes=20))
    assert world.store.lock_signals() == {LOCK_A: now + timedelta(minutes=5)}
    make_watcher(world).tick()
    assert world.store.lock_signals() == {LOCK_A: now + timedelta(minutes=5)}


def test_a_due_signal_whose_look_failed_stays_due_beside_a_later_one(world: World, activity: Any) -> None:
    """Found by an adversarial run: the watcher took a due signal and its read failed (Nuki
    answered an error; or the invocation died); a later-dated signal (a reconcile run finding the
    lock offline: look in 15 minutes) then replaced the taken one, and the due look waited 15
    minutes more. What is said while a signal is taken now goes beside it (`nextAt`)."""
    from staykey.nuki import errors as nuki_errors

    stay(world)
    now = world.clock.now()
    world.store.signal_lock(LOCK_A, now)  # a DEVICE_AUTHS we did not expect: look at the next run
    watcher = make_watcher(world)
    read = watcher.checks.read

    def failing_read(*a: Any, **kw: Any) -> Any:
        raise nuki_errors.NukiError("Nuki answered 503", status=503)

    watcher.checks.read = failing_read  # type: ignore[method-assign]
    watcher.tick()
    later = now + timedelta(minutes=15)
    world.store.signal_lock(LOCK_A, later)
    assert world.store.lock_signals() == {LOCK_A: now}  # still due: looked at by the next run
    watcher.checks.read = read  # type: ignore[method-assign]
    make_watcher(world).tick()
    assert world.store.lock_signals() == {LOCK_A: later}  # looked at; the later one waits for its time


def _interleave(world: World, between: Any) -> None:
    """Run `between` after signal_lock's first update fails and before its second."""
    client = world.store.client
    real = client.update_item

    def update_item(**kw: Any) -> Any:
        if kw.get("UpdateExpression") == "SET #n = :c":
            between()
        return real(**kw)

    client.update_item = update_item  # type: ignore[method-assign]


def test_a_signal_said_as_the_watcher_clears_its_look_is_not_lost(world: World, activity: Any) -> None:
    """Found by an adversarial review of the nextAt protocol: signal_lock is two conditional
    writes; the watcher's clear_signal landed between them (after the first failed: a signal was
    taken; before the second: none is any more), both failed, and the signal was dropped. The pair
    is now tried again on what the item is."""
    stay(world)
    now = world.clock.now()
    world.store.signal_lock(LOCK_A, now)  # e.g. a DEVICE_AUTHS we did not expect
    watcher = make_watcher(world)
    original = watcher.checks.check
    first_failed = threading.Event()
    cleared = threading.Event()
    client = world.store.client
    real = client.update_item

    def update_item(**kw: Any) -> Any:
        if kw.get("UpdateExpression") == "SET #n = :c" and threading.current_thread().name == "webhook":
            first_failed.set()
            cleared.wait(10)
        return real(**kw)

    client.update_item = update_item  # type: ignore[method-assign]
    said: list[threading.Thread] = []

    def check_and_a_webhook(lock_id: int, *a: Any, **kw: Any) -> str:
        out = original(lock_id, *a, **kw)
        # after the watcher read the lock: a DEVICE_AUTHS about a code of ours arrives (another Lambda)
        t = threading.Thread(target=world.store.signal_lock, args=(lock_id, now + timedelta(seconds=1)), name="webhook")
        t.start()
        said.append(t)
        first_failed.wait(10)
        return out

    watcher.checks.check = check_and_a_webhook  # type: ignore[method-assign]
    watcher.tick()  # clears the signal it took
    cleared.set()
    said[0].join(10)
    client.update_item = real  # type: ignore[method-assign]
    # expected: the signal said after the look's read stays for the next run
    assert world.store.lock_signals().get(LOCK_A) is not None, world.store.lock_signals()


def test_a_signal_said_as_the_watcher_promotes_a_later_one_is_not_put_off(world: World, activity: Any) -> None:
    """The same window, with a later signal waiting beside the taken one (nextAt): the clear made it
    the signal between the two writes, and the earlier signal said meanwhile was dropped behind it."""
    stay(world)
    now = world.clock.now()
    world.store.signal_lock(LOCK_A, now)
    world.store.take_signal(LOCK_A, now)
    later = now + timedelta(minutes=15)
    world.store.signal_lock(LOCK_A, later)  # nextAt = later (e.g. offline: look in 15 min)
    _interleave(world, lambda: world.store.clear_signal(LOCK_A, now))
    world.store.signal_lock(LOCK_A, now + timedelta(seconds=1))  # a DEVICE_AUTHS: look at the next run
    assert world.store.lock_signals().get(LOCK_A) == now + timedelta(seconds=1), world.store.lock_signals()
