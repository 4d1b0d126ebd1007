"""`NukiClient`: the only code of StayKey that speaks to the Nuki Web API, one method per endpoint,
typed models in and out.

How each call travels (one pooled session, the token, timeouts, retries with backoff honouring
``Retry-After``, typed errors, one ``NukiCall`` per attempt for the ``on_request`` hook) is
`staykey.nuki.transport`.

Writes on authorizations are asynchronous on Nuki's side: a 204 means "queued" only. Confirming
them (reading back, webhooks) is the caller's job.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING

from pydantic import TypeAdapter

from staykey.nuki.accounts import AccountUser, AccountUserCreate, AppAuthCreate, AppAuthUpdate
from staykey.nuki.errors import NukiProtocolError
from staykey.nuki.logs import SmartlockLog
from staykey.nuki.models import (
    AuthPage,
    KeypadCodeCreate,
    Smartlock,
    SmartlockAuth,
    SmartlockAuthUpdate,
    format_utc,
)
from staykey.nuki.transport import NukiCall, NukiTransport
from staykey.nuki.webhooks import WEBHOOK_FEATURES, DecentralWebhook

if TYPE_CHECKING:
    import requests

DEFAULT_BASE_URL = "https://api.nuki.io"
LOG_PAGE_MAX = 50
"""Nuki returns at most 50 log entries per page, whatever ``limit`` asks for."""
AUTH_PAGE_SIZE = 100
"""The page size of ``GET /smartlock/auth/paged`` we ask for: Nuki's default (it documents no maximum)."""

_SMARTLOCKS = TypeAdapter(list[Smartlock])
_SMARTLOCK = TypeAdapter(Smartlock)
_AUTHS = TypeAdapter(list[SmartlockAuth])
_AUTH = TypeAdapter(SmartlockAuth)
_AUTH_PAGE = TypeAdapter(AuthPage)
_LOGS = TypeAdapter(list[SmartlockLog])
_WEBHOOKS = TypeAdapter(list[DecentralWebhook])
_WEBHOOK = TypeAdapter(DecentralWebhook)
_ACCOUNT_USERS = TypeAdapter(list[AccountUser])
_ACCOUNT_USER = TypeAdapter(AccountUser)
ACCOUNT_USER_PAGE = 100


