"""The plan command (`python -m tools.reconcile_plan`): what the reconciler would do, per lock and per
drift class, without doing it; and the run then takes exactly those actions."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import boto3

from staykey.store import CodeClaim
from tests.functional.reconciler.conftest import Rig
from tools.reconcile_plan import main

LOCK, OTHER = 17000001, 17000099


def table(rig: Rig) -> list[dict[str, Any]]:
    items = boto3.client("dynamodb").scan(TableName=rig.world.store.table_name)["Items"]
    return sorted(items, key=lambda item: (item["pk"]["S"], item["sk"]["S"]))


def drift_everywhere(rig: Rig) -> dict[str, str]:
    """Several drift classes on both locks; returns the PINs in play (to check none is printed)."""
    a = rig.book("B-1001")
    b = rig.book("B-1002", checkIn="2026-11-28", checkOut="2026-11-30")
    gone = rig.book("B-1003", checkIn="2026-11-27", checkOut="2026-11-28")
    rig.world.bookings.checkout("B-1003")
    rig.world.settle()
    # missing on OTHER
    del rig.world.nuki.locks[OTHER].auths[a.lock(OTHER).nukiId]  # type: ignore[union-attr, arg-type]
    # wrong window on LOCK
    held = b.lock(LOCK).nukiId  # type: ignore[union-attr]
    assert held is not None
    auths = rig.world.nuki.locks[LOCK].auths
    auths[held] = auths[held].model_copy(update={"allowed_until_date": b.validUntil + timedelta(hours=5)})
    # duplicate on LOCK, a late landing of a finished booking on OTHER, foreign codes on both
    rig.world.store.update_booking("B-1001", lambda bk: bk.pinHistory.insert(0, "358246"))
    rig.world.nuki.add_foreign(LOCK, 358246, name=a.authName)
    rig.world.nuki.add_foreign(OTHER, int(gone.pin), name=gone.authName)
    rig.world.nuki.add_foreign(LOCK, 734159, "Cleaner")
    rig.world.nuki.add_foreign(OTHER, 583917, "SK B-1001")
    # a claim left behind by the finished booking on LOCK
    rig.world.store._put(rig.world.store.code_item(CodeClaim(LOCK, gone.pin), rig.booking("B-1003")))
    return {"a": a.pin, "b": b.pin, "gone": gone.pin, "dup": "358246", "cleaner": "734159", "lookalike": "583917"}


def test_the_plan_shows_the_actions_the_run_then_takes(rig: Rig) -> None:
    # Given drift of several classes on both locks
    drift_everywhere(rig)
    before_table, before_calls = table(rig), len(rig.world.nuki.calls)
    # When an operator asks for the plan
    out = io.StringIO()
    assert main(["--json"], reconciler=rig.rec, out=out) == 0
    doc = json.loads(out.getvalue())
    planned = [
        (action["smartlockId"], action["drift"], action["action"], action["bookingId"], action["authId"])
        for lock in doc["locks"]
        for action in lock["actions"]
    ]
    # Then it lists, per lock, what it would do, and it changed nothing: no Nuki write, no item
    assert doc["applied"] is False
    assert {p[1] for p in planned} >= {"missing", "wrong_window", "duplicate", "expired", "stale_claim", "foreign"}
    assert {name for name, _ in rig.world.nuki.calls[before_calls:]} == {"get_smartlock", "list_auths"}
    assert table(rig) == before_table
    # When the scheduled run comes
    plans = rig.run()
    # Then it takes exactly the planned actions, in the same order, and each of them succeeds
    assert [a.key() for p in plans for a in p.actions] == planned
    assert all(outcome in ("done", "-") for p in plans for outcome in p.outcomes)
    # And after the lifecycle and Nuki catch up, a new plan has nothing left to do
    rig.world.settle()
    rig.world.nuki.apply()
    rig.follow_ups()
    rig.world.settle()
    out = io.StringIO()
    main(["--json"], reconciler=rig.rec, out=out)
    left = [a for lock in json.loads(out.getvalue())["locks"] for a in lock["actions"] if a["action"] != "none"]
    assert left == []


def test_the_readable_plan_groups_by_lock_and_class_and_never_prints_a_pin(rig: Rig) -> None:
    pins = drift_everywhere(rig)
    rig.world.nuki.add_lock(17000555, online=False)
    rig.world.add_room("room-9", locks=(17000555,))
    out = io.StringIO()
    assert main([], reconciler=rig.rec, out=out) == 0
    text = out.getvalue()
    assert "nothing was changed" in text
    assert re.search(r"lock 17000001: \d+ keypad codes \(ours \d+, foreign \d+\), Nuki's limit 200", text)
    assert "lock 17000555: offline, skipped this round" in text
    assert re.search(r"missing +heal +B-1001", text)
    assert re.search(r"wrong_window +heal +B-1002", text)
    assert re.search(r"duplicate +delete +B-1001", text)
    assert "summary: 3 locks" in text
    for pin in pins.values():
        assert pin not in text
    # And one lock can be asked for alone
    out = io.StringIO()
    main(["--lock", str(OTHER)], reconciler=rig.rec, out=out)
    assert "lock 17000099" in out.getvalue()
    assert "lock 17000001" not in out.getvalue()


def test_apply_runs_the_same_plan_and_reports_each_outcome(rig: Rig) -> None:
    drift_everywhere(rig)
    out = io.StringIO()
    main(["--json"], reconciler=rig.rec, out=out)
    planned = [
        (a["drift"], a["action"], a["authId"]) for lock in json.loads(out.getvalue())["locks"] for a in lock["actions"]
    ]
    out = io.StringIO()
    assert main(["--json", "--apply"], reconciler=rig.rec, out=out) == 0
    doc = json.loads(out.getvalue())
    assert doc["applied"] is True
    applied = [(a["drift"], a["action"], a["authId"]) for lock in doc["locks"] for a in lock["actions"]]
    assert applied == planned
    assert {a["outcome"] for lock in doc["locks"] for a in lock["actions"]} <= {"done", "-"}


def test_every_action_is_logged_with_its_booking_and_never_a_pin(rig: Rig, captured_logs: Callable[[], str]) -> None:
    pins = drift_everywhere(rig)
    captured_logs()  # only what the run logs
    rig.run()
    rig.world.settle()
    logs = captured_logs()
    lines = [json.loads(line) for line in logs.splitlines() if '"reconcile action"' in line]
    assert {(line["drift"], line.get("booking_id")) for line in lines} >= {
        ("missing", "B-1001"),
        ("duplicate", "B-1001"),
    }
    for pin in pins.values():
        assert pin not in logs
