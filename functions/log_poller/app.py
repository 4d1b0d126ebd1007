"""Reads every room's locks' activity logs from a cursor per lock, on a schedule (EventBridge
Scheduler input {"action": "poll-logs"}): the same attribution and storage as DEVICE_LOGS webhooks,
for accounts without Nuki's Advanced API and for entries a lost webhook missed."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from staykey import wiring
from staykey.observability import logger, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The input carries nothing to act on; whatever it is, a run polls every lock.
    report = wiring.log_poller().poll_all(remaining=lambda: context.get_remaining_time_in_millis() / 1000)
    summary = report.to_dict()
    logger.info("log poll finished", **summary)
    return summary
