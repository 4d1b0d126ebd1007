"""Activity log: keypad entries, other entries, paging with the id cursor, date filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.functional.sandbox.helpers import LOCK_B, NukiApi, Sim


def test_a_keypad_entry_with_a_valid_code_unlocks_and_is_logged(nuki: NukiApi, lock_a: int, sim: Sim) -> None:
    # Given a code on the lock
    auth = nuki.create_code(lock_a, 483726, "SK-B1001")
    # When the guest types it
    result = sim.keypad(lock_a, 483726)
    # Then it opens, and the log entry names the auth by its 24-hex id and its name
    assert result["success"] is True
    entries = nuki.get(f"/smartlock/{lock_a}/log").json()
    assert len(entries) == 1
    entry = entries[0]
    assert entry["id"] == result["logId"]
    assert entry["authId"] == auth["id"]
    assert entry["name"] == "SK-B1001"
    assert (entry["action"], entry["trigger"], entry["source"], entry["state"], entry["deviceType"]) == (
        1,
        255,
        1,
        0,
        4,
    )
    assert entry["smartlockId"] == lock_a
    logged = datetime.fromisoformat(entry["date"].replace("Z", "+00:00"))
    assert abs(logged - datetime.now(UTC)) < timedelta(seconds=5)
    # And the auth's use is counted
    used = nuki.auth_with_code(lock_a, 483726)
    assert used is not None
    assert used["lockCount"] == 1
    assert "lastActiveDate" in used


@pytest.mark.parametrize(
    ("extra", "when"),
    [
        ({"allowedFromDate": "2099-01-01T00:00:00Z"}, None),  # not yet
        ({"allowedUntilDate": "2021-01-01T00:00:00Z"}, None),  # expired (yet still enabled)
        ({"allowedWeekDays": 64}, "2026-12-06T12:00:00Z"),  # Mondays only; that is a Sunday
        ({"allowedFromTime": 600, "allowedUntilTime": 660}, "2026-12-07T12:00:00Z"),  # 10:00-11:00 only
    ],
)
def test_a_code_outside_its_window_fails_as_invalid_code(
    nuki: NukiApi, lock_a: int, sim: Sim, extra: dict[str, Any], when: str | None
) -> None:
    nuki.create_code(lock_a, 483726, **extra)
    result = sim.keypad(lock_a, 483726, **({"date": when} if when else {}))
    assert result["success"] is False
    entry = nuki.get(f"/smartlock/{lock_a}/log").json()[0]
    assert (entry["action"], entry["trigger"], entry["state"]) == (1, 255, 224)
    assert "authId" not in entry


def test_daily_times_are_lock_local(nuki: NukiApi, sim: Sim) -> None:
    # Given a Berlin lock and a code for 10:00-11:00 lock time
    sim.add_lock(LOCK_B, timezone="Europe/Berlin")
    nuki.create_code(LOCK_B, 483726, allowedFromTime=600, allowedUntilTime=660)
    # Then 09:30 UTC (10:30 in Berlin in winter) works and 10:30 UTC does not
    assert sim.keypad(LOCK_B, 483726, date="2026-12-07T09:30:00Z")["success"] is True
    assert sim.keypad(LOCK_B, 483726, date="2026-12-07T10:30:00Z")["success"] is False


def test_unknown_disabled_and_pending_codes_fail(nuki: NukiApi, lock_a: int, sim: Sim) -> None:
    assert sim.keypad(lock_a, 999999)["success"] is False
    auth = nuki.create_code(lock_a, 483726)
    assert nuki.post(f"/smartlock/{lock_a}/auth/{auth['id']}", json={"name": "x", "enabled": False}).status_code == 204
    nuki.post(f"/smartlock/{lock_a}/sync")
    assert sim.keypad(lock_a, 483726)["success"] is False
    sim.config(syncDelaySeconds=5)
    nuki.put(f"/smartlock/{lock_a}/auth", json={"name": "SK-2", "type": 13, "code": 634781, "remoteAllowed": False})
    assert sim.keypad(lock_a, 634781)["success"] is False  # not on the lock yet


def test_a_foreign_code_opens_the_door_too(nuki: NukiApi, lock_a: int, sim: Sim) -> None:
    foreign = sim.foreign_code(lock_a, 555555, "Cleaner")
    assert sim.keypad(lock_a, 555555)["success"] is True
    assert nuki.get(f"/smartlock/{lock_a}/log").json()[0]["authId"] == foreign["id"]


def test_other_log_entries(nuki: NukiApi, lock_a: int, sim: Sim) -> None:
    app_unlock = sim.log(lock_a, action=1, trigger=5, name="Owner")
    manual_lock = sim.log(lock_a, action=2, trigger=1)
    entries = nuki.get(f"/smartlock/{lock_a}/log").json()
    assert [e["id"] for e in entries] == [manual_lock["id"], app_unlock["id"]]  # newest first
    assert nuki.get(f"/smartlock/{lock_a}/log", params={"action": 2}).json() == [manual_lock]
    # An entry the spec would refuse is refused
    assert sim.call("POST", f"/_sim/smartlocks/{lock_a}/log", json={"action": 0, "trigger": 1}).status_code == 400
    assert sim.call("POST", f"/_sim/smartlocks/{lock_a}/log", json={"action": 1}).status_code == 400


def test_paging_with_the_id_cursor(nuki: NukiApi, lock_a: int, sim: Sim) -> None:
    # Given 120 entries
    ids = [sim.log(lock_a, action=1, trigger=5)["id"] for _ in range(120)]
    newest_first = list(reversed(ids))
    # When pages of 50 are read with the last id as the cursor
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        params: dict[str, object] = {"limit": 50, **({"id": cursor} if cursor else {})}
        page = [e["id"] for e in nuki.get(f"/smartlock/{lock_a}/log", params=params).json()]
        if not page:
            break
        pages.append(page)
        cursor = page[-1]
    # Then 50, 50, 20, newest first, every entry once
    assert [len(p) for p in pages] == [50, 50, 20]
    assert [i for p in pages for i in p] == newest_first


def test_limit_defaults_to_20_and_is_capped_at_50(nuki: NukiApi, lock_a: int, sim: Sim) -> None:
    for _ in range(60):
        sim.log(lock_a, action=2, trigger=6)
    assert len(nuki.get(f"/smartlock/{lock_a}/log").json()) == 20
    assert len(nuki.get(f"/smartlock/{lock_a}/log", params={"limit": 500}).json()) == 50
    assert nuki.get(f"/smartlock/{lock_a}/log", params={"limit": 0}).status_code == 400
    assert nuki.get(f"/smartlock/{lock_a}/log", params={"id": "nope"}).status_code == 400
    # offset is not a Nuki parameter and changes nothing
    everything = nuki.get("/smartlock/log", params={"limit": 50}).json()
    assert len(everything) == 50


def test_date_filters_take_rfc3339_and_refuse_unix_numbers(nuki: NukiApi, lock_a: int, sim: Sim) -> None:
    old = sim.log(lock_a, action=1, trigger=5, date="2026-01-01T10:00:00Z")
    middle = sim.log(lock_a, action=2, trigger=1, date="2026-01-02T10:00:00Z")
    new = sim.log(lock_a, action=1, trigger=5, date="2026-01-03T10:00:00.000+01:00")
    path = f"/smartlock/{lock_a}/log"
    assert [e["id"] for e in nuki.get(path).json()] == [new["id"], middle["id"], old["id"]]
    between = nuki.get(path, params={"fromDate": "2026-01-02T00:00:00Z", "toDate": "2026-01-02T23:59:59Z"}).json()
    assert [e["id"] for e in between] == [middle["id"]]
    assert [e["id"] for e in nuki.get(path, params={"fromDate": "2026-01-02T10:00:00Z"}).json()] == [
        new["id"],
        middle["id"],
    ]
    unix = nuki.get(path, params={"fromDate": "1788213600"})
    assert unix.status_code == 400
    assert unix.json()["detailMessage"] == "The supplied value '1788213600' for parameter 'fromDate' is not valid"
    assert nuki.get("/smartlock/log", params={"toDate": "1788213600"}).status_code == 400


def test_auth_filter_and_all_locks_log(nuki: NukiApi, lock_a: int, sim: Sim) -> None:
    sim.add_lock(LOCK_B)
    auth = nuki.create_code(lock_a, 483726)
    sim.keypad(lock_a, 483726)
    sim.keypad(lock_a, 999999)
    sim.log(LOCK_B, action=1, trigger=5)
    mine = nuki.get(f"/smartlock/{lock_a}/log", params={"authId": auth["id"]}).json()
    assert [e["state"] for e in mine] == [0]
    assert {e["smartlockId"] for e in nuki.get("/smartlock/log").json()} == {lock_a, LOCK_B}
    assert len(nuki.get(f"/smartlock/{LOCK_B}/log").json()) == 1
