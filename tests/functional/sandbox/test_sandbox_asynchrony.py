"""Writes answer 204 and land later: after the sync delay, or once an offline lock is back."""

from __future__ import annotations

import time

from tests.functional.sandbox.helpers import SYNC_DELAY, NukiApi, Sim, eventually, keypad_body


def test_a_create_is_invisible_before_the_delay_and_visible_after(nuki: NukiApi, lock_a: int, sim: Sim) -> None:
    # Given a sync delay of 0.3 s
    sim.config(syncDelaySeconds=0.3)
    started = time.monotonic()
    # When a code is created
    assert nuki.put(f"/smartlock/{lock_a}/auth", json=keypad_body(483726)).status_code == 204
    # Then it is pending, not listed
    assert nuki.auth_with_code(lock_a, 483726) is None
    pending = sim.state(lock_a)["pending"]
    assert [p["kind"] for p in pending] == ["create"]
    assert pending[0]["body"]["code"] == 483726
    # And it shows only once the delay has passed
    nuki.wait_for_code(lock_a, 483726)
    assert time.monotonic() - started >= 0.3
    assert sim.state(lock_a)["pending"] == []


def test_an_offline_lock_keeps_writes_pending_until_it_is_back(nuki: NukiApi, lock_a: int, sim: Sim) -> None:
    # Given the lock is offline
    assert sim.patch_lock(lock_a, online=False)["serverState"] == 4
    # When a code is created and the delay passes
    assert nuki.put(f"/smartlock/{lock_a}/auth", json=keypad_body(483726)).status_code == 204
    time.sleep(SYNC_DELAY * 3)
    # Then it is still pending, waiting for the lock
    assert nuki.auth_with_code(lock_a, 483726) is None
    assert sim.state(lock_a)["pending"][0]["dueInSeconds"] is None
    # And a sync does not help an offline lock
    assert nuki.post(f"/smartlock/{lock_a}/sync").status_code == 204
    assert nuki.auth_with_code(lock_a, 483726) is None
    # When the lock comes back, Then the code lands after the delay
    sim.config(syncDelaySeconds=0.3)
    back = time.monotonic()
    assert sim.patch_lock(lock_a, online=True)["serverState"] == 0
    assert nuki.auth_with_code(lock_a, 483726) is None
    nuki.wait_for_code(lock_a, 483726)
    assert time.monotonic() - back >= 0.3


def test_going_offline_holds_writes_that_had_not_landed(nuki: NukiApi, lock_a: int, sim: Sim) -> None:
    sim.config(syncDelaySeconds=0.3)
    assert nuki.put(f"/smartlock/{lock_a}/auth", json=keypad_body(483726)).status_code == 204
    sim.patch_lock(lock_a, online=False)
    time.sleep(0.5)
    assert nuki.auth_with_code(lock_a, 483726) is None
    sim.patch_lock(lock_a, online=True)
    nuki.wait_for_code(lock_a, 483726)


def test_sync_applies_an_online_locks_pending_writes_now(nuki: NukiApi, lock_a: int, sim: Sim) -> None:
    sim.config(syncDelaySeconds=30)
    assert nuki.put(f"/smartlock/{lock_a}/auth", json=keypad_body(483726)).status_code == 204
    assert nuki.auth_with_code(lock_a, 483726) is None
    assert nuki.post(f"/smartlock/{lock_a}/sync").status_code == 204
    auth = nuki.auth_with_code(lock_a, 483726)
    assert auth is not None
    # Deletes too
    assert nuki.delete(f"/smartlock/{lock_a}/auth/{auth['id']}").status_code == 204
    assert nuki.post(f"/smartlock/{lock_a}/sync").status_code == 204
    assert nuki.auth_with_code(lock_a, 483726) is None


def test_the_sync_delay_changes_at_runtime_for_new_writes(nuki: NukiApi, lock_a: int, sim: Sim) -> None:
    assert sim.config(syncDelaySeconds=0)["syncDelaySeconds"] == 0
    assert nuki.put(f"/smartlock/{lock_a}/auth", json=keypad_body(483726)).status_code == 204
    assert nuki.auth_with_code(lock_a, 483726) is not None
    assert sim.call("GET", "/_sim/config", expect=200).json()["syncDelaySeconds"] == 0


def test_writes_land_without_anyone_reading(nuki: NukiApi, lock_a: int, sim: Sim, running: object) -> None:
    # The clock thread applies due writes on its own: the state route shows it without a Nuki read.
    assert nuki.put(f"/smartlock/{lock_a}/auth", json=keypad_body(483726)).status_code == 204
    eventually(lambda: sim.call("GET", "/_sim/smartlocks", expect=200).json()[0]["auths"])


def test_reset_forgets_everything(nuki: NukiApi, lock_a: int, sim: Sim) -> None:
    nuki.create_code(lock_a, 483726)
    sim.config(syncDelaySeconds=7)
    sim.call("DELETE", "/_sim/state", expect=204)
    assert nuki.get("/smartlock").json() == []
    assert sim.call("GET", "/_sim/config", expect=200).json()["syncDelaySeconds"] == SYNC_DELAY
    assert sim.call("GET", "/_sim/smartlocks/17000001", expect=404).json()["error"]
