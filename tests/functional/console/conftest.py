"""The console over the lifecycle world (moto, FakeNuki, FixedClock): its pages rendered by the
console's own handler, signed in as an operator whose token the verifier takes as it is."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from local.kit.apigw import Context, api_event
from staykey.console.app import Console, Services
from staykey.console.auth import InvalidSession, Operator
from staykey.console.views import ConsoleViews
from staykey.services.activity import Activity
from staykey.services.audit import Audit
from staykey.services.locks import Locks
from staykey.services.search import BookingSearch
from staykey.settings import load_settings
from tests.conftest import World

TOKEN = "operator-token"
OPERATOR = Operator("ops@example.org", "ops@example.org", "session-1", 2_000_000_000)


class Verifier:
    def verify(self, token: str | None) -> Operator:
        if token != TOKEN:
            raise InvalidSession("not the test's token")
        return OPERATOR


@dataclass
class ConsoleWorld:
    world: World
    services: Services
    console: Console

    def get(self, path: str, **query: str) -> tuple[int, str]:
        """GET a console page signed in; (status, body)."""
        headers = {"Host": "127.0.0.1:3000", "Cookie": f"sk_session={TOKEN}", "Accept-Language": "en"}
        event = api_event("GET", path, query=query or None, headers=headers)
        answer = self.console.handle(event, Context())
        return answer["statusCode"], str(answer.get("body") or "")


@pytest.fixture
def console(world: World) -> ConsoleWorld:
    settings = load_settings()
    activity = Activity(settings, world.store, world.clock)
    audit = Audit(world.store, world.clock)
    search = BookingSearch(world.store, world.clock)
    locks = Locks(settings, world.store, world.clock)
    views = ConsoleViews(settings, world.store, search, locks, activity=activity, audit=audit)
    services = Services(
        settings=settings,
        store=world.store,
        search=search,
        locks=locks,
        activity=activity,
        audit=audit,
        bookings=lambda: world.bookings,
        verifier=Verifier(),  # type: ignore[arg-type]
        sign_in=None,  # type: ignore[arg-type]
        secret=lambda: "console-secret-" * 4,
        views=views,
        clock=world.clock,
    )
    return ConsoleWorld(world, services, Console(lambda: services))


Get = Callable[..., tuple[int, Any]]
