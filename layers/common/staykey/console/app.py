"""The operator console: server-rendered pages (Jinja2) with htmx as progressive enhancement,
served by one Lambda function behind API Gateway at /console.

Every page but the sign-in form needs a verified Cognito session (`console.auth`); every POST
needs its CSRF token and a same-site Origin; every action goes through the service the shop API
uses and is written to the audit log with its outcome; a PIN appears only in the answer to
"reveal PIN", which is audited too. Answers carry a strict Content-Security-Policy (scripts and
styles from the console's own static files only) and `Cache-Control: no-store`.
"""

from __future__ import annotations

import hashlib
import html
import re
import secrets as pysecrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError

from staykey.console import i18n
from staykey.console.auth import (
    CognitoSignIn,
    InvalidSession,
    Operator,
    TokenVerifier,
    csrf_ok,
    csrf_token,
)
from staykey.console.timeline import TimelineContext, timeline
from staykey.core.models import ID_PATTERN, BookingStatus
from staykey.core.timeutil import format_local, zone
from staykey.edge.pagination import Query
from staykey.errors import StayKeyError
from staykey.observability import logger
from staykey.services.search import BookingFilter

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
SESSION_COOKIE = "sk_session"
PRE_COOKIE = "sk_pre"
LANG_COOKIE = "sk_lang"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
ACTIONS = {
    "checkout": ("Early checkout", "The PIN stops working now and is removed from every lock."),
    "cancel": ("Cancel booking", "The booking is cancelled and its code removed from every lock."),
    "resend-email": ("Re-send email", "The guest gets the email with their code again."),
    "retry": ("Retry", "Every failed lock is tried again."),
    "rotate-pin": (
        "Rotate PIN",
        "A new PIN goes on every lock beside the old one; once all have it, the guest is told and the old one goes.",
    ),
    "reveal-pin": ("Reveal PIN", "The PIN is shown to you once, and this is written to the audit log."),
}
TRANSITIONAL = {BookingStatus.PROVISIONING, BookingStatus.REVOKING}
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


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


