"""The webhook sender: one queued delivery (event, endpoint, attempt) signed and posted.

Signing follows the Standard Webhooks specification with the `standardwebhooks` package: headers
``webhook-id`` (the event id: the same for every attempt), ``webhook-timestamp`` (this attempt, Unix
seconds) and ``webhook-signature`` (``v1,<base64 HMAC-SHA256 of id.timestamp.body>``; two, space
separated, while a rotated secret's predecessor is still valid). The body is the event's JSON,
byte for byte as stored.

An attempt succeeds on any 2xx within the timeout. Redirects are not followed. Before each attempt
the URL's host is resolved again and every address checked (no private, loopback or link-local
address in a deployed stack); the request then goes to exactly the address that was checked.

A failed attempt is tried again after `webhook_retry_seconds` (5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
10 h by default: 8 attempts over 27 h 35 min). Each retry is a new message on the delivery queue;
SQS delays a message by at most 15 minutes, so a longer wait is walked in steps of 15 minutes
(``notBefore``). When the last attempt fails the delivery goes to the dead-letter queue (alarmed),
and if the endpoint has not had one successful delivery since this delivery's first attempt, the
endpoint is disabled (``WebhookEndpointDisabled``, alarmed; ``enabled: false`` and
``disabledReason`` on GET). Deliveries to a disabled endpoint go to the dead-letter queue too; the
shop catches up with ``GET /events`` after enabling it again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from staykey.core.timeutil import Clock, iso_utc, parse_iso
from staykey.events.dispatch import DeliveryQueue
from staykey.events.endpoints import Endpoint, EndpointSecrets, EndpointStore, Resolver, UnsafeUrl, check_url
from staykey.observability import count, logger

SQS_MAX_DELAY = 900
USER_AGENT = "StayKey-Webhooks/1.0 (+https://www.standardwebhooks.com)"


class PinnedAdapter(HTTPAdapter):
    """Connects to one checked address whatever DNS says now; TLS still verifies the URL's host."""

    def __init__(self, address: str, hostname: str) -> None:
        self.address = address
        self.hostname = hostname
        super().__init__(max_retries=0)

    def get_connection_with_tls_context(self, request: Any, verify: Any, proxies: Any = None, cert: Any = None) -> Any:
        host_params, pool_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
        params: dict[str, Any] = {**host_params, "host": self.address}
        kwargs: dict[str, Any] = dict(pool_kwargs)
        if params.get("scheme") == "https":
            kwargs.update(server_hostname=self.hostname, assert_hostname=self.hostname)
        return self.poolmanager.connection_from_host(**params, pool_kwargs=kwargs)


def sign(secrets: list[str], msg_id: str, at: datetime, body: str) -> str:
    from standardwebhooks import Webhook

    return " ".join(Webhook(secret).sign(msg_id=msg_id, timestamp=at, data=body) for secret in secrets)


def retry_schedule_total(schedule: list[float]) -> timedelta:
    return timedelta(seconds=sum(schedule))


