"""The console's sign-in routes: the form (with its pre-session token, a random cookie whose value
the form carries too), signing in with Cognito (and setting a new password when Cognito asks for
one), signing out. Sign-in and sign-out are written to the audit log."""

from __future__ import annotations

import secrets as pysecrets
from typing import Any

from aws_lambda_powertools.event_handler import Response

from staykey.console.auth import InvalidSession
from staykey.console.web import CSRF_REFUSED, PRE_COOKIE, SESSION_COOKIE, Redirect, Refused, Web, safe_next
from staykey.observability import logger


class SignInRoutes:
    """GET and POST /console/login, POST /console/login/new-password, POST /console/logout."""

    def __init__(self, web: Web) -> None:
        self.web = web
        app = web.app
        app.get("/console/login")(self.login_form)
        app.post("/console/login")(self.login)
        app.post("/console/login/new-password")(self.new_password)
        app.post("/console/logout")(self.logout)

    # ------------------------------------------------------------------ routes

    def login_form(self) -> Response[str]:
        web = self.web
        web.prepare()
        event = web.app.current_event
        return self.login_page(
            next_=event.get_query_string_value(name="next") or "",
            message="Your session has expired or is not valid; please sign in again."
            if event.get_query_string_value(name="expired")
            else None,
        )

    def login(self) -> Response[str]:
        web = self.web
        web.prepare()
        web.same_origin()
        form = web.form()
        self.check_pre(form)
        username, password = form.get("username", "").strip()[:128], form.get("password", "")[:256]
        next_ = form.get("next", "")
        if not username or not password:
            return self.login_page(next_=next_, message="Wrong username or password.", status=401)
        result = web.s.sign_in.sign_in(username, password)
        return self.signed_in(result, username, next_)

    def new_password(self) -> Response[str]:
        web = self.web
        web.prepare()
        web.same_origin()
        form = web.form()
        self.check_pre(form)
        username = form.get("username", "")[:128]
        result = web.s.sign_in.new_password(username, form.get("password", "")[:256], form.get("session", ""))
        return self.signed_in(result, username, form.get("next", ""))

    def logout(self) -> Response[str]:
        web = self.web
        web.prepare()
        operator, _ = web.post_session()
        web.s.audit.record(operator.username, "sign_out")
        raise Redirect(web.req.url("/console/login"), [web.cookie(SESSION_COOKIE, "", 0)])

    # ------------------------------------------------------------------ helpers

    def check_pre(self, form: dict[str, str]) -> None:
        cookie = self.web.cookies().get(PRE_COOKIE)
        if not cookie or not pysecrets.compare_digest(cookie, form.get("pre", "")):
            raise Refused(403, CSRF_REFUSED)

    def login_page(self, next_: str = "", message: str | None = None, status: int = 200, **extra: Any) -> Response[str]:
        pre = pysecrets.token_urlsafe(24)
        self.web.req.set_cookies.append(self.web.cookie(PRE_COOKIE, pre, 3600))
        return self.web.render("login.html", status=status, pre=pre, next=next_, message=message, **extra)

    def signed_in(self, result: Any, username: str, next_: str) -> Response[str]:
        web = self.web
        if result.challenge_session:
            return self.login_page(next_=next_, challenge=result.challenge_session, username=username)
        if result.error or not result.id_token:
            message = (
                "Wrong username or password."
                if result.error == "credentials"
                else ("Sign-in is not possible right now; please try again.")
            )
            logger.info("console sign-in refused", reason=result.error)
            return self.login_page(next_=next_, message=message, status=401 if result.error == "credentials" else 503)
        try:
            operator = web.s.verifier.verify(result.id_token)
        except InvalidSession as exc:
            logger.warning("Cognito's token did not verify", reason=str(exc))
            return self.login_page(
                next_=next_, message="Sign-in is not possible right now; please try again.", status=503
            )
        web.req.operator = operator
        web.s.audit.record(operator.username, "sign_in")
        web.req.set_cookies += [
            web.cookie(SESSION_COOKIE, result.id_token, max(60, result.expires_in)),
            web.cookie(PRE_COOKIE, "", 0),
        ]
        raise Redirect(next_ if safe_next(next_, web.req.base) else web.req.url("/console/today"))
