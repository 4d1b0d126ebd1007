"""A shop's whole journey through a client generated from openapi.yaml by openapi-python-client
(`make client` writes it to build/shop-client; `make test` runs that first): room, booking, get,
patch, early checkout, activity, and the errors a shop meets, each parsed into the spec's types.

The generated code is used as a shop would use it: `AuthenticatedClient` with the key in the
`x-api-key` header (the spec's `apiKey` security scheme), typed models in, typed models out,
`checkIn`/`checkOut` as `datetime.date` / `datetime.datetime`.
"""

from __future__ import annotations

import datetime
import importlib
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from local.stack import LocalStack
from tests.e2e.helpers import Shop, Sim, eventually, new_id

pytestmark = pytest.mark.e2e

CLIENT_DIR = Path(os.environ.get("STAYKEY_CLIENT_DIR", Path(__file__).resolve().parents[2] / "build" / "shop-client"))
PACKAGE = "staykey_shop_client"


def _load() -> ModuleType:
    if not (CLIENT_DIR / PACKAGE / "__init__.py").is_file():
        message = f"no generated client in {CLIENT_DIR} (run make client)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; failing because CI=true")
        pytest.skip(message)
    if str(CLIENT_DIR) not in sys.path:
        sys.path.insert(0, str(CLIENT_DIR))
    return importlib.import_module(PACKAGE)


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    return _load()


def _mod(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


def test_a_whole_journey_through_the_generated_client(stack: LocalStack, sim: Sim, shop: Shop, gen: ModuleType) -> None:
    models = _mod("models")
    put_room = _mod("api.rooms.put_room")
    get_room = _mod("api.rooms.get_room")
    create_booking = _mod("api.bookings.create_booking")
    get_booking = _mod("api.bookings.get_booking")
    patch_booking = _mod("api.bookings.patch_booking")
    checkout_booking = _mod("api.bookings.checkout_booking")
    get_activity = _mod("api.bookings.get_booking_activity")
    health = _mod("api.health.health")

    client = gen.AuthenticatedClient(
        base_url=stack.gateway_url,
        token=stack.config.api_key,
        prefix="",
        auth_header_name="x-api-key",
        httpx_args={"trust_env": False},  # loopback only, never a proxy from the environment
        raise_on_unexpected_status=True,
    )
    anonymous = gen.Client(base_url=stack.gateway_url, httpx_args={"trust_env": False})
    assert health.sync(client=anonymous) == models.Health(status=models.HealthStatus.OK)

    # A room on two sandbox locks
    door, entrance = sim.add_lock(), sim.add_lock()
    room_id = new_id("gen-room")
    room = put_room.sync(
        room_id,
        client=client,
        body=models.RoomInput(name="Generated client room", smartlock_ids=[door, entrance], timezone="Europe/Berlin"),
    )
    assert isinstance(room, models.Room), room
    assert room.smartlock_ids == [door, entrance]
    assert isinstance(room.created_at, datetime.datetime)
    assert get_room.sync(room_id, client=client) == room

    # A booking from now (a date-time) to a date two days on: the spec types both
    start = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    check_out = (start + datetime.timedelta(days=2)).date()
    booking_id = new_id("B-gen")
    created = create_booking.sync_detailed(
        client=client,
        body=models.BookingInput(
            booking_id=booking_id,
            room_id=room_id,
            guest=models.Guest(name="Grace Hopper", email="grace@example.org", locale="en"),
            check_in=start,
            check_out=check_out,
            notify_guest=False,
        ),
    )
    assert created.status_code == 201, created.content
    booking = created.parsed
    assert isinstance(booking, models.Booking)
    assert booking.status in (models.BookingStatus.PROVISIONING, models.BookingStatus.ACTIVE)
    assert isinstance(booking.check_in, datetime.datetime)
    assert booking.check_in == start
    assert type(booking.check_out) is datetime.date
    assert booking.check_out == check_out
    assert isinstance(booking.guest, models.Guest)
    pin = booking.pin

    def status() -> models.BookingStatus | None:
        got = get_booking.sync(booking_id, client=client)
        assert isinstance(got, models.Booking), got
        return got.status if got.status == models.BookingStatus.ACTIVE else None

    eventually(status, 20, f"booking {booking_id} active")
    assert int(pin) in sim.codes(door)
    assert int(pin) in sim.codes(entrance)

    # Patch: one more night (a date); the locks follow and the booking is active again
    later = check_out + datetime.timedelta(days=1)
    patched = patch_booking.sync(booking_id, client=client, body=models.BookingPatch(check_out=later))
    assert isinstance(patched, models.Booking), patched
    assert patched.check_out == later
    assert patched.pin == pin
    eventually(status, 20, f"booking {booking_id} active after the patch")

    # The guest comes in; the activity shows it
    assert sim.keypad(door, pin) is True

    def entries() -> list[Any]:
        activity = get_activity.sync(booking_id, client=client)
        assert isinstance(activity, models.Activity), activity
        return list(activity.items)

    (entry,) = eventually(entries, 20, "the guest's entry in the activity")
    assert entry.smartlock_id == door
    assert entry.success is True
    assert isinstance(entry.at, datetime.datetime)

    # Early checkout: revoking, then revoked
    out = checkout_booking.sync(booking_id, client=client)
    assert isinstance(out, models.Booking), out
    assert out.status in (models.BookingStatus.REVOKING, models.BookingStatus.REVOKED)

    def revoked() -> bool:
        got = get_booking.sync(booking_id, client=client)
        return isinstance(got, models.Booking) and got.status == models.BookingStatus.REVOKED

    eventually(revoked, 20, f"booking {booking_id} revoked")
    assert int(pin) not in sim.codes(door)


def test_errors_parse_into_the_specs_types(stack: LocalStack, gen: ModuleType) -> None:
    models = _mod("models")
    get_booking = _mod("api.bookings.get_booking")
    create_booking = _mod("api.bookings.create_booking")
    client = gen.AuthenticatedClient(
        base_url=stack.gateway_url,
        token=stack.config.api_key,
        prefix="",
        auth_header_name="x-api-key",
        httpx_args={"trust_env": False},
    )
    missing = get_booking.sync_detailed("B-no-such-booking", client=client)
    assert missing.status_code == 404
    assert isinstance(missing.parsed, models.Error)
    assert missing.parsed.code == "not_found"

    wrong_key = gen.AuthenticatedClient(
        base_url=stack.gateway_url,
        token="not-the-key",
        prefix="",
        auth_header_name="x-api-key",
        httpx_args={"trust_env": False},
    )
    refused = get_booking.sync_detailed("B-any", client=wrong_key)
    assert refused.status_code == 403
    assert isinstance(refused.parsed, models.GatewayError)
    assert refused.parsed.message == "Forbidden"

    bad = create_booking.sync_detailed(
        client=client,
        body=models.BookingInput(
            booking_id=new_id("B-gen"),
            room_id="no-such-room-either",
            guest=models.Guest(name="Grace Hopper", email="grace@example.org"),
            check_in=datetime.date(2030, 1, 2),
            check_out=datetime.date(2030, 1, 1),
        ),
    )
    assert bad.status_code in (404, 422), bad.content
    assert isinstance(bad.parsed, models.Error)
    assert bad.parsed.code in ("not_found", "validation_error")