class Sender:
    def __init__(
        self,
        *,
        endpoints: EndpointStore,
        secrets: EndpointSecrets,
        queue: DeliveryQueue,
        clock: Clock,
        retry_seconds: list[float],
        allow_loopback: bool,
        timeout_seconds: float = 10.0,
        resolve: Resolver | None = None,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.endpoints = endpoints
        self.secrets = secrets
        self.queue = queue
        self.clock = clock
        self.retry_seconds = retry_seconds
        self.allow_loopback = allow_loopback
        self.timeout_seconds = timeout_seconds
        self.resolve = resolve
        self.wall_clock = wall_clock  # signatures carry real time: receivers check it against theirs

    def handle(self, message: dict[str, Any]) -> str:
        """One delivery message; what became of it. Raises only when the message must be retried
        as it is (the queue could not take its follow-up)."""
        now = self.clock.now()
        not_before = parse_iso(message.get("notBefore"))
        if not_before is not None and not_before - now > timedelta(seconds=1):
            wait = (not_before - now).total_seconds()
            self.queue.send([message], delay=int(min(SQS_MAX_DELAY, wait)))
            return "waiting"
        endpoint = self.endpoints.get(str(message["endpointId"]))
        if endpoint is None:
            logger.info("delivery dropped: the endpoint was deleted", endpoint_id=message["endpointId"])
            return "endpoint_deleted"
        if not endpoint.enabled:
            self.queue.dead_letter(message, "the endpoint is disabled")
            count("WebhookDeadLettered")
            return "endpoint_disabled"
        if not endpoint.wants(str(message["eventType"])):
            return "unsubscribed"
        first = parse_iso(message.get("firstAttemptAt")) or now
        error = self._post(endpoint, message)
        fields = {"endpoint_id": endpoint.endpointId, "event_id": message["eventId"], "attempt": message["attempt"]}
        if error is None:
            self.endpoints.record_success(endpoint.endpointId, now)
            count("WebhookDelivered")
            logger.info("webhook delivered", **fields)
            return "delivered"
        updated = self.endpoints.record_failure(endpoint.endpointId, now, error)
        count("WebhookDeliveryFailed")
        attempt = int(message["attempt"])
        if attempt <= len(self.retry_seconds):
            delay = self.retry_seconds[attempt - 1]
            follow_up = {
                **message,
                "attempt": attempt + 1,
                "firstAttemptAt": iso_utc(first),
                "notBefore": iso_utc(now + timedelta(seconds=delay)),
                "lastError": error,
            }
            self.queue.send([follow_up], delay=int(min(SQS_MAX_DELAY, delay)))
            logger.info("webhook failed; retrying", error=error, retry_in_seconds=delay, **fields)
            return "retrying"
        self.queue.dead_letter({**message, "firstAttemptAt": iso_utc(first), "lastError": error}, "retries exhausted")
        count("WebhookDeadLettered")
        logger.warning("webhook failed on every attempt; dead-lettered", error=error, **fields)
        failing_since = updated.failingSince if updated is not None else None
        if failing_since is not None and failing_since <= first + timedelta(seconds=1):
            reason = (
                f"every delivery failed from {iso_utc(failing_since)} to {iso_utc(now)} "
                f"({attempt} attempts of event {message['eventId']}); last error: {error}"
            )
            if self.endpoints.disable(endpoint.endpointId, now, reason):
                count("WebhookEndpointDisabled")
                logger.warning("webhook endpoint disabled", endpoint_id=endpoint.endpointId, reason=reason)
        return "dead_lettered"

    def _post(self, endpoint: Endpoint, message: dict[str, Any]) -> str | None:
        """None on success, else a short reason (no response body, no secret)."""
        from urllib.parse import urlsplit

        try:
            kwargs = {"resolve": self.resolve} if self.resolve is not None else {}
            _, addresses = check_url(endpoint.url, allow_loopback=self.allow_loopback, **kwargs)
        except UnsafeUrl as exc:
            return f"not delivered: the URL {exc}"
        parts = urlsplit(endpoint.url)
        host = parts.hostname or ""
        body = str(message["body"])
        at = self.wall_clock()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Host": parts.netloc.rsplit("@", 1)[-1],
            "webhook-id": str(message["eventId"]),
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": sign(
                self.secrets.signing(endpoint, self.clock.now()), str(message["eventId"]), at, body
            ),
        }
        with requests.Session() as session:
            session.trust_env = False
            adapter = PinnedAdapter(addresses[0], host)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            try:
                with session.post(
                    endpoint.url,
                    data=body.encode("utf-8"),
                    headers=headers,
                    timeout=(3.05, self.timeout_seconds),
                    allow_redirects=False,
                    stream=True,
                ) as response:
                    status = response.status_code
            except requests.Timeout:
                return "timeout"
            except requests.ConnectionError:
                return "connection failed"
            except requests.RequestException as exc:
                return f"request failed ({type(exc).__name__})"
        return None if 200 <= status < 300 else f"HTTP {status}"
