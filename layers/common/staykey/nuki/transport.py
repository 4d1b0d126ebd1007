"""How every call of `NukiClient` travels to the Nuki Web API and back (`NukiTransport`):

* one pooled ``requests.Session``; ``Authorization: Bearer <token>`` (the token may be a callable,
  resolved per call, so it can come lazily from Secrets Manager); ``Accept: application/json``;
  a timeout on every request; no redirects followed (a redirect would be a misconfiguration);
* retries with exponential backoff and full jitter on 429, 5xx, 423 (an operation on the same
  auth is still running), timeouts and connection errors, honouring ``Retry-After``; bounded by
  ``max_attempts`` and by ``max_total_seconds`` (a wait that would cross the budget is not taken);
  no retry on any other 4xx;
* errors become the typed exceptions of ``staykey.nuki.errors``; ``requests`` types never escape;
* a hook (``on_request``) receives one ``NukiCall`` per attempt: method, path template, status,
  duration, attempt number, never a body, a token or a concrete URL.

``requests`` is imported only when the first call is made.
"""

from __future__ import annotations

import email.utils
import http
import json
import logging
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from pydantic import TypeAdapter, ValidationError

from staykey.nuki.errors import (
    NukiAuthError,
    NukiCodeConflict,
    NukiError,
    NukiInvalidRequest,
    NukiLocked,
    NukiNotFound,
    NukiProtocolError,
    NukiRefused,
    NukiUnavailable,
    redact,
)

if TYPE_CHECKING:
    import requests

# The logger keeps the name it had when the transport was part of the client module.
logger = logging.getLogger("staykey.nuki.client")

_LOCKED = 423
_TOO_MANY = 429
# Gateway-ish failures after which we cannot know whether Nuki applied the request.
_AMBIGUOUS_STATUSES = frozenset({500, 502, 504})
_MAX_DETAIL = 300

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class NukiCall:
    """One attempt of one Nuki call, as the ``on_request`` hook sees it (no bodies, no token).

    ``path`` is the template ("/smartlock/{smartlockId}/auth"); ``status`` is None when no answer
    came, and ``error`` then says why ("timeout", "connection_error" or the failure's type name).
    """

    method: str
    path: str
    status: int | None
    duration: float
    attempt: int
    error: str | None = None


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date); None if unusable."""
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _error_detail(response: requests.Response) -> str | None:
    """Nuki's explanation from an error body: ``detailMessage``, or ``description`` (422 shape)."""
    try:
        payload = response.json()
    except ValueError:
        text = (response.text or "").strip()
        # An HTML error page of a proxy says nothing useful and is long.
        return text[:_MAX_DETAIL] if text and not text.startswith("<") else None
    if isinstance(payload, Mapping):
        for key in ("detailMessage", "description", "message", "error"):
            value = payload.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()[:_MAX_DETAIL]
    return None


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def _transport_failure(exc: Exception) -> str | None:
    """The kind of a retryable transport failure ("timeout", "connection_error"), else None."""
    import requests

    if isinstance(exc, requests.Timeout):
        return "timeout"
    if isinstance(exc, requests.ConnectionError | requests.exceptions.ChunkedEncodingError):
        return "connection_error"
    return None


