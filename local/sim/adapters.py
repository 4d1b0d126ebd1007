"""The AWS services around StayKey's functions, on the simulator's clock.

Each stands where the production adapter stands (same methods), and turns what production hands to
AWS into events of the loop, with AWS's delivery semantics where they matter for correctness:

* `SimScheduler`: EventBridge Scheduler one-time schedules (upsert moves a schedule, delete removes
  it, a fired schedule deletes itself; a failed target invocation is retried with backoff);
* `SimJobQueue`, `SimLockQueue`, `SimInbox`: SQS queues with their event source mappings: a
  message is delivered after its delay (rounded to whole seconds, at most 900, as SQS does), a
  failed invocation's message comes back after the queue's visibility timeout, and after the
  queue's maxReceiveCount it is dead-lettered (counted: a dead letter is an alarm in production);
* `SimMailer`: SES; keeps every email sent, with the time, for the invariants.

The visibility timeouts and receive counts are template.yaml's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from staykey.adapters.jobs import sqs_delay
from staykey.adapters.mail import GuestNotice
from staykey.adapters.reconcile_queue import LockJob

if TYPE_CHECKING:
    from local.sim.world import World

MAX_SQS_DELAY = 900


@dataclass(frozen=True)
class QueueSpec:
    name: str
    visibility_timeout: float
    max_receives: int


LIFECYCLE_QUEUE = QueueSpec("lifecycle", 180.0, 5)
WEBHOOK_QUEUE = QueueSpec("webhooks", 360.0, 5)
RECONCILE_QUEUE = QueueSpec("reconcile", 1800.0, 3)


def whole_seconds(seconds: float) -> float:
    return float(max(0, min(MAX_SQS_DELAY, round(seconds))))


class SimQueue:
    """An SQS queue and the event source mapping that feeds it to one function."""

    def __init__(self, world: World, spec: QueueSpec, handler: Callable[[Any], None]) -> None:
        self.world = world
        self.spec = spec
        self.handler = handler
        self.sent = 0
        self.dead_letters: list[Any] = []

    def put(self, message: Any, delay_seconds: float, label: str = "") -> None:
        self.sent += 1
        self.world.loop.call_later(
            whole_seconds(delay_seconds),
            lambda: self._deliver(message, 1, label),
            name=f"{self.spec.name}:{label}",
        )

    def _deliver(self, message: Any, receive: int, label: str) -> None:
        ok = self.world.invoke(f"{self.spec.name}:{label}", lambda: self.handler(message))
        if ok:
            return
        if receive >= self.spec.max_receives:
            self.dead_letters.append(message)
            self.world.note(f"dead letter on the {self.spec.name} queue: {label}")
            return
        self.world.loop.call_later(
            self.spec.visibility_timeout,
            lambda: self._deliver(message, receive + 1, label),
            name=f"{self.spec.name}:{label}:retry",
        )


class SimJobQueue:
    """The lifecycle queue (`staykey.adapters.jobs.JobQueue`)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.queue = SimQueue(world, LIFECYCLE_QUEUE, self._run)

    def send(self, job: dict[str, Any], delay_seconds: float) -> None:
        # What SQS would carry: the JSON body, with the whole-second delay the production queue asks for.
        self.queue.put(json.dumps(job), sqs_delay(job, delay_seconds), label=str(job.get("bookingId")))

    def _run(self, body: str) -> None:
        job = json.loads(body)
        self.world.count_follow_up(str(job["bookingId"]))
        self.world.sync.run_job(job)


