"""The webhook processor's work: one verified Nuki webhook body, as the receiver queued it, to the
service it concerns. `DEVICE_AUTHS` (an authorization created, changed or deleted) goes straight
to the sync engine (`Sync.observe_webhook`); `DEVICE_LOGS` and `DEVICE_STATUS` to `Activity`.

A body that is not JSON, or not a payload we can read, is counted and dropped: another try reads it
no better. (Nuki's published `DEVICE_AUTHS` example lacks fields; such a body parses, and the sync
engine reads the lock back for what it cannot say.)
"""

from __future__ import annotations

import json
from datetime import datetime

from staykey.nuki import DeviceAuthsWebhook, parse_webhook
from staykey.observability import count, logger
from staykey.services.activity import Activity
from staykey.services.sync import Sync


class WebhookProcessor:
    def __init__(self, activity: Activity, sync: Sync) -> None:
        self.activity = activity
        self.sync = sync

    def process(self, body: str, received_at: datetime | None = None) -> str:
        """What became of the webhook (for the log line)."""
        try:
            payload = parse_webhook(json.loads(body))
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply to read
            count("WebhookUnreadable")
            logger.warning("webhook payload not understood; dropped", error=type(exc).__name__)
            return "unreadable"
        if isinstance(payload, DeviceAuthsWebhook):
            outcome = self.sync.observe_webhook(payload.smartlock_auth, payload.deleted)
        else:
            outcome = self.activity.handle_webhook(payload, received_at)
        logger.info("webhook processed", feature=payload.feature, outcome=outcome)
        return outcome


__all__ = ["WebhookProcessor"]
