"""Builds the services with their real collaborators, lazily and once per container.

Nothing connects at import time; tests build services with fakes or moto-backed clients instead,
or call `reset()` after changing the environment.
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

from staykey.settings import get_settings

if TYPE_CHECKING:
    from staykey.console.app import Services
    from staykey.nuki import NukiClient
    from staykey.services.activity import Activity
    from staykey.services.audit import Audit
    from staykey.services.lifecycle import Lifecycle
    from staykey.services.locks import Locks
    from staykey.services.reconciler import Reconciler
    from staykey.services.search import BookingSearch
    from staykey.store import Store
    from staykey.webhooks import WebhookReceiver


@lru_cache(maxsize=1)
def store() -> Store:
    from staykey.store import Store

    return Store(get_settings().table_name)


@lru_cache(maxsize=1)
def nuki() -> NukiClient:
    from staykey import secrets
    from staykey.nuki import NukiClient

    s = get_settings()
    return NukiClient(
        token=secrets.nuki_token,
        base_url=s.nuki_api_url,
        timeout=(3.05, s.nuki_timeout_seconds),
        max_attempts=s.nuki_max_attempts,
        max_total_seconds=s.nuki_max_total_seconds,
    )


@lru_cache(maxsize=1)
def lifecycle() -> Lifecycle:
    from staykey.jobs import SqsJobQueue
    from staykey.mail import SesMailer
    from staykey.schedules import Scheduler
    from staykey.services.lifecycle import Lifecycle
    from staykey.timeutil import SystemClock

    s = get_settings()
    return Lifecycle(
        settings=s,
        store=store(),
        nuki=nuki,
        scheduler=Scheduler(s),
        jobs=SqsJobQueue(s.lifecycle_queue_url),
        mailer=SesMailer(s.sender_email),
        clock=SystemClock(),
    )


@lru_cache(maxsize=1)
def activity() -> Activity:
    from staykey.services.activity import Activity
    from staykey.timeutil import SystemClock

    # lifecycle and nuki are looked up when needed (only DEVICE_AUTHS needs the lifecycle).
    return Activity(
        settings=get_settings(),
        store=store(),
        clock=SystemClock(),
        lifecycle=lambda: lifecycle(),
        nuki=lambda: nuki(),
    )


@lru_cache(maxsize=1)
def webhook_receiver() -> WebhookReceiver:
    from staykey import secrets
    from staykey.webhooks import SqsWebhookInbox, WebhookReceiver

    s = get_settings()
    return WebhookReceiver(
        secret=secrets.webhook_secret,
        inbox=SqsWebhookInbox(s.webhook_queue_url),
        max_body_bytes=s.webhook_max_body_bytes,
    )


@lru_cache(maxsize=1)
def reconciler() -> Reconciler:
    from staykey.reconcile_queue import SqsLockQueue
    from staykey.services.reconciler import Reconciler
    from staykey.timeutil import SystemClock

    s = get_settings()
    return Reconciler(
        settings=s,
        store=store(),
        nuki=lambda: nuki(),
        lifecycle=lambda: lifecycle(),
        queue=SqsLockQueue(s.reconcile_queue_url),
        clock=SystemClock(),
    )


@lru_cache(maxsize=1)
def search() -> BookingSearch:
    from staykey.services.search import BookingSearch
    from staykey.timeutil import SystemClock

    return BookingSearch(store(), SystemClock())


@lru_cache(maxsize=1)
def locks() -> Locks:
    from staykey.services.locks import Locks
    from staykey.timeutil import SystemClock

    return Locks(get_settings(), store(), SystemClock())


@lru_cache(maxsize=1)
def audit() -> Audit:
    from staykey.services.audit import Audit
    from staykey.timeutil import SystemClock

    return Audit(store(), SystemClock(), get_settings().audit_retention_days)


@lru_cache(maxsize=1)
def console() -> Services:
    """The console's collaborators: the same services as the shop API, and its sign-in."""
    from staykey import secrets
    from staykey.console.app import Services
    from staykey.console.auth import CognitoSignIn, TokenVerifier
    from staykey.console.views import ConsoleViews
    from staykey.timeutil import SystemClock

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
        lifecycle=lifecycle,
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
        ),
        clock=clock,
    )


def dead_letter_depths(queue_urls: list[str]) -> dict[str, int]:
    """Messages waiting in each dead-letter queue (by queue name); a queue that cannot be read: -1."""
    import boto3

    sqs = boto3.client("sqs")
    out = {}
    for url in queue_urls:
        name = url.rsplit("/", 1)[-1]
        try:
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
            out[name] = int(attrs["Attributes"]["ApproximateNumberOfMessages"])
        except Exception:  # the page still renders; the count says it is unknown
            out[name] = -1
    return out


def reset() -> None:
    """Forget every built service and the settings (tests, the local stack after env changes)."""
    from staykey import secrets
    from staykey.settings import get_settings as settings_cache

    for cached in (
        store,
        nuki,
        lifecycle,
        activity,
        webhook_receiver,
        reconciler,
        search,
        locks,
        audit,
        settings_cache,
    ):
        cached.cache_clear()
    secrets.clear_cache()