class Console:
    def __init__(self, services: Callable[[], Services]) -> None:
        self._services = services
        self.app = APIGatewayRestResolver()
        self._env: Any = None
        self._req = Request()
        self._routes()

    @property
    def s(self) -> Services:
        return self._services()

    # ------------------------------------------------------------------ the edge

    def handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self._req = Request()
        started = time.perf_counter()
        answer = self.app.resolve(event, context)
        logger.info(
            "console request",
            method=event.get("httpMethod"),
            resource=event.get("resource"),
            status=answer.get("statusCode"),
            operator=self._req.operator.username if self._req.operator else None,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return answer

    def _header(self, name: str) -> str | None:
        value = self.app.current_event.get_header_value(name, case_sensitive=False)
        return str(value) if value is not None else None

    def _cookies(self) -> dict[str, str]:
        raw = self._header("cookie") or ""
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(raw)
        except CookieError:
            return {}
        return {key: morsel.value for key, morsel in jar.items()}

    def _prepare(self) -> None:
        host = (self._header("host") or "").lower()
        loopback = re.match(r"^(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$", host) is not None
        stage = (self.app.current_event.request_context.stage or "") if host.endswith(".amazonaws.com") else ""
        cookies = self._cookies()
        self._req = Request(
            language=i18n.pick_language(
                self.app.current_event.get_query_string_value(name="lang") or cookies.get(LANG_COOKIE),
                self._header("accept-language"),
            ),
            base=f"/{stage}" if stage else "",
            secure=not loopback,
        )

    def _cookie(self, name: str, value: str, max_age: int, http_only: bool = True, same_site: str = "Strict") -> str:
        parts = [f"{name}={value}", f"Path={self._req.base}/console", f"Max-Age={max_age}", f"SameSite={same_site}"]
        if http_only:
            parts.append("HttpOnly")
        if self._req.secure:
            parts.append("Secure")
        return "; ".join(parts)

    def _headers(self, cache: str = "no-store") -> dict[str, Any]:
        headers: dict[str, Any] = {
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "same-origin",
            "Cache-Control": cache,
        }
        if self._req.secure:
            headers["Strict-Transport-Security"] = "max-age=31536000"
        if self._req.set_cookies:
            headers["Set-Cookie"] = list(self._req.set_cookies)
        return headers

    # ------------------------------------------------------------------ sessions

    def _session(self) -> Operator:
        """The verified operator, or a redirect to the sign-in page (the cookie cleared if bad)."""
        token = self._cookies().get(SESSION_COOKIE)
        if not token:
            raise Redirect(self._req.url("/console/login", next=self._here()))
        try:
            operator = self.s.verifier.verify(token)
        except InvalidSession as exc:
            logger.warning("console session refused", reason=str(exc))
            raise Redirect(
                self._req.url("/console/login", next=self._here(), expired="1"),
                [self._cookie(SESSION_COOKIE, "", 0)],
            ) from None
        self._req.operator = operator
        return operator

    def _here(self) -> str:
        path = self.app.current_event.path
        return path if path.startswith("/console") and self.app.current_event.http_method == "GET" else ""

    def _form(self) -> dict[str, str]:
        event = self.app.current_event
        try:
            raw = event.decoded_body or ""
        except ValueError:
            raise Refused(400, "the form is not UTF-8 text") from None
        if len(raw) > 16 * 1024:
            raise Refused(413, "the form is too large")
        parsed = parse_qs(raw, keep_blank_values=True, max_num_fields=20)
        return {key: values[-1] for key, values in parsed.items()}

    def _same_origin(self) -> None:
        origin = self._header("origin")
        if origin and origin != "null":
            host = self._header("host") or ""
            if re.sub(r"^https?://", "", origin).lower() != host.lower():
                raise Refused(403, "The request was refused: it did not come from this console's page (CSRF check).")

    def _post_session(self) -> tuple[Operator, dict[str, str]]:
        operator = self._session()
        self._same_origin()
        form = self._form()
        if not csrf_ok(self.s.secret(), operator.session_id, form.get("csrf")):
            logger.warning("console action refused: CSRF token missing or wrong", operator=operator.username)
            raise Refused(403, "The request was refused: it did not come from this console's page (CSRF check).")
        return operator, form

    # ------------------------------------------------------------------ rendering

    def _jinja(self) -> Any:
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

    def _render(self, template: str, status: int = 200, **values: Any) -> Response[str]:
        req = self._req
        language = req.language
        operator = req.operator
        env = self._jinja()

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
            **values,
        )
        return Response(status, "text/html; charset=utf-8", body, self._headers())

    def _error(self, status: int, message: str) -> Response[str]:
        return self._render("error.html", status=status, message=message)

    # ------------------------------------------------------------------ routes

    def _routes(self) -> None:
        app = self.app

        @app.exception_handler(Redirect)  # type: ignore[untyped-decorator]
        def _redirect(exc: Redirect) -> Response[str]:
            self._req.set_cookies += exc.cookies
            headers = {**self._headers(), "Location": exc.location}
            return Response(303, "text/html; charset=utf-8", "", headers)

        @app.exception_handler(Refused)  # type: ignore[untyped-decorator]
        def _refused(exc: Refused) -> Response[str]:
            return self._error(exc.status, exc.message)

        @app.not_found
        def _not_found(exc: NotFoundError) -> Response[str]:
            self._prepare()
            return self._error(404, "Page not found.")

        @app.exception_handler(Exception)  # type: ignore[untyped-decorator]
        def _unexpected(exc: Exception) -> Response[str]:
            logger.exception("console error")
            return Response(
                500,
                "text/html; charset=utf-8",
                "<!doctype html><title>500</title><p>internal error</p>",
                self._headers(),
            )

        @app.get("/console/static/<name>")
        def static(name: str) -> Response[str]:
            path = STATIC / name
            if not re.fullmatch(r"[a-z0-9.-]{1,64}", name) or not path.is_file() or path.suffix not in STATIC_TYPES:
                self._prepare()
                return self._error(404, "Page not found.")
            headers = {
                "Cache-Control": "public, max-age=31536000, immutable",
                "X-Content-Type-Options": "nosniff",
                "ETag": hashlib.sha256(path.read_bytes()).hexdigest()[:16],
            }
            return Response(200, STATIC_TYPES[path.suffix], path.read_text(encoding="utf-8"), headers)

        @app.get("/console")
        def root() -> Response[str]:
            self._prepare()
            raise Redirect(self._req.url("/console/today"))

        @app.get("/console/lang/<language>")
        def language(language: str) -> Response[str]:
            self._prepare()
            if language not in i18n.LANGUAGES:
                return self._error(404, "Page not found.")
            self._req.set_cookies.append(self._cookie(LANG_COOKIE, language, 365 * 86400, same_site="Lax"))
            back = self.app.current_event.get_query_string_value(name="next") or ""
            raise Redirect(back if _safe_next(back, self._req.base) else self._req.url("/console/today"))

        # ---- sign-in

        @app.get("/console/login")
        def login_form() -> Response[str]:
            self._prepare()
            event = self.app.current_event
            return self._login_page(
                next_=event.get_query_string_value(name="next") or "",
                message="Your session has expired or is not valid; please sign in again."
                if event.get_query_string_value(name="expired")
                else None,
            )

        @app.post("/console/login")
        def login() -> Response[str]:
            self._prepare()
            self._same_origin()
            form = self._form()
            self._check_pre(form)
            username, password = form.get("username", "").strip()[:128], form.get("password", "")[:256]
            next_ = form.get("next", "")
            if not username or not password:
                return self._login_page(next_=next_, message="Wrong username or password.", status=401)
            result = self.s.sign_in.sign_in(username, password)
            return self._signed_in(result, username, next_)

        @app.post("/console/login/new-password")
        def new_password() -> Response[str]:
            self._prepare()
            self._same_origin()
            form = self._form()
            self._check_pre(form)
            username = form.get("username", "")[:128]
            result = self.s.sign_in.new_password(username, form.get("password", "")[:256], form.get("session", ""))
            return self._signed_in(result, username, form.get("next", ""))

        @app.post("/console/logout")
        def logout() -> Response[str]:
            self._prepare()
            operator, _ = self._post_session()
            self.s.audit.record(operator.username, "sign_out")
            raise Redirect(self._req.url("/console/login"), [self._cookie(SESSION_COOKIE, "", 0)])

        # ---- pages

        @app.get("/console/today")
        def today() -> Response[str]:
            self._prepare()
            self._session()
            now = self.s.clock.now()
            return self._render("today.html", today=self.s.views.today(now), statuses=BookingStatus)

        @app.get("/console/bookings")
        def bookings() -> Response[str]:
            self._prepare()
            self._session()
            return self._bookings_page()

        @app.get("/console/bookings/<booking_id>")
        def booking(booking_id: str) -> Response[str]:
            self._prepare()
            operator = self._session()
            return self._booking_page(_booking_id(booking_id), operator)

        @app.get("/console/bookings/<booking_id>/timeline")
        def booking_timeline(booking_id: str) -> Response[str]:
            self._prepare()
            self._session()
            b = self._booking(_booking_id(booking_id))
            return self._render("timeline.html", b=b, events=self._timeline(b), transitional=b.status in TRANSITIONAL)

        @app.get("/console/bookings/<booking_id>/confirm/<action>")
        def confirm(booking_id: str, action: str) -> Response[str]:
            self._prepare()
            self._session()
            if action not in ACTIONS:
                return self._error(404, "Page not found.")
            b = self._booking(_booking_id(booking_id))
            title, explanation = ACTIONS[action]
            return self._render("confirm.html", b=b, action=action, title=title, explanation=explanation)

        @app.post("/console/bookings/<booking_id>/<action>")
        def act(booking_id: str, action: str) -> Response[str]:
            self._prepare()
            if action not in ACTIONS:
                return self._error(404, "Page not found.")
            operator, _ = self._post_session()
            return self._act(_booking_id(booking_id), action, operator)

        @app.get("/console/locks")
        def locks() -> Response[str]:
            self._prepare()
            self._session()
            return self._render("locks.html", locks=self.s.views.all_locks())

        @app.get("/console/locks/<lock_id>")
        def lock(lock_id: str) -> Response[str]:
            from staykey.services.locks import lock_id_from_path

            self._prepare()
            self._session()
            try:
                smartlock_id = lock_id_from_path(lock_id)
                view = self.s.locks.get(smartlock_id)
            except StayKeyError:
                return self._error(404, "Page not found.")
            q = self._query(("cursor",))
            items, cursor = self.s.activity.page_for_lock(smartlock_id, 50, q.get("cursor"))
            return self._render("lock.html", lock=view, items=items, cursor=cursor)

        @app.get("/console/activity")
        def activity() -> Response[str]:
            self._prepare()
            self._session()
            q = self._query(("lock", "booking", "failed", "cursor"))
            lock_raw, booking_raw = q.get("lock") or None, q.get("booking") or None
            lock_id = int(lock_raw) if lock_raw and lock_raw.isdigit() and len(lock_raw) < 19 else None
            booking_id = booking_raw if booking_raw and re.fullmatch(ID_PATTERN, booking_raw) else None
            failed = q.get("failed") == "1"
            items, cursor = self.s.activity.feed(
                50, q.get("cursor"), smartlock_id=lock_id, booking_id=booking_id, failed_only=failed
            )
            rooms = {lk: room for room in self.s.store.list_rooms() for lk in room.smartlockIds}
            return self._render(
                "activity.html",
                items=items,
                cursor=cursor,
                rooms=rooms,
                lock=lock_id,
                booking=booking_id,
                failed=failed,
            )

        @app.get("/console/audit")
        def audit() -> Response[str]:
            self._prepare()
            self._session()
            q = self._query(("cursor",))
            entries, cursor = self.s.audit.recent(50, q.get("cursor"))
            return self._render("audit.html", entries=entries, cursor=cursor)

    # ------------------------------------------------------------------ helpers

    def _query(self, allowed: tuple[str, ...]) -> Query:
        event = self.app.current_event
        try:
            return Query(event.query_string_parameters, event.multi_value_query_string_parameters, (*allowed, "lang"))
        except StayKeyError as exc:
            raise Refused(422, "; ".join(f"{d['field']}: {d['message']}" for d in exc.details) or exc.message) from None

    def _check_pre(self, form: dict[str, str]) -> None:
        cookie = self._cookies().get(PRE_COOKIE)
        if not cookie or not pysecrets.compare_digest(cookie, form.get("pre", "")):
            raise Refused(403, "The request was refused: it did not come from this console's page (CSRF check).")

    def _login_page(
        self, next_: str = "", message: str | None = None, status: int = 200, **extra: Any
    ) -> Response[str]:
        pre = pysecrets.token_urlsafe(24)
        self._req.set_cookies.append(self._cookie(PRE_COOKIE, pre, 3600))
        return self._render("login.html", status=status, pre=pre, next=next_, message=message, **extra)

    def _signed_in(self, result: Any, username: str, next_: str) -> Response[str]:
        if result.challenge_session:
            return self._login_page(next_=next_, challenge=result.challenge_session, username=username)
        if result.error or not result.id_token:
            message = (
                "Wrong username or password."
                if result.error == "credentials"
                else ("Sign-in is not possible right now; please try again.")
            )
            logger.info("console sign-in refused", reason=result.error)
            return self._login_page(next_=next_, message=message, status=401 if result.error == "credentials" else 503)
        try:
            operator = self.s.verifier.verify(result.id_token)
        except InvalidSession as exc:
            logger.warning("Cognito's token did not verify", reason=str(exc))
            return self._login_page(
                next_=next_, message="Sign-in is not possible right now; please try again.", status=503
            )
        self._req.operator = operator
        self.s.audit.record(operator.username, "sign_in")
        self._req.set_cookies += [
            self._cookie(SESSION_COOKIE, result.id_token, max(60, result.expires_in)),
            self._cookie(PRE_COOKIE, "", 0),
        ]
        raise Redirect(next_ if _safe_next(next_, self._req.base) else self._req.url("/console/today"))

    def _booking(self, booking_id: str) -> Any:
        try:
            return self.s.bookings().get(booking_id)
        except StayKeyError:
            raise Refused(404, "Page not found.") from None

    def _timeline(self, b: Any) -> list[Any]:
        items, _ = self.s.activity.page_for_booking(b.bookingId, 200)
        return timeline(TimelineContext(b, items, self.s.audit.for_booking(b.bookingId)))

    def _booking_page(
        self, booking_id: str, operator: Operator, *, revealed: str | None = None, result: Any = None, status: int = 200
    ) -> Response[str]:
        b = self._booking(booking_id)
        audit = self.s.audit.for_booking(booking_id)
        if result is None:
            wanted = self.app.current_event.get_query_string_value(name="result")
            result = next((entry for entry in audit if entry.id == wanted), None)
        items, _ = self.s.activity.page_for_booking(b.bookingId, 200)
        events = timeline(TimelineContext(b, items, audit))
        room = self.s.store.get_room(b.roomId)
        return self._render(
            "booking.html",
            status=status,
            b=b,
            room=room,
            events=events,
            revealed=revealed,
            result=result,
            transitional=b.status in TRANSITIONAL,
            actions=ACTIONS,
            available=_available(b),
            can_rotate=hasattr(self.s.bookings(), "rotate_pin"),
        )

    def _act(self, booking_id: str, action: str, operator: Operator) -> Response[str]:
        bookings = self.s.bookings()
        audit_action = action.replace("-", "_")
        if action == "reveal-pin":
            b = self._booking(booking_id)
            entry = self.s.audit.record(operator.username, "reveal_pin", booking_id=booking_id)
            logger.info("PIN revealed to an operator", booking_id=booking_id, operator=operator.username)
            return self._booking_page(booking_id, operator, revealed=b.pin, result=entry)
        calls: dict[str, Callable[[str], Any]] = {
            "checkout": bookings.checkout,
            "cancel": bookings.cancel,
            "resend-email": bookings.resend_email,
            "retry": bookings.retry,
        }
        rotate = getattr(bookings, "rotate_pin", None)
        if rotate is not None:
            calls["rotate-pin"] = rotate
        self._booking(booking_id)
        call = calls.get(action)
        if call is None:
            entry = self.s.audit.record(
                operator.username, audit_action, "unavailable", booking_id=booking_id, detail="not in this version"
            )
            raise Redirect(self._req.url(f"/console/bookings/{booking_id}", result=entry.id))
        try:
            call(booking_id)
            outcome, detail = "ok", None
        except StayKeyError as exc:
            outcome, detail = "refused", exc.message[:300]
        entry = self.s.audit.record(operator.username, audit_action, outcome, booking_id=booking_id, detail=detail)
        logger.info("console action", booking_id=booking_id, action=action, outcome=outcome, operator=operator.username)
        raise Redirect(self._req.url(f"/console/bookings/{booking_id}", result=entry.id))

    def _bookings_page(self) -> Response[str]:
        q = self._query(("room", "status", "from", "to", "guest", "cursor"))
        tz = zone(self.s.settings.console_timezone)
        room = q.get("room") or None
        status = q.get("status") or None
        guest = (q.get("guest") or "").strip() or None
        start = _local_date(q.get("from"), tz)
        end = _local_date(q.get("to"), tz, next_day=True)
        errors: list[str] = []
        params: dict[str, Any] = {}
        if room:
            params["roomId"] = room
        if status:
            params["status"] = status
        if start:
            params["from"] = start.isoformat()
        if end:
            params["to"] = end.isoformat()
        if guest:
            params["guest"] = guest
        page_items: list[Any] = []
        next_cursor = None
        try:
            f = BookingFilter.from_query(Query(params, None, list(params)))
            page = self.s.search.search(f, 50, q.get("cursor") or None)
            page_items, next_cursor = page.items, page.next_cursor
        except StayKeyError as exc:
            errors = [f"{d['field']}: {d['message']}" for d in exc.details] or [exc.message]
        rooms = sorted(self.s.store.list_rooms(), key=lambda r: r.name)
        form = {"room": room or "", "status": status or "", "from": q.get("from") or "", "to": q.get("to") or ""}
        form["guest"] = guest or ""
        return self._render(
            "bookings.html",
            bookings=page_items,
            cursor=next_cursor,
            rooms=rooms,
            statuses=[s.value for s in BookingStatus],
            form=form,
            errors=errors,
            paged=bool(q.get("cursor")),
        )


