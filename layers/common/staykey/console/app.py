"""The operator console: server-rendered pages (Jinja2) with htmx as progressive enhancement,
served by one Lambda function behind API Gateway at /console.

Every page but the sign-in form needs a verified Cognito session (`console.auth`); every POST
needs its CSRF token and a same-site Origin; every action goes through the service the shop API
uses and is written to the audit log with its outcome; a PIN appears only in the answer to
"reveal PIN", which is audited too. Answers carry a strict Content-Security-Policy (scripts and
styles from the console's own static files only) and `Cache-Control: no-store`.

This module puts the console together: the plumbing (`console.web`), the sign-in routes
(`console.signin`), the pages (`console.pages`), the actions (`console.actions`) and the staff
codes (`console.staff`); here are what answers a redirect, a refusal, a missing page or a failure,
the static files, and the language switch.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError

from staykey.console import i18n
from staykey.console.actions import Actions
from staykey.console.pages import Pages
from staykey.console.signin import SignInRoutes
from staykey.console.staff import StaffPages
from staykey.console.web import (
    LANG_COOKIE,
    STATIC,
    STATIC_TYPES,
    Redirect,
    Refused,
    Request,
    Services,
    Web,
    safe_next,
)
from staykey.errors import StayKeyError
from staykey.observability import logger


class Console:
    def __init__(self, services: Callable[[], Services]) -> None:
        self.web = Web(services)
        self.app = self.web.app
        self._routes()
        SignInRoutes(self.web)
        pages = Pages(self.web)
        Actions(self.web, pages)
        StaffPages(self.web)

    def handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.web.req = Request()
        started = time.perf_counter()
        answer = self.app.resolve(event, context)
        operator = self.web.req.operator
        logger.info(
            "console request",
            method=event.get("httpMethod"),
            resource=event.get("resource"),
            status=answer.get("statusCode"),
            operator=operator.username if operator else None,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return answer

    def _routes(self) -> None:
        app, web = self.app, self.web

        @app.exception_handler(Redirect)  # type: ignore[untyped-decorator]
        def _redirect(exc: Redirect) -> Response[str]:
            web.req.set_cookies += exc.cookies
            headers = {**web.headers(), "Location": exc.location}
            return Response(303, "text/html; charset=utf-8", "", headers)

        @app.exception_handler(Refused)  # type: ignore[untyped-decorator]
        def _refused(exc: Refused) -> Response[str]:
            return web.error(exc.status, exc.message)

        @app.not_found
        def _not_found(exc: NotFoundError) -> Response[str]:
            web.prepare()
            return web.error(404, "Page not found.")

        @app.exception_handler(StayKeyError)  # type: ignore[untyped-decorator]
        def _domain(exc: StayKeyError) -> Response[str]:
            # What the services refuse (a garbled cursor, a booking that changed meanwhile, Nuki out
            # of reach) is a page saying so with the service's status, as the shop API answers it.
            details = "; ".join(f"{d.get('field')}: {d.get('message')}" for d in exc.details or [])
            return web.error(exc.status, exc.message + (f" ({details})" if details else ""))

        @app.exception_handler(Exception)  # type: ignore[untyped-decorator]
        def _unexpected(exc: Exception) -> Response[str]:
            logger.exception("console error")
            return Response(
                500,
                "text/html; charset=utf-8",
                "<!doctype html><title>500</title><p>internal error</p>",
                web.headers(),
            )

        @app.get("/console/static/<name>")
        def static(name: str) -> Response[str]:
            path = STATIC / name
            if not re.fullmatch(r"[a-z0-9.-]{1,64}", name) or not path.is_file() or path.suffix not in STATIC_TYPES:
                web.prepare()
                return web.error(404, "Page not found.")
            headers = {
                "Cache-Control": "public, max-age=31536000, immutable",
                "X-Content-Type-Options": "nosniff",
                "ETag": hashlib.sha256(path.read_bytes()).hexdigest()[:16],
            }
            return Response(200, STATIC_TYPES[path.suffix], path.read_text(encoding="utf-8"), headers)

        @app.get("/console")
        def root() -> Response[str]:
            web.prepare()
            raise Redirect(web.req.url("/console/today"))

        @app.get("/console/lang/<language>")
        def language(language: str) -> Response[str]:
            web.prepare()
            if language not in i18n.LANGUAGES:
                return web.error(404, "Page not found.")
            web.req.set_cookies.append(web.cookie(LANG_COOKIE, language, 365 * 86400, same_site="Lax"))
            back = app.current_event.get_query_string_value(name="next") or ""
            raise Redirect(back if safe_next(back, web.req.base) else web.req.url("/console/today"))
