"""An in-process, deterministic stand-in for the Nuki client, for unit and functional tests.

It keeps Nuki's asynchrony: writes are queued and become visible only when the test calls
`apply()` (or immediately with `auto_apply=True`); an offline lock keeps them queued. Faults are
injected per method with `fail(method, *errors)`. The HTTP sandbox in `local/` is the faithful
stand-in for end-to-end tests; this one lets a test step through time exactly.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from staykey.nuki import (
    AuthPage,
    KeypadCodeCreate,
    NukiClient,
    NukiCodeConflict,
    NukiNotFound,
    Smartlock,
    SmartlockAuth,
    SmartlockAuthUpdate,
    SmartlockLog,
)


@dataclass
class FakeLock:
    smartlock_id: int
    online: bool = True
    keypad: bool = True
    subscription: str | None = None  # currentSubscription.state; None: the lock reports none
    subscription_ends: str | None = None  # currentSubscription.expirationDate
    auths: dict[str, SmartlockAuth] = field(default_factory=dict)
    logs: list[SmartlockLog] = field(default_factory=list)


class FakeNuki:
    def __init__(self, auto_apply: bool = False, clock: Callable[[], datetime] | None = None) -> None:
        self.locks: dict[int, FakeLock] = {}
        self.pending: list[tuple[int, Callable[[], None]]] = []
        self.calls: list[tuple[str, Any]] = []
        self.auto_apply = auto_apply
        self._failures: dict[str, list[Exception]] = {}
        self._ids = itertools.count(1)
        self._clock = clock or (lambda: datetime.now(UTC))
        self.ghost_deletes = 0
        self.on_apply: list[Callable[[int, SmartlockAuth, bool], None]] = []

    # -- test controls -------------------------------------------------------------------

    def add_lock(self, smartlock_id: int, *, online: bool = True, keypad: bool = True) -> FakeLock:
        self.locks[smartlock_id] = FakeLock(smartlock_id, online=online, keypad=keypad)
        return self.locks[smartlock_id]

    def fail(self, method: str, *errors: Exception) -> None:
        self._failures.setdefault(method, []).extend(errors)

    def set_online(self, smartlock_id: int, online: bool) -> None:
        self.locks[smartlock_id].online = online

    def apply(self) -> int:
        """Apply every queued write on online locks; return how many were applied."""
        ready = [(lock_id, op) for lock_id, op in self.pending if self.locks[lock_id].online]
        self.pending = [(lock_id, op) for lock_id, op in self.pending if not self.locks[lock_id].online]
        for _, op in ready:
            op()
        return len(ready)

    def add_foreign(self, smartlock_id: int, code: int, name: str = "Cleaner") -> SmartlockAuth:
        auth = self._auth(smartlock_id, name, code, None, None)
        self.locks[smartlock_id].auths[auth.id] = auth
        return auth

    def codes(self, smartlock_id: int) -> dict[int, str]:
        return {a.code: a.name for a in self.locks[smartlock_id].auths.values() if a.code is not None}

    def count(self, method: str) -> int:
        return sum(1 for name, _ in self.calls if name == method)

    # -- internals -----------------------------------------------------------------------

    def _call(self, method: str, args: Any) -> None:
        self.calls.append((method, args))
        queue = self._failures.get(method)
        if queue:
            raise queue.pop(0)

    def _auth(
        self, smartlock_id: int, name: str, code: int, start: datetime | None, end: datetime | None
    ) -> SmartlockAuth:
        n = next(self._ids)
        return SmartlockAuth(
            id=f"{n:024x}",
            smartlock_id=smartlock_id,
            auth_id=1000 + n,
            type=13,
            name=name,
            enabled=True,
            remote_allowed=False,
            lock_count=0,
            code=code,
            allowed_from_date=start,
            allowed_until_date=end,
            allowed_week_days=127,
            allowed_from_time=0,
            allowed_until_time=0,
            creation_date=self._clock(),
            update_date=self._clock(),
        )

    def _queue(self, smartlock_id: int, op: Callable[[], None]) -> None:
        self.pending.append((smartlock_id, op))
        if self.auto_apply:
            self.apply()

    def _notify(self, smartlock_id: int, auth: SmartlockAuth, deleted: bool) -> None:
        for hook in self.on_apply:
            hook(smartlock_id, auth, deleted)

    def _pending_codes(self, smartlock_id: int) -> set[int]:
        return {getattr(op, "code", -1) for lock_id, op in self.pending if lock_id == smartlock_id}

    # -- the client's API ----------------------------------------------------------------

    def list_smartlocks(self) -> list[Smartlock]:
        self._call("list_smartlocks", None)
        return [self.get_smartlock(lock_id) for lock_id in self.locks]

    def get_smartlock(self, smartlock_id: int) -> Smartlock:
        self._call("get_smartlock", smartlock_id)
        lock = self.locks.get(smartlock_id)
        if lock is None:
            raise NukiNotFound("no such lock", status=404, operation="GET /smartlock/{smartlockId}")
        return Smartlock(
            smartlock_id=smartlock_id,
            account_id=1,
            type=4,
            auth_id=1,
            name=f"Lock {smartlock_id}",
            favorite=False,
            server_state=0 if lock.online else 4,
            admin_pin_state=0,
            config={"keypadPaired": lock.keypad},
            current_subscription=None
            if lock.subscription is None
            else {"type": "B2B", "state": lock.subscription, "expirationDate": lock.subscription_ends},
        )

    def list_auths(self, smartlock_id: int, types: Sequence[int] | None = (13,)) -> list[SmartlockAuth]:
        self._call("list_auths", smartlock_id)
        return [a for a in self.locks[smartlock_id].auths.values() if types is None or a.type in types]

    def list_account_auths(self, types: Sequence[int] | None = (13,)) -> list[SmartlockAuth]:
        self._call("list_account_auths", None)
        return self._account_auths(types)

    def _account_auths(self, types: Sequence[int] | None) -> list[SmartlockAuth]:
        locks = [self.locks[lock_id] for lock_id in sorted(self.locks)]
        return [a for lock in locks for a in lock.auths.values() if not types or a.type in types]

    def list_auths_page(self, page: int, size: int = 100, types: Sequence[int] | None = (13,)) -> AuthPage:
        self._call("list_auths_page", page)
        listed = self._account_auths(types)
        pages = (len(listed) + size - 1) // size
        return AuthPage.model_validate(
            {
                "results": [a.model_dump(by_alias=True) for a in listed[page * size : (page + 1) * size]],
                "pagination": {"totalItems": len(listed), "totalPages": pages, "currentPage": page, "pageSize": size},
            }
        )

    # The client's own walk over the pages, on this fake's `list_auths_page`.
    iter_auth_pages = NukiClient.iter_auth_pages

    def create_keypad_code(self, smartlock_ids: Sequence[int], code: KeypadCodeCreate) -> None:
        self._call("create_keypad_code", (tuple(smartlock_ids), code.name))
        for lock_id in smartlock_ids:
            if code.code in self.codes(lock_id) or code.code in self._pending_codes(lock_id):
                raise NukiCodeConflict("Parameter conflicts", status=409, operation="PUT /smartlock/auth")
        for lock_id in smartlock_ids:

            def create(lock_id: int = lock_id) -> None:
                auth = self._auth(lock_id, code.name, code.code, code.allowed_from, code.allowed_until)
                self.locks[lock_id].auths[auth.id] = auth
                self._notify(lock_id, auth, False)

            create.code = code.code  # type: ignore[attr-defined]
            self._queue(lock_id, create)

    def update_auth(self, smartlock_id: int, auth_id: str, update: SmartlockAuthUpdate) -> None:
        self._call("update_auth", (smartlock_id, auth_id))
        lock = self.locks[smartlock_id]
        if auth_id not in lock.auths:
            raise NukiNotFound("no such auth", status=404, operation="POST /smartlock/{smartlockId}/auth/{id}")
        if any(a.code == update.code and a.id != auth_id for a in lock.auths.values()):
            raise NukiCodeConflict(
                "Parameter conflicts", status=409, operation="POST /smartlock/{smartlockId}/auth/{id}"
            )

        def change() -> None:
            if auth_id in lock.auths:
                auth = lock.auths[auth_id].model_copy(
                    update={
                        "name": update.name,
                        "code": update.code,
                        "allowed_from_date": update.allowed_from,
                        "allowed_until_date": update.allowed_until,
                        "enabled": update.enabled,
                        "update_date": self._clock(),
                    }
                )
                lock.auths[auth_id] = auth
                self._notify(smartlock_id, auth, False)

        self._queue(smartlock_id, change)

    def delete_auth(self, smartlock_id: int, auth_id: str) -> None:
        self._call("delete_auth", (smartlock_id, auth_id))
        self._queue_delete(smartlock_id, auth_id)

    def delete_auths(self, auth_ids: Sequence[str]) -> None:
        self._call("delete_auths", tuple(auth_ids))
        for auth_id in auth_ids:
            lock_id = next((lid for lid, lock in self.locks.items() if auth_id in lock.auths), None)
            if lock_id is not None:
                self._queue_delete(lock_id, auth_id)

    def _queue_delete(self, smartlock_id: int, auth_id: str) -> None:
        lock = self.locks[smartlock_id]
        if self.ghost_deletes:
            self.ghost_deletes -= 1
            return

        def remove() -> None:
            auth = lock.auths.pop(auth_id, None)
            if auth is not None:
                self._notify(smartlock_id, auth, True)

        self._queue(smartlock_id, remove)

    def sync(self, smartlock_id: int) -> None:
        self._call("sync", smartlock_id)

    def iter_log_pages(self, smartlock_id: int, **kwargs: Any) -> Iterator[list[SmartlockLog]]:
        self._call("iter_log_pages", smartlock_id)
        logs = sorted(self.locks[smartlock_id].logs, key=lambda entry: entry.date, reverse=True)
        for i in range(0, len(logs), 50):
            yield logs[i : i + 50]

    def iter_account_log_pages(self, **kwargs: Any) -> Iterator[list[SmartlockLog]]:
        self._call("iter_account_log_pages", None)
        logs = sorted(
            (entry for lock in self.locks.values() for entry in lock.logs),
            key=lambda entry: (entry.date, entry.id),
            reverse=True,
        )
        for i in range(0, len(logs), 50):
            yield logs[i : i + 50]
