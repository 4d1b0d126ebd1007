"""The webhook processor's work: one verified Nuki webhook body, as the receiver queued it, to the
service it concerns. `DEVICE_AUTHS` (an authorization created, changed or deleted) goes straight
to the sync engine (`Sync.observe_webhook`); `DEVICE_LOGS` and `DEVICE_STATUS` to `Activity`; a
`DEVICE_STATUS` also lets the readiness checks look again at the bookings that use the lock
(`ReadinessChecks.recheck_lock`: an at-risk booking clears itself when the cause is gone, and a
problem the lock reports is found at once).

A body is a hint even when it lacks fields StayKey does not strictly need: a `DEVICE_AUTHS` whose
authorization does not parse (no `name`, no `type`...) but names its lock makes StayKey read that
lock back (the booking's, found by the auth's id; else the whole lock, on the reconcile queue); a
`DEVICE_STATUS` without its state or server state makes it read the lock (``GET /smartlock/{id}``).
Nuki's published `DEVICE_AUTHS` example lacks `enabled` and dates: it parses, and the sync engine
reads the lock back for what it cannot say. Only a body that is not JSON, or names no lock, is
counted and dropped: another try reads it no better.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from staykey.nuki import DeviceAuthsWebhook, DeviceStatusWebhook, parse_webhook
from staykey.observability import count, logger
from staykey.services.activity import Activity
from staykey.services.sync import Sync

if TYPE_CHECKING:
    from staykey.adapters.reconcile_queue import LockQueue
    from staykey.services.readiness import ReadinessChecks


class WebhookProcessor:
    def __init__(
        self,
        activity: Activity,
        sync: Sync,
        readiness: Callable[[], ReadinessChecks] | None = None,
        lock_queue: Callable[[], LockQueue] | None = None,
    ) -> None:
        self.activity = activity
        self.sync = sync
        self._readiness = readiness
        self._lock_queue = lock_queue

    def process(self, body: str, received_at: datetime | None = None) -> str:
        """What became of the webhook (for the log line)."""
        raw: Any = None
        try:
            raw = json.loads(body)
            payload = parse_webhook(raw)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply to read
            hint = self._hint(raw)
            if hint is not None:
                logger.info("webhook read as a hint", outcome=hint)
                return hint
            count("WebhookUnreadable")
            logger.warning("webhook payload not understood; dropped", error=type(exc).__name__)
            return "unreadable"
        if isinstance(payload, DeviceAuthsWebhook):
            outcome = self.sync.observe_webhook(payload.smartlock_auth, payload.deleted)
        else:
            outcome = self.activity.handle_webhook(payload, received_at)
            if isinstance(payload, DeviceStatusWebhook):
                self._status(payload)
        logger.info("webhook processed", feature=payload.feature, outcome=outcome)
        return outcome

    def _status(self, payload: DeviceStatusWebhook) -> None:
        """A lock's state changed: the readiness of the bookings that use it may have too."""
        if self._readiness is None:
            return
        state = payload.state
        lock_id = payload.smartlock_id
        if state is None or payload.server_state is None or state.battery_critical is None:
            self._readiness().refresh_lock(lock_id)  # too lean to say how it is: read it back
            return
        problem = payload.server_state != 0 or bool(state.battery_critical or state.keypad_battery_critical)
        self._readiness().recheck_lock(lock_id, problem=problem)

    def _hint(self, raw: Any) -> str | None:
        """A body that did not parse but names its lock: read what it is about back."""
        if not isinstance(raw, dict):
            return None
        feature = raw.get("feature")
        if feature == "DEVICE_AUTHS" and isinstance(raw.get("smartlockAuth"), dict):
            auth = raw["smartlockAuth"]
            lock_id = auth.get("smartlockId")
            if not isinstance(lock_id, int) or isinstance(lock_id, bool):
                return None
            auth_id = auth.get("id")
            booking_id = self.sync.store.booking_id_for_auth(lock_id, auth_id) if isinstance(auth_id, str) else None
            if booking_id is not None:
                self.sync.process(booking_id, read_back=False, read_locks={lock_id})
                return "hint_read_back"
            if self._lock_queue is not None:
                from staykey.adapters.reconcile_queue import LockJob

                self._lock_queue().send([LockJob(smartlockId=lock_id, reason="hint")])
                return "hint_reconcile"
            return None
        lock_id = raw.get("smartlockId")
        if feature != "DEVICE_STATUS" or self._readiness is None or isinstance(lock_id, bool):
            return None
        if isinstance(lock_id, int):
            self._readiness().refresh_lock(lock_id)
            return "hint_read_back"
        return None


__all__ = ["WebhookProcessor"]
