"""The reconcile queue: one message per lock to reconcile, `{"smartlockId", "reason", "attempt"}`.

The daily sweep puts every lock on it ("scheduled") when reading each lock is cheaper than reading
the account's list, and otherwise only the locks whose list shows drift ("sweep"); the watcher puts
the hot or signalled locks whose codes changed and show drift ("check"); a lock whose orphan codes
were just deleted comes back after a delay to confirm the deletion by reading back ("confirm",
`attempt` counting the follow-ups in a row); an offline lock comes back in 15 minutes ("offline").
The `reconcile_lock` function takes the messages in batches, with bounded concurrency, so 1,000 locks
spread over many short invocations instead of one long one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from staykey.adapters.aws import LazyClient
from staykey.core.models import SMARTLOCK_ID_MAX

MAX_SQS_DELAY = 900
SQS_BATCH = 10


class LockJob(BaseModel):
    """One message of the reconcile queue."""

    smartlockId: int = Field(ge=1, le=SMARTLOCK_ID_MAX)
    # scheduled: the per-lock sweep; sweep/check/signal: a look at the lock's codes found drift (the
    # sweep's, the watcher's, or one a signal asked for); confirm: an orphan deletion read back;
    # offline: the lock was offline, looked at again; manual: an operator's run; hint: a webhook about
    # a lock that said too little to act on (read it back).
    reason: Literal["scheduled", "sweep", "check", "signal", "confirm", "offline", "manual", "hint"] = "scheduled"
    attempt: int = Field(0, ge=0)


class LockQueue(Protocol):
    def send(self, jobs: Sequence[LockJob], delay_seconds: float = 0) -> None: ...


class SqsLockQueue:
    client = LazyClient("sqs")

    def __init__(self, queue_url: str, client: Any | None = None) -> None:
        self.queue_url = queue_url
        self._client = client

    def send(self, jobs: Sequence[LockJob], delay_seconds: float = 0) -> None:
        """Send in batches of ten; entries SQS refuses are sent once more, then it raises."""
        if not self.queue_url:
            raise RuntimeError("RECONCILE_QUEUE_URL is not set")
        delay = max(0, min(MAX_SQS_DELAY, round(delay_seconds)))
        for start in range(0, len(jobs), SQS_BATCH):
            entries = [
                {"Id": str(i), "MessageBody": job.model_dump_json(), "DelaySeconds": delay}
                for i, job in enumerate(jobs[start : start + SQS_BATCH])
            ]
            for _ in range(2):
                res = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
                failed = {f["Id"] for f in res.get("Failed", [])}
                entries = [e for e in entries if e["Id"] in failed]
                if not entries:
                    break
            if entries:
                raise RuntimeError(f"the reconcile queue refused {len(entries)} messages")


def parse_job(body: str) -> LockJob:
    return LockJob.model_validate(json.loads(body))
