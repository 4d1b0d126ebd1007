"""Fault injection on Nuki routes: seeded errors, dropped connections, ghost deletes, latency."""

from __future__ import annotations

import itertools
import time

import pytest
import requests

from tests.functional.sandbox.helpers import NukiApi, Sim, eventually, keypad_body, valid_codes


def test_a_seeded_error_rate_is_roughly_right_and_repeatable(nuki: NukiApi, lock_a: int, sim: Sim) -> None:
    def statuses() -> list[int]:
        sim.faults(errorRate=0.3, statuses=[429, 500, 503], seed=7)
        return [nuki.get("/smartlock", check_spec=False).status_code for _ in range(300)]

    first = statuses()
    errors = [s for s in first if s != 200]
    # Then about 30 % fail, with the configured statuses only
    assert 60 <= len(errors) <= 120
    assert set(errors) == {429, 500, 503}
    # And the same seed gives the same sequence
    assert statuses() == first


def test_a_429_carries_retry_after_and_has_no_effect(nuki: NukiApi, lock_a: int, sim: Sim) -> None:
    sim.faults(errorRate=1.0, statuses=[429], seed=1)
    response = nuki.put(f"/smartlock/{lock_a}/auth", json=keypad_body(483726), check_spec=False)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    assert sim.state(lock_a)["pending"] == []
    sim.call("DELETE", "/_sim/faults", expect=204)
    assert nuki.put(f"/smartlock/{lock_a}/auth", json=keypad_body(483726)).status_code == 204


def test_control_routes_never_see_faults(sim: Sim) -> None:
    sim.faults(errorRate=1.0, statuses=[500])
    for _ in range(20):
        sim.call("GET", "/_sim/health", expect=200)
    assert sim.add_lock(17000009)["smartlockId"] == 17000009
    assert sim.call("GET", "/_sim/faults", expect=200).json()["errorRate"] == 1.0


def test_a_timeout_holds_then_drops_the_connection(nuki: NukiApi, lock_a: int, sim: Sim) -> None:
    sim.faults(timeoutRate=1.0, timeoutSeconds=0.3, seed=3)
    started = time.monotonic()
    with pytest.raises(requests.ConnectionError):
        nuki.get("/smartlock", check_spec=False)
    assert time.monotonic() - started >= 0.3
    # And the request log shows it without a status
    assert sim.requests()[-1]["status"] is None
    # And a client that gives up earlier sees its own timeout
    with pytest.raises(requests.Timeout):
        nuki.get("/smartlock", check_spec=False, timeout=0.1)


def test_timed_out_writes_are_sometimes_applied_anyway(nuki: NukiApi, lock_a: int, sim: Sim) -> None:
    # Given every call times out
    sim.faults(timeoutRate=1.0, timeoutSeconds=0.01, seed=11)
    codes = list(itertools.islice(valid_codes(), 30))
    # When 30 codes are created
    for code in codes:
        with pytest.raises(requests.ConnectionError):
            nuki.put(f"/smartlock/{lock_a}/auth", json=keypad_body(code, f"SK-{code}"), check_spec=False)
    # Then some landed and some did not: the client cannot know which
    sim.call("DELETE", "/_sim/faults", expect=204)
    time.sleep(0.3)
    landed = {a["code"] for a in nuki.auths(lock_a)}
    assert 5 <= len(landed) <= 25
    assert landed <= set(codes)


def test_ghost_deletes_answer_204_and_never_apply(nuki: NukiApi, lock_a: int, sim: Sim) -> None:
    auth = nuki.create_code(lock_a, 483726)
    sim.faults(ghostDeletes=1)
    # When the code is deleted, Nuki says 204
    assert nuki.delete(f"/smartlock/{lock_a}/auth/{auth['id']}").status_code == 204
    # But it stays, and its code cannot be created again
    time.sleep(0.3)
    nuki.post(f"/smartlock/{lock_a}/sync")
    assert nuki.auth_with_code(lock_a, 483726) is not None
    assert nuki.put(f"/smartlock/{lock_a}/auth", json=keypad_body(483726)).status_code == 409
    assert sim.call("GET", "/_sim/faults", expect=200).json()["ghostDeletes"] == 0
    # And the next delete works
    assert nuki.delete(f"/smartlock/{lock_a}/auth/{auth['id']}").status_code == 204
    eventually(lambda: nuki.auth_with_code(lock_a, 483726) is None)


def test_requests_are_recorded_and_can_be_cleared(nuki: NukiApi, lock_a: int, sim: Sim) -> None:
    sim.call("DELETE", "/_sim/requests", expect=204)
    nuki.get("/smartlock")
    nuki.get(f"/smartlock/{lock_a}/log", params={"limit": 5})
    nuki.get("/smartlock", token="wrong")
    sim.call("GET", "/_sim/health")
    seen = sim.requests()
    assert [(r["method"], r["path"], r["status"]) for r in seen] == [
        ("GET", "/smartlock", 200),
        ("GET", f"/smartlock/{lock_a}/log", 200),
        ("GET", "/smartlock", 401),
    ]
    assert seen[1]["query"] == "limit=5"
    assert all(r["at"].endswith("Z") for r in seen)


def test_latency_is_added_to_nuki_calls_only(nuki: NukiApi, sim: Sim) -> None:
    sim.config(latencySeconds=0.2)
    started = time.monotonic()
    nuki.get("/smartlock")
    assert time.monotonic() - started >= 0.2
    started = time.monotonic()
    sim.call("GET", "/_sim/health", expect=200)
    assert time.monotonic() - started < 0.2


@pytest.mark.parametrize(
    "body",
    [
        {"errorRate": 1.5},
        {"errorRate": 0.6, "timeoutRate": 0.6},
        {"statuses": [200]},
        {"statuses": []},
        {"seed": "x"},
        {"ghostDeletes": -1},
        {"unknown": 1},
    ],
)
def test_bad_fault_settings_are_refused(sim: Sim, body: dict[str, object]) -> None:
    assert sim.call("PUT", "/_sim/faults", json=body).status_code == 400
