"""The guest journey through the lifecycle service: reserve, send, confirm, email, remove."""

from __future__ import annotations

from staykey.core.models import BookingIn, BookingStatus, LockStatus
from tests.conftest import World


def booking(booking_id: str = "B-1001", **kw: object) -> BookingIn:
    body = {
        "bookingId": booking_id,
        "roomId": "room-12",
        "guest": {"name": "Ada Lovelace", "email": "ada@example.org", "locale": "en"},
        "checkIn": "2026-11-27",
        "checkOut": "2026-11-29",
        **kw,
    }
    return BookingIn.model_validate(body)


def test_booking_within_lead_is_sent_confirmed_and_guest_emailed(world: World) -> None:
    # Given a room with two locks
    world.add_room()
    # When the shop books a stay that starts tomorrow
    b, created = world.bookings.create(booking())
    # Then the PIN is reserved and sent to both locks at once, and nothing is confirmed yet
    assert created
    assert b.status == BookingStatus.PROVISIONING
    assert world.nuki.count("create_keypad_code") == 1
    assert world.mail.sent == []
    # When Nuki applies the write and the read-back runs
    world.settle()
    b = world.bookings.get("B-1001")
    assert b.status == BookingStatus.ACTIVE
    assert [lk.status for lk in b.locks] == [LockStatus.ACTIVE, LockStatus.ACTIVE]
    assert all(lk.nukiId and lk.authId for lk in b.locks)
    assert len(world.mail.sent) == 1
    assert world.mail.sent[0].pin == b.pin
    # When the guest checks out early
    b = world.bookings.checkout("B-1001")
    assert b.status == BookingStatus.REVOKING
    world.settle()
    b = world.bookings.get("B-1001")
    assert b.status == BookingStatus.REVOKED
    assert world.nuki.codes(17000001) == {}
    assert world.nuki.codes(17000099) == {}
    assert world.store.codes_on_lock(17000001) == []
