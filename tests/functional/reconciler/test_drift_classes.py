"""Each drift class: what the reconciler finds on a lock, what it does, and that the lock ends up
holding exactly what the bookings say."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import boto3
import pytest

from staykey.core.models import BookingPatch, BookingStatus, LockStatus
from staykey.nuki import SmartlockAuthUpdate
from staykey.store import CodeClaim
from tests.functional.reconciler.conftest import Rig, actions

LOCK, OTHER = 17000001, 17000099


def keys(plans: list[Any]) -> list[tuple[int, str, str, str | None, str | None]]:
    return [a.key() for p in plans for a in p.actions]


def test_codes_as_booked_are_left_alone(rig: Rig) -> None:
    # Given an active booking whose code is on both locks as booked
    b = rig.book()
    rig.active()
    before = len(rig.world.nuki.calls)
    # When the reconciler runs
    plans = rig.run()
    # Then it finds both codes as booked, only reads from Nuki, and queues nothing
    assert keys(plans) == [
        (LOCK, "ok", "none", "B-1001", b.lock(LOCK).nukiId),  # type: ignore[union-attr]
        (OTHER, "ok", "none", "B-1001", b.lock(OTHER).nukiId),  # type: ignore[union-attr]
    ]
    assert {name for name, _ in rig.world.nuki.calls[before:]} == {"get_smartlock", "list_auths"}
    assert rig.queue.messages == []
    assert rig.metrics.total("ReconcileDriftFound") == 0
    # And the count of codes per lock is kept and reported
    assert rig.world.store.code_count(LOCK) == 1
    assert rig.metrics.total("KeypadCodes") == 2  # the aggregate, one per lock


def test_a_code_deleted_in_nuki_is_created_again_and_confirmed(rig: Rig) -> None:
    # Given an active booking, and someone deletes its code on one lock in Nuki Web
    b = rig.book()
    held = b.lock(LOCK).nukiId  # type: ignore[union-attr]
    del rig.world.nuki.locks[LOCK].auths[held]  # type: ignore[arg-type]
    # When the reconciler runs
    plans = rig.run()
    # Then it finds the code missing and heals it through the lifecycle
    assert actions(plans, drift="missing") == [actions(plans, drift="missing")[0]]
    assert actions(plans, drift="missing")[0].key() == (LOCK, "missing", "heal", "B-1001", None)
    assert rig.world.nuki.count("create_keypad_code") == 2
    # And once Nuki applies it, the lifecycle confirms it: the booking is active, the same PIN back
    rig.world.settle()
    b2 = rig.active()
    assert b2.pin == b.pin
    assert rig.code_on(LOCK, b.pin) == b.authName
    assert b2.lock(LOCK).nukiId not in (None, held)  # type: ignore[union-attr]
    # And the guest is not told again: nothing changed for them
    assert len(rig.world.mail.sent) == 1
    assert rig.metrics.total("ReconcileDriftFound", driftClass="missing") == 1
    assert rig.metrics.total("ReconcileDriftFixed", driftClass="missing") == 1
    # And the next run finds nothing to do
    assert {a.drift.value for a in actions(rig.run())} == {"ok"}


def test_a_window_changed_in_nuki_is_updated_with_the_full_restriction_set(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an active booking whose window someone extended by two days in Nuki Web
    b = rig.book()
    held = b.lock(LOCK).nukiId  # type: ignore[union-attr]
    assert held is not None
    auths = rig.world.nuki.locks[LOCK].auths
    auths[held] = auths[held].model_copy(update={"allowed_until_date": b.validUntil + timedelta(days=2)})
    sent: list[SmartlockAuthUpdate] = []
    real_update = rig.world.nuki.update_auth

    def spy(lock_id: int, auth_id: str, update: SmartlockAuthUpdate) -> None:
        sent.append(update)
        real_update(lock_id, auth_id, update)

    monkeypatch.setattr(rig.world.nuki, "update_auth", spy)
    # When the reconciler runs
    plans = rig.run()
    # Then it updates that code through the lifecycle, with every restriction, not just the dates
    assert actions(plans, drift="wrong_window")[0].key() == (LOCK, "wrong_window", "heal", "B-1001", held)
    assert len(sent) == 1
    body = sent[0].to_body()
    assert body["name"] == b.authName
    assert body["allowedWeekDays"] == 127
    assert body["allowedFromTime"] == 0
    assert body["allowedUntilTime"] == 0
    assert body["enabled"] is True
    assert {"allowedFromDate", "allowedUntilDate", "code"} <= body.keys()
    # And after Nuki applies it, the code holds the booking's window again and is confirmed
    rig.world.settle()
    rig.active()
    assert auths[held].allowed_until_date == b.validUntil
    assert {a.drift.value for a in actions(rig.run())} == {"ok"}


def test_a_code_or_name_changed_in_nuki_is_put_back(rig: Rig) -> None:
    # Given an active booking, and someone changed its code and its name in Nuki Web
    b = rig.book()
    held = b.lock(OTHER).nukiId  # type: ignore[union-attr]
    assert held is not None
    auths = rig.world.nuki.locks[OTHER].auths
    auths[held] = auths[held].model_copy(update={"code": 358246, "name": "Renamed"})
    # When the reconciler runs
    plans = rig.run()
    # Then it still knows the code is ours (its id is on our records) and puts it back as booked
    assert actions(plans, drift="wrong_code")[0].key() == (OTHER, "wrong_code", "heal", "B-1001", held)
    rig.world.settle()
    rig.active()
    assert auths[held].code == int(b.pin)
    assert auths[held].name == b.authName
    assert rig.code_on(OTHER, "358246") is None


def test_a_stay_whose_removal_never_ran_is_ended_and_its_code_removed(rig: Rig) -> None:
    # Given an active booking whose end-of-stay schedule never fired
    b = rig.book()
    rig.world.clock.set(b.validUntil + timedelta(minutes=12))  # past the removal's spread (at most 10)
    # When the reconciler runs
    plans = rig.run()
    # Then it ends the stay through the lifecycle (once: each lock is planned right before it is
    # acted on, so the second lock already sees the removal in flight)
    assert [a.key()[:4] for a in actions(plans)] == [
        (LOCK, "expired", "expire", "B-1001"),
        (OTHER, "pending", "none", "B-1001"),
    ]
    # And the lifecycle removes the code and confirms it by reading back
    rig.world.settle()
    done = rig.booking()
    assert done.status == BookingStatus.REVOKED
    assert rig.world.nuki.codes(LOCK) == {}
    assert rig.world.nuki.codes(OTHER) == {}
    assert rig.world.store.codes_on_lock(LOCK) == []


def test_a_removal_waiting_its_share_of_the_spread_is_pending_not_drift(rig: Rig) -> None:
    """A stay ended on time whose removals wait for their share of EXPIRY_SPREAD_MINUTES: the
    reconciler leaves them to the sync engine (healing them would undo the spread)."""
    b = rig.book()
    rig.active()
    rig.world.clock.set(b.validUntil)
    rig.world.bookings._end("B-1001", BookingStatus.REVOKING, "stay ended", b.validUntil + timedelta(minutes=6))
    rig.world.jobs.drain()
    plans = rig.run()
    assert [a.key()[1:3] for a in actions(plans)] == [("pending", "none"), ("pending", "none")]
    assert "its removal is due at" in actions(plans)[0].note
    # Once due and not sent (its wake-up lost), it is healed: the first lock's heal sends the
    # booking's removals, which the second lock then sees in flight
    rig.world.clock.set(b.validUntil + timedelta(minutes=7))
    plans = rig.run()
    assert [a.key()[1:3] for a in actions(plans)] == [("expired", "heal"), ("pending", "none")]


def test_a_code_that_lands_after_a_cancellation_is_removed_through_the_lifecycle(rig: Rig) -> None:
    # Given a cancelled booking whose code was removed and confirmed gone
    b = rig.book()
    rig.world.bookings.cancel("B-1001")
    rig.world.settle()
    assert rig.booking().status == BookingStatus.CANCELLED
    assert rig.world.store.codes_on_lock(LOCK) == []
    # And a late write puts it back on one lock (our name, the PIN we chose)
    late = rig.world.nuki.add_foreign(LOCK, int(b.pin), name=b.authName)
    # When the reconciler runs
    plans = rig.run()
    # Then it recognises it as ours from our records and has the lifecycle remove it
    assert actions(plans, drift="cancelled")[0].key() == (LOCK, "cancelled", "heal", "B-1001", late.id)
    rig.world.settle()
    assert rig.world.nuki.codes(LOCK) == {}
    after = rig.booking()
    assert after.status == BookingStatus.CANCELLED
    assert after.lock(LOCK).status == LockStatus.REMOVED  # type: ignore[union-attr]
    assert rig.world.store.codes_on_lock(LOCK) == []


def test_a_code_of_a_booking_we_do_not_have_is_deleted_and_the_deletion_confirmed(rig: Rig) -> None:
    # Given an active booking, whose booking item is then lost (its claims and name stay behind)
    b = rig.book()
    boto3.client("dynamodb").delete_item(
        TableName=rig.world.store.table_name, Key={"pk": {"S": "BOOKING#B-1001"}, "sk": {"S": "BOOKING"}}
    )
    # When the reconciler runs
    plans = rig.run()
    # Then the codes are ours by our claims (name and code), for a booking unknown to us: deleted
    assert [a.key()[:4] for a in actions(plans, drift="unknown")] == [
        (LOCK, "unknown", "delete", "B-1001"),
        (OTHER, "unknown", "delete", "B-1001"),
    ]
    # And each lock comes back shortly to confirm by reading back
    assert sorted((job.smartlockId, job.reason, job.attempt) for job, _ in rig.queue.messages) == [
        (LOCK, "confirm", 1),
        (OTHER, "confirm", 1),
    ]
    rig.world.nuki.apply()
    confirm = rig.follow_ups()
    # Then the deletion is confirmed and the claims on the codes released
    assert {a.key()[1:3] for a in actions(confirm)} == {("removed", "confirm"), ("stale_claim", "release")}
    assert rig.world.nuki.codes(LOCK) == {}
    assert rig.world.nuki.codes(OTHER) == {}
    assert rig.world.store.codes_on_lock(LOCK) == []
    assert rig.world.store.get_lock_meta(LOCK)["orphanDeletes"] == {}
    assert rig.metrics.total("OrphanDeleteConfirmed") == 2
    assert rig.queue.messages == []
    del b


def test_a_second_code_of_one_booking_is_deleted_and_the_first_kept(rig: Rig) -> None:
    # Given an active booking, and a code of an earlier PIN of it that landed late on one lock
    b = rig.book()
    rig.world.store.update_booking("B-1001", lambda bk: bk.pinHistory.insert(0, "358246"))
    dup = rig.world.nuki.add_foreign(LOCK, 358246, name=b.authName)
    # When the reconciler runs
    plans = rig.run()
    # Then the late one is a duplicate and is deleted; the booking's code stays as it is
    assert actions(plans, do="delete")[0].key() == (LOCK, "duplicate", "delete", "B-1001", dup.id)
    assert actions(plans, drift="ok")[0].auth_id == b.lock(LOCK).nukiId  # type: ignore[union-attr]
    rig.world.nuki.apply()
    rig.follow_ups()
    assert rig.world.nuki.codes(LOCK) == {int(b.pin): b.authName}
    rig.active()


def test_a_code_left_on_a_lock_the_booking_moved_away_from_is_deleted(rig: Rig) -> None:
    # Given a booking moved to another room, its code removed from the old locks
    b = rig.book()
    rig.world.add_room("room-7", locks=(17000002,))
    rig.world.bookings.patch("B-1001", BookingPatch.model_validate({"roomId": "room-7"}))
    rig.world.settle()
    moved = rig.active()
    assert [lk.smartlockId for lk in moved.locks] == [17000002]
    # And a late write puts its code back on an old lock
    late = rig.world.nuki.add_foreign(LOCK, int(moved.pin), name=b.authName)
    # When the reconciler runs
    plans = rig.run()
    # Then it is deleted there (the booking no longer uses that lock), and nothing else changes
    assert actions(plans, do="delete")[0].key() == (LOCK, "moved", "delete", "B-1001", late.id)
    rig.world.nuki.apply()
    rig.follow_ups()
    assert rig.world.nuki.codes(LOCK) == {}
    assert rig.world.nuki.codes(17000002) == {int(moved.pin): b.authName}


def test_a_claim_no_booking_needs_is_released(rig: Rig) -> None:
    # Given a finished booking that left a claim on a code behind on one lock
    b = rig.book()
    rig.world.bookings.checkout("B-1001")
    rig.world.settle()
    gone = rig.booking()
    assert gone.status == BookingStatus.REVOKED
    rig.world.store._put(rig.world.store.code_item(CodeClaim(LOCK, b.pin), gone))
    # When the reconciler runs
    plans = rig.run()
    # Then the claim is released, so the lock's codes stay free for others
    assert actions(plans, drift="stale_claim")[0].key() == (LOCK, "stale_claim", "release", "B-1001", None)
    assert rig.world.store.codes_on_lock(LOCK) == []


def test_a_write_whose_follow_ups_died_is_sent_again(rig: Rig) -> None:
    # Given a booking whose create Nuki lost, and whose read-backs were lost too
    rig.book(settle=False)
    rig.world.nuki.pending.clear()
    rig.world.jobs.jobs.clear()
    # When the reconciler runs before the write counts as stuck
    assert {a.drift.value for a in actions(rig.run())} == {"pending"}
    # And again once it is stuck (30 minutes by default)
    rig.world.clock.advance(minutes=31)
    plans = rig.run()
    # Then it sends the code again through the lifecycle, which confirms it
    assert [a.key()[:3] for a in actions(plans)] == [(LOCK, "missing", "heal"), (OTHER, "missing", "heal")]
    rig.world.settle()
    rig.active()
    assert len(rig.world.mail.sent) == 1


def test_a_code_that_landed_but_was_never_confirmed_is_adopted_and_confirmed(rig: Rig) -> None:
    # Given a booking whose code landed on the locks, but every read-back was lost
    rig.book(settle=False)
    rig.world.nuki.apply()
    rig.world.jobs.jobs.clear()
    rig.world.clock.advance(minutes=31)
    assert rig.booking().status == BookingStatus.PROVISIONING
    # When the reconciler runs
    plans = rig.run()
    # Then it has the lifecycle adopt the codes it finds, confirm them, and tell the guest
    assert {a.key()[1:3] for a in actions(plans)} == {("unconfirmed", "heal")}
    rig.world.settle()
    b = rig.active()
    assert all(lk.nukiId for lk in b.locks)
    assert len(rig.world.mail.sent) == 1
