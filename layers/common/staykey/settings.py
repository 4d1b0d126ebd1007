"""Settings: one pydantic model validated from the environment, built once per container.

The template sets these variables; the local stack sets the same ones. Secrets are never here:
only the *names* of the Secrets Manager secrets that hold the Nuki token and the webhook secret.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

HOURS_LIST = r"^\s*\d+(\.\d+)?(\s*,\s*\d+(\.\d+)?)*\s*$"


def _floats(raw: str | list[float]) -> list[float]:
    if isinstance(raw, list):
        return [float(x) for x in raw]
    return [float(x) for x in raw.replace(" ", "").split(",") if x]


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    table_name: str = Field("staykey", alias="TABLE_NAME", min_length=1)
    nuki_api_url: str = Field("https://api.nuki.io", alias="NUKI_API_URL")
    nuki_token_secret_name: str = Field("staykey/nuki-api-token", alias="NUKI_TOKEN_SECRET_NAME")
    nuki_webhook_secret_name: str = Field("staykey/nuki-webhook-secret", alias="NUKI_WEBHOOK_SECRET_NAME")
    secret_max_age_seconds: int = Field(300, alias="SECRET_MAX_AGE_SECONDS", ge=0)
    nuki_timeout_seconds: float = Field(10.0, alias="NUKI_TIMEOUT_SECONDS", gt=0)
    nuki_max_attempts: int = Field(5, alias="NUKI_MAX_ATTEMPTS", ge=1)
    nuki_max_total_seconds: float = Field(20.0, alias="NUKI_MAX_TOTAL_SECONDS", gt=0)

    provision_lead_hours: float = Field(72.0, alias="PROVISION_LEAD_HOURS", ge=0)
    # Stays start and end at the same few times of day: a booking's code goes on up to this much
    # earlier than the lead, a fixed share per booking, so a fleet never writes to Nuki all at once.
    # EXPIRY_SPREAD_MINUTES likewise sends a stay's removals up to that much after its end (the
    # booking ends on time; its code's own window closed the door then): a fleet's check-outs, all
    # at the same hour, do not reach Nuki in one second; in full from 500 running stays (fewer,
    # less: services.bookings.removal_at). The 15 minutes a code may stay after its end keep 5
    # for the faults of its removal (a ghost delete is sent again within a minute on a lock whose
    # sync delay is learned, each try later than the one before: core.observe.resend_after).
    provision_spread_minutes: float = Field(60.0, alias="PROVISION_SPREAD_MINUTES", ge=0, le=1440)
    expiry_spread_minutes: float = Field(10.0, alias="EXPIRY_SPREAD_MINUTES", ge=0, le=10)
    # Read-backs after a Nuki write, in seconds after the write (the last gap repeats). With
    # webhooks registered, DEVICE_AUTHS usually confirms first and the read-backs start later.
    confirm_backoff_seconds: list[float] = Field(
        default_factory=lambda: [1.0, 2.0, 3.0, 5.0, 8.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0],
        alias="CONFIRM_BACKOFF_SECONDS",
    )
    confirm_backoff_with_webhooks_seconds: list[float] = Field(
        default_factory=lambda: [30.0, 60.0, 120.0, 300.0, 600.0, 900.0], alias="CONFIRM_BACKOFF_WITH_WEBHOOKS_SECONDS"
    )
    # A code that is not confirmed by validFrom fails the booking, but never sooner than this
    # after the first write (a booking that starts now still gets a fair chance).
    confirm_min_seconds: float = Field(900.0, alias="CONFIRM_MIN_SECONDS", ge=0)
    # After this many read-backs that still see a deleted code, force a sync and delete again.
    removal_resend_after_checks: int = Field(3, alias="REMOVAL_RESEND_AFTER_CHECKS", ge=1)
    max_pin_choices: int = Field(3, alias="MAX_PIN_CHOICES", ge=1)

    max_codes_per_lock: int = Field(200, alias="MAX_CODES_PER_LOCK", ge=1)
    # Backup codes (services.backup): a pool's size, and how long before a stay an unconfirmed
    # code is replaced by one.
    backup_pool_size: int = Field(3, alias="BACKUP_POOL_SIZE", ge=1, le=20)
    backup_deadline_hours: float = Field(2.0, alias="BACKUP_DEADLINE_HOURS", ge=0, le=72)
    capacity_warning_codes: int = Field(180, alias="CAPACITY_WARNING_CODES", ge=1)
    # A custom metric per lock costs money per lock: by default only locks near capacity get one.
    per_lock_metrics: Literal["near-capacity", "all"] = Field("near-capacity", alias="PER_LOCK_METRICS")
    # The reconciler: a write of ours still unconfirmed this long after it was sent is stuck (its
    # follow-ups died) and is sent again; an orphan deletion is re-checked this long after it was
    # sent, at most this many times in a row before the next scheduled run takes over.
    reconcile_stall_seconds: float = Field(1800.0, alias="RECONCILE_STALL_SECONDS", gt=0)
    reconcile_confirm_delay_seconds: float = Field(60.0, alias="RECONCILE_CONFIRM_DELAY_SECONDS", ge=0, le=900)
    reconcile_follow_ups: int = Field(5, alias="RECONCILE_FOLLOW_UPS", ge=0)

    # Work where something happens (core.watch): how often the watcher looks at what.
    hot_check_minutes: float = Field(15.0, alias="HOT_CHECK_MINUTES", gt=0)
    hot_log_poll_minutes: float = Field(5.0, alias="HOT_LOG_POLL_MINUTES", gt=0)
    gap_fill_minutes: float = Field(60.0, alias="GAP_FILL_MINUTES", gt=0)
    hot_after_minutes: float = Field(60.0, alias="HOT_AFTER_MINUTES", ge=0)
    # LogPolling: DISABLED reads no log (with webhooks registered they alone deliver activity).
    log_polling: Literal["ENABLED", "DISABLED"] = Field("ENABLED", alias="LOG_POLLING")
    # The shared look (the SharedLooks schedule): writes nobody waits for are confirmed by it (`core.looks.shared`).
    shared_looks: Literal["ENABLED", "DISABLED"] = Field("ENABLED", alias="SHARED_LOOKS")
    nuki_auth_page_size: int = Field(100, alias="NUKI_AUTH_PAGE_SIZE", ge=1, le=1000)
    # The account's whole list (GET /smartlock/auth) in one answer up to this many codes: about 13 MB,
    # parsed in about a second and 62 MB by the client (`bench`); Nuki documents no limit, and a list it
    # will not serve is not asked for at that size for a day (`core.watch.unpaged_cap`).
    nuki_unpaged_max_codes: int = Field(30000, alias="NUKI_UNPAGED_MAX_CODES", ge=0)
    # Background work (the watcher, the sweep, reconciling a lock) paces its Nuki calls per container.
    background_nuki_calls_per_second: float = Field(2.0, alias="BACKGROUND_NUKI_CALLS_PER_SECOND", gt=0)
    # A write Nuki failed: the lock is looked at (signalled to the watcher) this long after.
    failed_write_check_seconds: float = Field(300.0, alias="FAILED_WRITE_CHECK_SECONDS", ge=0)

    # Readiness (core.readiness): the hours before validFrom at which every lock of a booking is
    # checked ("48,4": two days and four hours ahead), largest first.
    readiness_check_hours: str = Field("48,4", alias="READINESS_CHECK_HOURS", pattern=HOURS_LIST)

    @property
    def readiness_offsets(self) -> list[timedelta]:
        hours = sorted({float(part) for part in self.readiness_check_hours.replace(" ", "").split(",") if part})
        return [timedelta(hours=h) for h in reversed(hours) if h > 0] or [timedelta(hours=48)]

    schedule_group_name: str = Field("staykey", alias="SCHEDULE_GROUP_NAME")
    scheduler_role_arn: str = Field("arn:aws:iam::123456789012:role/staykey-scheduler", alias="SCHEDULER_ROLE_ARN")
    schedule_dlq_arn: str = Field(
        "arn:aws:sqs:eu-central-1:123456789012:staykey-schedule-dlq", alias="SCHEDULE_DLQ_ARN"
    )
    provision_function_arn: str = Field(
        "arn:aws:lambda:eu-central-1:123456789012:function:staykey-provision", alias="PROVISION_FUNCTION_ARN"
    )
    checkout_function_arn: str = Field(
        "arn:aws:lambda:eu-central-1:123456789012:function:staykey-checkout", alias="CHECKOUT_FUNCTION_ARN"
    )
    lifecycle_queue_url: str = Field("", alias="LIFECYCLE_QUEUE_URL")
    webhook_queue_url: str = Field("", alias="WEBHOOK_QUEUE_URL")
    reconcile_queue_url: str = Field("", alias="RECONCILE_QUEUE_URL")

    sender_email: str = Field("StayKey <no-reply@example.com>", alias="SENDER_EMAIL")
    activity_retention_days: int = Field(365, alias="ACTIVITY_RETENTION_DAYS", ge=1)
    guest_data_retention_days: int = Field(30, alias="GUEST_DATA_RETENTION_DAYS", ge=0)
    webhook_max_body_bytes: int = Field(65536, alias="WEBHOOK_MAX_BODY_BYTES", ge=1024)
    audit_retention_days: int = Field(730, alias="AUDIT_RETENTION_DAYS", ge=1)

    # The operator console (staykey.console).
    cognito_user_pool_id: str = Field("", alias="COGNITO_USER_POOL_ID")
    cognito_client_id: str = Field("", alias="COGNITO_CLIENT_ID")
    # Where the pool's keys are; empty: Cognito's own URL for the pool (the local stack: moto's).
    cognito_jwks_url: str = Field("", alias="COGNITO_JWKS_URL")
    console_secret_name: str = Field("staykey/console-secret", alias="CONSOLE_SECRET_NAME")
    console_timezone: str = Field("Europe/Berlin", alias="CONSOLE_TIMEZONE")
    dead_letter_queue_urls: str = Field("", alias="DEAD_LETTER_QUEUE_URLS")
    aws_endpoint_url: str = Field("", alias="AWS_ENDPOINT_URL")

    @property
    def cognito_issuer(self) -> str:
        region = self.cognito_user_pool_id.split("_", 1)[0]
        return f"https://cognito-idp.{region}.amazonaws.com/{self.cognito_user_pool_id}"

    @property
    def jwks_url(self) -> str:
        if self.cognito_jwks_url:
            return self.cognito_jwks_url
        if self.aws_endpoint_url:  # a local AWS (moto) serves the pool's keys itself
            return f"{self.aws_endpoint_url.rstrip('/')}/{self.cognito_user_pool_id}/.well-known/jwks.json"
        return f"{self.cognito_issuer}/.well-known/jwks.json"

    # Events (docs/events.md): the bus, the feed, the shop's webhook endpoints and their deliveries.
    event_bus_name: str = Field("default", alias="EVENT_BUS_NAME")
    event_retention_days: int = Field(30, alias="EVENT_RETENTION_DAYS", ge=1)
    # A gap in the feed's numbers is waited for this long (longer than the dispatcher's timeout).
    event_feed_hole_seconds: float = Field(90.0, alias="EVENT_FEED_HOLE_SECONDS", ge=0)
    delivery_queue_url: str = Field("", alias="EVENT_DELIVERY_QUEUE_URL")
    delivery_dead_letter_url: str = Field("", alias="EVENT_DELIVERY_DLQ_URL")
    webhook_secret_prefix: str = Field("staykey/webhook-endpoints/", alias="WEBHOOK_SECRET_PREFIX")
    # Only the local stack sets this: http and loopback addresses for endpoints on this machine.
    webhook_allow_loopback: bool = Field(False, alias="WEBHOOK_ALLOW_LOOPBACK")
    # "hosts": endpoint hosts are looked up in /etc/hosts only, never in DNS (the local stack).
    webhook_resolve: Literal["system", "hosts"] = Field("system", alias="WEBHOOK_RESOLVE")
    webhook_retry_seconds: list[float] = Field(
        default_factory=lambda: [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0],
        alias="WEBHOOK_RETRY_SECONDS",
    )
    webhook_timeout_seconds: float = Field(10.0, alias="WEBHOOK_TIMEOUT_SECONDS", gt=0)
    webhook_secret_grace_hours: float = Field(24.0, alias="WEBHOOK_SECRET_GRACE_HOURS", ge=0)
    max_webhook_endpoints: int = Field(20, alias="MAX_WEBHOOK_ENDPOINTS", ge=1)

    @field_validator(
        "confirm_backoff_seconds", "confirm_backoff_with_webhooks_seconds", "webhook_retry_seconds", mode="before"
    )
    @classmethod
    def _parse_floats(cls, value: str | list[float]) -> list[float]:
        parsed = _floats(value)
        if not parsed or any(x <= 0 for x in parsed):
            raise ValueError("a comma-separated list of positive seconds")
        return parsed


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    return Settings.model_validate(dict(environ if environ is not None else os.environ))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
