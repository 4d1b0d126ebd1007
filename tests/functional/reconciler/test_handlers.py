"""The two functions as Lambda runs them, driven by the sample events in events/: the scheduled
`reconciler` (the full sweep) reads the account's codes and queues the locks that show drift, or
every lock when that is cheaper; `reconcile_lock` reconciles them, reporting partial batch failures."""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from functions.reconcile_lock import app as reconcile_lock_app
from functions.reconciler import app as reconciler_app
from local.kit.apigw import Context
from staykey import wiring
from staykey.adapters.reconcile_queue import SqsLockQueue
from staykey.services.checks import LockChecks
from staykey.services.reconciler import Reconciler
from staykey.services.watch import watch_settings
from tests.conftest import load_event
from tests.functional.reconciler.conftest import Rig

LOCK, OTHER = 17000001, 17000099


class RoomyContext(Context):
    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 280_000


class ShortContext(Context):
    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 10_000


@pytest.fixture
def deployed(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> str:
    """The functions' own wiring on moto (with a reconcile queue); FakeNuki stands in for Nuki."""
    url = boto3.client("sqs").create_queue(QueueName="staykey-test-reconcile")["QueueUrl"]
    monkeypatch.setenv("RECONCILE_QUEUE_URL", url)
    wiring.reset()
    monkeypatch.setattr(wiring, "nuki", lambda: rig.world.nuki)
    monkeypatch.setattr(wiring, "background_nuki", lambda: rig.world.nuki)
    # The sweep on the world's clock (the stay is in the test's November, not the machine's).
    queue, settings, store, clock = SqsLockQueue(url), rig.world.bookings.settings, rig.world.store, rig.world.clock
    rec = Reconciler(settings, store, wiring.background_nuki, wiring.bookings, wiring.sync, queue, clock)
    sweeper = LockChecks(settings, watch_settings(settings), store, wiring.background_nuki, rec, queue, clock)
    monkeypatch.setattr(wiring, "checks", lambda: sweeper)
    return url


def queued(url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    bodies = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return bodies
        for message in got:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def test_the_sweep_reads_the_accounts_codes_and_queues_only_the_locks_that_show_drift(rig: Rig, deployed: str) -> None:
    # Given an active booking on the room's two locks, and another room's lock
    rig.book()
    rig.active()
    rig.world.add_room("room-7", locks=(17000002,))
    # When the schedule fires with its sample input
    result = reconciler_app.lambda_handler(load_event("reconciler_schedule.json"), RoomyContext())
    # Then the account's codes were read in one answer (a small account; its size from one page)
    # and every lock found right: nothing queued, and each lock's codes recorded as right
    assert result == {"locksQueued": 0, "locks": 3, "clean": 3}
    assert queued(deployed) == []
    assert [name for name, _ in rig.world.nuki.calls[-2:]] == ["list_auths_page", "list_account_auths"]
    assert rig.world.store.lock_watch(LOCK).seen is not None  # type: ignore[union-attr]
    # And the locks are remembered, so one taken out of every room is still looked after
    assert sorted(rig.world.store.registered_locks()) == [LOCK, 17000002, OTHER]
    # When someone deletes our code in Nuki Web, the next sweep queues that lock alone
    auth = next(iter(rig.world.nuki.locks[OTHER].auths))
    del rig.world.nuki.locks[OTHER].auths[auth]
    result = reconciler_app.lambda_handler(load_event("reconciler_schedule.json"), RoomyContext())
    assert result["locksQueued"] == 1
    assert queued(deployed) == [{"smartlockId": OTHER, "reason": "sweep", "attempt": 0}]


def test_a_dense_account_is_swept_lock_by_lock(rig: Rig, deployed: str) -> None:
    # Given an account whose codes would take more pages than there are locks
    rig.world.store.update_watch_state(codes=100_000)
    result = reconciler_app.lambda_handler(load_event("reconciler_schedule.json"), RoomyContext())
    assert result == {"locksQueued": 2, "locks": 2, "clean": 0}
    assert sorted(body["smartlockId"] for body in queued(deployed)) == [LOCK, OTHER]


def test_an_operator_can_reconcile_some_locks_now(rig: Rig, deployed: str) -> None:
    result = reconciler_app.lambda_handler({"action": "reconcile", "smartlockIds": [OTHER]}, RoomyContext())
    assert result == {"locksQueued": 1}
    assert queued(deployed) == [{"smartlockId": OTHER, "reason": "manual", "attempt": 0}]


def test_reconcile_lock_handles_the_sample_batch(rig: Rig, deployed: str) -> None:
    # Given a cleaner's code on one lock and an active booking on both
    rig.book()
    rig.world.nuki.add_foreign(LOCK, 734159, "Cleaner")
    # When the function gets the sample batch (one scheduled message, one follow-up)
    result = reconcile_lock_app.lambda_handler(load_event("reconcile_lock_sqs.json"), RoomyContext())
    # Then both locks are reconciled: nothing failed, the foreign code is remembered, codes counted
    assert result == {"batchItemFailures": []}
    assert {c.pin: c.owner for c in rig.world.store.codes_on_lock(LOCK)}["734159"] == "foreign"
    assert rig.world.store.code_count(LOCK) == 2
    assert rig.world.store.code_count(OTHER) == 1


def test_a_bad_message_or_no_time_left_is_reported_back_per_record(rig: Rig, deployed: str) -> None:
    event = copy.deepcopy(load_event("reconcile_lock_sqs.json"))
    event["Records"][1]["body"] = json.dumps({"smartlockId": "not a lock"})
    result = reconcile_lock_app.lambda_handler(event, RoomyContext())
    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}
    # And when the invocation is nearly out of time, every lock is left for a later one (all of a
    # batch failing, the whole batch goes back to the queue)
    with pytest.raises(BatchProcessingError, match="All records failed"):
        reconcile_lock_app.lambda_handler(load_event("reconcile_lock_sqs.json"), ShortContext())


def test_an_account_list_nuki_will_not_serve_is_read_otherwise_and_not_asked_for_again_that_day(
    rig: Rig, deployed: str
) -> None:
    from staykey.nuki.errors import NukiUnavailable

    rig.book()
    rig.active()
    rig.world.store.update_watch_state(codes=2)  # counted before: the account's whole list is the cheapest read
    rig.world.nuki.fail("list_account_auths", NukiUnavailable("timed out", status=504))
    # When the sweep's whole list fails, the same run reads the locks otherwise and finds them right
    result = reconciler_app.lambda_handler(load_event("reconciler_schedule.json"), RoomyContext())
    assert result["clean"] == 2
    # (in pages here: one page holds the account's two codes)
    assert [name for name, _ in rig.world.nuki.calls[-2:]] == ["list_account_auths", "list_auths_page"]
    state = rig.world.store.watch_state()
    assert state.unpaged_failed == 2
    assert state.unpaged_failed_at == rig.world.clock.now()
    # the next run does not ask for it at that size
    before = len(rig.world.nuki.calls)
    reconciler_app.lambda_handler(load_event("reconciler_schedule.json"), RoomyContext())
    assert "list_account_auths" not in [name for name, _ in rig.world.nuki.calls[before:]]
    # a day later it is asked for again
    rig.world.clock.advance(days=1, minutes=1)
    before = len(rig.world.nuki.calls)
    reconciler_app.lambda_handler(load_event("reconciler_schedule.json"), RoomyContext())
    assert "list_account_auths" in [name for name, _ in rig.world.nuki.calls[before:]]
