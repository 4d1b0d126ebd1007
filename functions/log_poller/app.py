"""The watcher (EventBridge Scheduler input {"action": "poll-logs"}, every LogPollSchedule): decides
what is due and reads it: the account's activity log (every lock's, one cursor; often while a stay
runs, rarely otherwise, and with webhooks registered only to fill their gaps) and the keypad codes of
the hot locks and of the locks a signal names; a lock whose codes changed and show drift goes to the
reconcile queue. See `staykey.services.watch`."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from staykey import wiring
from staykey.observability import logger, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The input carries nothing to act on; whatever it is, a run decides what is due.
    report = wiring.watcher().tick(remaining=lambda: context.get_remaining_time_in_millis() / 1000)
    return report.to_dict()
