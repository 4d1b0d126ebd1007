from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import pytest

from local.kit.apigw import Context, api_event, response_json
from staykey import wiring
from tests.conftest import World

Call = Callable[..., tuple[int, Any]]

ROUTES = {
    ("POST", "/bookings"): "booking_created",
    ("GET", "/bookings/{bookingId}"): "bookings_api",
    ("PATCH", "/bookings/{bookingId}"): "bookings_api",
    ("DELETE", "/bookings/{bookingId}"): "bookings_api",
    ("POST", "/bookings/{bookingId}/checkout"): "checkout",
    ("PUT", "/rooms/{roomId}"): "rooms_api",
    ("GET", "/rooms/{roomId}"): "rooms_api",
    ("GET", "/rooms"): "rooms_api",
    ("GET", "/health"): "rooms_api",
}


@pytest.fixture
def handlers(world: World, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Any]:
    """The functions' modules, wired to the test world (moto, FakeNuki, FixedClock)."""
    monkeypatch.setattr(wiring, "bookings", lambda: world.bookings)
    monkeypatch.setattr(wiring, "sync", lambda: world.sync)
    monkeypatch.setattr(wiring, "store", lambda: world.store)
    monkeypatch.setattr(wiring, "nuki", lambda: world.nuki)  # PUT /rooms asks Nuki about the locks

    def load(name: str) -> Any:
        return importlib.import_module(f"functions.{name}.app")

    return load


@pytest.fixture
def api(handlers: Callable[[str], Any]) -> Call:
    """`api("POST", "/bookings", body)` -> (status, json) through the function the template wires."""

    def call(method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        resource = next(
            (res for (m, res) in ROUTES if m == method and _matches(res, path)),
            path,
        )
        module = handlers(ROUTES[(method, resource)])
        response = module.lambda_handler(api_event(method, path, body, resource=resource, **kw), Context())
        return response["statusCode"], response_json(response)

    return call


def _matches(resource: str, path: str) -> bool:
    parts, want = resource.strip("/").split("/"), path.strip("/").split("/")
    return len(parts) == len(want) and all(p.startswith("{") or p == w for p, w in zip(parts, want, strict=True))


def booking_body(booking_id: str = "B-1001", **kw: Any) -> dict[str, Any]:
    return {
        "bookingId": booking_id,
        "roomId": "room-12",
        "guest": {"name": "Ada Lovelace", "email": "ada@example.org", "locale": "en"},
        "checkIn": "2026-11-27",
        "checkOut": "2026-11-29",
        **kw,
    }
