"""Builds the services with their real collaborators, lazily and once per container.

Nothing connects at import time; tests build services with fakes or moto-backed clients instead,
or call `reset()` after changing the environment.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any

from staykey.settings import get_settings

if TYPE_CHECKING:
    from staykey.console.web import Services
    from staykey.edge.nuki_webhook import WebhookReceiver
    from staykey.events.dispatch import DeliveryQueue, Dispatcher
    from staykey.events.endpoints import EndpointSecrets, EndpointStore, Resolver
    from staykey.events.feed import Feed
    from staykey.events.sender import Sender
    from staykey.nuki import NukiClient
    from staykey.services.accounts import AccountUsers
    from staykey.services.activity import Activity
    from staykey.services.audit import Audit
    from staykey.services.backup import BackupPools
    from staykey.services.bookings import Bookings
    from staykey.services.checks import LockChecks
    from staykey.services.events import EventsService
    from staykey.services.locks import Locks
    from staykey.services.polling import LogPoller
    from staykey.services.readiness import ReadinessChecks
    from staykey.services.reconciler import Reconciler
    from staykey.services.rooms import Rooms
    from staykey.services.search import BookingSearch
    from staykey.services.shared import SharedLooks
    from staykey.services.staff import StaffCodes
    from staykey.services.sync import Sync
    from staykey.services.watch import Watcher
    from staykey.services.webhooks import WebhookProcessor
    from staykey.store import Store


@lru_cache(maxsize=1)
def store() -> Store:
    from staykey.store import Store

    return Store(get_settings().table_name)


def _nuki_client(min_interval: float = 0.0) -> NukiClient:
    from staykey.adapters import secrets
    from staykey.adapters.nuki_calls import observe_call
    from staykey.nuki import NukiClient

    s = get_settings()
    return NukiClient(
        token=secrets.nuki_token,
        base_url=s.nuki_api_url,
        timeout=(3.05, s.nuki_timeout_seconds),
        max_attempts=s.nuki_max_attempts,
        max_total_seconds=s.nuki_max_total_seconds,
        on_request=observe_call,
        min_interval=min_interval,
    )


@lru_cache(maxsize=1)
def nuki() -> NukiClient:
    return _nuki_client()


@lru_cache(maxsize=1)
def background_nuki() -> NukiClient:
    """The Nuki client of background work (the watcher, the sweep, reconciling a lock): its calls are
    paced (BACKGROUND_NUKI_CALLS_PER_SECOND per container), so background work never bursts."""
    return _nuki_client(1 / get_settings().background_nuki_calls_per_second)


@lru_cache(maxsize=1)
def sync() -> Sync:
    """The sync engine: puts codes on the locks, confirms them, tells the guest, takes them off."""
    from staykey.adapters.jobs import SqsJobQueue
    from staykey.adapters.mail import SesMailer
    from staykey.core.timeutil import SystemClock
    from staykey.services.sync import Sync
    from staykey.services.writes import NukiWriter

    s = get_settings()
    clock = SystemClock()
    out = Sync(
        settings=s,
        store=store(),
        nuki=nuki,
        jobs=SqsJobQueue(s.lifecycle_queue_url),
        mailer=SesMailer(s.sender_email),
        clock=clock,
        writer=NukiWriter(store(), nuki, clock, accounts()),
        pin_choice=secrets_choice(),
        sleep=time.sleep,
    )
    out.after_round = lambda b: backup_pools().mirror(b) if b.staff is not None and b.staff.usedBy else None
    return out


@lru_cache(maxsize=1)
def accounts() -> AccountUsers:
    """Guests as Nuki account users: found or created for app access, deleted at the privacy purge."""
    from staykey.core.timeutil import SystemClock
    from staykey.services.accounts import AccountUsers

    return AccountUsers(get_settings(), store(), nuki, SystemClock())


@lru_cache(maxsize=1)
def readiness() -> ReadinessChecks:
    """The readiness checks of every booking's locks before the arrival."""
    from staykey.core.timeutil import SystemClock
    from staykey.services.readiness import ReadinessChecks

    return ReadinessChecks(get_settings(), store(), nuki, SystemClock())


@lru_cache(maxsize=1)
def bookings() -> Bookings:
    """The shop's and the operator's commands on bookings (an ended one's backup codes go)."""
    from staykey.adapters.schedules import Scheduler
    from staykey.core.timeutil import SystemClock
    from staykey.services.bookings import Bookings

    s = get_settings()
    out = Bookings(s, store(), Scheduler(s), SystemClock(), sync(), pin_choice=secrets_choice())
    out.changed = lambda b: backup_pools().release(b) if b.backups else None
    return out


@lru_cache(maxsize=1)
def backup_pools() -> BackupPools:
    """The locks' backup codes (services.backup)."""
    from staykey.core.timeutil import SystemClock
    from staykey.services.backup import BackupPools

    return BackupPools(get_settings(), store(), SystemClock(), sync(), pin_choice=secrets_choice())


