"""The lifecycle queue: delayed follow-ups (read-backs, retries) for one booking.

A job is `{"bookingId": ..., "seq": n}`. Only the job whose `seq` equals the booking's `checkSeq`
proceeds, so a chain of follow-ups that a newer event replaced dies out by itself.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from staykey.adapters.aws import LazyClient

MAX_SQS_DELAY = 900


class JobQueue(Protocol):
    def send(self, job: dict[str, Any], delay_seconds: float) -> None: ...


class SqsJobQueue:
    client = LazyClient("sqs")

    def __init__(self, queue_url: str, client: Any | None = None) -> None:
        self.queue_url = queue_url
        self._client = client

    def send(self, job: dict[str, Any], delay_seconds: float) -> None:
        delay = max(0, min(MAX_SQS_DELAY, round(delay_seconds)))
        self.client.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(job), DelaySeconds=delay)