class _BearerAuth:
    """Sets the Bearer header; as a requests auth it also keeps ~/.netrc from replacing it."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "_BearerAuth(***)"


class NukiTransport:
    """Sends one Nuki call (``send``), or sends it and reads its JSON answer into a model (``read``),
    with the retries, the budget and the error mapping above. `NukiClient` builds one and owns it."""

    def __init__(
        self,
        token: str | Callable[[], str],
        base_url: str,
        *,
        timeout: float | tuple[float, float],
        max_attempts: int,
        max_total_seconds: float,
        backoff_base: float,
        backoff_cap: float,
        session: requests.Session | None,
        sleep: Callable[[float], None],
        monotonic: Callable[[], float],
        on_request: Callable[[NukiCall], None] | None,
        jitter: Callable[[float, float], float] | None,
        min_interval: float = 0.0,
    ) -> None:
        if not base_url.startswith(("https://", "http://")):
            raise ValueError("base_url must be an http(s) URL")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if max_total_seconds <= 0 or backoff_base < 0 or backoff_cap < 0:
            raise ValueError("max_total_seconds must be positive, backoff_base and backoff_cap not negative")
        self._token = token
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._max_total_seconds = max_total_seconds
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._session = session
        self._owns_session = session is None
        self._sleep = sleep
        self._monotonic = monotonic
        self._on_request = on_request
        self._jitter = jitter  # None: random.uniform (a simulator passes its seeded RNG's)
        # Calls of this transport start at least this many seconds apart (background work paces
        # itself: Nuki documents no rate limit, only "SPAM/abuse protection").
        self._min_interval = max(0.0, min_interval)
        self._next_call = 0.0

    @property
    def base_url(self) -> str:
        return self._base_url

    def close(self) -> None:
        """Close the connection pool (only if this transport created it)."""
        if self._session is not None and self._owns_session:
            self._session.close()
            self._session = None

    def read(
        self,
        method: str,
        template: str,
        adapter: TypeAdapter[_T],
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        **path: str | int,
    ) -> _T:
        """`send`, then the answer's JSON as `adapter` reads it; NukiProtocolError if it does not fit."""
        operation = f"{method} {template}"
        response = self.send(method, template, query=query, body=body, **path)
        try:
            payload = response.json()
        except ValueError:
            raise NukiProtocolError(
                f"{operation}: the answer is not JSON", status=response.status_code, operation=operation
            ) from None
        try:
            return adapter.validate_python(payload)
        except ValidationError as exc:
            # Locations and reasons only: the input may hold keypad codes.
            problems = "; ".join(
                f"{'/'.join(str(part) for part in error['loc']) or '(root)'}: {error['msg']}"
                for error in exc.errors(include_input=False, include_url=False)[:5]
            )
            raise NukiProtocolError(
                f"{operation}: unexpected answer ({exc.error_count()} problems): {problems}",
                status=response.status_code,
                operation=operation,
            ) from None

    def _session_for_call(self) -> requests.Session:
        if self._session is None:
            import requests
            from requests.adapters import HTTPAdapter

            session = requests.Session()
            # Our own retry loop decides; urllib3 must not retry behind our back.
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=16, max_retries=0)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            session.headers["User-Agent"] = "staykey-nuki"
            self._session = session
            self._owns_session = True
        return self._session

    def _resolve_token(self, operation: str) -> str:
        token = self._token() if callable(self._token) else self._token
        if not isinstance(token, str) or not token or any(ch.isspace() or not ch.isprintable() for ch in token):
            raise NukiAuthError("the Nuki API token is empty or malformed", operation=operation)
        return token

    def _report(self, call: NukiCall) -> None:
        if self._on_request is None:
            return
        try:
            self._on_request(call)
        except Exception:  # a broken metrics hook must not break a Nuki call
            logger.warning("on_request hook failed", exc_info=True)

    def _pace(self) -> None:
        if not self._min_interval:
            return
        now = self._monotonic()
        if now < self._next_call:
            self._sleep(self._next_call - now)
            now = self._next_call
        self._next_call = now + self._min_interval

    def _backoff(self, attempt: int) -> float:
        uniform = self._jitter or random.uniform
        return uniform(0.0, min(self._backoff_cap, self._backoff_base * 2 ** (attempt - 1)))

    def send(
        self,
        method: str,
        template: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        **path: str | int,
    ) -> requests.Response:
        """`method` on `template` filled in with `path` (each value URL-quoted), retried as the module
        says; the first 2xx answer, or the typed NukiError of the last attempt."""
        import requests

        operation = f"{method} {template}"
        url = self._base_url + template.format(**{k: quote(str(v), safe="") for k, v in path.items()})
        token = self._resolve_token(operation)
        headers = {"Accept": "application/json"}
        data: bytes | None = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        session = self._session_for_call()
        started = self._monotonic()
        ambiguous = False
        attempt = 0
        while True:
            attempt += 1
            self._pace()
            attempt_started = self._monotonic()
            status: int | None = None
            failure: str | None = None
            detail: str | None = None
            retry_after: float | None = None
            try:
                response = session.request(
                    method,
                    url,
                    params=query,
                    data=data,
                    headers=headers,
                    auth=_BearerAuth(token),
                    timeout=self._timeout,
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                failure = _transport_failure(exc)
                self._report(
                    NukiCall(
                        method,
                        template,
                        None,
                        self._monotonic() - attempt_started,
                        attempt,
                        failure or type(exc).__name__,
                    )
                )
                if failure is None:
                    raise NukiError(
                        f"{operation} failed before Nuki answered ({type(exc).__name__})", operation=operation
                    ) from None
                # A connect timeout never reached Nuki; anything later may have been applied.
                ambiguous = ambiguous or not isinstance(exc, requests.ConnectTimeout)
            else:
                status = response.status_code
                self._report(NukiCall(method, template, status, self._monotonic() - attempt_started, attempt))
                if 200 <= status < 300:
                    return response
                detail = redact(_error_detail(response) or "", (token,)) or None
                if not (status in (_LOCKED, _TOO_MANY) or 500 <= status <= 599):
                    raise _error_for(status, operation, detail, ambiguous=ambiguous)
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                ambiguous = ambiguous or status in _AMBIGUOUS_STATUSES
                response.close()

            what = failure if status is None else f"HTTP {status} {_phrase(status)}".rstrip()
            if attempt >= self._max_attempts:
                raise _give_up(
                    status,
                    operation,
                    f"{operation} failed: {what} (gave up after {attempt} attempts)",
                    detail,
                    retry_after,
                )
            wait = retry_after if retry_after is not None else self._backoff(attempt)
            elapsed = self._monotonic() - started
            if elapsed + wait > self._max_total_seconds:
                raise _give_up(
                    status,
                    operation,
                    f"{operation} failed: {what} (gave up after {attempt} attempts: waiting {wait:.1f}s "
                    f"more would exceed the {self._max_total_seconds:g}s budget)",
                    detail,
                    wait,
                )
            logger.info(
                "Nuki call will be retried",
                extra={"nuki_operation": operation, "status": status, "attempt": attempt, "wait": wait},
            )
            self._sleep(wait)


def _give_up(
    status: int | None, operation: str, message: str, detail: str | None, retry_after: float | None
) -> NukiError:
    if status == _LOCKED:
        return NukiLocked(message, status=status, operation=operation, detail=detail, retry_after=retry_after)
    return NukiUnavailable(message, status=status, operation=operation, detail=detail, retry_after=retry_after)


def _error_for(status: int, operation: str, detail: str | None, *, ambiguous: bool) -> NukiError:
    error = _error_of(status, operation, detail, ambiguous=ambiguous)
    error.after_ambiguous_retry = ambiguous
    return error


def _error_of(status: int, operation: str, detail: str | None, *, ambiguous: bool) -> NukiError:
    message = f"{operation} failed: HTTP {status} {_phrase(status)}".rstrip()
    if detail:
        message += f": {detail}"
    if status in (400, 422):
        return NukiInvalidRequest(message, status=status, operation=operation, detail=detail)
    if status in (401, 403):
        return NukiAuthError(message, status=status, operation=operation, detail=detail)
    if status == 404:
        return NukiNotFound(message, status=status, operation=operation, detail=detail)
    if status == 409:
        if ambiguous:
            message += " (an earlier attempt got no answer and may have been applied)"
        return NukiCodeConflict(
            message, status=status, operation=operation, detail=detail, after_ambiguous_retry=ambiguous
        )
    if 400 <= status <= 499:
        return NukiRefused(message, status=status, operation=operation, detail=detail)
    return NukiProtocolError(message, status=status, operation=operation, detail=detail)


__all__ = ["NukiCall", "NukiTransport", "parse_retry_after"]