@lru_cache(maxsize=1)
def staff_codes() -> StaffCodes:
    """The staff codes (core.staff), over the bookings' engine."""
    from staykey.adapters.schedules import Scheduler
    from staykey.core.timeutil import SystemClock
    from staykey.services.staff import StaffCodes

    s = get_settings()
    return StaffCodes(s, store(), Scheduler(s), SystemClock(), sync(), bookings(), pin_choice=secrets_choice())


def secrets_choice() -> Callable[[str], str]:
    """PINs come from a cryptographic source."""
    import secrets as crypto

    return crypto.choice


@lru_cache(maxsize=1)
def webhook_processor() -> WebhookProcessor:
    from staykey.adapters.reconcile_queue import SqsLockQueue
    from staykey.services.webhooks import WebhookProcessor

    queue_url = get_settings().reconcile_queue_url
    lock_queue = (lambda: SqsLockQueue(queue_url)) if queue_url else None
    return WebhookProcessor(activity(), sync(), readiness=readiness, lock_queue=lock_queue)


def rooms() -> Rooms:
    """Not cached: it holds nothing of its own; the store is the cached one, Nuki is asked lazily."""
    from staykey.core.timeutil import SystemClock
    from staykey.services.rooms import Rooms

    s = get_settings()
    return Rooms(store(), SystemClock(), nuki=lambda: nuki(), max_codes=s.max_codes_per_lock, pool=s.backup_pool_size)


@lru_cache(maxsize=1)
def activity() -> Activity:
    from staykey.core.timeutil import SystemClock
    from staykey.services.activity import Activity

    return Activity(settings=get_settings(), store=store(), clock=SystemClock())


@lru_cache(maxsize=1)
def log_poller() -> LogPoller:
    """The account log's poller (it keeps which locks are ours for half an hour per container)."""
    from staykey.services.polling import LogPoller

    return LogPoller(activity(), background_nuki)


@lru_cache(maxsize=1)
def checks() -> LockChecks:
    """Many locks' keypad codes at once, and which need the reconciler (the watcher's and the sweep's)."""
    from staykey.adapters.reconcile_queue import SqsLockQueue
    from staykey.core.timeutil import SystemClock
    from staykey.services.checks import LockChecks
    from staykey.services.watch import watch_settings

    s = get_settings()
    return LockChecks(
        s, watch_settings(s), store(), background_nuki, reconciler(), SqsLockQueue(s.reconcile_queue_url), SystemClock()
    )


def watcher() -> Watcher:
    """The watcher (what to read when): not cached, its parts are."""
    from staykey.core.timeutil import SystemClock
    from staykey.services.watch import Watcher, watch_settings

    return Watcher(watch_settings(get_settings()), store(), log_poller(), checks(), SystemClock())


def shared_looks() -> SharedLooks:
    """The shared look (the writes nobody waits for, confirmed together): not cached, its parts are."""
    from staykey.core.timeutil import SystemClock
    from staykey.services.shared import SharedLooks

    return SharedLooks(store(), checks(), sync, SystemClock())


@lru_cache(maxsize=1)
def webhook_receiver() -> WebhookReceiver:
    from staykey.adapters import secrets
    from staykey.edge.nuki_webhook import SqsWebhookInbox, WebhookReceiver

    s = get_settings()
    return WebhookReceiver(
        secret=secrets.webhook_secret,
        inbox=SqsWebhookInbox(s.webhook_queue_url),
        max_body_bytes=s.webhook_max_body_bytes,
    )


@lru_cache(maxsize=1)
def reconciler() -> Reconciler:
    from staykey.adapters.reconcile_queue import SqsLockQueue
    from staykey.core.timeutil import SystemClock
    from staykey.services.reconciler import Reconciler

    s = get_settings()
    return Reconciler(
        settings=s,
        store=store(),
        nuki=background_nuki,
        bookings=bookings,
        sync=sync,
        queue=SqsLockQueue(s.reconcile_queue_url),
        clock=SystemClock(),
    )


@lru_cache(maxsize=1)
def events_service() -> EventsService:
    from datetime import timedelta

    from staykey.core.timeutil import SystemClock
    from staykey.services.events import EventsService

    s = get_settings()
    return EventsService(
        store=endpoint_store(),
        secrets=endpoint_secrets(),
        feed=feed(),
        clock=SystemClock(),
        allow_loopback=s.webhook_allow_loopback,
        max_endpoints=s.max_webhook_endpoints,
        secret_grace=timedelta(hours=s.webhook_secret_grace_hours),
        resolve=_resolver(),
    )


def _resolver() -> Resolver | None:
    from staykey.events.endpoints import hosts_resolve

    return hosts_resolve if get_settings().webhook_resolve == "hosts" else None


@lru_cache(maxsize=1)
def endpoint_store() -> EndpointStore:
    from staykey.events.endpoints import EndpointStore

    return EndpointStore(get_settings().table_name)


