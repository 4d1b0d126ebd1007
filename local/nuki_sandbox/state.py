"""The sandbox's state and rules: locks, authorizations, pending writes, logs, webhooks, faults.

Everything lives in one ``NukiSandbox`` guarded by one re-entrant lock. The HTTP layers
(``api.py`` for Nuki's routes, ``control.py`` for ``/_sim``) parse and validate what they receive
and call one method here; the rules (code rules, one code per lock, 423 while pending, the
keypad's 200 codes) are enforced here so the Nuki routes and the control routes share them.
"""

from __future__ import annotations

import bisect
import hmac
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal, Protocol
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from local.nuki_sandbox.accounts import APP, AccountUsers
from local.nuki_sandbox.model import (
    JSON,
    ControlError,
    ObjectIds,
    bad_param,
    conflict,
    forbidden,
    format_date,
    locked,
    not_found,
    unprocessable,
    utcnow,
)
from local.nuki_sandbox.webhooks import DEFAULT_RETRY_DELAYS, Delivery, WebhookDispatcher

DEFAULT_TOKEN = "local-nuki-token"  # noqa: S105 - the documented local default, not a secret
DEFAULT_SYNC_DELAY_SECONDS = 2.0

KEYPAD_CODE = 13
AUTH_TYPES = (0, 2, KEYPAD_CODE)  # what SmartlockAuthCreate accepts: app, fob, keypad code
KEYPAD_CODE_CAPACITY = 200
KEYPAD_NAME_MAX = 20
NAME_MAX = 32
TOO_MANY_ENTRIES = "K_ERROR_TOO_MANY_ENTRIES (0x29): the keypad already holds 200 codes"

# The fields of Nuki's own published DEVICE_AUTHS example (forum 29886): no enabled, no dates. With
# `lean_auth_webhooks` the sandbox sends only these, as Nuki may.
LEAN_AUTH_FIELDS = ("id", "smartlockId", "authId", "code", "type", "name")

LOG_LIMIT_DEFAULT = 20
LOG_LIMIT_MAX = 50
AUTH_PAGE_SIZE_DEFAULT = 100  # GET /smartlock/auth/paged: `size` defaults to 100 (the spec says no maximum)

FEATURES = (
    "DEVICE_STATUS",
    "DEVICE_MASTERDATA",
    "DEVICE_CONFIG",
    "DEVICE_LOGS",
    "DEVICE_AUTHS",
    "ACCOUNT_USER",
)
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
DEFAULT_FAULT_STATUSES = (429, 500, 503)
DEFAULT_TIMEOUT_SECONDS = 5.0
ACCOUNT_ID = 4711001
ACCOUNT_AUTH_ID = 1  # the account's own authorization on every lock (Smartlock.authId)
FIRST_SMARTLOCK_ID = 17000001
# ShsSubscription.state in Nuki's spec. A sandbox lock has an ACTIVE Smart Hosting subscription
# unless told otherwise (``subscription`` on the control routes; null: it reports none).
SUBSCRIPTION_STATES = ("ACTIVE", "INACTIVE", "CANCELLED", "EXPIRED", "ON_HOLD", "PENDING", "PENDING_CANCEL")
DEFAULT_SUBSCRIPTION = "ACTIVE"

BATTERY_FIELDS = (
    "batteryCritical",
    "batteryCharging",
    "batteryCharge",
    "keypadBatteryCritical",
    "doorsensorBatteryCritical",
)
DEVICE_TYPES = {0: 0, 1: 0, 2: 2, 3: 3, 4: 4, 5: 5}  # Smartlock.type -> SmartlockLog.deviceType


# --- authorizations -----------------------------------------------------------------------------


@dataclass
class Window:
    """An authorization's restrictions. Dates are UTC instants; times are lock-local minutes."""

    from_date: datetime | None = None
    until_date: datetime | None = None
    week_days: int | None = None
    from_time: int | None = None
    until_time: int | None = None

    def allows(self, at: datetime, zone: ZoneInfo) -> bool:
        if self.from_date is not None and at < self.from_date:
            return False
        if self.until_date is not None and at > self.until_date:
            return False
        local = at.astimezone(zone)
        # 64 = Monday ... 1 = Sunday; 0 or absent = no weekday restriction.
        if self.week_days and not self.week_days & (64 >> local.weekday()):
            return False
        start = self.from_time or 0
        end = self.until_time or 24 * 60  # 0/0 = all day (what integrators send for "no daily limit")
        minute = local.hour * 60 + local.minute
        if start < end:
            return start <= minute < end
        return minute >= start or minute < end  # a window over midnight

    def to_json(self) -> dict[str, JSON]:
        out: dict[str, JSON] = {}
        if self.from_date is not None:
            out["allowedFromDate"] = format_date(self.from_date)
        if self.until_date is not None:
            out["allowedUntilDate"] = format_date(self.until_date)
        if self.week_days is not None:
            out["allowedWeekDays"] = self.week_days
        if self.from_time is not None:
            out["allowedFromTime"] = self.from_time
        if self.until_time is not None:
            out["allowedUntilTime"] = self.until_time
        return out


@dataclass
class AuthDraft:
    """A create request (SmartlockAuthCreate), already type-checked."""

    name: str
    type: int
    remote_allowed: bool
    window: Window
    code: int | None = None
    account_user_id: int | None = None
    enabled: bool = True

    def to_json(self) -> dict[str, JSON]:
        out: dict[str, JSON] = {"name": self.name, "type": self.type, "remoteAllowed": self.remote_allowed}
        if self.code is not None:
            out["code"] = self.code
        if self.account_user_id is not None:
            out["accountUserId"] = self.account_user_id
        return {**out, **self.window.to_json()}


@dataclass
class AuthChange:
    """An update request (SmartlockAuthUpdate). ``None`` keeps the current value, except for the
    restrictions, which are replaced as a whole (omitted ones are cleared, as forum 40095 saw)."""

    name: str
    window: Window
    code: int | None = None
    enabled: bool | None = None
    remote_allowed: bool | None = None
    account_user_id: int | None = None

    def to_json(self) -> dict[str, JSON]:
        out: dict[str, JSON] = {"name": self.name}
        for key, value in (
            ("code", self.code),
            ("enabled", self.enabled),
            ("remoteAllowed", self.remote_allowed),
            ("accountUserId", self.account_user_id),
        ):
            if value is not None:
                out[key] = value
        return {**out, **self.window.to_json()}