class NukiClient:
    """Client of the Nuki Web API; one per process is enough (it keeps a connection pool)."""

    def __init__(
        self,
        token: str | Callable[[], str],
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: float | tuple[float, float] = (3.05, 10.0),
        max_attempts: int = 5,
        max_total_seconds: float = 20.0,
        backoff_base: float = 0.2,
        backoff_cap: float = 5.0,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        on_request: Callable[[NukiCall], None] | None = None,
        jitter: Callable[[float, float], float] | None = None,
        min_interval: float = 0.0,
    ) -> None:
        """`min_interval`: calls of this client start at least this many seconds apart (0: no pacing)."""
        self._transport = NukiTransport(
            token,
            base_url,
            timeout=timeout,
            max_attempts=max_attempts,
            max_total_seconds=max_total_seconds,
            backoff_base=backoff_base,
            backoff_cap=backoff_cap,
            session=session,
            sleep=sleep,
            monotonic=monotonic,
            on_request=on_request,
            jitter=jitter,
            min_interval=min_interval,
        )

    def __repr__(self) -> str:
        return f"NukiClient(base_url={self._transport.base_url!r})"

    # --- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection pool (only if this client created it)."""
        self._transport.close()

    def __enter__(self) -> NukiClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- smartlocks -----------------------------------------------------------------------------

    def list_smartlocks(self) -> list[Smartlock]:
        """Every lock of the account (``GET /smartlock``)."""
        return self._transport.read("GET", "/smartlock", _SMARTLOCKS)

    def get_smartlock(self, smartlock_id: int) -> Smartlock:
        """One lock (``GET /smartlock/{smartlockId}``); NukiNotFound if it is not in the account."""
        return self._transport.read("GET", "/smartlock/{smartlockId}", _SMARTLOCK, smartlockId=int(smartlock_id))

    def sync(self, smartlock_id: int) -> None:
        """Ask Nuki to sync with the device (``POST /smartlock/{smartlockId}/sync``): clears stale codes."""
        self._transport.send("POST", "/smartlock/{smartlockId}/sync", smartlockId=int(smartlock_id))

    # --- authorizations -------------------------------------------------------------------------

    def list_auths(self, smartlock_id: int, types: Sequence[int] | None = (13,)) -> list[SmartlockAuth]:
        """The authorizations of a lock, by default only keypad codes (``types=13``); None or () for all."""
        return self._transport.read(
            "GET", "/smartlock/{smartlockId}/auth", _AUTHS, query=_types_query(types), smartlockId=int(smartlock_id)
        )

    def list_account_auths(self, types: Sequence[int] | None = (13,)) -> list[SmartlockAuth]:
        """The authorizations of every lock of the account in one answer (``GET /smartlock/auth``),
        by default only keypad codes. One call, however many locks; the answer grows with them."""
        return self._transport.read("GET", "/smartlock/auth", _AUTHS, query=_types_query(types))

    def list_auths_page(self, page: int, size: int = AUTH_PAGE_SIZE, types: Sequence[int] | None = (13,)) -> AuthPage:
        """One page of the account's authorizations (``GET /smartlock/auth/paged``), pages from 0."""
        if page < 0 or size < 1:
            raise ValueError("page must be 0 or more and size at least 1")
        query = {"page": str(int(page)), "size": str(int(size)), **(_types_query(types) or {})}
        return self._transport.read("GET", "/smartlock/auth/paged", _AUTH_PAGE, query=query)

    def iter_auth_pages(
        self, size: int = AUTH_PAGE_SIZE, types: Sequence[int] | None = (13,), max_pages: int | None = None
    ) -> Iterator[AuthPage]:
        """Every page of the account's authorizations, from page 0 until a short or empty page, the
        last page Nuki counts (``pagination.totalPages``), or ``max_pages``. The pages are read one
        after the other, not as one snapshot: an authorization created or deleted meanwhile may
        move one across a page boundary (listed twice, or not at all)."""
        page = 0
        while max_pages is None or page < max_pages:
            answer = self.list_auths_page(page, size, types)
            if not answer.results:
                return
            yield answer
            total = answer.pagination.total_pages
            if len(answer.results) < size or (total is not None and page + 1 >= total):
                return
            page += 1

    def get_auth(self, smartlock_id: int, auth_id: str) -> SmartlockAuth:
        """One authorization by its ``id`` (``GET /smartlock/{smartlockId}/auth/{id}``)."""
        return self._transport.read(
            "GET",
            "/smartlock/{smartlockId}/auth/{id}",
            _AUTH,
            smartlockId=int(smartlock_id),
            id=_auth_id(auth_id),
        )

    def create_keypad_code(self, smartlock_ids: Sequence[int], code: KeypadCodeCreate | AppAuthCreate) -> None:
        """Queue the creation of a keypad code on one or several locks. Nuki answers 204, creates the
        code later, and returns no id: find it afterwards by its name (``list_auths``) or a webhook.

        One lock: ``PUT /smartlock/{smartlockId}/auth``; several: ``PUT /smartlock/auth`` with
        ``smartlockIds``. NukiCodeConflict if the code exists on a lock already.
        """
        ids = list(dict.fromkeys(int(smartlock_id) for smartlock_id in smartlock_ids))
        if not ids:
            raise ValueError("create_keypad_code needs at least one smartlock id")
        body = code.to_body()
        if len(ids) == 1:
            self._transport.send("PUT", "/smartlock/{smartlockId}/auth", body=body, smartlockId=ids[0])
        else:
            self._transport.send("PUT", "/smartlock/auth", body={**body, "smartlockIds": ids})

    def create_app_auth(self, smartlock_ids: Sequence[int], auth: AppAuthCreate) -> None:
        """Queue the creation of an app authorization (type 0) for an account user on one or several
        locks; like a keypad code, Nuki answers 204, creates it later and returns no id."""
        self.create_keypad_code(smartlock_ids, auth)

    def update_auth(self, smartlock_id: int, auth_id: str, update: SmartlockAuthUpdate | AppAuthUpdate) -> None:
        """Queue an update of an authorization with the full restriction set (``POST .../auth/{id}``, 204)."""
        self._transport.send(
            "POST",
            "/smartlock/{smartlockId}/auth/{id}",
            body=update.to_body(),
            smartlockId=int(smartlock_id),
            id=_auth_id(auth_id),
        )

    def delete_auth(self, smartlock_id: int, auth_id: str) -> None:
        """Queue the deletion of an authorization (204). Confirm by reading back: deletions get lost."""
        self._transport.send(
            "DELETE",
            "/smartlock/{smartlockId}/auth/{id}",
            smartlockId=int(smartlock_id),
            id=_auth_id(auth_id),
        )

    def delete_auths(self, auth_ids: Sequence[str]) -> None:
        """Queue the deletion of several authorizations, on any locks (``DELETE /smartlock/auth``)."""
        ids = list(dict.fromkeys(_auth_id(auth_id) for auth_id in auth_ids))
        if ids:
            self._transport.send("DELETE", "/smartlock/auth", body=ids)

    # --- account users ---------------------------------------------------------------------------

    def find_account_users(self, email: str) -> list[AccountUser]:
        """The account users with this email (``GET /account/user?email=``): none or one."""
        return self._transport.read("GET", "/account/user", _ACCOUNT_USERS, query={"email": email})

    def list_account_users(self, offset: int = 0, limit: int = ACCOUNT_USER_PAGE) -> list[AccountUser]:
        """One page of the account's users (``GET /account/user`` with ``offset`` and ``limit``)."""
        query = {"offset": str(max(0, int(offset))), "limit": str(max(1, int(limit)))}
        return self._transport.read("GET", "/account/user", _ACCOUNT_USERS, query=query)

    def create_account_user(self, user: AccountUserCreate) -> AccountUser:
        """Create an account user (``PUT /account/user``); Nuki answers it with its ``accountUserId``."""
        return self._transport.read("PUT", "/account/user", _ACCOUNT_USER, body=user.to_body())

    def delete_account_user(self, account_user_id: int) -> None:
        """Queue the deletion of an account user (``DELETE /account/user/{accountUserId}``, 204)."""
        self._transport.send("DELETE", "/account/user/{accountUserId}", accountUserId=int(account_user_id))

    # --- activity log ---------------------------------------------------------------------------

    def iter_log_pages(
        self,
        smartlock_id: int,
        *,
        from_date: datetime | None = None,
        to_date: datetime | None = None,
        limit: int = LOG_PAGE_MAX,
        before_id: str | None = None,
        auth_id: str | None = None,
        max_pages: int | None = None,
    ) -> Iterator[list[SmartlockLog]]:
        """Pages of a lock's activity log, newest first (``GET /smartlock/{smartlockId}/log``).

        Each next page asks for entries older than the last one seen (the ``id`` cursor; Nuki
        ignores ``offset``). Stops after a page shorter than ``limit``, an empty one (never yielded)
        or ``max_pages``. ``limit`` is clamped to 1..50; dates go out as RFC 3339 UTC (Nuki refuses
        Unix numbers) and must be timezone-aware. Arguments are checked at once, calls happen as
        pages are consumed.
        """
        limit = max(1, min(LOG_PAGE_MAX, int(limit)))
        query = _log_query(limit, from_date, to_date, max_pages)
        if auth_id is not None:
            query["authId"] = auth_id
        params = {"smartlockId": int(smartlock_id)}
        return self._log_pages("/smartlock/{smartlockId}/log", params, query, limit, before_id, max_pages)

    def iter_account_log_pages(
        self,
        *,
        from_date: datetime | None = None,
        to_date: datetime | None = None,
        limit: int = LOG_PAGE_MAX,
        before_id: str | None = None,
        max_pages: int | None = None,
    ) -> Iterator[list[SmartlockLog]]:
        """Pages of the activity log of every lock of the account, newest first
        (``GET /smartlock/log``): one call per page of 50 entries however many locks there are.
        Paged with the ``id`` cursor and bounded like `iter_log_pages`."""
        limit = max(1, min(LOG_PAGE_MAX, int(limit)))
        query = _log_query(limit, from_date, to_date, max_pages)
        return self._log_pages("/smartlock/log", {}, query, limit, before_id, max_pages)

    def _log_pages(
        self,
        template: str,
        params: dict[str, int],
        query: dict[str, str],
        limit: int,
        cursor: str | None,
        max_pages: int | None,
    ) -> Iterator[list[SmartlockLog]]:
        pages = 0
        while True:
            page_query = dict(query) if cursor is None else {**query, "id": cursor}
            page = self._transport.read("GET", template, _LOGS, query=page_query, **params)
            if not page:
                return
            yield page
            pages += 1
            if len(page) < limit or (max_pages is not None and pages >= max_pages):
                return
            if page[-1].id == cursor:
                raise NukiProtocolError(f"GET {template}: the log cursor did not advance", operation=f"GET {template}")
            cursor = page[-1].id

    # --- webhooks -------------------------------------------------------------------------------

    def register_webhook(self, url: str, features: Sequence[str]) -> DecentralWebhook:
        """Register a decentral webhook (``PUT /api/decentralWebhook``; needs the Advanced API).

        The answer carries the ``id`` and the signing ``secret``; store the secret now, Nuki shows it
        only here. Nuki requires an https URL (not checked here, so a local sandbox can use http).
        """
        wanted = list(dict.fromkeys(features))
        unknown = [feature for feature in wanted if feature not in WEBHOOK_FEATURES]
        if not wanted or unknown:
            raise ValueError(f"webhook features must be a non-empty subset of {list(WEBHOOK_FEATURES)}")
        body = {"webhookUrl": url, "webhookFeatures": wanted}
        return self._transport.read("PUT", "/api/decentralWebhook", _WEBHOOK, body=body)

    def list_webhooks(self) -> list[DecentralWebhook]:
        """The registered decentral webhooks (``GET /api/decentralWebhook``)."""
        return self._transport.read("GET", "/api/decentralWebhook", _WEBHOOKS)

    def delete_webhook(self, webhook_id: int) -> None:
        """Unregister a decentral webhook (``DELETE /api/decentralWebhook/{id}``)."""
        self._transport.send("DELETE", "/api/decentralWebhook/{id}", id=int(webhook_id))


def _types_query(types: Sequence[int] | None) -> dict[str, str] | None:
    return {"types": ",".join(str(int(t)) for t in types)} if types else None


def _log_query(
    limit: int, from_date: datetime | None, to_date: datetime | None, max_pages: int | None
) -> dict[str, str]:
    query: dict[str, str] = {"limit": str(limit)}
    if from_date is not None:
        query["fromDate"] = format_utc(from_date)
    if to_date is not None:
        query["toDate"] = format_utc(to_date)
    if max_pages is not None and max_pages < 1:
        raise ValueError("max_pages must be at least 1")
    return query


def _auth_id(auth_id: str) -> str:
    if not isinstance(auth_id, str) or not auth_id.strip():
        raise ValueError("an auth id must be a non-empty string")
    return auth_id


__all__ = ["AUTH_PAGE_SIZE", "DEFAULT_BASE_URL", "LOG_PAGE_MAX", "NukiClient"]