@lru_cache(maxsize=1)
def endpoint_secrets() -> EndpointSecrets:
    from staykey.events.endpoints import EndpointSecrets

    return EndpointSecrets(get_settings().webhook_secret_prefix)


@lru_cache(maxsize=1)
def feed() -> Feed:
    from staykey.events.feed import Feed

    s = get_settings()
    return Feed(s.table_name, s.event_retention_days, s.event_feed_hole_seconds)


@lru_cache(maxsize=1)
def delivery_queue() -> DeliveryQueue:
    from staykey.events.dispatch import DeliveryQueue

    s = get_settings()
    return DeliveryQueue(s.delivery_queue_url, s.delivery_dead_letter_url)


@lru_cache(maxsize=1)
def dispatcher() -> Dispatcher:
    from staykey.events.dispatch import Dispatcher, EventBus

    s = get_settings()
    return Dispatcher(s.table_name, feed(), EventBus(s.event_bus_name), delivery_queue(), endpoint_store())


@lru_cache(maxsize=1)
def webhook_sender() -> Sender:
    from staykey.core.timeutil import SystemClock
    from staykey.events.sender import Sender

    s = get_settings()
    return Sender(
        endpoints=endpoint_store(),
        secrets=endpoint_secrets(),
        queue=delivery_queue(),
        clock=SystemClock(),
        retry_seconds=s.webhook_retry_seconds,
        allow_loopback=s.webhook_allow_loopback,
        timeout_seconds=s.webhook_timeout_seconds,
        resolve=_resolver(),
    )


@lru_cache(maxsize=1)
def search() -> BookingSearch:
    from staykey.core.timeutil import SystemClock
    from staykey.services.search import BookingSearch

    return BookingSearch(store(), SystemClock())


@lru_cache(maxsize=1)
def locks() -> Locks:
    from staykey.core.timeutil import SystemClock
    from staykey.services.locks import Locks

    return Locks(get_settings(), store(), SystemClock())


@lru_cache(maxsize=1)
def audit() -> Audit:
    from staykey.core.timeutil import SystemClock
    from staykey.services.audit import Audit

    return Audit(store(), SystemClock(), get_settings().audit_retention_days)


@lru_cache(maxsize=1)
def console() -> Services:
    """The console's collaborators: the same services as the shop API, and its sign-in."""
    from staykey.adapters import secrets
    from staykey.console.auth import CognitoSignIn, TokenVerifier
    from staykey.console.views import ConsoleViews
    from staykey.console.web import Services
    from staykey.core.timeutil import SystemClock

    s = get_settings()
    clock = SystemClock()
    queues = [url for url in s.dead_letter_queue_urls.split(",") if url]
    return Services(
        settings=s,
        store=store(),
        search=search(),
        locks=locks(),
        activity=activity(),
        audit=audit(),
        bookings=bookings,
        verifier=TokenVerifier(s.cognito_issuer, s.cognito_client_id, s.jwks_url),
        sign_in=CognitoSignIn(s.cognito_client_id),
        secret=secrets.console_secret,
        views=ConsoleViews(
            s,
            store(),
            search(),
            locks(),
            queue_depths=lambda: dead_letter_depths(queues),
            webhook_fallbacks=lambda now: activity().polled_first(now - timedelta(hours=24)),
            activity=activity(),
            audit=audit(),
        ),
        clock=clock,
        staff_codes=staff_codes,
        backup_pools=backup_pools,
    )


@lru_cache(maxsize=1)
def _sqs() -> Any:
    import boto3

    return boto3.client("sqs")


def dead_letter_depths(queue_urls: list[str]) -> dict[str, int]:
    """Messages waiting in each dead-letter queue (by queue name; asked at once); a queue that
    cannot be read: -1."""
    from staykey.store import fanout

    sqs = _sqs()

    def depth(url: str) -> int:
        try:
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
            return int(attrs["Attributes"]["ApproximateNumberOfMessages"])
        except Exception:  # the page still renders; the count says it is unknown
            return -1

    depths = fanout.each([partial(depth, url) for url in queue_urls])
    return {url.rsplit("/", 1)[-1]: n for url, n in zip(queue_urls, depths, strict=True)}


def reset() -> None:
    """Forget every built service and the settings (tests, the local stack after env changes)."""
    from staykey.adapters import secrets
    from staykey.settings import get_settings as settings_cache

    built = (store, nuki, background_nuki, sync, bookings, webhook_processor, activity, webhook_receiver)
    later = (reconciler, log_poller, checks, settings_cache)
    events = (events_service, endpoint_store, endpoint_secrets, feed, delivery_queue, dispatcher, webhook_sender)
    console_parts = (search, locks, audit, _sqs)
    for cached in (*built, *later, *events, *console_parts, accounts, readiness):
        cached.cache_clear()
    secrets.clear_cache()
