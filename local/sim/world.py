"""The simulated world: StayKey's real services and real Nuki client, the Nuki sandbox, the AWS
services around them, a shop, an operator, guests and faults, on one seeded loop (`local.sim.loop`).

What is real: `Bookings`, `Sync`, `Activity`, `Reconciler`, `Rooms`, `ReadinessChecks`, `AccountUsers`
(guests as Nuki account users, for app access), the `WebhookReceiver` (signature check over the raw
body), the webhook processor's parsing and hints, `Store` (its DynamoDB requests, served
by `local.sim.dynamo`), `NukiClient` (its retries, backoff and error mapping, sending real HTTP
requests into the sandbox through `local.sim.transport`), the sandbox itself (Nuki's rules and
asynchrony, judged by Nuki's spec), and the operator's webhook registration command. What is
simulated: time, AWS's delivery (`local.sim.adapters`), and everyone around StayKey.

Every function invocation is a fiber; `invoke` runs one and reports whether it succeeded, as
Lambda reports to the queue or schedule that called it.
"""

from __future__ import annotations

import logging
import random
import re
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import greenlet

from local.nuki_sandbox.state import AuthDraft, NukiSandbox, Window
from local.nuki_sandbox.webhooks import Delivery
from local.sim.adapters import SimInbox, SimJobQueue, SimLockQueue, SimMailer, SimScheduler
from local.sim.dynamo import InMemoryDynamoDB
from local.sim.loop import MONOTONIC_ORIGIN, Killed, Loop
from local.sim.transport import CallRecord, NukiLink, session_for
from staykey.adapters.nuki_calls import observe_call
from staykey.core.models import BookingIn, BookingPatch, RoomIn
from staykey.edge.nuki_webhook import WebhookReceiver
from staykey.errors import StayKeyError
from staykey.nuki import NukiClient, NukiError
from staykey.observability import logger as service_logger
from staykey.observability import set_metric_sink
from staykey.services.accounts import AccountUsers
from staykey.services.activity import Activity
from staykey.services.backup import BackupPools
from staykey.services.bookings import Bookings
from staykey.services.checks import LockChecks
from staykey.services.polling import LogPoller
from staykey.services.readiness import ReadinessChecks
from staykey.services.reconciler import ReconcileIncomplete, Reconciler
from staykey.services.rooms import Rooms
from staykey.services.shared import SharedLooks
from staykey.services.staff import StaffCodes
from staykey.services.sync import Sync
from staykey.services.watch import Watcher, watch_settings
from staykey.services.webhooks import WebhookProcessor
from staykey.services.writes import NukiWriter
from staykey.settings import Settings, load_settings
from staykey.store import Store

TOKEN = "sim-nuki-token"  # noqa: S105 - the sandbox's token inside a simulation, not a secret
TABLE = "staykey-sim"
WEBHOOK_URL = "https://sim.invalid/webhooks/nuki"
NUKI_URL = "https://api.nuki.io"

# The template's defaults (template.yaml Parameters and function environment).
DEFAULT_ENV = {
    "TABLE_NAME": TABLE,
    "NUKI_API_URL": NUKI_URL,
    "PROVISION_LEAD_HOURS": "72",
    "GUEST_DATA_RETENTION_DAYS": "30",
    "ACTIVITY_RETENTION_DAYS": "365",
    "SCHEDULE_GROUP_NAME": "staykey-sim",
}


@dataclass
class SimConfig:
    """One simulated deployment: how it is configured and how hostile its world is."""

    webhooks: bool = True
    log_polling: bool = True  # LogPolling
    periodic: bool = True  # the sweep's and the watcher's schedules run
    reconcile_every: float = 86400.0  # ReconcileSchedule: the full sweep
    poll_every: float = 300.0  # LogPollSchedule: the watcher
    shared_every: float = 60.0  # the shared look's schedule (SharedLooks: ENABLED)
    hot_check_every: float = 900.0  # HotCheckMinutes
    gap_fill_every: float = 3600.0  # GapFillMinutes
    reconcile_concurrency: int = 5  # ReconcileConcurrency: reconcile-lock invocations at once
    readiness_every: float = 900.0  # ReadinessSchedule
    purge_every: float = 3600.0  # the account users' purge
    validate_spec: float = 1.0  # the share of Nuki calls judged by Nuki's spec
    sync_delay: float = 2.0
    nuki_latency: tuple[float, float] = (0.05, 0.3)
    # faults, as probabilities per event
    webhook_loss: float = 0.0
    webhook_duplicate: float = 0.0
    webhook_delay: tuple[float, float] = (0.05, 1.5)
    webhook_late: float = 0.0  # a delivery held back for minutes (reordered behind later ones)
    kill_after_write: float = 0.0  # an invocation dies after Nuki accepted its write
    lean_auth_webhooks: bool = False  # DEVICE_AUTHS bodies as Nuki's published example: no enabled, no dates
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class ShopBooking:
    """What the shop did with one booking: the ground truth of what it should be."""

    booking_id: str
    room_id: str
    locks: tuple[int, ...]
    request: dict[str, Any]
    created_at: float
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    ended_at: float | None = None  # checkout or cancel answered
    end_kind: str | None = None  # "checkout", "cancel"
    left_locks: dict[int, float] = field(default_factory=dict)  # lock -> when a move left it
    joined: dict[int, float] = field(default_factory=dict)  # lock -> since when the booking has it
    dates_changed_at: float = 0.0  # when a change last moved the stay
    room_changed_at: float = 0.0  # when a change last moved the booking to another room
    start_earlier_at: float = 0.0  # when a change last moved the stay's start earlier
    changed_at: float = 0.0  # when the shop's last change (PATCH) was answered
    emails: list[str] = field(default_factory=list)  # the guest's email, and each one a change gave
    email_sent: str | None = None  # a guest change's email, sent and not answered yet
    answered: bool = False  # the create was answered (a booking the shop knows about)
    failed_calls: int = 0
    rotations: int = 0  # PIN rotations answered 202 (the shop's and the operator's)
    staff: bool = False  # a staff code (local.sim.staff): no guest, no email, no arrival

    def move_to(self, new_locks: tuple[int, ...], now: float) -> None:
        """The shop's change put the booking on `new_locks`: when it left and joined each lock."""
        for lock_id in self.locks:
            if lock_id not in new_locks:
                self.left_locks[lock_id] = now
        for lock_id in new_locks:
            self.left_locks.pop(lock_id, None)
            if lock_id not in self.locks:
                self.joined[lock_id] = now
        self.locks = new_locks


