"""The search world: the lifecycle world (moto, FakeNuki, FixedClock) with the list and lock
routes, called through the functions template.yaml wires for them."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest

from local import cfn
from local.gateway import Router
from local.kit.apigw import Context, api_event
from staykey import wiring
from staykey.core.models import Booking, BookingIn
from staykey.services.activity import Activity
from staykey.services.locks import Locks
from staykey.services.search import BookingSearch
from staykey.settings import load_settings
from tests.conftest import World

ROUTER = Router(cfn.routes())
FUNCTIONS = cfn.functions()
Call = Callable[..., tuple[int, Any]]


@pytest.fixture
def wired(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    settings = load_settings()
    activity = Activity(settings, world.store, world.clock)
    monkeypatch.setattr(wiring, "bookings", lambda: world.bookings)
    monkeypatch.setattr(wiring, "sync", lambda: world.sync)
    monkeypatch.setattr(wiring, "store", lambda: world.store)
    monkeypatch.setattr(wiring, "activity", lambda: activity)
    monkeypatch.setattr(wiring, "search", lambda: BookingSearch(world.store, world.clock))
    monkeypatch.setattr(wiring, "locks", lambda: Locks(settings, world.store, world.clock))
    return world


@pytest.fixture
def call(wired: World) -> Call:
    """`call("GET", "/bookings?roomId=room-12")` -> (status, json), through the template's function;
    a query given as a list of pairs keeps repeated parameters."""

    def run(method: str, target: str, body: Any = None) -> tuple[int, Any]:
        split = urlsplit(target)
        route, _, _ = ROUTER.match(method, unquote(split.path))
        assert route is not None, target
        pairs = parse_qsl(split.query, keep_blank_values=True)
        event = api_event(method, split.path, body, resource=route.path, query=dict(pairs) or None)
        if pairs:
            multi: dict[str, list[str]] = {}
            for key, value in pairs:
                multi.setdefault(key, []).append(value)
            event["multiValueQueryStringParameters"] = multi
        if event["pathParameters"]:
            event["pathParameters"] = {k: unquote(v) for k, v in event["pathParameters"].items()}
        module = importlib.import_module(FUNCTIONS[route.function].module)
        response = module.lambda_handler(event, Context())
        return response["statusCode"], json.loads(response["body"]) if response.get("body") else None

    return run


def book(world: World, booking_id: str, check_in: str, check_out: str, room: str = "room-12", **guest: str) -> Booking:
    body = {
        "bookingId": booking_id,
        "roomId": room,
        "guest": {"name": guest.get("name", "Ada Lovelace"), "email": guest.get("email", "ada@example.org")},
        "checkIn": check_in,
        "checkOut": check_out,
    }
    booking, created = world.bookings.create(BookingIn.model_validate(body))
    assert created
    return booking


def pages(call: Call, target: str) -> list[list[str]]:
    """Every page of a list route, as booking (or item) ids, following nextCursor."""
    out: list[list[str]] = []
    cursor = None
    for _ in range(200):
        sep = "&" if "?" in target else "?"
        status, body = call("GET", target + (f"{sep}cursor={cursor}" if cursor else ""))
        assert status == 200, body
        out.append([item.get("bookingId", item.get("id", item.get("roomId"))) for item in body["items"]])
        cursor = body["nextCursor"]
        if cursor is None:
            return out
    raise AssertionError("more than 200 pages")
