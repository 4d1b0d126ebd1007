"""Scale: 1,000 locks fan out through the reconcile queue in one scheduled run; the work per lock
depends on what the lock holds, not on how many bookings it has seen; concurrency is bounded."""

from __future__ import annotations

import json
from typing import Any

from staykey.adapters.reconcile_queue import LockJob, SqsLockQueue
from staykey.core.models import BookingStatus
from tests.functional.reconciler.conftest import Rig, actions

LOCK, OTHER = 17000001, 17000099


class CountingSqs:
    """Stands in for the SQS client: keeps each SendMessageBatch request."""

    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.batches.append(Entries)
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}


def test_a_thousand_locks_are_queued_in_one_run_in_batches(rig: Rig) -> None:
    # Given 200 rooms of 5 locks each (and the room of the rig)
    for room in range(200):
        locks = tuple(18000000 + room * 5 + i for i in range(5))
        for lock in locks:
            rig.world.nuki.add_lock(lock)  # rooms are set up only on locks the Nuki account has
        rig.world.add_room(f"r-{room}", locks=locks)
    sqs = CountingSqs()
    rig.rec.queue = SqsLockQueue("https://sqs.eu-central-1.amazonaws.com/123456789012/reconcile", client=sqs)
    # When the scheduled run starts
    queued = rig.rec.enqueue_all()
    # Then every lock is on the queue, one message per lock, ten to a request
    assert queued == 1002
    assert [len(batch) for batch in sqs.batches] == [10] * 100 + [2]
    bodies = [json.loads(e["MessageBody"]) for batch in sqs.batches for e in batch]
    assert len({body["smartlockId"] for body in bodies}) == 1002
    assert {body["reason"] for body in bodies} == {"scheduled"}
    assert rig.metrics.total("ReconcileLocksQueued") == 1002
    # And the locks are remembered for later runs
    assert len(rig.world.store.registered_locks()) == 1002


def count_store_calls(rig: Rig) -> list[str]:
    seen: list[str] = []
    rig.world.store.client.meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: seen.append(model.name), unique_id="count-store-calls"
    )
    return seen


def test_the_work_per_lock_does_not_grow_with_past_bookings(rig: Rig) -> None:
    # Given one active booking and one past booking on the room's locks
    rig.book("B-1000", checkIn="2026-11-27", checkOut="2026-12-05")
    rig.book("B-0001")
    rig.world.bookings.checkout("B-0001")
    rig.world.settle()
    seen = count_store_calls(rig)
    rig.rec.plan_lock(LOCK)
    one_past = list(seen)
    # When five more stays come and go
    for n in range(2, 7):
        rig.book(f"B-000{n}")
        rig.world.bookings.checkout(f"B-000{n}")
        rig.world.settle()
        assert rig.booking(f"B-000{n}").status == BookingStatus.REVOKED
    seen.clear()
    rig.rec.plan_lock(LOCK)
    # Then planning the lock reads exactly as much as before
    assert seen == one_past
    assert rig.world.nuki.count("list_auths") > 0


def test_locks_are_planned_with_bounded_concurrency_and_the_same_result(rig: Rig) -> None:
    rig.book()
    del rig.world.nuki.locks[OTHER].auths[rig.booking().lock(OTHER).nukiId]  # type: ignore[union-attr, arg-type]
    rig.world.nuki.add_foreign(LOCK, 734159, "Cleaner")
    sequential = [a.key() for a in actions(rig.rec.plan_locks())]
    parallel = [a.key() for a in actions(rig.rec.plan_locks(concurrency=4))]
    assert parallel == sequential
    assert (OTHER, "missing", "heal", "B-1001", None) in parallel
    jobs = [LockJob(smartlockId=LOCK), LockJob(smartlockId=OTHER, reason="confirm", attempt=1)]
    assert [job.model_dump() for job in jobs][1] == {"smartlockId": OTHER, "reason": "confirm", "attempt": 1}