@dataclass
class GuestEntry:
    at: float
    booking_id: str
    smartlock_id: int
    log_id: str
    delivered: bool = True  # its DEVICE_LOGS webhook was not lost


class World:
    def __init__(self, seed: int, start: datetime, config: SimConfig | None = None) -> None:
        from local.sim.invariants import Checker

        self.seed = seed
        self.config = config or SimConfig()
        self.loop = Loop(start, seed)
        self.rng: random.Random = self.loop.rng
        self.clock = _Clock(self.loop)
        self.notes: list[str] = []
        self.invocations = 0
        self.errors: Counter[str] = Counter()
        self.crashes: list[str] = []
        self.metrics: list[tuple[float, str, float, dict[str, str]]] = []
        self.metric_counts: Counter[str] = Counter()
        self.metric_times: dict[str, list[float]] = defaultdict(list)  # name -> when, in order
        self.follow_ups: dict[str, list[float]] = defaultdict(list)
        self.shop: dict[str, ShopBooking] = {}
        self.backup_rooms: dict[str, bool] = {}  # room -> backup codes on (services.backup)
        self._shop_queues: dict[str, list[tuple[str, Callable[[], bool]]]] = {}
        self.entries: list[GuestEntry] = []
        self.deliveries: list[Delivery] = []
        self.foreign_ids: set[str] = set()
        self.taken_over: set[str] = set()  # codes of ours given another PIN before StayKey recorded them
        self.online_since: dict[int, float] = {}
        self.nuki_ok_since = 0.0  # since when Nuki takes StayKey's writes again (after any outage)
        self.reads_ok_since = 0.0  # since when Nuki answers StayKey's reads again
        self.outage: str | None = None  # "5xx", "429", "403" spells answered by the transport
        self.token_rejected_at: list[float] = []
        self.forbidden_at: list[float] = []  # when Nuki refused a write of StayKey's with 403 (a spell)
        # lock -> foreign codes (auth ids) the reconciler listed there, in a run that completed: the
        # reconciler remembers every code it lists, so StayKey knows them from then on
        self.known_foreign: dict[int, set[str]] = defaultdict(set)
        self._reconciler_saw: dict[tuple[Any, int], set[str]] = {}
        self.lost_log_ids: set[str] = set()
        self.tampered: dict[int, float] = {}  # lock -> when someone last changed our code on it in Nuki Web
        self.idle_drift: dict[str, float] = {}  # auth id -> when a code of ours appeared on an idle lock
        # lock -> its readiness facts over time: (t, online, battery, keypad battery, subscription in force)
        self.lock_health: dict[int, list[tuple[float, bool, bool, bool, bool]]] = defaultdict(list)
        self.foreign_users: set[int] = set()  # account users someone else added (StayKey never deletes them)

        set_metric_sink(self._metric)
        service_logger.setLevel(logging.CRITICAL)
        self.sandbox = NukiSandbox(
            token=TOKEN,
            sync_delay=self.config.sync_delay,
            clock=self.clock,
            webhook_sink=self._on_delivery,
            seed=seed,
        )
        self.sandbox.lean_auth_webhooks = self.config.lean_auth_webhooks
        # (lock, auth id) -> when a DEVICE_AUTHS about that code reached StayKey's receiver
        self.told_auths: dict[tuple[int, str], list[float]] = defaultdict(list)
        self.ddb = InMemoryDynamoDB()
        for index in ("gsi2", "gsi3"):  # bookings by stay (readiness), account users due for purge
            self.ddb.add_index(index, f"{index}pk", f"{index}sk")
        self.store = Store(TABLE, client=self.ddb)
        env = {
            **DEFAULT_ENV,
            "LOG_POLLING": "ENABLED" if self.config.log_polling else "DISABLED",
            "HOT_CHECK_MINUTES": str(self.config.hot_check_every / 60),
            "GAP_FILL_MINUTES": str(self.config.gap_fill_every / 60),
            **self.config.env,
        }
        self.settings: Settings = load_settings(env)
        lo, hi = self.config.nuki_latency
        self.link = NukiLink(
            self.sandbox,
            self.loop,
            latency=lambda: self.rng.uniform(lo, hi),
            validate=self.config.validate_spec,
            sampler=random.Random(seed + 1),
            after_call=self._after_nuki_call,
            injected=self._injected,
        )
        self.nuki = self._nuki_client()
        # Background work's client: the same Nuki, its calls paced per container (template default).
        self.background_nuki = self._nuki_client(min_interval=1 / self.settings.background_nuki_calls_per_second)
        self.scheduler = SimScheduler(self)
        self.jobs = SimJobQueue(self)
        self.lock_queue = SimLockQueue(self)
        self.mailer = SimMailer(self)
        self.inbox = SimInbox(self)
        self.webhook_secret = ""
        self.accounts = AccountUsers(self.settings, self.store, lambda: self.nuki, self.clock)
        self.sync = Sync(
            self.settings,
            self.store,
            lambda: self.nuki,
            self.jobs,
            self.mailer,
            self.clock,
            writer=NukiWriter(self.store, lambda: self.nuki, self.clock, self.accounts),
            pin_choice=random.Random(seed + 2).choice,
            sleep=self.loop.sleep,
        )
        self.bookings = Bookings(
            self.settings,
            self.store,
            self.scheduler,  # type: ignore[arg-type]
            self.clock,
            self.sync,
            pin_choice=self.sync.pin_choice,
        )
        self.staff = StaffCodes(
            self.settings,
            self.store,
            self.scheduler,  # type: ignore[arg-type]
            self.clock,
            self.sync,
            self.bookings,
            pin_choice=self.sync.pin_choice,
        )
        self.pools = BackupPools(self.settings, self.store, self.clock, self.sync, pin_choice=self.sync.pin_choice)
        self.bookings.changed = lambda b: self.pools.release(b) if b.backups else None
        self.sync.after_round = lambda b: self.pools.mirror(b) if b.staff is not None and b.staff.usedBy else None
        self.activity = Activity(self.settings, self.store, self.clock)
        self.poller = LogPoller(self.activity, lambda: self.background_nuki)
        self.readiness = ReadinessChecks(
            self.settings, self.store, lambda: self.nuki, self.clock, metric=self._metric_call
        )
        self.reconciler = Reconciler(
            self.settings,
            self.store,
            lambda: self.background_nuki,
            lambda: self.bookings,
            lambda: self.sync,
            self.lock_queue,
            self.clock,
            metric=self._metric_call,
        )
        self.checks = LockChecks(
            self.settings,
            watch_settings(self.settings),
            self.store,
            lambda: self.background_nuki,
            self.reconciler,
            self.lock_queue,
            self.clock,
            metric=self._metric_call,
        )
        self.checks.check = self._checked(self.checks.check)  # type: ignore[method-assign]
        self.watcher = Watcher(
            watch_settings(self.settings), self.store, self.poller, self.checks, self.clock, metric=self._metric_call
        )
        self.shared = SharedLooks(self.store, self.checks, lambda: self.sync, self.clock, metric=self._metric_call)
        self.webhooks = WebhookProcessor(
            self.activity, self.sync, readiness=lambda: self.readiness, lock_queue=lambda: self.lock_queue
        )
        self.receiver = WebhookReceiver(
            secret=lambda _force: self.webhook_secret,
            inbox=self.inbox,
            max_body_bytes=self.settings.webhook_max_body_bytes,
            monotonic=self.loop.monotonic,
        )
        self.rooms = Rooms(
            self.store,
            self.clock,
            nuki=lambda: self.nuki,
            max_codes=self.settings.max_codes_per_lock,
            pool=self.settings.backup_pool_size,
        )
        self.checker = Checker(self)
        self.ddb.on_write = self._on_item_write
        self.outbox_events = 0
        self.dispatched: list[tuple[str, Any]] = []  # (partition, item) of each outbox event, in order
        self._apply_at: float | None = None
        self.loop.after_event.append(self._nuki_clock)
        self.loop.after_event.append(self.checker.after_event)

    def _nuki_client(self, min_interval: float = 0.0) -> NukiClient:
        return NukiClient(
            token=TOKEN,
            base_url=NUKI_URL,
            session=session_for(self.link),
            sleep=self.loop.sleep,
            monotonic=self.loop.monotonic,
            jitter=self.rng.uniform,
            timeout=(3.05, self.settings.nuki_timeout_seconds),
            max_attempts=self.settings.nuki_max_attempts,
            max_total_seconds=self.settings.nuki_max_total_seconds,
            on_request=observe_call,
            min_interval=min_interval,
        )

    # ------------------------------------------------------------------ running

    def start(self) -> None:
        """Register the webhook (if configured) and start the periodic functions."""
        if self.config.webhooks:
            self.spawn("register-webhook", self._register_webhook)
        if not self.config.periodic:
            return
        self.loop.call_later(self.rng.uniform(0, self.config.reconcile_every), self._reconcile_tick, "reconciler")
        self.loop.call_later(self.rng.uniform(0, self.config.readiness_every), self._readiness_tick, "readiness")
        self.loop.call_later(self.rng.uniform(0, self.config.purge_every), self._purge_tick, "account-purge")
        self.loop.call_later(self.rng.uniform(0, self.config.poll_every), self._poll_tick, "log-poller")
        if self.settings.shared_looks == "ENABLED":
            self.loop.call_later(self.rng.uniform(0, self.config.shared_every), self._shared_tick, "shared-look")

    def reconcile_now(self) -> None:
        """The sweep's schedule fires once (the account's codes, or every lock on the queue)."""
        self.spawn("reconciler", lambda: self.checks.sweep())

    def reconcile_all_now(self) -> None:
        """An operator's run over every lock (each read and reconciled on its own)."""
        self.spawn("reconciler", lambda: self.reconciler.enqueue_all(reason="manual"))

    def poll_now(self) -> None:
        """The log poller reads the account's log once, whatever the watcher would decide."""
        self.spawn("log-poller", lambda: self.poller.poll())

    def watch_now(self) -> None:
        """The watcher's schedule fires once."""
        self.spawn("log-poller", lambda: self.watcher.tick())

    def spawn(self, label: str, fn: Callable[[], Any], delay: float = 0.0) -> None:
        self.loop.call_later(delay, lambda: self.invoke(label, fn), name=label)

    def invoke(self, label: str, fn: Callable[[], Any]) -> bool:
        """One function invocation; False when it failed (its trigger retries it)."""
        self.invocations += 1
        try:
            fn()
        except Killed:
            self.errors["killed"] += 1
            return False
        except (StayKeyError, ReconcileIncomplete) as exc:
            self.errors[type(exc).__name__] += 1
            return False
        except Exception as exc:  # a crash of the function: a bug, shown as a violation
            self.errors[type(exc).__name__] += 1
            self.crashes.append(f"{label}: {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}")
            return False
        return True

    def _on_item_write(self, table: str, pk: str, sk: str, before: Any, after: Any) -> None:
        self.checker.on_item_write(table, pk, sk, before, after)
        if after is not None and sk.startswith("EVENT#"):
            # The outbox's dispatcher (on the table's stream) hands each event on and deletes its
            # item within seconds; the events themselves are not this simulator's subject. Without
            # it, outbox items would pile up in the partitions of bookings and locks, and every read
            # of those partitions would carry them, as no deployed table does.
            self.outbox_events += 1
            self.dispatched.append((pk, after))  # what the shop would get, for tests that read it
            self.ddb.discard(table, pk, sk)

    def run_for(self, seconds: float) -> None:
        self.loop.run_until(self.loop.t + seconds)

    def note(self, text: str) -> None:
        self.notes.append(f"{self.loop.t:9.1f} {text}")

    def count_follow_up(self, booking_id: str) -> None:
        self.follow_ups[booking_id].append(self.loop.t)

    def _metric(self, name: str, value: float, dims: Any) -> None:
        self.metrics.append((self.loop.t, name, value, dict(dims)))
        self.metric_counts[name] += 1
        self.metric_times[name].append(self.loop.t)

    def _metric_call(self, name: str, value: float = 1, dimensions: Any = None) -> None:
        self._metric(name, value, dimensions or {})

    def _nuki_clock(self) -> None:
        """Nuki applies accepted writes when they fall due, whether or not anyone asks (the
        sandbox's clock thread, on virtual time): an event at the next due write."""
        due = self.sandbox.next_due()
        if due is None:
            return
        at = due - MONOTONIC_ORIGIN
        if self._apply_at is None or at < self._apply_at:
            self._apply_at = at
            self.loop.call_at(at, self._apply_due, name="nuki-applies")

    def _apply_due(self) -> None:
        self._apply_at = None
        self.sandbox.advance()

    # ------------------------------------------------------------------ periodic functions

    def _reconcile_tick(self) -> None:
        self.loop.call_later(self.config.reconcile_every, self._reconcile_tick, "reconciler")
        self.invoke("reconciler", lambda: self.checks.sweep())

    def _readiness_tick(self) -> None:
        self.invoke("readiness", lambda: self.readiness.run())
        self.invoke("readiness", lambda: self.pools.run())  # the same function, after the checks
        self.loop.call_later(self.config.readiness_every, self._readiness_tick, "readiness")

    def _purge_tick(self) -> None:
        self.invoke("account-purge", lambda: self.accounts.purge())
        self.loop.call_later(self.config.purge_every, self._purge_tick, "account-purge")

    def _poll_tick(self) -> None:
        self.loop.call_later(self.config.poll_every, self._poll_tick, "log-poller")
        self.invoke("log-poller", lambda: self.watcher.tick())

    def _shared_tick(self) -> None:
        self.loop.call_later(self.config.shared_every, self._shared_tick, "shared-look")
        self.invoke("shared-look", lambda: self.shared.run())

    def _register_webhook(self) -> None:
        from tools.register_webhook import register

        def put_secret(secret: str) -> None:
            self.webhook_secret = secret

        register(WEBHOOK_URL, nuki=self.nuki, store=self.store, put_secret=put_secret, now=self.loop.now())

    # ------------------------------------------------------------------ Nuki side

    def add_lock(self, smartlock_id: int, *, keypad: bool = True, sync_delay: float | None = None) -> None:
        self.sandbox.add_smartlock(smartlock_id=smartlock_id, name=f"Lock {smartlock_id}", keypad=keypad)
        if sync_delay is not None:
            self.sandbox.update_smartlock(smartlock_id, sync_delay=sync_delay)
        self.online_since[smartlock_id] = self.loop.t
        self._health(smartlock_id)

    def set_online(self, smartlock_id: int, online: bool) -> None:
        self.sandbox.update_smartlock(smartlock_id, online=online)
        if online:
            self.online_since[smartlock_id] = self.loop.t
        self._health(smartlock_id)

    def set_health(self, smartlock_id: int, **battery: bool) -> None:
        """A battery goes critical or is changed (batteryCritical, keypadBatteryCritical)."""
        self.sandbox.update_smartlock(smartlock_id, battery=battery)
        self._health(smartlock_id)

    def set_subscription(self, smartlock_id: int, state: str) -> None:
        self.sandbox.update_smartlock(smartlock_id, subscription=state)
        self._health(smartlock_id)

    def _health(self, smartlock_id: int) -> None:
        lock = self.sandbox._locks[smartlock_id]
        facts = (
            self.loop.t,
            lock.online,
            bool(lock.battery["batteryCritical"]),
            bool(lock.battery["keypadBatteryCritical"]),
            lock.subscription in (None, "ACTIVE", "PENDING_CANCEL"),
        )
        self.lock_health[smartlock_id].append(facts)

    def at_risk(self, smartlock_id: int, access: str, t0: float, t1: float) -> tuple[bool, bool]:
        """Whether the lock had a readiness problem (for a guest with `access`) throughout [t0, t1],
        and whether it had one at any time in it (ground truth: what the sandbox was told)."""
        history = self.lock_health.get(smartlock_id, [])

        def problem(facts: tuple[float, bool, bool, bool, bool]) -> bool:
            _, online, battery, keypad, subscription = facts
            return not online or battery or (access == "keypad" and keypad) or not subscription

        before = [f for f in history if f[0] <= t0]
        during = [f for f in history if t0 < f[0] <= t1]
        states = ([before[-1]] if before else []) + during
        flags = [problem(f) for f in states]
        return (bool(flags) and all(flags), any(flags))

    def account_user(self, email: str) -> int | None:
        """The Nuki account user with this email, if the sandbox has one (ground truth)."""
        user = self.sandbox._users.by_email(email)
        return user.account_user_id if user is not None else None

    def add_foreign_app_user(self, smartlock_id: int, name: str) -> None:
        """Someone else's app user on a lock (the cleaner's, added in Nuki Web): never StayKey's."""
        from local.nuki_sandbox.model import NukiError as SandboxNukiError

        email = f"{name.lower().replace(' ', '.')}.{smartlock_id}@example.org"
        user = self.sandbox._users.by_email(email)
        uid = user.account_user_id if user else int(self.sandbox.add_account_user(email, name)["accountUserId"])
        self.foreign_users.add(uid)
        draft = AuthDraft(name=name, type=0, remote_allowed=False, window=Window(), account_user_id=uid)
        try:
            auth = self.sandbox.add_foreign_auth(smartlock_id, draft)
        except SandboxNukiError:
            return
        self.foreign_ids.add(str(auth["id"]))

    def is_online(self, smartlock_id: int) -> bool:
        return self.sandbox._locks[smartlock_id].online

    def add_foreign(self, smartlock_id: int, code: int, name: str) -> str | None:
        """A code someone added in Nuki Web (never StayKey's); None if Nuki refused it (409)."""
        from local.nuki_sandbox.model import NukiError as SandboxNukiError

        draft = AuthDraft(name=name, type=13, remote_allowed=False, window=Window(), code=code)
        try:
            auth = self.sandbox.add_foreign_auth(smartlock_id, draft)
        except SandboxNukiError:
            return None
        self.foreign_ids.add(str(auth["id"]))
        return str(auth["id"])

    def auths_on(self, smartlock_id: int) -> Iterator[Any]:
        """The sandbox's applied authorizations on a lock (ground truth)."""
        lock = self.sandbox._locks.get(smartlock_id)
        return iter(list(lock.auths.values())) if lock is not None else iter(())

    def pending_creates_on(self, smartlock_id: int) -> list[Any]:
        return [p for p in self.sandbox._pending if p.smartlock_id == smartlock_id and p.kind == "create"]

    def _injected(self, method: str, path: str) -> int | None:
        if self.outage == "5xx":
            return self.rng.choice((500, 502, 503, 504))
        if self.outage == "429":
            return 429
        if self.outage == "403" and _is_write(method, path):
            return 403
        return None

    def _after_nuki_call(self, call: CallRecord) -> None:
        if call.status == 401:
            self.token_rejected_at.append(self.loop.t)
        if call.status == 403 and call.fault:
            self.forbidden_at.append(self.loop.t)
        if call.status == 200 and call.method == "GET" and self.loop.current.startswith("reconcile:"):
            listed = _LOCK_AUTHS.match(call.path)
            if listed is not None:
                lock_id = int(listed.group(1))
                seen = {a.id for a in self.auths_on(lock_id) if a.id in self.foreign_ids}
                self._reconciler_saw[(greenlet.getcurrent(), lock_id)] = seen
        self.checker.on_nuki_call(call)
        if (
            _is_write(call.method, call.path)
            and call.status == 204
            and self.rng.random() < self.config.kill_after_write
        ):
            raise Killed("the invocation died after Nuki accepted its write")

    def set_outage(self, kind: str | None) -> None:
        """A spell of Nuki trouble: "5xx", "429", "401" (our token refused), "403" (every write
        refused: a lapsed subscription, a token without the permission), or None (over)."""
        was = self.outage
        self.outage = kind if kind in ("5xx", "429", "403") else None
        self.sandbox.token = "rotated-elsewhere" if kind == "401" else TOKEN
        if kind is None:
            self.nuki_ok_since = self.loop.t
            if was != "403":  # a 403 spell refused writes only
                self.reads_ok_since = self.loop.t

    def writes_refused(self) -> bool:
        """Nuki refuses StayKey's writes right now (a 403 spell), though it answers its reads."""
        return self.outage == "403"

    def reconciled(self, smartlock_id: int) -> None:
        """A reconcile of this lock completed: what it listed there is known to StayKey from now."""
        seen = self._reconciler_saw.pop((greenlet.getcurrent(), smartlock_id), None)
        if seen:
            self.known_foreign[smartlock_id] |= seen

    def _checked(self, check: Callable[..., str]) -> Callable[..., str]:
        """A look at a lock from a listing (the watcher's, the sweep's) that found it right: every
        foreign code listed there is remembered by StayKey (one it did not know is drift, and the
        check records it or sends the lock to the reconciler), so it is known from now on."""

        def checked(smartlock_id: int, listing: Any, *args: Any, **kwargs: Any) -> str:
            outcome = check(smartlock_id, listing, *args, **kwargs)
            if outcome == "clean":
                self.known_foreign[smartlock_id] |= {a.id for a in listing.of(smartlock_id) if a.id in self.foreign_ids}
            return outcome

        return checked

    def reconcile_failed(self, smartlock_id: int) -> None:
        self._reconciler_saw.pop((greenlet.getcurrent(), smartlock_id), None)

    # ------------------------------------------------------------------ webhooks from Nuki

    def _on_delivery(self, record: Delivery) -> None:
        self.deliveries.append(record)
        cfg = self.config
        lost = self.rng.random() < cfg.webhook_loss
        if record.feature == "DEVICE_LOGS" and lost:
            self.lost_log_ids.add(str(_log_id(record.body)))
        if lost:
            return
        copies = 2 if self.rng.random() < cfg.webhook_duplicate else 1
        for _ in range(copies):
            delay = self.rng.uniform(*cfg.webhook_delay)
            if self.rng.random() < cfg.webhook_late:
                delay += self.rng.uniform(30, 600)
            self.loop.call_later(delay, lambda: self.post_webhook(record.body, record.signature), "webhook-post")

    def post_webhook(self, body: bytes, signature: str) -> None:
        """Nuki POSTs to /webhooks/nuki: the receiver's function (signature, then queue)."""
        if self.invoke("nuki_webhook", lambda: self.receiver.accept(body, signature)):
            about = _auth_lock(body)
            if about is not None:
                self.told_auths[about].append(self.loop.t)

    def nuki_down(self) -> bool:
        """Nuki answers nothing useful to StayKey right now (an outage or our token refused)."""
        return self.outage is not None or self.sandbox.token != TOKEN

    def replay_webhook(self, index: int | None = None) -> bool:
        """Someone re-posts an earlier delivery, byte for byte with its genuine signature."""
        if not self.deliveries:
            return False
        record = self.deliveries[index if index is not None else self.rng.randrange(len(self.deliveries))]
        self.spawn("webhook-replay", lambda: self.post_webhook(record.body, record.signature))
        return True

    # ------------------------------------------------------------------ the operator

    def put_room(self, room_id: str, locks: tuple[int, ...], timezone: str = "Europe/Berlin", **times: Any) -> None:
        body = {"name": f"Room {room_id}", "smartlockIds": list(locks), "timezone": timezone, **times}
        self.rooms.put(room_id, RoomIn.model_validate(body))
        self.backup_rooms[room_id] = bool(times.get("backupCodes"))

    def room_access(self, room_id: str) -> dict[int, str]:
        room = self.store.get_room(room_id)
        assert room is not None
        return {lock_id: room.access_of(lock_id) for lock_id in room.smartlockIds}

    def room_locks(self, room_id: str) -> tuple[int, ...]:
        room = self.store.get_room(room_id)
        assert room is not None
        return tuple(room.smartlockIds)

    # ------------------------------------------------------------------ the shop

    def shop_call(self, booking_id: str, what: str, fn: Callable[[], Any]) -> Any:
        """A shop request through the service; a 5xx is a violation, a 4xx an answer."""
        self.invocations += 1
        try:
            return fn()
        except Killed:
            self.errors["killed"] += 1
            if booking_id in self.shop:
                self.shop[booking_id].failed_calls += 1
            return None
        except StayKeyError as exc:
            if exc.status >= 500:
                self.checker.violation("never_5xx", f"{what} {booking_id}: {exc.status} {exc.message}")
            return exc
        except Exception as exc:
            self.checker.violation("never_5xx", f"{what} {booking_id}: 500 {type(exc).__name__}: {exc}")
            self.crashes.append(f"shop {what}: {traceback.format_exc(limit=8)}")
            return None

    def book(
        self,
        booking_id: str,
        room_id: str,
        check_in: datetime | date,
        check_out: datetime | date,
        *,
        notify: bool = True,
        email: str | None = None,
    ) -> None:
        guest_email = email or f"{booking_id.lower()}@example.org"
        request = {
            "bookingId": booking_id,
            "roomId": room_id,
            "guest": {"name": f"Guest {booking_id}", "email": guest_email},
            "checkIn": _point(check_in),
            "checkOut": _point(check_out),
            "notifyGuest": notify,
        }
        locks = self.room_locks(room_id)
        self.shop[booking_id] = ShopBooking(booking_id, room_id, locks, request, self.loop.t)
        self.shop[booking_id].joined = dict.fromkeys(locks, self.loop.t)
        self.shop[booking_id].emails.append(guest_email)
        self._shop(booking_id, f"shop:create:{booking_id}", lambda: self._create(booking_id))

    def _shop(self, booking_id: str, label: str, attempt: Callable[[], bool]) -> None:
        """One request of the shop about a booking. The shop sends a booking's requests one after
        the other (each answered before the next), and sends a request again, 30 s later, when it
        got no answer (the function died): concurrent changes of one booking have no order a shop
        could rely on."""
        queue = self._shop_queues.setdefault(booking_id, [])
        queue.append((label, attempt))
        if len(queue) == 1:
            self.spawn(label, lambda: self._shop_next(booking_id))

    def _shop_next(self, booking_id: str) -> None:
        queue = self._shop_queues[booking_id]
        _, attempt = queue[0]
        while not attempt():
            self.loop.sleep(30)
        queue.pop(0)
        if queue:
            self.spawn(queue[0][0], lambda: self._shop_next(booking_id))

    def _create(self, booking_id: str) -> bool:
        sb = self.shop[booking_id]
        answer = self.shop_call(
            booking_id, "POST /bookings", lambda: self.bookings.create(BookingIn.model_validate(sb.request))
        )
        if answer is None:
            return False
        if isinstance(answer, StayKeyError):
            self.note(f"create {booking_id} refused: {answer.status} {answer.message}")
            return True
        booking, _ = answer
        sb.answered = True
        sb.valid_from, sb.valid_until = booking.validFrom, booking.validUntil
        return True

    def send_bad(self, label: str, request: dict[str, Any]) -> None:
        """The shop sends a request the contract refuses: it must get a 4xx and change nothing."""

        def call() -> None:
            try:
                parsed = BookingIn.model_validate(request)
            except ValueError:
                return  # refused at the edge (422), as the handler would
            self.shop_call(
                request.get("bookingId", "?"), f"POST /bookings ({label})", lambda: self.bookings.create(parsed)
            )

        self.spawn(f"shop:bad:{label}", call)

    def patch(self, booking_id: str, **change: Any) -> None:
        self._shop(booking_id, f"shop:patch:{booking_id}", lambda: self._patch(booking_id, change))

    def _patch(self, booking_id: str, change: dict[str, Any]) -> bool:
        sb = self.shop[booking_id]
        body = {k: _point(v) if k in ("checkIn", "checkOut") else v for k, v in change.items()}
        if "guest" in change:
            # Until the answer, the booking may have the new guest already (the change is written
            # before its round runs, and other rounds of the booking go on meanwhile).
            sb.email_sent = str(change["guest"]["email"])
        answer = self.shop_call(
            booking_id,
            "PATCH /bookings",
            lambda: self.bookings.patch(booking_id, BookingPatch.model_validate(body)),
        )
        if answer is None:
            return False
        sb.email_sent = None
        if isinstance(answer, StayKeyError):
            return True
        now = self.loop.t
        sb.changed_at = now
        if answer.status.value == "provisioning":
            # A change gives its writes a fresh chance: the deadline counts from it (CONFIRM_MIN).
            self.checker.provisioning_since[booking_id] = now
        if "roomId" in change:
            sb.move_to(self.room_locks(change["roomId"]), now)
            if sb.room_id != change["roomId"]:
                sb.room_changed_at = now
            sb.room_id = change["roomId"]
        if sb.valid_from is not None and answer.validFrom < sb.valid_from:
            sb.start_earlier_at = now
        if "guest" in change:
            sb.emails.append(str(change["guest"]["email"]))
        if {"checkIn", "checkOut", "roomId"} & set(change):
            sb.dates_changed_at = now
        sb.valid_from, sb.valid_until = answer.validFrom, answer.validUntil
        for key in ("checkIn", "checkOut"):
            if key in body:
                sb.request[key] = body[key]
        return True

    def end(self, booking_id: str, kind: str) -> None:
        self._shop(booking_id, f"shop:{kind}:{booking_id}", lambda: self._end(booking_id, kind))

    def _end(self, booking_id: str, kind: str) -> bool:
        sb = self.shop[booking_id]
        fn = self.bookings.checkout if kind == "checkout" else self.bookings.cancel
        answer = self.shop_call(booking_id, kind, lambda: fn(booking_id))
        if answer is None:
            return False
        if isinstance(answer, StayKeyError):
            return True
        if sb.ended_at is None:
            sb.ended_at, sb.end_kind = self.loop.t, kind
        return True

    def rotate(self, booking_id: str, operator: bool = False) -> None:
        """A new PIN for the booking: asked for by the shop (one request after the other, repeated
        when unanswered), or by an operator in the console (whenever they click, through the same
        service)."""
        if operator:
            self.spawn(f"operator:rotate:{booking_id}", lambda: self._rotate(booking_id, "console"))
        else:
            self._shop(booking_id, f"shop:rotate:{booking_id}", lambda: self._rotate(booking_id, "shop"))

    def _rotate(self, booking_id: str, who: str) -> bool:
        answer = self.shop_call(booking_id, f"rotate-pin ({who})", lambda: self.bookings.rotate_pin(booking_id))
        if answer is None:
            return False
        if isinstance(answer, StayKeyError):
            self.note(f"rotate {booking_id} ({who}) refused: {answer.status} {answer.message}")
            return True
        self.shop[booking_id].rotations += 1
        return True

    # ------------------------------------------------------------------ guests

    def guest_opens_app(self, booking_id: str, smartlock_id: int) -> bool:
        """The guest opens the door with the Nuki app; True if it opened with the booking's authorization."""
        booking = self.store.get_booking(booking_id)
        sb = self.shop.get(booking_id)
        if booking is None or sb is None:
            return False
        uid = self.account_user(sb.emails[-1])
        if uid is None:
            return False
        result = self.sandbox.app_entry(smartlock_id, uid, at=self.loop.now())
        logged = self.sandbox._log_index.get(str(result["logId"]))
        used = logged.data.get("authId") if logged is not None else None
        opened_by = next((a for a in self.auths_on(smartlock_id) if a.id == used), None)
        if result["success"] and opened_by is not None and opened_by.name == booking.authName:
            self.entries.append(GuestEntry(self.loop.t, booking_id, smartlock_id, str(result["logId"])))
        return bool(result["success"])

    def guest_types_pin(self, booking_id: str, smartlock_id: int) -> bool:
        """The guest types the PIN we gave the shop; True if the door opened."""
        booking = self.store.get_booking(booking_id)
        if booking is None:
            return False
        pin, name = booking.pin, booking.authName
        given = next((b for b in booking.backups if b.smartlockId == smartlock_id), None)
        if given is not None:  # the email named a backup code for this door: the guest types that
            pool = self.store.get_booking(given.poolId)
            pin, name = given.pin, pool.authName if pool is not None else name
        result = self.sandbox.keypad_entry(smartlock_id, int(pin), at=self.loop.now())
        opened_by = next((a for a in self.auths_on(smartlock_id) if a.code == int(pin)), None)
        if result["success"] and opened_by is not None and opened_by.name == name:
            # the booking's own code opened it (not someone else's that happens to share the PIN)
            self.entries.append(GuestEntry(self.loop.t, booking_id, smartlock_id, str(result["logId"])))
        return bool(result["success"])

    # ------------------------------------------------------------------ reading the truth

    def edit_in_nuki_web(self, lock_id: int, auth: Any, **changes: Any) -> None:
        """Someone changes a code of ours in Nuki Web (`changes`: the sandbox's `code`, `until`,
        `enabled`). One whose PIN is changed before StayKey recorded its id keeps nothing of our
        records but a name anyone can type: from then on it is someone else's (never to be touched;
        StayKey cannot tell it from a code an operator made under that name)."""
        self.tampered[lock_id] = self.loop.t
        self.sandbox.change_auth_elsewhere(lock_id, auth.id, **changes)
        if "code" in changes and auth.id not in self.checker.recorded_ids:
            self.foreign_ids.add(auth.id)
            self.taken_over.add(auth.id)
            self.note(f"{auth.name} on lock {lock_id} got another PIN before StayKey recorded it: someone else's")

    def booking_item(self, booking_id: str) -> dict[str, Any] | None:
        """The booking as last written (decoded once, at the write)."""
        return self.checker.items.get(booking_id)