@dataclass
class Auth:
    id: str
    smartlock_id: int
    auth_id: int
    type: int
    name: str
    enabled: bool
    remote_allowed: bool
    window: Window
    created: datetime
    updated: datetime
    code: int | None = None
    account_user_id: int | None = None
    lock_count: int = 0
    last_active: datetime | None = None
    error: str | None = None
    operation_id: str | None = None  # set while a write on this auth is pending

    def to_json(self) -> dict[str, JSON]:
        out: dict[str, JSON] = {"id": self.id, "smartlockId": self.smartlock_id, "authId": self.auth_id}
        if self.account_user_id is not None:
            out["accountUserId"] = self.account_user_id
        if self.code is not None:
            out["code"] = self.code
        out |= {
            "type": self.type,
            "name": self.name,
            "enabled": self.enabled,
            "remoteAllowed": self.remote_allowed,
            "lockCount": self.lock_count,
            **self.window.to_json(),
        }
        if self.last_active is not None:
            out["lastActiveDate"] = format_date(self.last_active)
        out["creationDate"] = format_date(self.created)
        out["updateDate"] = format_date(self.updated)
        if self.operation_id is not None:
            out["operationId"] = self.operation_id
        if self.error is not None:
            out["error"] = self.error
        return out


WriteKind = Literal["create", "update", "delete"]


@dataclass
class PendingWrite:
    """A write Nuki answered 204 to and has not applied yet."""

    seq: int
    operation_id: str
    kind: WriteKind
    smartlock_id: int
    accepted_at: datetime
    due: float | None  # time.monotonic() when it applies; None while the lock is offline
    auth_id: str | None = None  # the target of an update or delete
    draft: AuthDraft | None = None
    change: AuthChange | None = None

    def new_code(self) -> int | None:
        """The keypad code this write will put on the lock, if any."""
        if self.draft is not None and self.draft.type == KEYPAD_CODE:
            return self.draft.code
        if self.change is not None:
            return self.change.code
        return None

    def to_json(self, now: float) -> dict[str, JSON]:
        body = self.draft or self.change
        return {
            "operationId": self.operation_id,
            "kind": self.kind,
            "authId": self.auth_id,
            "acceptedAt": format_date(self.accepted_at),
            "dueInSeconds": None if self.due is None else round(max(0.0, self.due - now), 3),
            "body": body.to_json() if body is not None else None,
        }


# --- locks, logs, webhooks, faults --------------------------------------------------------------


def _check_subscription(state: str | None) -> None:
    if state is not None and state not in SUBSCRIPTION_STATES:
        raise ControlError(400, f"subscription must be one of {list(SUBSCRIPTION_STATES)} or null")


@dataclass
class Lock:
    smartlock_id: int
    name: str
    type: int
    keypad: bool
    keypad2: bool
    online: bool
    zone: ZoneInfo
    created: datetime
    updated: datetime
    battery: dict[str, JSON] = field(
        default_factory=lambda: {
            "batteryCritical": False,
            "batteryCharging": False,
            "batteryCharge": 100,
            "keypadBatteryCritical": False,
            "doorsensorBatteryCritical": False,
        }
    )
    auths: dict[str, Auth] = field(default_factory=dict)
    next_auth_id: int = ACCOUNT_AUTH_ID + 1
    sync_delay: float | None = None  # this lock's own delay; None: the sandbox's
    subscription: str | None = DEFAULT_SUBSCRIPTION  # currentSubscription.state; None: none reported

    @property
    def has_keypad(self) -> bool:
        return self.keypad or self.keypad2

    def subscription_json(self) -> dict[str, JSON]:
        """``ShsSubscription`` as Nuki's spec has it: a business Smart Hosting plan of a year."""
        assert self.subscription is not None
        return {
            "type": "B2B",
            "state": self.subscription,
            "shsSubscriptionType": "BUSINESS",
            "creationDate": format_date(self.created),
            "updateDate": format_date(self.updated),
            "expirationDate": format_date(self.created + timedelta(days=365)),
            "isInGracePeriod": False,
        }

    def state_json(self) -> dict[str, JSON]:
        return {
            "mode": 2,
            "state": 1,
            "trigger": 0,
            "lastAction": 2,
            "batteryCritical": self.battery["batteryCritical"],
            "batteryCharging": self.battery["batteryCharging"],
            "batteryCharge": self.battery["batteryCharge"],
            "keypadBatteryCritical": self.battery["keypadBatteryCritical"],
            "doorsensorBatteryCritical": self.battery["doorsensorBatteryCritical"],
            "doorState": 0,
            "ringToOpenTimer": 0,
            "nightMode": False,
        }

    def server_state(self) -> int:
        return 0 if self.online else 4  # 4 .. offline

    def to_json(self) -> dict[str, JSON]:
        return {
            "smartlockId": self.smartlock_id,
            "accountId": ACCOUNT_ID,
            "type": self.type,
            "authId": ACCOUNT_AUTH_ID,
            "name": self.name,
            "favorite": False,
            "config": {
                "name": self.name,
                "latitude": 52.52,
                "longitude": 13.405,
                "autoUnlatch": False,
                "pairingEnabled": True,
                "buttonEnabled": True,
                "ledEnabled": True,
                "ledBrightness": 3,
                "timezoneOffset": 0,
                "daylightSavingMode": 0,
                "fobPaired": False,
                "singleLock": False,
                "advertisingMode": 0,
                "keypadPaired": self.keypad,
                "keypad2Paired": self.keypad2,
                "homekitState": 0,
                "timezoneId": 0,
            },
            "state": self.state_json(),
            "firmwareVersion": 197639,
            "hardwareVersion": 1282,
            "serverState": self.server_state(),
            "adminPinState": 0,
            "virtualDevice": False,
            "creationDate": format_date(self.created),
            "updateDate": format_date(self.updated),
            **({"currentSubscription": self.subscription_json()} if self.subscription is not None else {}),
        }


