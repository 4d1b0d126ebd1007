"""The console's plumbing (`Web`): the resolver, one request's view of itself (language, base path,
session), cookies, forms and their CSRF and same-origin checks, query parameters, rendering and
the answers' security headers. The routes (`console.signin`, `console.pages`, `console.actions`,
`console.staff`) work through it; `console.app` puts them together.

A route refuses with `Refused` (an error page with its status) or moves on with `Redirect` (a 303,
with cookies to set); `console.app` turns both into answers.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response

from staykey.console import i18n
from staykey.console.auth import (
    CognitoSignIn,
    InvalidSession,
    Operator,
    TokenVerifier,
    csrf_ok,
    csrf_token,
)
from staykey.core.models import ID_PATTERN
from staykey.core.staff import STAFF_PREFIX, is_staff
from staykey.core.timeutil import format_local
from staykey.edge.pagination import Query
from staykey.errors import StayKeyError
from staykey.observability import logger

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
SESSION_COOKIE = "sk_session"
PRE_COOKIE = "sk_pre"
LANG_COOKIE = "sk_lang"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
CSRF_REFUSED = "The request was refused: it did not come from this console's page (CSRF check)."


class Redirect(Exception):
    def __init__(self, location: str, cookies: list[str] | None = None) -> None:
        super().__init__(location)
        self.location = location
        self.cookies = cookies or []


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Services:
    """What the console works with: built lazily by `staykey.wiring` in Lambda, by fixtures in tests."""

    settings: Any
    store: Any
    search: Any
    locks: Any
    activity: Any
    audit: Any
    bookings: Callable[[], Any]
    verifier: TokenVerifier
    sign_in: CognitoSignIn
    secret: Callable[[], str]
    views: Any
    clock: Any
    staff_codes: Callable[[], Any] | None = None  # services.staff.StaffCodes (None: no staff codes pages)
    backup_pools: Callable[[], Any] | None = None  # services.backup.BackupPools (None: no "Give backup code")


@dataclass
class Request:
    """One request's view of itself: language, base path, session, cookies to set."""

    language: str = "en"
    base: str = ""
    secure: bool = True
    operator: Operator | None = None
    set_cookies: list[str] = field(default_factory=list)

    def url(self, path: str, **query: Any) -> str:
        q = {k: v for k, v in query.items() if v not in (None, "")}
        return f"{self.base}{path}" + (f"?{urlencode(q, doseq=True)}" if q else "")