class _Clock:
    """The services' Clock and the sandbox's clock, both reading the loop."""

    def __init__(self, loop: Loop) -> None:
        self.loop = loop

    def now(self) -> datetime:
        return self.loop.now()

    def monotonic(self) -> float:
        return self.loop.monotonic()


def _point(value: datetime | date | str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value.isoformat()


def _auth_lock(body: bytes) -> tuple[int, str] | None:
    import json

    try:
        payload = json.loads(body)
        if payload.get("feature") != "DEVICE_AUTHS":
            return None
        return int(payload["smartlockAuth"]["smartlockId"]), str(payload["smartlockAuth"]["id"])
    except (ValueError, KeyError, TypeError):
        return None


_LOCK_AUTHS = re.compile(r"^/smartlock/(\d+)/auth$")


def _is_write(method: str, path: str) -> bool:
    """A request that changes a lock's codes (create, update, delete, one or many)."""
    return method in ("PUT", "POST", "DELETE") and "/auth" in path


def _log_id(body: bytes) -> str | None:
    import json

    try:
        return str(json.loads(body)["smartlockLog"]["id"])
    except (ValueError, KeyError, TypeError):
        return None


__all__ = ["GuestEntry", "ShopBooking", "SimConfig", "World"]


def days(n: float) -> timedelta:
    return timedelta(days=n)


__all__ += ["NukiError", "days"]


def explain(world: World, booking_id: str, limit: int = 60, around: float | None = None, span: float = 3600) -> str:
    """A booking's story in the run: its writes and the Nuki calls on its locks (to read a failure),
    within `span` seconds of `around` if given; log polls left out."""
    lines = list(world.checker.history.get(booking_id, []))
    item = world.booking_item(booking_id)
    locks = {int(lk["smartlockId"]) for lk in (item or {}).get("locks", [])}
    sb = world.shop.get(booking_id)
    if sb is not None:
        locks |= set(sb.locks) | set(sb.left_locks)
    for call in world.link.calls:
        if call.path.endswith("/log"):
            continue
        if any(str(lock_id) in call.path for lock_id in locks) or call.path == "/smartlock/auth":
            lines.append(f"{call.at:9.1f}   nuki {call.method} {call.path} -> {call.status}")
    lines.sort(key=lambda line: float(line.split()[0]))
    if around is not None:
        lines = [line for line in lines if abs(float(line.split()[0]) - around) <= span]
    return "\n".join(lines[-limit:])