class SimLockQueue:
    """The reconcile queue (`staykey.adapters.reconcile_queue.LockQueue`) and reconcile-lock's event
    source mapping as the template sets it: batches of `BATCH` messages, at most
    `reconcile_concurrency` invocations at once (`ScalingConfig.MaximumConcurrency`), each working
    through its batch one lock after the other; a failed lock comes back after the queue's
    visibility timeout (ReportBatchItemFailures) and is dead-lettered after its receive count."""

    BATCH = 5

    def __init__(self, world: World) -> None:
        self.world = world
        self.spec = RECONCILE_QUEUE
        self.sent = 0
        self.dead_letters: list[str] = []
        self.backlog: list[tuple[str, int]] = []
        self.running = 0

    def send(self, jobs: Sequence[LockJob], delay_seconds: float = 0) -> None:
        for job in jobs:
            self.sent += 1
            body = job.model_dump_json()
            self.world.loop.call_later(
                whole_seconds(delay_seconds), partial(self._visible, body, 1), name=f"reconcile:{job.smartlockId}"
            )

    def _visible(self, body: str, receive: int) -> None:
        self.backlog.append((body, receive))
        self._pump()

    def _pump(self) -> None:
        limit = max(1, self.world.config.reconcile_concurrency)
        while self.running < limit and self.backlog:
            batch, self.backlog = self.backlog[: self.BATCH], self.backlog[self.BATCH :]
            self.running += 1
            self.world.loop.call_later(0, partial(self._batch, batch), name="reconcile:batch")

    def _batch(self, batch: list[tuple[str, int]]) -> None:
        try:
            for body, receive in batch:
                job = LockJob.model_validate_json(body)
                run = partial(self.world.reconciler.reconcile_lock, job.smartlockId, attempt=job.attempt)
                if self.world.invoke(f"reconcile:{job.smartlockId}", run):
                    self.world.reconciled(job.smartlockId)
                    continue
                self.world.reconcile_failed(job.smartlockId)
                if receive >= self.spec.max_receives:
                    self.dead_letters.append(body)
                    self.world.note(f"dead letter on the reconcile queue: {job.smartlockId}")
                    continue
                self.world.loop.call_later(
                    self.spec.visibility_timeout, partial(self._visible, body, receive + 1), name="reconcile:retry"
                )
        finally:
            self.running -= 1
            self._pump()


class SimInbox:
    """The webhook queue between the receiver and the processor (`staykey.edge.nuki_webhook.WebhookInbox`)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.queue = SimQueue(world, WEBHOOK_QUEUE, self._run)

    def put(self, body: str) -> None:
        self.queue.put({"body": body, "sentAt": self.world.loop.now().isoformat()}, 0, label="webhook")

    def _run(self, message: dict[str, Any]) -> None:
        self.world.webhooks.process(message["body"], datetime.fromisoformat(message["sentAt"]))


class SimScheduler:
    """EventBridge Scheduler's one-time schedules (`staykey.adapters.schedules.Scheduler`)."""

    # EventBridge retries a failed target with backoff for up to 24 hours (the template's policy:
    # 185 attempts); the simulator retries a few times, minutes apart.
    RETRY_DELAYS = (60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)

    def __init__(self, world: World) -> None:
        self.world = world
        self.schedules: dict[tuple[str, str], tuple[datetime, int]] = {}
        self._generation = 0

    def upsert(self, kind: str, booking_id: str, at: datetime) -> str:
        self._generation += 1
        generation = self._generation
        self.schedules[(kind, booking_id)] = (at, generation)
        self.world.loop.call_at(
            self.world.loop.at_time(at),
            lambda: self._fire(kind, booking_id, generation, 0),
            name=f"{kind}:{booking_id}",
        )
        return f"{kind}-{booking_id}"

    def delete(self, kind: str, booking_id: str) -> bool:
        return self.schedules.pop((kind, booking_id), None) is not None

    def _fire(self, kind: str, booking_id: str, generation: int, attempt: int) -> None:
        current = self.schedules.get((kind, booking_id))
        if current is None or current[1] != generation:
            return  # deleted or moved since
        bookings = self.world.bookings
        target = bookings.start_provisioning if kind == "provision" else bookings.expire
        if self.world.invoke(f"{kind}:{booking_id}", lambda: target(booking_id)):
            if self.schedules.get((kind, booking_id), (None, -1))[1] == generation:
                del self.schedules[(kind, booking_id)]  # ActionAfterCompletion: DELETE
            return
        if attempt >= len(self.RETRY_DELAYS):
            self.world.note(f"schedule {kind} for {booking_id} dead-lettered")
            return
        self.world.loop.call_later(
            self.RETRY_DELAYS[attempt],
            lambda: self._fire(kind, booking_id, generation, attempt + 1),
            name=f"{kind}:{booking_id}:retry",
        )


@dataclass(frozen=True)
class SentEmail:
    at: float
    notice: GuestNotice


class SimMailer:
    """SES: every email sent; `fail_next` makes the next sends fail (SES throttling)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.sent: list[SentEmail] = []
        self.fail_next = 0

    def send(self, notice: GuestNotice) -> str:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise _SesError("Throttling")
        self.sent.append(SentEmail(self.world.loop.t, notice))
        self.world.checker.on_email(notice)
        return f"sim-{len(self.sent)}"


class _SesError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.response = {"Error": {"Code": code}}


__all__ = [
    "LIFECYCLE_QUEUE",
    "RECONCILE_QUEUE",
    "WEBHOOK_QUEUE",
    "SentEmail",
    "SimInbox",
    "SimJobQueue",
    "SimLockQueue",
    "SimMailer",
    "SimQueue",
    "SimScheduler",
]
