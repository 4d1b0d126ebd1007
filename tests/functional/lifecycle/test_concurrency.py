"""PIN allocation is race-free: bookings that share a lock never share a PIN there."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

import staykey.services.bookings as bookings_module
from staykey.core.models import BookingIn
from tests.conftest import World

ENTRANCE = 17000099


class _Atomic:
    def __init__(self, client: object) -> None:
        self._client = client
        self._lock = threading.Lock()
        self.exceptions = client.exceptions  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        method = getattr(self._client, name)

        def call(*args: object, **kwargs: object) -> object:
            with self._lock:
                return method(*args, **kwargs)

        return call


def test_concurrent_bookings_on_a_shared_entrance_get_distinct_pins(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 24 rooms, each with its own door and the one shared entrance
    for n in range(24):
        world.nuki.add_lock(18000000 + n)
        world.add_room(f"room-{n}", (18000000 + n, ENTRANCE), name=f"Room {n}")
    # and a random source that first offers every booking the same PIN (the worst case)
    real = bookings_module.generate_pin
    first_offer: set[int] = set()

    def same_pin_first(avoid: object = (), *choice: object) -> str:
        me = threading.get_ident()
        if me not in first_offer:
            first_offer.add(me)
            return "483726"
        return real(avoid)  # type: ignore[arg-type]

    monkeypatch.setattr(bookings_module, "generate_pin", same_pin_first)
    # moto's in-process DynamoDB is not thread-safe; real DynamoDB makes each call atomic, so we
    # make each call atomic too and let the threads interleave freely between calls.
    world.store._client = _Atomic(world.store.client)

    def book(n: int) -> str:
        first_offer.discard(threading.get_ident())
        request = BookingIn.model_validate(
            {
                "bookingId": f"B-{n}",
                "roomId": f"room-{n}",
                "guest": {"name": "Guest", "email": f"g{n}@example.org"},
                "checkIn": "2026-12-10",
                "checkOut": "2026-12-12",
            }
        )
        booking, created = world.bookings.create(request)
        assert created
        return booking.pin

    # When they are all booked at once
    with ThreadPoolExecutor(max_workers=8) as pool:
        pins = list(pool.map(book, range(24)))
    # Then every PIN is different, and the entrance holds one claim per booking
    assert len(set(pins)) == 24
    claims = world.store.codes_on_lock(ENTRANCE)
    assert sorted(c.pin for c in claims) == sorted(pins)
    assert len({c.booking_id for c in claims}) == 24