@dataclass
class LogEntry:
    id: str
    smartlock_id: int
    date: datetime
    data: dict[str, JSON]

    @property
    def order(self) -> tuple[datetime, str]:
        return (self.date, self.id)


@dataclass
class Webhook:
    id: int
    url: str
    features: list[str]
    secret: str

    def to_json(self, with_secret: bool) -> dict[str, JSON]:
        out: dict[str, JSON] = {"id": self.id}
        if with_secret:
            out["secret"] = self.secret
        return out | {"webhookUrl": self.url, "webhookFeatures": list(self.features)}


@dataclass(frozen=True)
class FaultDecision:
    """What the fault injector decided for one Nuki API request."""

    kind: Literal["error", "timeout"]
    status: int = 0
    hold_seconds: float = 0.0
    apply_anyway: bool = False


@dataclass
class Faults:
    error_rate: float = 0.0
    statuses: tuple[int, ...] = DEFAULT_FAULT_STATUSES
    timeout_rate: float = 0.0
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    seed: int | None = None
    ghost_deletes: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def draw(self) -> FaultDecision | None:
        if self.error_rate <= 0 and self.timeout_rate <= 0:
            return None
        roll = self.rng.random()
        if roll < self.error_rate:
            return FaultDecision("error", status=self.rng.choice(self.statuses))
        if roll < self.error_rate + self.timeout_rate:
            return FaultDecision("timeout", hold_seconds=self.timeout_seconds, apply_anyway=self.rng.random() < 0.5)
        return None

    def to_json(self) -> dict[str, JSON]:
        return {
            "errorRate": self.error_rate,
            "statuses": list(self.statuses),
            "timeoutRate": self.timeout_rate,
            "timeoutSeconds": self.timeout_seconds,
            "seed": self.seed,
            "ghostDeletes": self.ghost_deletes,
        }


@dataclass
class RequestRecord:
    method: str
    path: str
    query: str
    at: str
    status: int | None = None

    def to_json(self) -> dict[str, JSON]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "status": self.status,
            "at": self.at,
        }


# --- rules --------------------------------------------------------------------------------------


def check_code(code: int | None) -> int:
    """Nuki's keypad code rules: 6 digits, 1-9 only, not starting with 12 (400 otherwise)."""
    if code is None:
        raise bad_param("code", None)
    digits = str(code)
    if len(digits) != 6 or not all("1" <= d <= "9" for d in digits) or digits.startswith("12"):
        raise bad_param("code", code)
    return code


def check_name(name: str, auth_type: int) -> None:
    if not name.strip():
        raise bad_param("name", name)
    if auth_type == KEYPAD_CODE and len(name) > KEYPAD_NAME_MAX:
        raise unprocessable()
    if len(name) > NAME_MAX:
        raise bad_param("name", name)


