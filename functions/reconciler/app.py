"""The full sweep (EventBridge Scheduler input {"action": "reconcile"}, at the template's
ReconcileSchedule rate, daily by default): every lock of every room and every lock a room had. When
the account's list of keypad codes costs fewer Nuki calls than one read per lock, it reads that list
and puts only the locks that show drift on the reconcile queue; otherwise every lock (see
`staykey.services.checks`). `reconcile_lock` takes the queue with bounded concurrency. An operator may
invoke it with {"action": "reconcile", "smartlockIds": [...]} to reconcile some locks now."""

from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from staykey import wiring
from staykey.core.models import SMARTLOCK_ID_MAX
from staykey.observability import logger


class ReconcileRun(BaseModel):
    action: Literal["reconcile"]
    smartlockIds: list[int] | None = Field(default=None, min_length=1, max_length=1000)

    def lock_ids(self) -> list[int] | None:
        if self.smartlockIds is not None and not all(1 <= i <= SMARTLOCK_ID_MAX for i in self.smartlockIds):
            raise ValueError("smartlockIds must be Nuki smartlock ids")
        return self.smartlockIds


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    run = ReconcileRun.model_validate(event)
    lock_ids = run.lock_ids()
    if lock_ids is not None:
        return {"locksQueued": wiring.reconciler().enqueue_all(lock_ids, reason="manual")}
    swept = wiring.checks().sweep(remaining=lambda: context.get_remaining_time_in_millis() / 1000)
    return {"locksQueued": swept["queued"], "locks": swept["locks"], "clean": swept["clean"]}
