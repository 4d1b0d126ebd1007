"""One-time EventBridge Scheduler schedules: provisioning at validFrom - lead, removal at validUntil.

Each schedule deletes itself after it ran (ActionAfterCompletion DELETE), retries delivery and
sends what it cannot deliver to a dead-letter queue.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from staykey.adapters.aws import LazyClient
from staykey.core.pins import booking_hash
from staykey.settings import Settings


def schedule_name(kind: str, booking_id: str) -> str:
    """`provision-<hash>` / `expire-<hash>`: within Scheduler's 64 characters whatever the id."""
    return f"{kind}-{booking_hash(booking_id, 24)}"


class Scheduler:
    client = LazyClient("scheduler")

    def __init__(self, settings: Settings, client: Any | None = None) -> None:
        self.settings = settings
        self._client = client

    def _target(self, kind: str, booking_id: str) -> dict[str, Any]:
        arn = self.settings.provision_function_arn if kind == "provision" else self.settings.checkout_function_arn
        return {
            "Arn": arn,
            "RoleArn": self.settings.scheduler_role_arn,
            "Input": json.dumps({"action": kind, "bookingId": booking_id}),
            "RetryPolicy": {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400},
            "DeadLetterConfig": {"Arn": self.settings.schedule_dlq_arn},
        }

    def upsert(self, kind: str, booking_id: str, at: datetime) -> str:
        """Create or move the schedule of `kind` ("provision" or "expire") for a booking."""
        name = schedule_name(kind, booking_id)
        args = {
            "Name": name,
            "GroupName": self.settings.schedule_group_name,
            "ScheduleExpression": f"at({at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec='seconds')})",
            "ScheduleExpressionTimezone": "UTC",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "Target": self._target(kind, booking_id),
            "ActionAfterCompletion": "DELETE",
            "Description": f"StayKey {kind} for one booking",
        }
        for _ in range(3):  # a delete may land between the two (two changes of a booking at once)
            try:
                self.client.create_schedule(**args)
                return name
            except self.client.exceptions.ConflictException:
                try:
                    self.client.update_schedule(**args)
                    return name
                except self.client.exceptions.ResourceNotFoundException:
                    continue
        self.client.create_schedule(**args)
        return name

    def delete(self, kind: str, booking_id: str) -> bool:
        try:
            self.client.delete_schedule(
                Name=schedule_name(kind, booking_id), GroupName=self.settings.schedule_group_name
            )
        except self.client.exceptions.ResourceNotFoundException:
            return False
        return True
