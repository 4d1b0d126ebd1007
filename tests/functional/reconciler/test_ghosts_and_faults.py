"""Nuki misbehaving: deletes it acknowledges but does not apply, and calls that fail part of the way
through a run. Nothing is left half-done that the next run does not finish."""

from __future__ import annotations

import boto3

from staykey.core.models import BookingStatus
from staykey.nuki import NukiUnavailable
from tests.functional.reconciler.conftest import Rig, actions

LOCK, OTHER = 17000001, 17000099


def unavailable() -> NukiUnavailable:
    return NukiUnavailable("Nuki answered 503", status=503, operation="GET /smartlock/{smartlockId}/auth")


def forget_booking(rig: Rig, booking_id: str) -> None:
    """The booking item is lost; its claims and name index stay (an orphan maker)."""
    boto3.client("dynamodb").delete_item(
        TableName=rig.world.store.table_name, Key={"pk": {"S": f"BOOKING#{booking_id}"}, "sk": {"S": "BOOKING"}}
    )


def test_an_orphan_delete_that_nuki_does_not_apply_is_sent_again_until_the_code_is_gone(rig: Rig) -> None:
    # Given an orphan code of ours on the locks, and Nuki dropping the next two deletes it accepts
    rig.book()
    forget_booking(rig, "B-1001")
    rig.world.nuki.ghost_deletes = 2
    # When the reconciler runs, and then follows up on each lock to read back
    first = rig.run()
    assert len(actions(first, do="delete")) == 2
    rig.world.nuki.apply()
    second = rig.follow_ups()
    # Then the codes were still there: deleted again, this time after asking Nuki to sync the lock
    assert len(actions(second, do="delete")) == 2
    assert rig.world.nuki.count("sync") == 2
    rig.world.nuki.apply()
    third = rig.follow_ups()
    # And once they are gone, the deletions are confirmed, the claims released, and it stops
    assert {a.key()[1:3] for a in actions(third)} == {("removed", "confirm"), ("stale_claim", "release")}
    assert rig.world.nuki.codes(LOCK) == {}
    assert rig.world.nuki.codes(OTHER) == {}
    assert rig.world.nuki.count("delete_auth") == 4
    assert rig.queue.messages == []
    assert rig.world.store.codes_on_lock(LOCK) == []


def test_a_removal_whose_follow_ups_died_after_a_ghost_delete_is_finished(rig: Rig) -> None:
    # Given a checkout whose delete Nuki acknowledged but did not apply on one lock
    b = rig.book()
    rig.world.nuki.ghost_deletes = 1
    rig.world.bookings.checkout("B-1001")
    rig.world.nuki.apply()
    # And the lifecycle's read-backs were lost
    rig.world.jobs.jobs.clear()
    assert rig.booking().status == BookingStatus.REVOKING
    # When the reconciler runs while the removal is still fresh, it leaves it to the lifecycle
    assert {a.drift.value for a in actions(rig.run())} <= {"pending", "unconfirmed"}
    rig.world.settle()
    # And once the removal is stuck, it has the lifecycle send it again, until it is confirmed
    rig.world.clock.advance(minutes=31)
    rig.heal_until_quiet()
    assert rig.booking().status == BookingStatus.REVOKED
    assert rig.world.nuki.codes(LOCK) == {}
    assert rig.world.nuki.codes(OTHER) == {}
    assert rig.world.store.codes_on_lock(LOCK) == []
    assert int(b.pin) not in rig.world.nuki.codes(OTHER)


def test_a_run_that_nuki_fails_part_of_the_way_is_finished_by_the_next(rig: Rig) -> None:
    # Given drift everywhere: B-1001's code missing on one lock, B-1002's window changed on the
    # other, an orphan (a lost booking) on both, and a cleaner's code
    a = rig.book("B-1001")
    b2 = rig.book("B-1002", checkIn="2026-11-28", checkOut="2026-11-30")
    rig.book("B-1003", checkIn="2026-11-27", checkOut="2026-11-28")
    forget_booking(rig, "B-1003")
    del rig.world.nuki.locks[OTHER].auths[a.lock(OTHER).nukiId]  # type: ignore[union-attr, arg-type]
    held = b2.lock(LOCK).nukiId  # type: ignore[union-attr]
    assert held is not None
    auths = rig.world.nuki.locks[LOCK].auths
    auths[held] = auths[held].model_copy(update={"allowed_from_date": b2.validFrom.replace(hour=0)})
    cleaner = rig.world.nuki.add_foreign(OTHER, 734159, "Cleaner")
    # And Nuki fails: the first lock read, the first delete, and the first code creation
    rig.world.nuki.fail("list_auths", unavailable())
    rig.world.nuki.fail("delete_auth", unavailable())
    rig.world.nuki.fail("create_keypad_code", unavailable())
    # When the reconciler runs
    first = rig.run()
    # Then the unreadable lock is skipped and the failed actions say so
    assert [p.state for p in first] == ["unreachable", "online"]
    assert rig.metrics.total("ReconcileLockFailed") == 1
    assert rig.metrics.total("ReconcileDriftFound", driftClass="unreachable") == 1
    rig.world.nuki.apply()
    rig.world.settle()
    # When the next runs come (Nuki well again)
    rig.heal_until_quiet()
    # Then every lock holds exactly what the bookings say, and the cleaner's code
    b1, b2 = rig.active("B-1001"), rig.active("B-1002")
    expected = {int(b1.pin): b1.authName, int(b2.pin): b2.authName}
    assert rig.world.nuki.codes(LOCK) == expected
    assert rig.world.nuki.codes(OTHER) == {**expected, 734159: "Cleaner"}
    assert rig.world.nuki.locks[OTHER].auths[cleaner.id] == cleaner
    assert auths[held].allowed_from_date == b2.validFrom
    # And the lost booking's claims are released, nothing of it left
    assert {c.booking_id for c in rig.world.store.codes_on_lock(LOCK)} == {"B-1001", "B-1002"}
    assert {c.booking_id for c in rig.world.store.codes_on_lock(OTHER)} == {"B-1001", "B-1002", None}
