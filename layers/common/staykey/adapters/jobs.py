"""The lifecycle queue: delayed follow-ups (read-backs, retries) for one booking.

A job is `{"bookingId": ..., "seq": n, "at": ...}`. Only the job whose `seq` equals the booking's
`checkSeq` proceeds, so a chain of follow-ups that a newer event replaced dies out by itself. SQS
delays by whole seconds: a job with its time (`at`, to the millisecond) is delivered at the second
before it and waits the rest (`Sync.run_job`), so a read-back can be timed to a lock's sync delay.
"""

from __future__ import annotations

import json
import math
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
        delay = sqs_delay(job, delay_seconds)
        self.client.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(job), DelaySeconds=delay)


def sqs_delay(job: dict[str, Any], delay_seconds: float) -> int:
    """The queue's whole-second delay for a job: before its time when it carries one (it waits the
    rest), else the nearest second."""
    whole = math.floor(delay_seconds) if job.get("at") else round(delay_seconds)
    return max(0, min(MAX_SQS_DELAY, whole))