def _local_date(raw: str | None, tz: Any, next_day: bool = False) -> datetime | None:
    if not raw or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        return None
    try:
        day = datetime.strptime(raw, "%Y-%m-%d")
    except ValueError:
        return None
    if next_day:
        day += timedelta(days=1)
    return day.replace(tzinfo=tz).astimezone(UTC)


def _booking_id(raw: str) -> str:
    if not re.fullmatch(ID_PATTERN, raw):
        raise Refused(404, "Page not found.")
    return raw


def _safe_next(target: str, base: str) -> bool:
    """Only a path of this console (no other host, no scheme, no //): no open redirect."""
    return bool(re.fullmatch(re.escape(base) + r"/console(/[A-Za-z0-9._~/%?=&+-]*)?", target)) and "//" not in target


def _available(b: Any) -> dict[str, bool]:
    ended = b.status in (BookingStatus.REVOKING, BookingStatus.REVOKED, BookingStatus.CANCELLED)
    return {
        "checkout": not ended,
        "cancel": not ended,
        "resend-email": b.status == BookingStatus.ACTIVE and b.notifyGuest and b.guest is not None,
        "retry": b.status == BookingStatus.FAILED,
        "rotate-pin": not ended,
        "reveal-pin": True,
    }


def escape(text: str) -> str:
    return html.escape(text)


def quoted(text: str) -> str:
    return quote(text, safe="")