def check_webhook_url(url: str) -> None:
    """https only, like Nuki; plain http is accepted for loopback hosts so a local stack can listen."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        return
    raise bad_param("webhookUrl", url)


def zone_named(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ControlError(400, f"unknown time zone {name!r}") from exc


# --- the sandbox --------------------------------------------------------------------------------


def _listed(auth: Auth, types: set[int] | None, account_user_id: int | None) -> bool:
    """Whether a listing filtered by ``types`` and ``accountUserId`` (Nuki's meaning) shows ``auth``."""
    if types is not None and auth.type not in types:
        return False
    if account_user_id is not None and account_user_id > 0 and auth.account_user_id != account_user_id:
        return False
    return not (account_user_id is not None and account_user_id < 0 and auth.account_user_id is not None)


def _log_order(entry: LogEntry) -> tuple[datetime, str]:
    return entry.order


class SandboxClock(Protocol):
    """Where the sandbox reads time: wall time for dates, a monotonic clock for sync delays."""

    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...


class RealClock:
    def now(self) -> datetime:
        return utcnow()

    def monotonic(self) -> float:
        return time.monotonic()


class NukiSandbox:
    """In-memory Nuki Web API state. Thread-safe: every public method takes ``self._lock``."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        sync_delay: float = DEFAULT_SYNC_DELAY_SECONDS,
        latency: float = 0.0,
        *,
        clock: SandboxClock | None = None,
        webhook_sink: Callable[[Delivery], None] | None = None,
        seed: int | None = None,
    ) -> None:
        """``clock``, ``webhook_sink`` and ``seed`` are for a simulator (``local.sim``): with a
        ``webhook_sink`` no thread runs at all, deliveries go to the sink instead of over HTTP, and
        due writes are applied by ``advance()`` (and by every request, as always)."""
        self.token = token
        self._initial_config = (float(sync_delay), float(latency))
        self._time = clock or RealClock()
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._ids = ObjectIds(clock=lambda: self._time.now().timestamp(), seed=seed)
        self._seed = seed
        self._closed = False
        self._dispatcher = WebhookDispatcher(self._lock, self._webhook_exists, now=self._time.now, sink=webhook_sink)
        self._reset_locked()
        self._clock: threading.Thread | None = None
        if webhook_sink is None:
            self._clock = threading.Thread(target=self._run_clock, name="nuki-sandbox-clock", daemon=True)
            self._clock.start()

    # -- lifecycle and configuration

    def _reset_locked(self) -> None:
        self.sync_delay, self.latency = self._initial_config
        self._locks: dict[int, Lock] = {}
        self._pending: list[PendingWrite] = []
        self._seq = 0
        self._logs: list[LogEntry] = []  # every lock's, oldest first (by date, then id)
        self._lock_logs: dict[int, list[LogEntry]] = {}  # the same, per lock
        self._log_index: dict[str, LogEntry] = {}
        # Bumped by every change to an authorization: the account's listing is built once per version.
        self._auth_version = 0
        self._listing: tuple[int, list[Auth]] | None = None
        self._webhooks: dict[int, Webhook] = {}
        self._next_webhook_id = 1
        self._faults = Faults(rng=random.Random(self._seed))
        self._requests: list[RequestRecord] = []
        self._dispatcher.retry_delays = DEFAULT_RETRY_DELAYS
        self._dispatcher.clear()
        self.lean_auth_webhooks = False
        self._users = AccountUsers(self, ACCOUNT_ID)

    # What the account users (local.nuki_sandbox.accounts) need of the sandbox.
    def _now(self) -> datetime:
        return self._time.now()

    def _monotonic(self) -> float:
        return self._time.monotonic()

    def _new_id(self) -> str:
        return self._ids.new()

    def _delay(self) -> float:
        return self.sync_delay

    def reset(self) -> None:
        """Forget everything: locks, auths, pending writes, logs, webhooks, faults, requests, config."""
        with self._wake:
            self._reset_locked()
            self._wake.notify_all()

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify_all()
        if self._clock is not None:
            self._clock.join(timeout=2)
        self._dispatcher.close()

    def configure(
        self,
        sync_delay: float | None = None,
        latency: float | None = None,
        webhook_retry_delays: Iterable[float] | None = None,
        lean_auth_webhooks: bool | None = None,
    ) -> dict[str, JSON]:
        """Change the sync delay (for writes accepted from now on), the added latency, the webhook
        retries, and whether DEVICE_AUTHS bodies carry only the fields of Nuki's published example."""
        with self._lock:
            if lean_auth_webhooks is not None:
                self.lean_auth_webhooks = lean_auth_webhooks
            if sync_delay is not None:
                self.sync_delay = float(sync_delay)
            if latency is not None:
                self.latency = float(latency)
            if webhook_retry_delays is not None:
                self._dispatcher.retry_delays = tuple(float(d) for d in webhook_retry_delays)
            return self.config()

    def config(self) -> dict[str, JSON]:
        with self._lock:
            return {
                "syncDelaySeconds": self.sync_delay,
                "latencySeconds": self.latency,
                "webhookRetryDelaysSeconds": list(self._dispatcher.retry_delays),
                "leanAuthWebhooks": self.lean_auth_webhooks,
            }

    def authorized(self, header: str | None) -> bool:
        scheme, _, token = (header or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self.token.encode())

    # -- request bookkeeping and faults (called by the HTTP server for Nuki routes only)

    def begin_request(self, method: str, path: str, query: str) -> tuple[RequestRecord, float, FaultDecision | None]:
        with self._lock:
            record = RequestRecord(method, path, query, format_date(self._time.now()))
            self._requests.append(record)
            return record, self.latency, self._faults.draw()

    def finish_request(self, record: RequestRecord, status: int | None) -> None:
        with self._lock:
            record.status = status

    def requests(self) -> list[dict[str, JSON]]:
        with self._lock:
            return [record.to_json() for record in self._requests]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def set_faults(
        self,
        error_rate: float = 0.0,
        statuses: Iterable[int] = DEFAULT_FAULT_STATUSES,
        timeout_rate: float = 0.0,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        seed: int | None = None,
        ghost_deletes: int = 0,
    ) -> dict[str, JSON]:
        with self._lock:
            self._faults = Faults(
                error_rate=error_rate,
                statuses=tuple(statuses) or DEFAULT_FAULT_STATUSES,
                timeout_rate=timeout_rate,
                timeout_seconds=timeout_seconds,
                seed=seed,
                ghost_deletes=ghost_deletes,
                rng=random.Random(seed),
            )
            return self._faults.to_json()

    def clear_faults(self) -> None:
        with self._lock:
            self._faults = Faults()

    def faults(self) -> dict[str, JSON]:
        with self._lock:
            return self._faults.to_json()

    # -- asynchrony

    def _run_clock(self) -> None:
        """Apply pending writes when they fall due, so webhooks go out without anyone reading."""
        with self._wake:
            while not self._closed:
                self._apply_due_locked()
                due = [p.due for p in self._pending if p.due is not None]
                users_due = self._users.next_due()
                if users_due is not None:
                    due.append(users_due)
                timeout = max(0.0, min(due) - self._time.monotonic()) if due else None
                self._wake.wait(timeout)

    def _sync_delay(self, lock: Lock) -> float:
        return self.sync_delay if lock.sync_delay is None else lock.sync_delay

    def advance(self) -> None:
        """Apply every write that is due by the clock (what the clock thread does in real time)."""
        with self._lock:
            self._apply_due_locked()

    def next_due(self) -> float | None:
        """The clock's monotonic time of the next pending write to apply; None if none is due."""
        with self._lock:
            due = [p.due for p in self._pending if p.due is not None]
            users_due = self._users.next_due()
            if users_due is not None:
                due.append(users_due)
            return min(due) if due else None

    def _apply_due_locked(self) -> None:
        now = self._time.monotonic()
        self._users.apply_due(now)
        ready = sorted(
            (p for p in self._pending if p.due is not None and p.due <= now),
            key=lambda p: (p.due or 0.0, p.seq),
        )
        for write in ready:
            self._pending.remove(write)
            self._apply(write)

    def _enqueue(
        self,
        kind: WriteKind,
        lock: Lock,
        auth_id: str | None = None,
        draft: AuthDraft | None = None,
        change: AuthChange | None = None,
    ) -> PendingWrite:
        self._seq += 1
        write = PendingWrite(
            seq=self._seq,
            operation_id=self._ids.new(),
            kind=kind,
            smartlock_id=lock.smartlock_id,
            accepted_at=self._time.now(),
            due=self._time.monotonic() + self._sync_delay(lock) if lock.online else None,
            auth_id=auth_id,
            draft=draft,
            change=change,
        )
        self._pending.append(write)
        if write.auth_id is not None:
            lock.auths[write.auth_id].operation_id = write.operation_id
        self._wake.notify_all()
        return write

    def _apply(self, write: PendingWrite) -> None:
        lock = self._locks.get(write.smartlock_id)
        if lock is None:
            return
        now = self._time.now()
        if write.kind == "create" and write.draft is not None:
            self._store_auth(lock, write.draft, now)
            return
        auth = lock.auths.get(write.auth_id or "")
        if auth is None:
            return
        auth.operation_id = None
        if write.kind == "delete":
            del lock.auths[auth.id]
            self._emit_auth(auth, deleted=True)
            return
        change = write.change
        if change is None:
            return
        auth.name = change.name
        auth.window = change.window
        if change.code is not None and auth.type == KEYPAD_CODE:
            auth.code = change.code
        if change.enabled is not None:
            auth.enabled = change.enabled
        if change.remote_allowed is not None:
            auth.remote_allowed = change.remote_allowed
        if change.account_user_id is not None:
            auth.account_user_id = change.account_user_id
        auth.updated = now
        self._emit_auth(auth, deleted=False)

    def _store_auth(self, lock: Lock, draft: AuthDraft, now: datetime) -> Auth:
        """Put an authorization on the lock; past 200 keypad codes it is stored with Nuki's 0x29 error."""
        error = None
        if draft.type == KEYPAD_CODE and self._keypad_codes(lock) >= KEYPAD_CODE_CAPACITY:
            error = TOO_MANY_ENTRIES
        auth = Auth(
            id=self._ids.new(),
            smartlock_id=lock.smartlock_id,
            auth_id=lock.next_auth_id,
            type=draft.type,
            name=draft.name,
            enabled=draft.enabled,
            remote_allowed=draft.remote_allowed,
            window=replace(draft.window),  # its own: one create on many locks shares the draft
            created=now,
            updated=now,
            code=draft.code if draft.type == KEYPAD_CODE else None,
            account_user_id=draft.account_user_id,
            error=error,
        )
        lock.next_auth_id += 1
        lock.auths[auth.id] = auth
        self._emit_auth(auth, deleted=False)
        return auth

    @staticmethod
    def _keypad_codes(lock: Lock) -> int:
        return sum(1 for a in lock.auths.values() if a.type == KEYPAD_CODE and a.error is None)

    def _codes_taken(self, lock: Lock, ignore_auth: str | None = None) -> set[int]:
        """Codes a new write may not use: on the lock now, or coming with a pending write."""
        taken = {
            a.code for a in lock.auths.values() if a.code is not None and a.type == KEYPAD_CODE and a.id != ignore_auth
        }
        for write in self._pending:
            code = write.new_code()
            if write.smartlock_id != lock.smartlock_id or code is None:
                continue
            if ignore_auth is None or write.auth_id != ignore_auth:
                taken.add(code)
        return taken

    def _pending_on(self, auth_id: str) -> bool:
        return any(p.auth_id == auth_id for p in self._pending)

    def _check_draft(self, lock: Lock, draft: AuthDraft) -> None:
        """400/422 for a create that Nuki refuses on this lock (the 409 check comes after)."""
        if draft.type not in AUTH_TYPES:
            raise bad_param("type", draft.type)
        if draft.type == KEYPAD_CODE:
            if not lock.has_keypad:
                raise bad_param("type", draft.type)
            check_code(draft.code)
        elif draft.account_user_id is None or draft.account_user_id not in self._users.users:
            raise bad_param("accountUserId", draft.account_user_id)
        check_name(draft.name, draft.type)

    # -- Nuki API: smartlocks

    def list_smartlocks(self, auth_id: int | None = None, lock_type: int | None = None) -> list[JSON]:
        with self._lock:
            return [
                lock.to_json()
                for lock in self._locks.values()
                if (auth_id is None or auth_id == ACCOUNT_AUTH_ID) and (lock_type is None or lock.type == lock_type)
            ]

    def get_smartlock(self, smartlock_id: int) -> JSON:
        with self._lock:
            lock = self._locks.get(smartlock_id)
            if lock is None:
                raise not_found()
            return lock.to_json()

    def sync(self, smartlock_id: int) -> None:
        """Apply an online lock's pending writes now (an offline lock keeps them pending)."""
        with self._lock:
            lock = self._locks.get(smartlock_id)
            if lock is None:
                raise bad_param("smartlockId", smartlock_id)
            if not lock.online:
                return
            for write in [p for p in self._pending if p.smartlock_id == smartlock_id]:
                self._pending.remove(write)
                self._apply(write)

    # -- Nuki API: authorizations

    def list_auths(
        self,
        smartlock_id: int | None = None,
        types: set[int] | None = None,
        account_user_id: int | None = None,
    ) -> list[JSON]:
        with self._lock:
            self._apply_due_locked()
            if smartlock_id is not None:
                lock = self._locks.get(smartlock_id)
                if lock is None:
                    raise forbidden()
                auths = list(lock.auths.values())
            else:
                auths = self._account_listing()
            return [auth.to_json() for auth in auths if _listed(auth, types, account_user_id)]

    def list_auths_paged(
        self,
        page: int = 0,
        size: int = AUTH_PAGE_SIZE_DEFAULT,
        types: set[int] | None = None,
        account_user_id: int | None = None,
    ) -> dict[str, JSON]:
        """``GET /smartlock/auth/paged``: the account's authorizations in a fixed order (by lock, then
        as they were created), a page at a time. Each page is read from the listing as it is at that
        moment, so a change between two pages moves what follows it (as offset paging does)."""
        with self._lock:
            self._apply_due_locked()
            listed = [auth for auth in self._account_listing() if _listed(auth, types, account_user_id)]
            size = max(1, size)
            page = max(0, page)
            total_pages = (len(listed) + size - 1) // size
            pagination: dict[str, JSON] = {
                "totalItems": len(listed),
                "totalPages": total_pages,
                "currentPage": page,
                "pageSize": size,
            }
            if page + 1 < total_pages:
                pagination["nextPage"] = str(page + 1)
            if 0 < page <= total_pages:
                pagination["prevPage"] = str(page - 1)
            results: list[JSON] = [auth.to_json() for auth in listed[page * size : (page + 1) * size]]
            return {"results": results, "pagination": pagination}

    def _account_listing(self) -> list[Auth]:
        """Every lock's authorizations, by lock and then in the order they were created; built again
        only after an authorization changed."""
        if self._listing is None or self._listing[0] != self._auth_version:
            auths = [auth for smartlock_id in sorted(self._locks) for auth in self._locks[smartlock_id].auths.values()]
            self._listing = (self._auth_version, auths)
        return self._listing[1]

    def _visible_auth(self, smartlock_id: int, auth_id: str) -> tuple[Lock, Auth]:
        lock = self._locks.get(smartlock_id)
        auth = lock.auths.get(auth_id) if lock is not None else None
        if lock is None or auth is None:
            raise forbidden()
        return lock, auth

    def get_auth(self, smartlock_id: int, auth_id: str) -> JSON:
        with self._lock:
            self._apply_due_locked()
            return self._visible_auth(smartlock_id, auth_id)[1].to_json()

    def create_auths(self, smartlock_ids: Iterable[int], draft: AuthDraft, parameter: str = "smartlockId") -> None:
        """Accept a create on one or several locks: all or nothing, then 204 and apply later."""
        with self._lock:
            self._apply_due_locked()
            locks: list[Lock] = []
            for smartlock_id in dict.fromkeys(smartlock_ids):
                lock = self._locks.get(smartlock_id)
                if lock is None:
                    raise bad_param(parameter, smartlock_id)
                locks.append(lock)
            if not locks:
                raise bad_param(parameter, None)
            for lock in locks:
                self._check_draft(lock, draft)
            if draft.type == KEYPAD_CODE:
                for lock in locks:
                    if draft.code in self._codes_taken(lock):
                        raise conflict(f"The keypad code already exists on smartlock {lock.smartlock_id}")
            for lock in locks:
                self._enqueue("create", lock, draft=draft)

    def update_auth(self, smartlock_id: int, auth_id: str, change: AuthChange) -> None:
        with self._lock:
            self._apply_due_locked()
            lock, auth = self._visible_auth(smartlock_id, auth_id)
            if self._pending_on(auth_id):
                raise locked()
            if auth.type == KEYPAD_CODE and change.code is not None:
                check_code(change.code)
            check_name(change.name, auth.type)
            if auth.type == KEYPAD_CODE and change.code is not None and change.code in self._codes_taken(lock, auth_id):
                raise conflict(f"The keypad code already exists on smartlock {smartlock_id}")
            self._enqueue("update", lock, auth_id=auth_id, change=change)

    def delete_auth(self, smartlock_id: int, auth_id: str) -> None:
        with self._lock:
            self._apply_due_locked()
            lock, _ = self._visible_auth(smartlock_id, auth_id)
            if self._pending_on(auth_id):
                raise locked()
            if self._take_ghost_delete():
                return
            self._enqueue("delete", lock, auth_id=auth_id)

    def delete_auths(self, auth_ids: Iterable[str]) -> None:
        """Bulk delete by auth ``id`` across locks: all or nothing (403 unknown id, 423 pending)."""
        with self._lock:
            self._apply_due_locked()
            by_id = {auth.id: lock for lock in self._locks.values() for auth in lock.auths.values()}
            targets = list(dict.fromkeys(auth_ids))
            if not targets:
                raise bad_param("body", "[]")
            if any(auth_id not in by_id for auth_id in targets):
                raise forbidden()
            if any(self._pending_on(auth_id) for auth_id in targets):
                raise locked()
            if self._take_ghost_delete():
                return
            for auth_id in targets:
                self._enqueue("delete", by_id[auth_id], auth_id=auth_id)

    def _take_ghost_delete(self) -> bool:
        if self._faults.ghost_deletes > 0:
            self._faults.ghost_deletes -= 1
            return True
        return False

    # -- Nuki API: account users (local.nuki_sandbox.accounts)

    def list_account_users(self, email: str | None = None, offset: int = 0, limit: int = 100) -> list[JSON]:
        with self._lock:
            self._apply_due_locked()
            return self._users.listing(email, offset, limit)

    def create_account_user(self, body: dict[str, JSON]) -> JSON:
        with self._lock:
            self._apply_due_locked()
            return self._users.create(body)

    def get_account_user(self, account_user_id: int) -> JSON:
        with self._lock:
            self._apply_due_locked()
            return self._users.get(account_user_id)

    def update_account_user(self, account_user_id: int, body: dict[str, JSON]) -> JSON:
        with self._lock:
            self._apply_due_locked()
            return self._users.update(account_user_id, body)

    def delete_account_user(self, account_user_id: int) -> None:
        with self._wake:
            self._apply_due_locked()
            self._users.delete(account_user_id)

    def add_account_user(self, email: str, name: str, language: str = "en") -> JSON:
        """Control: an account user added in Nuki Web (not by StayKey)."""
        with self._lock:
            return self._users.control_add(email, name, language)

    def account_users(self) -> list[JSON]:
        """Control: every account user (ground truth for tests and the simulator)."""
        with self._lock:
            self._apply_due_locked()
            return [u.to_json() for u in self._users.users.values()]

    def app_entry(self, smartlock_id: int, account_user_id: int, at: datetime | None = None) -> dict[str, JSON]:
        """An account user opens the lock with the Nuki app; the log entry and DEVICE_LOGS follow."""
        at = at or self._time.now()
        with self._lock:
            self._apply_due_locked()
            lock = self._control_lock(smartlock_id)
            auth = next(
                (
                    a
                    for a in lock.auths.values()
                    if a.type == APP
                    and a.account_user_id == account_user_id
                    and a.error is None
                    and a.enabled
                    and a.window.allows(at, lock.zone)
                ),
                None,
            )
            data: dict[str, JSON] = {
                "id": self._ids.new(),
                "smartlockId": smartlock_id,
                "deviceType": DEVICE_TYPES.get(lock.type, 4),
                "accountUserId": account_user_id,
            }
            if auth is not None:
                data["authId"] = auth.id
                auth.lock_count += 1
                auth.last_active = at
            data |= {
                "name": auth.name if auth is not None else "",
                "action": 1,  # unlock
                "trigger": 5,  # app
                "state": 0 if auth is not None else 9,  # success / rejected
                "autoUnlock": False,
                "date": format_date(at),
                "source": 0,
            }
            entry = self._add_log(lock, data, at)
            return {"success": auth is not None, "logId": entry.id}

    # -- Nuki API: logs

    def logs(
        self,
        smartlock_id: int | None = None,
        auth_id: str | None = None,
        account_user_id: int | None = None,
        from_date: datetime | None = None,
        to_date: datetime | None = None,
        action: int | None = None,
        older_than: str | None = None,
        limit: int = LOG_LIMIT_DEFAULT,
    ) -> list[JSON]:
        """Newest first; ``older_than`` is the ``id`` cursor; ``limit`` is capped at 50."""
        with self._lock:
            entries = self._logs if smartlock_id is None else self._lock_logs.get(smartlock_id, [])
            end = len(entries)
            if older_than is not None:
                ref = self._log_index.get(older_than)
                if ref is not None:
                    end = bisect.bisect_left(entries, ref.order, key=_log_order)
                else:  # an id we never issued: compare as ObjectIds, as a database would
                    entries = [e for e in entries if e.id < older_than]
                    end = len(entries)
            chosen: list[JSON] = []
            for i in range(end - 1, -1, -1):
                e = entries[i]
                if from_date is not None and e.date < from_date:
                    break  # oldest first: everything before is older still
                if (
                    (auth_id is None or e.data.get("authId") == auth_id)
                    and (account_user_id is None or e.data.get("accountUserId") == account_user_id)
                    and (action is None or e.data.get("action") == action)
                    and (to_date is None or e.date <= to_date)
                ):
                    chosen.append(dict(e.data))
                    if len(chosen) >= min(limit, LOG_LIMIT_MAX):
                        break
            return chosen

    def _add_log(self, lock: Lock, data: dict[str, JSON], date: datetime) -> LogEntry:
        entry = LogEntry(id=str(data["id"]), smartlock_id=lock.smartlock_id, date=date, data=data)
        bisect.insort(self._logs, entry, key=_log_order)
        bisect.insort(self._lock_logs.setdefault(lock.smartlock_id, []), entry, key=_log_order)
        self._log_index[entry.id] = entry
        self._emit("DEVICE_LOGS", {"feature": "DEVICE_LOGS", "smartlockLog": dict(data)})
        return entry

    # -- Nuki API: decentral webhooks

    def list_webhooks(self) -> list[JSON]:
        with self._lock:
            return [hook.to_json(with_secret=False) for hook in self._webhooks.values()]

    def register_webhook(self, url: str, features: list[str]) -> JSON:
        with self._lock:
            check_webhook_url(url)
            if not features:
                raise bad_param("webhookFeatures", "[]")
            hook = Webhook(id=self._next_webhook_id, url=url, features=list(features), secret=secrets.token_hex(32))
            self._next_webhook_id += 1
            self._webhooks[hook.id] = hook
            return hook.to_json(with_secret=True)

    def delete_webhook(self, webhook_id: int) -> None:
        with self._lock:
            if self._webhooks.pop(webhook_id, None) is None:
                raise forbidden()

    def _webhook_exists(self, webhook_id: int) -> bool:
        with self._lock:
            return webhook_id in self._webhooks

    def _emit(self, feature: str, payload: dict[str, JSON]) -> None:
        for hook in self._webhooks.values():
            if feature in hook.features:
                self._dispatcher.enqueue(hook.id, hook.url, hook.secret, feature, payload)

    def _emit_auth(self, auth: Auth, deleted: bool) -> None:
        self._auth_version += 1  # every change of an authorization comes through here
        body = auth.to_json()
        if self.lean_auth_webhooks:
            body = {k: body[k] for k in LEAN_AUTH_FIELDS if k in body}
        self._emit("DEVICE_AUTHS", {"feature": "DEVICE_AUTHS", "deleted": deleted, "smartlockAuth": body})

    def _emit_status(self, lock: Lock) -> None:
        self._emit(
            "DEVICE_STATUS",
            {
                "feature": "DEVICE_STATUS",
                "smartlockId": lock.smartlock_id,
                "state": lock.state_json(),
                "serverState": lock.server_state(),
                "adminPinState": 0,
            },
        )

    def deliveries(self) -> list[dict[str, JSON]]:
        return self._dispatcher.deliveries()

    def clear_deliveries(self) -> None:
        self._dispatcher.clear()

    def wait_for_deliveries(self, timeout: float = 5.0) -> bool:
        """Block until the webhook queue is empty (every delivery sent, failed or dropped)."""
        return self._dispatcher.wait_idle(timeout)

    # -- control: locks

    def add_smartlock(
        self,
        smartlock_id: int | None = None,
        name: str | None = None,
        keypad: bool = True,
        online: bool = True,
        lock_type: int = 4,
        keypad2: bool = False,
        timezone: str = "UTC",
        battery: Mapping[str, JSON] | None = None,
        subscription: str | None = DEFAULT_SUBSCRIPTION,
    ) -> JSON:
        zone = zone_named(timezone)
        _check_subscription(subscription)
        with self._lock:
            if smartlock_id is None:
                smartlock_id = max([FIRST_SMARTLOCK_ID - 1, *self._locks]) + 1
            if smartlock_id in self._locks:
                raise ControlError(409, f"smartlock {smartlock_id} exists already")
            now = self._time.now()
            lock = Lock(
                smartlock_id=smartlock_id,
                name=name or f"Smart Lock {smartlock_id}",
                type=lock_type,
                keypad=keypad,
                keypad2=keypad2,
                online=online,
                zone=zone,
                created=now,
                updated=now,
                subscription=subscription,
            )
            lock.battery.update(battery or {})
            self._locks[smartlock_id] = lock
            return lock.to_json()

    def _control_lock(self, smartlock_id: int) -> Lock:
        lock = self._locks.get(smartlock_id)
        if lock is None:
            raise ControlError(404, f"no smartlock {smartlock_id}")
        return lock

    def update_smartlock(
        self,
        smartlock_id: int,
        online: bool | None = None,
        name: str | None = None,
        keypad: bool | None = None,
        keypad2: bool | None = None,
        timezone: str | None = None,
        battery: Mapping[str, JSON] | None = None,
        sync_delay: float | None = None,
        subscription: str | Literal["unchanged"] | None = "unchanged",
    ) -> JSON:
        """Change a lock; DEVICE_STATUS goes out when it goes on/offline or a battery value changes.
        ``sync_delay`` gives the lock a delay of its own for writes accepted from now on (a
        negative value goes back to the sandbox's delay)."""
        zone = zone_named(timezone) if timezone is not None else None
        if subscription != "unchanged":
            _check_subscription(subscription)
        with self._wake:
            lock = self._control_lock(smartlock_id)
            if subscription != "unchanged":
                lock.subscription = subscription
            before = (lock.online, dict(lock.battery))
            if name is not None:
                lock.name = name
            if keypad is not None:
                lock.keypad = keypad
            if keypad2 is not None:
                lock.keypad2 = keypad2
            if zone is not None:
                lock.zone = zone
            if sync_delay is not None:
                lock.sync_delay = None if sync_delay < 0 else float(sync_delay)
            lock.battery.update(battery or {})
            if online is not None and online != lock.online:
                lock.online = online
                # Back online: what waited is sent now and lands after the sync delay. Offline: what
                # had not landed yet waits for the lock.
                due = self._time.monotonic() + self._sync_delay(lock) if online else None
                for write in self._pending:
                    if write.smartlock_id == smartlock_id:
                        write.due = due
                self._wake.notify_all()
            lock.updated = self._time.now()
            if (lock.online, lock.battery) != before:
                self._emit_status(lock)
            return lock.to_json()

    def smartlock_state(self, smartlock_id: int) -> JSON:
        """Everything about one lock, pending writes included (for tests and the demo)."""
        with self._lock:
            self._apply_due_locked()
            lock = self._control_lock(smartlock_id)
            now = self._time.monotonic()
            return {
                "smartlock": lock.to_json(),
                "online": lock.online,
                "timezone": str(lock.zone),
                "keypadCodes": self._keypad_codes(lock),
                "keypadCapacity": KEYPAD_CODE_CAPACITY,
                "auths": [auth.to_json() for auth in lock.auths.values()],
                "pending": [p.to_json(now) for p in self._pending if p.smartlock_id == smartlock_id],
            }

    def smartlock_states(self) -> list[JSON]:
        with self._lock:
            return [self.smartlock_state(smartlock_id) for smartlock_id in self._locks]

    # -- control: what happens at the door and in other apps

    def keypad_entry(self, smartlock_id: int, code: int, at: datetime | None = None) -> dict[str, JSON]:
        """Someone types a code on the keypad; the log entry and DEVICE_LOGS follow at once."""
        at = at or self._time.now()
        with self._lock:
            self._apply_due_locked()
            lock = self._control_lock(smartlock_id)
            if not lock.has_keypad:
                raise ControlError(400, f"smartlock {smartlock_id} has no keypad")
            auth = next(
                (a for a in lock.auths.values() if a.type == KEYPAD_CODE and a.code == code and a.error is None),
                None,
            )
            success = auth is not None and auth.enabled and auth.window.allows(at, lock.zone)
            data: dict[str, JSON] = {
                "id": self._ids.new(),
                "smartlockId": smartlock_id,
                "deviceType": DEVICE_TYPES.get(lock.type, 4),
            }
            if success and auth is not None:
                if auth.account_user_id is not None:
                    data["accountUserId"] = auth.account_user_id
                data["authId"] = auth.id
                auth.lock_count += 1
                auth.last_active = at
                self._auth_version += 1
            data |= {
                "name": auth.name if success and auth is not None else "",
                "action": 1,  # unlock
                "trigger": 255,  # keypad
                "state": 0 if success else 224,  # success / invalid code
                "autoUnlock": False,
                "date": format_date(at),
                "source": 1,  # keypad code
            }
            entry = self._add_log(lock, data, at)
            return {"success": success, "logId": entry.id}

    def add_log(self, smartlock_id: int, fields: Mapping[str, JSON], at: datetime | None = None) -> JSON:
        """Any other log entry (app unlock, manual lock...). ``fields`` are SmartlockLog fields."""
        at = at or self._time.now()
        with self._lock:
            lock = self._control_lock(smartlock_id)
            data: dict[str, JSON] = {
                "id": self._ids.new(),
                "smartlockId": smartlock_id,
                "deviceType": DEVICE_TYPES.get(lock.type, 4),
                "name": "",
                "state": 0,
                "autoUnlock": False,
                **{k: v for k, v in fields.items() if k not in {"id", "smartlockId", "date"}},
                "date": format_date(at),
            }
            return dict(self._add_log(lock, data, at).data)

    def add_foreign_auth(self, smartlock_id: int, draft: AuthDraft) -> JSON:
        """An authorization made elsewhere (Nuki app, Nuki Web): on the lock at once, DEVICE_AUTHS sent."""
        with self._lock:
            self._apply_due_locked()
            lock = self._control_lock(smartlock_id)
            self._check_draft(lock, draft)
            if draft.type == KEYPAD_CODE and draft.code in self._codes_taken(lock):
                raise conflict(f"The keypad code already exists on smartlock {smartlock_id}")
            return self._store_auth(lock, draft, self._time.now()).to_json()

    def change_auth_elsewhere(
        self,
        smartlock_id: int,
        auth_id: str,
        *,
        code: int | None = None,
        name: str | None = None,
        until: datetime | None = None,
        enabled: bool | None = None,
        remote_allowed: bool | None = None,
        week_days: int | None = None,
    ) -> JSON:
        """Someone edits an authorization in Nuki Web or the app: applied at once, DEVICE_AUTHS sent."""
        with self._lock:
            self._apply_due_locked()
            lock = self._control_lock(smartlock_id)
            auth = lock.auths.get(auth_id)
            if auth is None:
                raise ControlError(404, f"no auth {auth_id} on smartlock {smartlock_id}")
            if code is not None:
                check_code(code)
                if code in self._codes_taken(lock, auth_id):
                    raise conflict(f"The keypad code already exists on smartlock {smartlock_id}")
                auth.code = code
            if name is not None:
                check_name(name, auth.type)
                auth.name = name
            if until is not None:
                auth.window.until_date = until
            if enabled is not None:
                auth.enabled = enabled
            if remote_allowed is not None:
                auth.remote_allowed = remote_allowed
            if week_days is not None:
                auth.window.week_days = week_days
            auth.updated = self._time.now()
            self._emit_auth(auth, deleted=False)
            return auth.to_json()

    def delete_auth_elsewhere(self, smartlock_id: int, auth_id: str) -> None:
        """Someone deletes an authorization in Nuki Web or the app: gone at once, DEVICE_AUTHS sent."""
        with self._lock:
            self._apply_due_locked()
            lock = self._control_lock(smartlock_id)
            auth = lock.auths.pop(auth_id, None)
            if auth is None:
                raise ControlError(404, f"no auth {auth_id} on smartlock {smartlock_id}")
            self._pending = [p for p in self._pending if p.auth_id != auth_id]
            self._emit_auth(auth, deleted=True)
