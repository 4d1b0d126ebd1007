"""The reconciler reads the bookings that claim codes on a lock in one batch, not one query each
(`make bench`: 13 DynamoDB calls per lock became 4 with 10 bookings on a lock)."""

from __future__ import annotations

from tests.functional.reconciler.conftest import Rig, actions

LOCK = 17000001


def test_get_bookings_reads_many_at_once_without_guest_data(rig: Rig) -> None:
    for n in range(3):
        rig.book(f"B-100{n}", checkIn="2026-11-27", checkOut=f"2026-11-{28 + n}")
    found = rig.world.store.get_bookings(["B-1000", "B-1001", "B-1002", "B-9999"])
    assert sorted(found) == ["B-1000", "B-1001", "B-1002"]
    assert all(b.guest is None for b in found.values())
    assert found["B-1001"].pin == rig.booking("B-1001").pin


def test_a_lock_with_several_bookings_is_planned_with_one_batch_read(rig: Rig) -> None:
    for n in range(3):
        rig.book(f"B-100{n}", checkIn="2026-11-27", checkOut=f"2026-11-{28 + n}")
    seen: list[str] = []
    rig.world.store.client.meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: seen.append(model.name), unique_id="count-batch-reads"
    )
    plan = rig.rec.plan_lock(LOCK, room_locks={LOCK, 17000099})
    assert seen.count("BatchGetItem") == 1
    assert seen.count("Query") == 1  # the lock's code claims; no query per booking
    assert {a.booking_id for a in actions([plan], drift="ok")} == {"B-1000", "B-1001", "B-1002"}
