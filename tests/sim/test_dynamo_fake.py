"""The simulator's in-memory DynamoDB answers the store's requests as moto does: the same store
operations, run against both, give the same results, the same conditional failures and the same
cancellation reasons. (moto stands for DynamoDB here; its own fidelity is moto's business.)"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from local.sim.dynamo import InMemoryDynamoDB
from staykey.core.models import Booking, BookingStatus, Guest, LockState, Room
from staykey.errors import ConcurrentModification
from staykey.store import BookingExists, CodeClaim, NameTaken, PinTaken, Store, TxExtras

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _booking(booking_id: str, pin: str = "482917", locks: tuple[int, ...] = (1, 2)) -> Booking:
    return Booking(
        bookingId=booking_id,
        roomId="r1",
        status=BookingStatus.PROVISIONING,
        pin=pin,
        pinHistory=[pin],
        authName=f"SK {booking_id}",
        validFrom=NOW,
        validUntil=NOW + timedelta(days=2),
        checkIn="2026-12-01",
        checkOut="2026-12-03",
        timezone="Europe/Berlin",
        locks=[LockState(smartlockId=i) for i in locks],
        createdAt=NOW,
        updatedAt=NOW,
        provisionAt=NOW,
        requestHash="h",
    )


def _script(store: Store) -> list[Any]:
    """Store operations whose outcomes are compared; every access pattern the services use."""
    out: list[Any] = []

    def step(fn: Callable[[], Any]) -> None:
        try:
            out.append(("ok", fn()))
        except (BookingExists, NameTaken, PinTaken, ConcurrentModification, KeyError) as exc:
            out.append(("error", type(exc).__name__, getattr(exc, "smartlock_ids", None)))

    guest = Guest(name="Ada", email="ada@example.org")
    expires = NOW + timedelta(days=30)
    claims = [CodeClaim(1, "482917"), CodeClaim(2, "482917")]
    step(lambda: store.create_booking(_booking("B-1"), guest, expires, claims))
    step(lambda: store.create_booking(_booking("B-1"), guest, expires, []))  # exists
    step(lambda: store.create_booking(_booking("B-2"), guest, expires, [CodeClaim(2, "482917")]))  # PIN taken
    b2 = _booking("B-2", pin="517395")
    b2.authName = "SK B-1"
    step(lambda: store.create_booking(b2, guest, expires, []))  # name taken
    step(lambda: store.create_booking(_booking("B-3", pin="517395"), guest, expires, [CodeClaim(2, "517395")]))
    step(lambda: _dump(store.get_booking("B-1", NOW)))

    def bump(b: Booking) -> TxExtras:
        b.status = BookingStatus.ACTIVE
        return TxExtras(claims=[CodeClaim(3, "482917")], releases=[CodeClaim(1, "482917")])

    step(lambda: _dump(store.update_booking("B-1", bump, now=NOW)))
    stale = store.get_booking("B-1")
    assert stale is not None
    step(lambda: _dump(store.save_booking(stale)))
    step(lambda: _dump(store.save_booking(stale)))  # optimistic lock: changed meanwhile
    step(lambda: sorted((c.smartlock_id, c.pin, c.owner, c.booking_id) for c in store.codes_on_lock(2)))
    step(lambda: sorted(store.known_codes([1, 2, 3])))
    step(lambda: store.record_foreign_code(2, "517395", "Cleaner", "ab" * 12, NOW))  # a booking's claim
    step(lambda: store.record_foreign_code(4, "111111", "Cleaner", "ab" * 12, NOW))
    step(lambda: store.record_foreign_code(4, "111111", "Cleaner", "ab" * 12, NOW))
    step(lambda: store.forget_foreign_code(4, "111111"))
    step(lambda: store.forget_foreign_code(4, "111111"))
    step(lambda: store.release_code(2, "517395", "B-1"))
    step(lambda: store.release_code(2, "517395", "B-3"))
    store.index_auth(2, "B-3", "cd" * 12, 7, expires)
    step(lambda: (store.booking_id_for_auth(2, "cd" * 12), store.booking_id_for_auth(2, "7")))
    step(lambda: store.booking_id_for_name("SK B-3"))
    for n in range(5):
        entry = {"id": f"{n:024x}", "at": NOW + timedelta(minutes=n), "smartlockId": 2, "bookingId": "B-3", "action": 1}
        step(lambda entry=entry: store.put_activity(entry, expires))
    step(lambda: store.put_activity({"id": f"{0:024x}", "at": NOW, "smartlockId": 2}, expires))
    step(lambda: [i["id"] for i in store.list_activity(Store.activity_owner_key("B-3", 2), 3)])
    step(lambda: store.record_first_entry("B-3", NOW + timedelta(hours=1), NOW))
    step(lambda: store.record_first_entry("B-3", NOW + timedelta(hours=2), NOW))
    step(lambda: store.record_first_entry("B-3", NOW, NOW))
    step(lambda: store.record_first_entry("B-404", NOW, NOW))
    step(lambda: store.update_lock_meta_if_newer(2, "statusAt", NOW, online=True, batteryCharge=90))
    step(lambda: store.update_lock_meta_if_newer(2, "statusAt", NOW - timedelta(seconds=1), online=False))
    store.update_lock_meta(2, codeCount=12, orphanDeletes={"x": 1})
    step(lambda: store.get_lock_meta(2))
    step(lambda: store.code_count(2))
    store.register_locks(range(1, 40))
    step(lambda: store.registered_locks())
    store.unregister_lock(5)
    step(lambda: len(store.registered_locks()))
    store.put_room(Room(roomId="r1", name="R", smartlockIds=[1, 2], timezone="UTC", createdAt=NOW, updatedAt=NOW))
    step(lambda: [r.roomId for r in store.list_rooms()])
    step(lambda: sorted(store.get_bookings(["B-1", "B-3", "B-404"])))
    store.put_config("WEBHOOK", id=3, url="https://x")
    step(lambda: store.get_config("WEBHOOK"))
    return out


def _dump(booking: Booking | None) -> Any:
    return None if booking is None else booking.model_dump(mode="json")


def test_the_fake_answers_the_store_as_moto_does(aws: dict[str, str]) -> None:
    with_moto = _script(Store(os.environ["TABLE_NAME"]))
    with_fake = _script(Store(os.environ["TABLE_NAME"], client=InMemoryDynamoDB()))
    assert with_fake == with_moto
    errors = sorted({entry[1] for entry in with_moto if entry[0] == "error"})
    assert errors == ["BookingExists", "ConcurrentModification", "KeyError", "NameTaken", "PinTaken"] or errors == [
        "BookingExists",
        "ConcurrentModification",
        "NameTaken",
        "PinTaken",
    ], errors  # the script reaches every refusal the store knows


def test_the_fake_fails_loudly_on_what_it_does_not_serve() -> None:
    fake = InMemoryDynamoDB()
    with pytest.raises(NotImplementedError):
        fake.put_item(TableName="t", Item={"pk": {"S": "a"}, "sk": {"S": "b"}}, ConditionExpression="size(pk) > :n")
    with pytest.raises(NotImplementedError):
        fake.query(TableName="t", KeyConditionExpression="pk > :p", ExpressionAttributeValues={":p": {"S": "a"}})
