"""Nuki applies writes late, sometimes tens of seconds late. A create that the first read-backs do not
see yet is slow, not lost: it is not sent again (that would meet our own pending code, 409, and fail
the booking, as `make bench` once showed at a 10 s sync delay without webhooks)."""

from __future__ import annotations

from staykey.core.models import BookingIn, BookingStatus
from tests.conftest import World

A = 17000001


def body() -> BookingIn:
    return BookingIn.model_validate(
        {
            "bookingId": "B-1001",
            "roomId": "room-12",
            "guest": {"name": "Ada Lovelace", "email": "ada@example.org", "locale": "en"},
            "checkIn": "2026-11-27",
            "checkOut": "2026-11-29",
        }
    )


def run_read_backs(world: World, rounds: int) -> None:
    """The queued read-backs, `rounds` times, while Nuki has not applied anything yet."""
    for _ in range(rounds):
        assert world.jobs.jobs
        world.clock.advance(seconds=max(delay for _, delay in world.jobs.jobs))
        world.run_jobs()


def test_a_create_that_is_slow_to_show_is_confirmed_not_sent_again(world: World) -> None:
    world.add_room(locks=(A,))
    world.bookings.create(body())
    run_read_backs(world, 4)  # 1, 3, 6, 11 s after the write: still not on the lock
    assert world.nuki.count("create_keypad_code") == 1
    world.nuki.apply()  # Nuki applies it now
    world.settle()
    booking = world.bookings.get("B-1001")
    assert booking.status == BookingStatus.ACTIVE
    assert world.nuki.count("create_keypad_code") == 1
    assert len(world.nuki.codes(A)) == 1


def test_a_create_unseen_for_minutes_on_an_online_lock_is_sent_again(world: World) -> None:
    world.add_room(locks=(A,))
    world.bookings.create(body())
    world.nuki.pending.clear()  # the create never reached Nuki
    run_read_backs(world, 8)  # 1, 3, 6, 11, 19, 34, 64, 124 s
    assert world.nuki.count("create_keypad_code") == 2
    world.settle()
    assert world.bookings.get("B-1001").status == BookingStatus.ACTIVE