class Web:
    """One console's plumbing; `req` is the request being answered (a new one per request)."""

    def __init__(self, services: Callable[[], Services]) -> None:
        self._services = services
        self.app = APIGatewayRestResolver()
        self._env: Any = None
        self.req = Request()

    @property
    def s(self) -> Services:
        return self._services()

    # ------------------------------------------------------------------ the request

    def header(self, name: str) -> str | None:
        value = self.app.current_event.get_header_value(name, case_sensitive=False)
        return str(value) if value is not None else None

    def cookies(self) -> dict[str, str]:
        raw = self.header("cookie") or ""
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(raw)
        except CookieError:
            return {}
        return {key: morsel.value for key, morsel in jar.items()}

    def prepare(self) -> None:
        host = (self.header("host") or "").lower()
        loopback = re.match(r"^(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$", host) is not None
        stage = (self.app.current_event.request_context.stage or "") if host.endswith(".amazonaws.com") else ""
        cookies = self.cookies()
        self.req = Request(
            language=i18n.pick_language(
                self.app.current_event.get_query_string_value(name="lang") or cookies.get(LANG_COOKIE),
                self.header("accept-language"),
            ),
            base=f"/{stage}" if stage else "",
            secure=not loopback,
        )

    def cookie(self, name: str, value: str, max_age: int, http_only: bool = True, same_site: str = "Strict") -> str:
        parts = [f"{name}={value}", f"Path={self.req.base}/console", f"Max-Age={max_age}", f"SameSite={same_site}"]
        if http_only:
            parts.append("HttpOnly")
        if self.req.secure:
            parts.append("Secure")
        return "; ".join(parts)

    def headers(self, cache: str = "no-store") -> dict[str, Any]:
        headers: dict[str, Any] = {
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "same-origin",
            "Cache-Control": cache,
        }
        if self.req.secure:
            headers["Strict-Transport-Security"] = "max-age=31536000"
        if self.req.set_cookies:
            headers["Set-Cookie"] = list(self.req.set_cookies)
        return headers

    def query(self, allowed: tuple[str, ...]) -> Query:
        event = self.app.current_event
        try:
            return Query(event.query_string_parameters, event.multi_value_query_string_parameters, (*allowed, "lang"))
        except StayKeyError as exc:
            raise Refused(422, "; ".join(f"{d['field']}: {d['message']}" for d in exc.details) or exc.message) from None

    # ------------------------------------------------------------------ sessions and forms

    def session(self) -> Operator:
        """The verified operator, or a redirect to the sign-in page (the cookie cleared if bad)."""
        token = self.cookies().get(SESSION_COOKIE)
        if not token:
            raise Redirect(self.req.url("/console/login", next=self.here()))
        try:
            operator = self.s.verifier.verify(token)
        except InvalidSession as exc:
            logger.warning("console session refused", reason=str(exc))
            raise Redirect(
                self.req.url("/console/login", next=self.here(), expired="1"),
                [self.cookie(SESSION_COOKIE, "", 0)],
            ) from None
        self.req.operator = operator
        return operator

    def here(self) -> str:
        path = self.app.current_event.path
        return path if path.startswith("/console") and self.app.current_event.http_method == "GET" else ""

    def form_lists(self, max_fields: int = 20) -> dict[str, list[str]]:
        """The form's fields, each with every value sent (a multi-select, checkboxes)."""
        event = self.app.current_event
        try:
            raw = event.decoded_body or ""
        except ValueError:
            raise Refused(400, "the form is not UTF-8 text") from None
        if len(raw) > 16 * 1024:
            raise Refused(413, "the form is too large")
        try:
            return parse_qs(raw, keep_blank_values=True, max_num_fields=max_fields)
        except ValueError:  # more fields than this form has
            raise Refused(413, "the form is too large") from None

    def form(self, max_fields: int = 20) -> dict[str, str]:
        return {key: values[-1] for key, values in self.form_lists(max_fields).items()}

    def same_origin(self) -> None:
        origin = self.header("origin")
        if origin and origin != "null":
            # Scheme and host: API Gateway serves https only (and says so in X-Forwarded-Proto);
            # the local stack http on loopback. http://host is another origin than https://host.
            host = (self.header("host") or "").lower()
            scheme = (self.header("x-forwarded-proto") or ("https" if self.req.secure else "http")).lower()
            if origin.lower() != f"{scheme}://{host}":
                raise Refused(403, CSRF_REFUSED)

    def post_session(self, max_fields: int = 20) -> tuple[Operator, dict[str, str]]:
        operator = self.session()
        self.same_origin()
        form = self.form(max_fields)
        if not csrf_ok(self.s.secret(), operator.session_id, form.get("csrf")):
            logger.warning("console action refused: CSRF token missing or wrong", operator=operator.username)
            raise Refused(403, CSRF_REFUSED)
        return operator, form

    # ------------------------------------------------------------------ rendering

    def jinja(self) -> Any:
        if self._env is None:
            import jinja2

            self._env = jinja2.Environment(
                loader=jinja2.FileSystemLoader(str(HERE / "templates")),
                autoescape=True,
                trim_blocks=True,
                lstrip_blocks=True,
                undefined=jinja2.StrictUndefined,
            )
        return self._env

    def render(self, template: str, status: int = 200, **values: Any) -> Response[str]:
        req = self.req
        language = req.language
        operator = req.operator
        env = self.jinja()

        def fmt(at: datetime | None, tz: str | None = None) -> str:
            if at is None:
                return "-"
            return format_local(at, tz or self.s.settings.console_timezone, language)

        body = env.get_template(template).render(
            _=lambda text: i18n.translate(language, text),
            lang=language,
            url=req.url,
            fmt=fmt,
            operator=operator,
            csrf=csrf_token(self.s.secret(), operator.session_id) if operator else "",
            static=lambda name: req.url(f"/console/static/{name}"),
            current=self.app.current_event.path,
            code_url=lambda booking_id: req.url(code_path(booking_id)),
            staff_code_id=staff_code_id,
            **values,
        )
        return Response(status, "text/html; charset=utf-8", body, self.headers())

    def error(self, status: int, message: str) -> Response[str]:
        return self.render("error.html", status=status, message=message)


def booking_id_from_path(raw: str) -> str:
    """A booking id from a path, or a 404 page."""
    if not re.fullmatch(ID_PATTERN, raw):
        raise Refused(404, "Page not found.")
    return raw


def staff_code_id(booking_id: str | None) -> str | None:
    """The staff code a booking id stands for (core.staff: `staff~<id>`), or None: a guest's."""
    return booking_id.removeprefix(STAFF_PREFIX) if booking_id and is_staff(booking_id) else None


def code_path(booking_id: str) -> str:
    """The console's page of a code's owner: a booking's, or a staff code's."""
    staff = staff_code_id(booking_id)
    return f"/console/staff-codes/{staff}" if staff else f"/console/bookings/{booking_id}"


def safe_next(target: str, base: str) -> bool:
    """Only a path of this console (no other host, no scheme, no //): no open redirect."""
    return bool(re.fullmatch(re.escape(base) + r"/console(/[A-Za-z0-9._~/%?=&+-]*)?", target)) and "//" not in target


def escape(text: str) -> str:
    return html.escape(text)


def quoted(text: str) -> str:
    return quote(text, safe="")
