"""Reconciles locks from the reconcile queue (SQS records {"smartlockId", "reason", "attempt"}): for
each lock, the plan (what is on it against what the bookings say) and its execution. A lock whose
reconciliation fails for a reason other than Nuki, or that the invocation has no time left for, is
reported as a partial batch failure and comes back; after the queue's retries it lands in the DLQ
(alarmed). Nuki trouble on one lock is recorded and left to the next run."""

from __future__ import annotations

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from staykey import wiring
from staykey.adapters.reconcile_queue import parse_job
from staykey.observability import logger, tracer

processor = BatchProcessor(event_type=EventType.SQS)
# One lock can take several Nuki calls with retries (each bounded by NUKI_MAX_TOTAL_SECONDS).
MIN_SECONDS_PER_LOCK = 45


class NoTimeLeft(Exception):
    pass


def _reconcile(record: SQSRecord, lambda_context: LambdaContext | None = None) -> None:
    job = parse_job(record.body)
    if lambda_context is not None and lambda_context.get_remaining_time_in_millis() < MIN_SECONDS_PER_LOCK * 1000:
        raise NoTimeLeft(f"lock {job.smartlockId} left for a later invocation")
    plan = wiring.reconciler().reconcile_lock(job.smartlockId, attempt=job.attempt)
    logger.info(
        "lock reconciled",
        smartlock_id=job.smartlockId,
        reason=job.reason,
        state=plan.state,
        keypad_codes=plan.code_count,
        actions=sum(1 for action in plan.actions if action.do != "none"),
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, object], context: LambdaContext) -> dict[str, object]:
    return process_partial_response(event=event, record_handler=_reconcile, processor=processor, context=context)
