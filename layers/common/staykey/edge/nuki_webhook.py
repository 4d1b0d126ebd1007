"""Receiving Nuki decentral webhooks: check the signature over the raw body, queue it, answer.

Nuki deactivates integrations whose webhooks keep failing, so the receiver does as little as it
can: size check, signature check (before anything is parsed), one SQS message with the verified
body as it came, done. The webhook processor does the work behind the queue, with retries and a
dead-letter queue (`staykey.services.activity`).

The signing secret is cached (Powertools parameters, `SECRET_MAX_AGE_SECONDS`). After a
re-registration (`tools/register_webhook.py`) Nuki signs with a new secret at once, while a warm
container still holds the old one: on a mismatch the receiver fetches the secret once more,
bypassing the cache, but at most once per `refresh_interval` seconds, so forged requests cannot
turn into a stream of Secrets Manager calls.

Nothing here imports boto3 or requests at import time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from staykey.adapters.aws import LazyClient
from staykey.errors import PayloadTooLarge, StayKeyError, Unauthorized

# Equal to staykey.nuki.signature.SIGNATURE_HEADER; not imported from there, because importing the
# staykey.nuki package loads its models, which the receiver's cold start can do without.
SIGNATURE_HEADER = "X-Nuki-Signature-SHA256"


class NotText(StayKeyError):
    """A correctly signed body that is not UTF-8: Nuki sends JSON, so this is never Nuki's."""

    status = 400
    code = "bad_request"


class WebhookInbox(Protocol):
    def put(self, body: str) -> None: ...


class SqsWebhookInbox:
    """The webhook queue (template: WebhookQueue); the message body is the verified raw body."""

    client = LazyClient("sqs")

    def __init__(self, queue_url: str, client: Any | None = None) -> None:
        self.queue_url = queue_url
        self._client = client

    def put(self, body: str) -> None:
        if not self.queue_url:
            raise RuntimeError("WEBHOOK_QUEUE_URL is not set")
        self.client.send_message(QueueUrl=self.queue_url, MessageBody=body)


class WebhookReceiver:
    def __init__(
        self,
        secret: Callable[[bool], str],
        inbox: WebhookInbox,
        max_body_bytes: int,
        *,
        refresh_interval: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """`secret(force_fetch)` returns the signing secret (`staykey.adapters.secrets.webhook_secret`)."""
        self._secret = secret
        self.inbox = inbox
        self.max_body_bytes = max_body_bytes
        self._refresh_interval = refresh_interval
        self._monotonic = monotonic
        self._last_refresh: float | None = None

    def check_size(self, size: int) -> None:
        if size > self.max_body_bytes:
            raise PayloadTooLarge(f"the body is larger than {self.max_body_bytes} bytes")

    def accept(self, raw: bytes, signature: str | None) -> None:
        """Verify `raw` against `signature` and queue it; Unauthorized, PayloadTooLarge or NotText otherwise."""
        self.check_size(len(raw))
        if not signature:
            raise Unauthorized("the X-Nuki-Signature-SHA256 header is missing")
        if not self._verified(raw, signature):
            raise Unauthorized("the signature does not match the body")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise NotText("the body is not UTF-8 text") from None
        self.inbox.put(text)

    def _verified(self, raw: bytes, signature: str) -> bool:
        # Imported here: the staykey.nuki package loads its models, which this cold path can defer.
        from staykey.nuki.signature import verify_signature

        if verify_signature(raw, signature, self._secret(False)):
            return True
        now = self._monotonic()
        if self._last_refresh is not None and now - self._last_refresh < self._refresh_interval:
            return False
        self._last_refresh = now
        return verify_signature(raw, signature, self._secret(True))


__all__ = ["SIGNATURE_HEADER", "NotText", "SqsWebhookInbox", "WebhookInbox", "WebhookReceiver"]
