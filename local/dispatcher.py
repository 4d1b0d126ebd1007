"""The local event sources: what EventBridge Scheduler, Lambda's SQS event-source mappings and
Lambda's asynchronous invocation do in AWS, for the functions of `template.yaml` run in-process.

Schedules (moto stores them but never fires them). At start the dispatcher lists the schedules of
the template's schedule groups once; after that it learns of each schedule the functions create,
update or delete from the call itself (`observe`: botocore's event hooks on the runtime's boto3
session, see `local.observe`), reads just that schedule (``get_schedule``) and keeps every known
schedule on a heap by its next due time, so an idle stack with thousands of bookings does no work
at all for them (it used to list every schedule five times a second). Schedules written by another
process (a tool run against the local stack) are seen at the next full listing:
``LOCAL_SCHEDULE_RESYNC_SECONDS`` (`DispatcherConfig.schedule_resync`, 0 = only at start). It fires
those due: an ``at(...)`` expression read in its ``ScheduleExpressionTimezone`` (UTC by
default), a ``rate(...)`` one every period from its creation (``cron(...)`` is not run locally; it is
reported once). A flexible time window fires at its start. Firing is what Scheduler does with a
Lambda target: it invokes the function asynchronously with the target's ``Input`` and then, for
``ActionAfterCompletion: DELETE``, deletes the schedule (only if it was not changed meanwhile). A
target that is not a function of the template is a non-retryable delivery error: the input goes to
the target's ``DeadLetterConfig`` queue with Scheduler's error attributes.

Asynchronous invocation (schedules and rate events): a function error is retried as Lambda does,
``EventInvokeConfig.MaximumRetryAttempts`` times (default 2) within ``MaximumEventAgeInSeconds``, after
``LOCAL_ASYNC_RETRY_DELAYS`` seconds (default ``1,2``; Lambda waits about one and two minutes), and
then the event goes to the function's ``DeadLetterQueue`` (or ``OnFailure`` destination) with
Lambda's ``RequestID``/``ErrorCode``/``ErrorMessage`` attributes.

SQS event-source mappings (a function's ``SQS`` events): one poller per mapping (every 0.1 s while
the queue is busy; after 10 quiet seconds a long poll of `idle_wait_seconds`, which moto answers
as soon as a message arrives) receives up to
``BatchSize`` (at most 10) messages, delivers them as one SQS event (``Records`` with
``messageId``, ``receiptHandle``, ``body``, ``attributes``, ``messageAttributes``, ``md5OfBody``,
``eventSource``, ``eventSourceARN``, ``awsRegion``), and deletes what succeeded: everything when the
function returns normally, all but the ``batchItemFailures`` with ``ReportBatchItemFailures``,
nothing when it raises or answers a malformed failure list. Failed messages become visible again
after the queue's visibility timeout (``LOCAL_SQS_RETRY_VISIBILITY_SECONDS`` shortens that locally);
moto applies ``DelaySeconds`` and moves a message to the dead-letter queue once its receive count
reaches the redrive policy's ``maxReceiveCount``. Up to the function's local concurrency batches
of one mapping run at once.

DynamoDB stream event-source mappings (a function's ``DynamoDB`` events; moto stores stream
records, with `local.moto_streams` making them faithful, but never delivers them): one poller per
mapping reads the table's stream from ``TRIM_HORIZON`` (`local.streams.StreamReader`, every 0.1 s
while busy, every 0.5 s when quiet), drops the records its ``FilterCriteria`` do not match, and
delivers the rest in order, ``BatchSize`` at a time, as Lambda's ``Records``. A batch the function
fails is retried (after ``LOCAL_ASYNC_RETRY_DELAYS``) from the first record it reported in
``batchItemFailures`` (with ``ReportBatchItemFailures``) or whole (when it raised), at most
``MaximumRetryAttempts`` times; then Lambda's failure record goes to the ``OnFailure`` queue and the
poller moves on. Not done locally: ``BisectBatchOnFunctionError``, ``ParallelizationFactor``,
``MaximumBatchingWindowInSeconds`` (records are delivered as soon as they are read).

Rate events on functions (``Schedule``/``ScheduleV2`` events with ``rate(...)``) run every period
from start, with their ``Input`` (or the scheduled-event document for ``Schedule``).
``LOCAL_RATE_EVENTS=off`` turns them off, ``LOCAL_RATE_EVENTS_SPEEDUP=60`` runs them 60 times as
often. ``State: DISABLED`` / ``Enabled: false`` events do not run.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import json
import re
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from local import cfn
from local.aws import LocalResources, client
from local.lambdas import Function, FunctionError, Functions
from local.streams import StreamReader, matches, parse_filters

Log = Callable[[str], None]

_RATE = re.compile(r"rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)")
_AT = re.compile(r"at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> float | None:
    m = _RATE.fullmatch(expression.strip())
    if m is None:
        return None
    return int(m.group(1)) * _UNIT_SECONDS[m.group(2).rstrip("s")]


def at_instant(expression: str, timezone: str | None) -> datetime | None:
    """The UTC instant of ``at(yyyy-mm-ddThh:mm:ss)`` read in `timezone`; None if not an at()."""
    m = _AT.fullmatch(expression.strip())
    if m is None:
        return None
    local = datetime.fromisoformat(m.group(1)).replace(tzinfo=ZoneInfo(timezone or "UTC"))
    return local.astimezone(UTC)


@dataclass
class DispatcherConfig:
    poll_interval: float = 0.1  # a queue that had messages in the last 10 s
    idle_wait_seconds: int = 5  # a queue that had none: long-polled this long (keeps an idle stack cheap)
    schedule_poll_interval: float = 0.2  # the longest the schedule loop sleeps without news (no AWS call)
    stream_idle_interval: float = 1.0  # a stream without records for 10 s is read this often (no long poll)
    schedule_resync: float = 0.0  # a full listing of every schedule this often (0: only at start)
    async_retry_delays: tuple[float, ...] = (1.0, 2.0)
    sqs_retry_visibility: int | None = None
    rate_events: bool = True
    rate_speedup: float = 1.0
    workers: int = 16


@dataclass(order=True)
class _AsyncJob:
    due: float
    seq: int
    function: Function = field(compare=False)
    event: Any = field(compare=False)
    source: str = field(compare=False)
    first_at: float = field(compare=False)
    attempt: int = field(default=0, compare=False)
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()), compare=False)


@dataclass
class _Known:
    modified: Any
    detail: dict[str, Any]
    due: datetime | None
    period: float | None
    last_fired: datetime | None = None


@dataclass(frozen=True)
class SqsMapping:
    function: Function
    queue_url: str
    queue_arn: str
    batch_size: int
    report_failures: bool
    event_name: str


@dataclass(frozen=True)
class StreamMapping:
    function: Function
    stream_arn: str
    batch_size: int
    filters: list[dict[str, Any]]
    report_failures: bool
    max_retries: int
    on_failure_arn: str | None
    event_name: str


@dataclass(frozen=True)
class RateEvent:
    function: Function
    event_name: str
    period: float
    event: Any


class Dispatcher:
    def __init__(self, functions: Functions, config: DispatcherConfig, log: Log) -> None:
        self.functions = functions
        self.resources: LocalResources = functions.resources
        self.config = config
        self.log = log
        endpoint, region = self.resources.endpoint, self.resources.region
        self.scheduler = client("scheduler", endpoint, region)
        self.sqs = client("sqs", endpoint, region)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._jobs: list[_AsyncJob] = []
        self._jobs_cv = threading.Condition()
        self._seq = itertools.count()
        self._pool = ThreadPoolExecutor(max_workers=max(2, config.workers), thread_name_prefix="dispatch")
        self._known: dict[tuple[str, str], _Known] = {}
        self._due: list[tuple[datetime, int, tuple[str, str], _Known]] = []  # heap by next due time
        self._dirty: set[tuple[str, str]] = set()  # written since we last read them
        self._schedules_cv = threading.Condition()
        self._warned: set[str] = set()
        self.mappings = self._sqs_mappings()
        self.stream_mappings = self._stream_mappings()
        self.rate_events = self._rate_events()
        self.fired = 0  # schedules fired (for tests and the banner)

    # ------------------------------------------------------------------ wiring from the template

    def _queue_for_arn(self, arn: str) -> tuple[str, str]:
        for logical, url in self.resources.queue_urls.items():
            if self.resources.queue_arn(logical) == arn:
                return url, arn
        raise ValueError(f"SQS event source {arn}: not a queue of the template")

    def _events(self, fn: Function) -> dict[str, Any]:
        props = cfn.load_template()["Resources"][fn.logical_id]["Properties"]
        return dict(props.get("Events") or {})

    def _sqs_mappings(self) -> list[SqsMapping]:
        out = []
        for fn in self.functions.by_logical.values():
            for name, event in self._events(fn).items():
                if event.get("Type") != "SQS":
                    continue
                props = self.resources.resolve(event.get("Properties") or {})
                if props.get("Enabled", True) in (False, "false"):
                    continue
                url, arn = self._queue_for_arn(str(props["Queue"]))
                out.append(
                    SqsMapping(
                        function=fn,
                        queue_url=url,
                        queue_arn=arn,
                        batch_size=max(1, min(10, int(props.get("BatchSize", 10)))),
                        report_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
                        event_name=name,
                    )
                )
        return out

    def _stream_mappings(self) -> list[StreamMapping]:
        out = []
        for fn in self.functions.by_logical.values():
            for name, event in self._events(fn).items():
                if event.get("Type") != "DynamoDB":
                    continue
                props = self.resources.resolve(event.get("Properties") or {})
                if props.get("Enabled", True) in (False, "false"):
                    continue
                on_failure = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
                out.append(
                    StreamMapping(
                        function=fn,
                        stream_arn=str(props["Stream"]),
                        batch_size=max(1, min(10000, int(props.get("BatchSize", 100)))),
                        filters=parse_filters(props.get("FilterCriteria")),
                        report_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
                        max_retries=int(props.get("MaximumRetryAttempts", -1)),
                        on_failure_arn=str(on_failure) if on_failure else None,
                        event_name=name,
                    )
                )
        return out

    def _rate_events(self) -> list[RateEvent]:
        out = []
        for fn in self.functions.by_logical.values():
            for name, event in self._events(fn).items():
                kind = event.get("Type")
                if kind not in ("Schedule", "ScheduleV2"):
                    continue
                props = self.resources.resolve(event.get("Properties") or {})
                state = str(props.get("State", "ENABLED")).upper()
                if state == "DISABLED" or props.get("Enabled", True) in (False, "false"):
                    continue
                expression = str(props.get("ScheduleExpression", ""))
                period = rate_seconds(expression)
                if period is None:
                    self.log(f"{fn.logical_id}.{name}: {expression!r} is not a rate(); not run locally")
                    continue
                if "Input" in props:
                    payload: Any = json.loads(props["Input"]) if isinstance(props["Input"], str) else props["Input"]
                elif kind == "ScheduleV2":
                    payload = {}
                else:
                    payload = None  # the scheduled-event document, built at each run
                out.append(RateEvent(fn, name, period, payload))
        return out

    # ------------------------------------------------------------------ life

    def start(self) -> None:
        self._spawn("dispatch-schedules", self._schedule_loop)
        self._spawn("dispatch-async", self._async_loop)
        for mapping in self.mappings:
            self._spawn(f"dispatch-sqs-{mapping.function.logical_id}", functools.partial(self._sqs_loop, mapping))
        for stream in self.stream_mappings:
            self._spawn(f"dispatch-stream-{stream.function.logical_id}", functools.partial(self._stream_loop, stream))
        if self.config.rate_events:
            for rate in self.rate_events:
                self._spawn(f"dispatch-rate-{rate.function.logical_id}", functools.partial(self._rate_loop, rate))

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        def run() -> None:
            while not self._stop.is_set():
                try:
                    target()
                    return
                except Exception as exc:  # a loop must survive a moto hiccup
                    self.log(f"{name}: {type(exc).__name__}: {exc}; retrying")
                    traceback.print_exc()
                    self._stop.wait(1.0)

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        with self._jobs_cv:
            self._jobs_cv.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            # A queue poller may sit in a long poll: it holds nothing (its batches run in the pool,
            # waited for below), so it is given a moment only; it is a daemon thread.
            wait = 0.2 if thread.name.startswith("dispatch-sqs-") else max(0.1, deadline - time.monotonic())
            thread.join(timeout=wait)
        self._pool.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------------ schedules

    def observe(self, events: Any) -> None:
        """Hear of every schedule written through clients of `events`' session (the functions')."""
        from local.observe import observe_calls

        def changed(_operation: str, params: dict[str, Any], _answer: dict[str, Any]) -> None:
            name, group = params.get("Name"), params.get("GroupName") or "default"
            if isinstance(name, str):
                self.schedule_changed(str(group), name)

        observe_calls(events, "scheduler", ("CreateSchedule", "UpdateSchedule", "DeleteSchedule"), changed)

    def schedule_changed(self, group: str, name: str) -> None:
        """A schedule was created, updated or deleted: read it again (soon, on the schedule loop)."""
        if group not in self.resources.schedule_groups:
            return
        with self._schedules_cv:
            self._dirty.add((group, name))
            self._schedules_cv.notify()

    def _schedule_loop(self) -> None:
        self.poll_schedules()
        resync = self.config.schedule_resync
        next_resync = time.monotonic() + resync if resync > 0 else None
        while not self._stop.is_set():
            with self._schedules_cv:
                wait = self.config.schedule_poll_interval
                if self._due:
                    wait = min(wait, max(0.0, (self._due[0][0] - datetime.now(UTC)).total_seconds()))
                if next_resync is not None:
                    wait = min(wait, max(0.0, next_resync - time.monotonic()))
                if not self._dirty and wait > 0:
                    self._schedules_cv.wait(wait)
                dirty, self._dirty = self._dirty, set()
            if self._stop.is_set():
                return
            if next_resync is not None and time.monotonic() >= next_resync:
                self.poll_schedules()
                next_resync = time.monotonic() + resync
            for key in dirty:
                self._refresh(key)
            self._fire_due(datetime.now(UTC))

    def _list(self, group: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"GroupName": group, "MaxResults": 100}
            if token:
                kwargs["NextToken"] = token
            page = self.scheduler.list_schedules(**kwargs)
            out += page.get("Schedules", [])
            token = page.get("NextToken")
            if not token:
                return out

    def poll_schedules(self) -> None:
        """A full listing: learn every schedule of the template's groups (new or changed ones are
        read), forget deleted ones, and fire those due. At start, and every `schedule_resync`."""
        seen: set[tuple[str, str]] = set()
        for group in self.resources.schedule_groups:
            for summary in self._list(group):
                key = (group, summary["Name"])
                seen.add(key)
                known = self._known.get(key)
                if known is None or known.modified != summary.get("LastModificationDate"):
                    self._refresh(key)
        for key in set(self._known) - seen:
            del self._known[key]
        self._fire_due(datetime.now(UTC))

    def _refresh(self, key: tuple[str, str]) -> None:
        """Read one schedule again; a deleted one is forgotten (its heap entry goes stale)."""
        known = self._describe(*key)
        if known is None:
            self._known.pop(key, None)
            return
        previous = self._known.get(key)
        if previous is not None and previous.modified == known.modified:
            return  # unchanged (our own DELETE-after-completion, or a replayed notice)
        self._known[key] = known
        self._push(key, known)

    def _next_due(self, known: _Known) -> datetime | None:
        detail = known.detail
        if detail.get("State", "ENABLED") != "ENABLED":
            return None
        if known.due is not None:
            return known.due if known.last_fired is None else None
        if known.period is not None:
            start = detail.get("StartDate")
            base = known.last_fired or start or detail.get("CreationDate") or datetime.now(UTC)
            due: datetime = base + timedelta(seconds=known.period)
            return max(due, start) if start is not None else due
        return None

    def _push(self, key: tuple[str, str], known: _Known) -> None:
        due = self._next_due(known)
        if due is not None:
            heapq.heappush(self._due, (due, next(self._seq), key, known))

    def _fire_due(self, now: datetime) -> None:
        while self._due and self._due[0][0] <= now:
            _, _, key, known = heapq.heappop(self._due)
            if self._known.get(key) is not known:
                continue  # changed or deleted since it was pushed
            if self._is_due(known, now):
                self._fire(key[0], key[1], known, now)
                if self._known.get(key) is known:
                    self._push(key, known)  # a rate() schedule: its next period

    def _describe(self, group: str, name: str) -> _Known | None:
        try:
            detail = self.scheduler.get_schedule(Name=name, GroupName=group)
        except self.scheduler.exceptions.ResourceNotFoundException:
            return None
        expression = str(detail.get("ScheduleExpression", ""))
        due = at_instant(expression, detail.get("ScheduleExpressionTimezone"))
        period = rate_seconds(expression)
        if due is None and period is None and expression not in self._warned:
            self._warned.add(expression)
            self.log(f"schedule {group}/{name}: {expression!r} is not run locally (at() and rate() are)")
        return _Known(detail.get("LastModificationDate"), detail, due, period)

    def _is_due(self, known: _Known, now: datetime) -> bool:
        detail = known.detail
        if detail.get("State", "ENABLED") != "ENABLED":
            return False
        start, end = detail.get("StartDate"), detail.get("EndDate")
        if known.due is not None:
            return known.last_fired is None and now >= known.due
        if known.period is not None:
            if (start is not None and now < start) or (end is not None and now > end):
                return False
            base = known.last_fired or start or detail.get("CreationDate") or now
            return bool(now >= base + timedelta(seconds=known.period))
        return False

    def _fire(self, group: str, name: str, known: _Known, now: datetime) -> None:
        detail = known.detail
        target = detail.get("Target") or {}
        raw_input = target.get("Input")
        try:
            event: Any = json.loads(raw_input) if raw_input else {}
        except ValueError:
            event = raw_input
        known.last_fired = now
        one_time = known.due is not None
        if one_time and detail.get("ActionAfterCompletion") == "DELETE":
            try:
                current = self.scheduler.get_schedule(Name=name, GroupName=group)
            except self.scheduler.exceptions.ResourceNotFoundException:
                return  # deleted meanwhile: it does not fire
            if current.get("LastModificationDate") != known.modified:
                self._known.pop((group, name), None)  # changed meanwhile: read it again
                self._refresh((group, name))
                return
            try:
                self.scheduler.delete_schedule(Name=name, GroupName=group)
            except self.scheduler.exceptions.ResourceNotFoundException:
                return
            self._known.pop((group, name), None)
        self.fired += 1
        fn = self.functions.for_arn(str(target.get("Arn", "")))
        if fn is None:
            self.log(f"schedule {group}/{name} fired; target {target.get('Arn')} is not a local function -> DLQ")
            self._schedule_dead_letter(detail, event, "ResourceNotFoundException", "the target does not exist")
            return
        self.log(f"schedule {group}/{name} fired -> {fn.logical_id} (async)")
        self.invoke_async(fn, event, f"schedule {group}/{name}")

    def _schedule_dead_letter(self, detail: dict[str, Any], event: Any, code: str, message: str) -> None:
        target = detail.get("Target") or {}
        dlq = (target.get("DeadLetterConfig") or {}).get("Arn")
        if not dlq:
            self.log(f"schedule {detail.get('Name')}: no dead-letter queue; the event is dropped")
            return
        self._send_dead_letter(
            dlq,
            event,
            {
                "ERROR_CODE": code,
                "ERROR_MESSAGE": message,
                "EXHAUSTED_RETRY_CONDITION": "NonRetryableError",
                "RETRY_ATTEMPTS": "0",
                "SCHEDULE_ARN": str(detail.get("Arn", "")),
                "TARGET_ARN": str(target.get("Arn", "")),
            },
        )

    def _send_dead_letter(self, arn: str, event: Any, attributes: dict[str, str]) -> None:
        try:
            url, _ = self._queue_for_arn(arn)
        except ValueError:
            self.log(f"dead-letter target {arn} is not a queue of the template; the event is dropped")
            return
        self.sqs.send_message(
            QueueUrl=url,
            MessageBody=event if isinstance(event, str) else json.dumps(event),
            MessageAttributes={k: {"DataType": "String", "StringValue": v or "-"} for k, v in attributes.items()},
        )

    # ------------------------------------------------------------------ asynchronous invocation

    def invoke_async(self, fn: Function, event: Any, source: str) -> None:
        now = time.monotonic()
        job = _AsyncJob(now, next(self._seq), fn, event, source, now)
        with self._jobs_cv:
            heapq.heappush(self._jobs, job)
            self._jobs_cv.notify()

    def _async_loop(self) -> None:
        while not self._stop.is_set():
            with self._jobs_cv:
                while not self._stop.is_set():
                    wait = self._jobs[0].due - time.monotonic() if self._jobs else 1.0
                    if self._jobs and wait <= 0:
                        break
                    self._jobs_cv.wait(timeout=max(0.01, min(wait, 1.0)))
                if self._stop.is_set():
                    return
                job = heapq.heappop(self._jobs)
            self._pool.submit(self._run_async, job)

    def _run_async(self, job: _AsyncJob) -> None:
        fn = job.function
        try:
            fn.invoke(job.event, job.request_id)
            return
        except FunctionError as exc:
            error = exc
        except Exception as exc:  # pragma: no cover - invoke wraps handler errors
            error = FunctionError(type(exc).__name__, str(exc))
        config = fn.async_config
        age = time.monotonic() - job.first_at
        if job.attempt < config.maximum_retry_attempts and age < config.maximum_event_age_seconds:
            delays = self.config.async_retry_delays or (1.0,)
            delay = delays[min(job.attempt, len(delays) - 1)]
            self.log(f"{fn.logical_id} failed ({error.error_type}) for {job.source}; retry in {delay:g}s")
            retry = _AsyncJob(
                time.monotonic() + delay,
                next(self._seq),
                fn,
                job.event,
                job.source,
                job.first_at,
                job.attempt + 1,
                job.request_id,
            )
            with self._jobs_cv:
                heapq.heappush(self._jobs, retry)
                self._jobs_cv.notify()
            return
        self.log(f"{fn.logical_id} failed {job.attempt + 1} times for {job.source}; giving up")
        if config.dead_letter_arn:
            self._send_dead_letter(
                config.dead_letter_arn,
                job.event,
                {"RequestID": job.request_id, "ErrorCode": "200", "ErrorMessage": error.error_message[:1024]},
            )

    # ------------------------------------------------------------------ SQS event-source mappings

    def _sqs_loop(self, mapping: SqsMapping) -> None:
        slots = threading.Semaphore(mapping.function.max_concurrency)
        last_message = 0.0
        while not self._stop.is_set():
            if not slots.acquire(timeout=0.5):
                continue
            busy = time.monotonic() - last_message < 10.0
            try:
                messages = self.sqs.receive_message(
                    QueueUrl=mapping.queue_url,
                    MaxNumberOfMessages=mapping.batch_size,
                    # A quiet queue is long-polled: moto answers as soon as a message is sent (a
                    # delayed or retried one within a second of becoming visible), and an idle
                    # stack sends a request per queue every few seconds instead of four a second.
                    WaitTimeSeconds=0 if busy else self.config.idle_wait_seconds,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
            except BaseException:
                slots.release()
                raise
            if not messages or self._stop.is_set():
                slots.release()  # (received while stopping: they become visible again, unhandled)
                if busy:
                    self._stop.wait(self.config.poll_interval)
                continue
            last_message = time.monotonic()

            def run(messages: list[dict[str, Any]] = messages) -> None:
                try:
                    self.deliver_batch(mapping, messages)
                except Exception as exc:
                    self.log(f"{mapping.function.logical_id} SQS batch: {type(exc).__name__}: {exc}")
                finally:
                    slots.release()

            self._pool.submit(run)

    def _record(self, mapping: SqsMapping, message: dict[str, Any]) -> dict[str, Any]:
        attributes = {k: str(v) for k, v in (message.get("Attributes") or {}).items()}
        message_attributes = {}
        for name, value in (message.get("MessageAttributes") or {}).items():
            message_attributes[name] = {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": value.get("StringListValues", []),
                "binaryListValues": value.get("BinaryListValues", []),
                "dataType": value.get("DataType"),
            }
        record = {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message.get("Body", ""),
            "attributes": attributes,
            "messageAttributes": message_attributes,
            "md5OfBody": message.get("MD5OfBody"),
            "eventSource": "aws:sqs",
            "eventSourceARN": mapping.queue_arn,
            "awsRegion": self.resources.region,
        }
        if message.get("MD5OfMessageAttributes"):
            record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
        return record

    def deliver_batch(self, mapping: SqsMapping, messages: list[dict[str, Any]]) -> None:
        records = [self._record(mapping, m) for m in messages]
        ids = {r["messageId"] for r in records}
        failed: set[str]
        try:
            result = mapping.function.invoke({"Records": records})
        except FunctionError as exc:
            failed = set(ids)
            self.log(f"{mapping.function.logical_id} failed a batch of {len(records)} ({exc.error_type}); kept")
        else:
            failed = set()
            if mapping.report_failures and isinstance(result, dict) and result.get("batchItemFailures"):
                reported = {str((item or {}).get("itemIdentifier") or "") for item in result["batchItemFailures"]}
                failed = reported if reported <= ids else set(ids)  # a malformed answer fails the batch
                self.log(f"{mapping.function.logical_id}: {len(failed)} of {len(records)} records failed; kept")
        done = [r for r in records if r["messageId"] not in failed]
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            self.sqs.delete_message_batch(
                QueueUrl=mapping.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(chunk)],
            )
        if failed and self.config.sqs_retry_visibility is not None:
            for r in records:
                if r["messageId"] in failed:
                    self.sqs.change_message_visibility(
                        QueueUrl=mapping.queue_url,
                        ReceiptHandle=r["receiptHandle"],
                        VisibilityTimeout=self.config.sqs_retry_visibility,
                    )

    # ------------------------------------------------------------------ DynamoDB stream event-source mappings

    def _stream_loop(self, mapping: StreamMapping) -> None:
        reader = StreamReader(
            client("dynamodbstreams", self.resources.endpoint, self.resources.region),
            mapping.stream_arn,
            self.resources.region,
        )
        last_record = 0.0
        while not self._stop.is_set():
            records = reader.read()
            if not records:
                busy = time.monotonic() - last_record < 10.0
                self._stop.wait(self.config.poll_interval if busy else self.config.stream_idle_interval)
                continue
            last_record = time.monotonic()
            wanted = [r for r in records if matches(mapping.filters, r)]
            for start in range(0, len(wanted), mapping.batch_size):
                self.deliver_stream_batch(mapping, wanted[start : start + mapping.batch_size])

    def deliver_stream_batch(self, mapping: StreamMapping, records: list[dict[str, Any]]) -> None:
        """One batch, retried as Lambda's mapping retries it; then the OnFailure destination."""
        attempt = 0
        while records and not self._stop.is_set():
            try:
                result = mapping.function.invoke({"Records": records})
            except FunctionError as exc:
                self.log(f"{mapping.function.logical_id} failed a stream batch of {len(records)} ({exc.error_type})")
                failed_from = 0
            else:
                failures = result.get("batchItemFailures") if isinstance(result, dict) else None
                if not mapping.report_failures or not failures:
                    return
                seqs = [str(r["dynamodb"]["SequenceNumber"]) for r in records]
                reported = [str((item or {}).get("itemIdentifier")) for item in failures]
                positions = [seqs.index(seq) for seq in reported if seq in seqs]
                failed_from = min(positions) if len(positions) == len(reported) else 0
                self.log(f"{mapping.function.logical_id}: stream records from {failed_from} of {len(records)} failed")
            records = records[failed_from:]
            attempt += 1
            if 0 <= mapping.max_retries < attempt:
                self._stream_failure(mapping, records, attempt)
                return
            delays = self.config.async_retry_delays or (1.0,)
            self._stop.wait(delays[min(attempt - 1, len(delays) - 1)])

    def _stream_failure(self, mapping: StreamMapping, records: list[dict[str, Any]], attempts: int) -> None:
        self.log(f"{mapping.function.logical_id}: {len(records)} stream records failed {attempts} times; given up")
        if not mapping.on_failure_arn:
            return
        seqs = [str(r["dynamodb"]["SequenceNumber"]) for r in records]
        info = {
            "requestContext": {
                "functionArn": mapping.function.arn,
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": attempts,
            },
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(),
            "DDBStreamBatchInfo": {
                "shardId": "local",
                "startSequenceNumber": seqs[0],
                "endSequenceNumber": seqs[-1],
                "batchSize": len(records),
                "streamArn": mapping.stream_arn,
            },
        }
        self._send_dead_letter(mapping.on_failure_arn, info, {})

    # ------------------------------------------------------------------ rate events

    def _rate_loop(self, rate: RateEvent) -> None:
        period = rate.period / max(self.config.rate_speedup, 1e-6)
        while not self._stop.wait(period):
            event = rate.event
            if event is None:
                now = datetime.now(UTC)
                event = {
                    "version": "0",
                    "id": str(uuid.uuid4()),
                    "detail-type": "Scheduled Event",
                    "source": "aws.events",
                    "account": self.resources.account_id,
                    "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "region": self.resources.region,
                    "resources": [
                        f"arn:aws:events:{self.resources.region}:{self.resources.account_id}:rule/"
                        f"{self.resources.stack_name}-{rate.function.logical_id}{rate.event_name}"
                    ],
                    "detail": {},
                }
            self.invoke_async(rate.function, event, f"rate event {rate.function.logical_id}.{rate.event_name}")
