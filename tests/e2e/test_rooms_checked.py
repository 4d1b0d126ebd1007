"""PUT /rooms over HTTP asks the Nuki sandbox about every lock (GET /smartlock/{id} through the
real Nuki client): a lock the account lacks, one without a keypad, or one whose Smart Hosting
subscription the sandbox reports as not active is a 422 naming it, and nothing is written."""

from __future__ import annotations

import pytest

from tests.e2e.helpers import Shop, Sim, new_id, new_lock_id

pytestmark = pytest.mark.e2e


def _put(shop: Shop, room_id: str, locks: list[int]) -> tuple[int, dict[str, object]]:
    r = shop.call("PUT", f"/rooms/{room_id}", {"name": "Checked", "smartlockIds": locks, "timezone": "Europe/Berlin"})
    return r.status_code, r.json()


def test_a_room_is_checked_against_the_nuki_account_when_it_is_set_up(shop: Shop, sim: Sim) -> None:
    door, bare, lapsed = sim.add_lock(), sim.add_lock(keypad=False), sim.add_lock()
    missing = new_lock_id()  # never added to the sandbox
    r = sim.call("PATCH", f"/_sim/smartlocks/{lapsed}", {"subscription": "EXPIRED"})
    assert r.status_code == 200, r.text
    room_id = new_id("checked")

    status, body = _put(shop, room_id, [door, missing, bare, lapsed])
    assert status == 422, body
    errors = {e["field"]: e["message"] for e in body["errors"]}  # type: ignore[attr-defined]
    assert errors == {
        "smartlockIds.1": f"lock {missing} does not exist in the Nuki account (Nuki: 404)",
        "smartlockIds.2": errors["smartlockIds.2"],
        "smartlockIds.3": errors["smartlockIds.3"],
    }
    assert errors["smartlockIds.2"].startswith(f"lock {bare} has no keypad paired")
    assert "Smart Hosting subscription that is EXPIRED, not active" in errors["smartlockIds.3"]
    assert shop.call("GET", f"/rooms/{room_id}").status_code == 404

    # Once the subscription is renewed the lock is taken
    assert sim.call("PATCH", f"/_sim/smartlocks/{lapsed}", {"subscription": "ACTIVE"}).status_code == 200
    assert _put(shop, room_id, [door, lapsed])[0] == 201
