"""The console over the lifecycle world (moto, FakeNuki, FixedClock): its pages rendered by the
console's own handler, signed in as an operator whose token the verifier takes as it is."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import unescape
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from local.kit.apigw import Context, api_event
from staykey.adapters.schedules import Scheduler
from staykey.console.app import Console, Services
from staykey.console.auth import InvalidSession, Operator, csrf_token
from staykey.console.views import ConsoleViews
from staykey.core.timeutil import FixedClock
from staykey.nuki import KeypadCodeCreate, SmartlockAuth, SmartlockAuthUpdate
from staykey.services.activity import Activity
from staykey.services.audit import Audit
from staykey.services.backup import BackupPools
from staykey.services.locks import Locks
from staykey.services.search import BookingSearch
from staykey.services.staff import StaffCodes
from staykey.settings import load_settings
from tests.conftest import World
from tests.fakes import FakeNuki

TOKEN = "operator-token"
SECRET = "console-secret-" * 4  # the CSRF key of the test console
HOST = "127.0.0.1:3000"
OPERATOR = Operator("ops@example.org", "ops@example.org", "session-1", 2_000_000_000)


class Verifier:
    def verify(self, token: str | None) -> Operator:
        if token != TOKEN:
            raise InvalidSession("not the test's token")
        return OPERATOR


class ScheduledNuki(FakeNuki):
    """FakeNuki keeping a code's weekday and daily-time restrictions as Nuki does: a staff code's
    schedule (core.staff) is confirmed on the lock only when the lock holds it."""

    def __init__(self, clock: Callable[[], Any]) -> None:
        super().__init__(clock=clock)
        self._restrictions: dict[tuple[int, int | None], tuple[int, int, int]] = {}
        self.on_apply.append(self._keep)

    def create_keypad_code(self, smartlock_ids: Sequence[int], code: KeypadCodeCreate) -> None:
        super().create_keypad_code(smartlock_ids, code)
        for lock_id in smartlock_ids:
            self._restrictions[(lock_id, code.code)] = (
                code.allowed_week_days,
                code.allowed_from_time,
                code.allowed_until_time,
            )

    def update_auth(self, smartlock_id: int, auth_id: str, update: SmartlockAuthUpdate) -> None:
        super().update_auth(smartlock_id, auth_id, update)
        self._restrictions[(smartlock_id, update.code)] = (
            update.allowed_week_days,
            update.allowed_from_time,
            update.allowed_until_time,
        )

    def _keep(self, smartlock_id: int, auth: SmartlockAuth, deleted: bool) -> None:
        wanted = self._restrictions.get((smartlock_id, auth.code))
        if deleted or wanted is None or auth.id not in self.locks[smartlock_id].auths:
            return
        days, start, end = wanted
        self.locks[smartlock_id].auths[auth.id] = auth.model_copy(
            update={"allowed_week_days": days, "allowed_from_time": start, "allowed_until_time": end}
        )


@pytest.fixture
def nuki(clock: FixedClock) -> FakeNuki:
    fake = ScheduledNuki(clock=clock.now)
    for lock_id in (17000001, 17000002, 17000099):
        fake.add_lock(lock_id)
    return fake


@dataclass
class ConsoleWorld:
    world: World
    services: Services
    console: Console
    staff: StaffCodes
    pools: BackupPools

    def get(self, path: str, **query: str) -> tuple[int, str]:
        """GET a console page signed in; (status, body)."""
        answer = self.answer("GET", path, query=query or None)
        return answer["statusCode"], str(answer.get("body") or "")

    def post(
        self, path: str, fields: list[tuple[str, str]] | None = None, *, csrf: str | None = "good", **headers: str
    ) -> tuple[int, str, dict[str, str]]:
        """POST a console form signed in, with the session's CSRF token (`csrf`: "good"), another
        token, or none (None); (status, body, headers)."""
        form = list(fields or [])
        if csrf is not None:
            form.append(("csrf", csrf_token(SECRET, OPERATOR.session_id) if csrf == "good" else csrf))
        answer = self.answer("POST", path, body=urlencode(form), headers=headers)
        return answer["statusCode"], str(answer.get("body") or ""), answer_headers(answer)

    def answer(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: str | None = None,
        headers: dict[str, str] | None = None,
        signed_in: bool = True,
    ) -> dict[str, Any]:
        sent = {"Host": HOST, "Accept-Language": "en", **(headers or {})}
        if signed_in:
            sent["Cookie"] = f"sk_session={TOKEN}"
        if body is not None:
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        event = api_event(method, path, resource="/console/{proxy+}", query=query, headers=sent)
        event["body"] = body
        return self.console.handle(event, Context())


def answer_headers(answer: dict[str, Any]) -> dict[str, str]:
    return answer.get("headers") or {k: v[-1] for k, v in (answer.get("multiValueHeaders") or {}).items()}


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
        secret=lambda: SECRET,
        views=views,
        clock=world.clock,
        staff_codes=lambda: staff,
        backup_pools=lambda: pools,
    )
    staff = StaffCodes(settings, world.store, Scheduler(settings), world.clock, world.sync, world.bookings)
    pools = BackupPools(settings, world.store, world.clock, world.sync)
    return ConsoleWorld(world, services, Console(lambda: services), staff, pools)


Get = Callable[..., tuple[int, Any]]


def page_text(html: str) -> str:
    """A page's words, without its tags and with its spaces collapsed."""
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def follow(console: ConsoleWorld, headers: dict[str, str]) -> tuple[int, str]:
    """The page a console answer redirects to (its Location, query included)."""
    location = urlsplit(headers["Location"])
    query = dict(part.split("=", 1) for part in location.query.split("&") if part)
    return console.get(location.path, **query)
