"""The scheduled reconcile run (EventBridge Scheduler input {"action": "reconcile"}, at the
template's ReconcileSchedule rate): lists every lock of every room and puts one message per lock on
the reconcile queue, where `reconcile_lock` takes them with bounded concurrency. An operator may
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
    queued = wiring.reconciler().enqueue_all(lock_ids, reason="scheduled" if lock_ids is None else "manual")
    return {"locksQueued": queued}
