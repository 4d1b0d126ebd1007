"""The watcher (EventBridge Scheduler input {"action": "poll-logs"}, every LogPollSchedule): decides
what is due and reads it: the account's activity log (every lock's, one cursor; often while a stay
runs, rarely otherwise, and with webhooks registered only to fill their gaps) and the keypad codes of
the hot locks and of the locks a signal names; a lock whose codes changed and show drift goes to the
reconcile queue. See `staykey.services.watch`.

The same function runs the shared look (input {"action": "shared-looks"}, every minute, its SharedLooks schedule):
the writes nobody waits for, confirmed by one read of their locks. See `staykey.services.shared`."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from staykey import wiring
from staykey.observability import logger, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    def remaining() -> float:
        return context.get_remaining_time_in_millis() / 1000

    if isinstance(event, dict) and event.get("action") == "shared-looks":
        return wiring.shared_looks().run(remaining=remaining)
    # Any other input: a run of the watcher decides what is due (the input carries nothing to act on).
    return wiring.watcher().tick(remaining=remaining).to_dict()
