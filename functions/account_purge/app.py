"""The privacy purge of guests' Nuki account users (EventBridge Scheduler input
{"action": "purge-account-users"}, hourly): every account user StayKey created whose bookings have
ended and whose guest data has expired (GuestDataRetentionDays after the stay) is deleted at Nuki,
and the deletion confirmed on the next run (staykey.services.accounts). An account user StayKey
found (one the operator's Nuki account had already) is never deleted."""

from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from staykey import wiring
from staykey.observability import logger


class PurgeRun(BaseModel):
    action: Literal["purge-account-users"]


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    PurgeRun.model_validate(event)
    report = wiring.accounts().purge()
    logger.info(
        "account users purged",
        due=report.due,
        deleted=len(report.deleted),
        confirmed=len(report.confirmed),
        waiting=report.waiting,
        failed=report.failed,
    )
    return {
        "due": report.due,
        "deleteSent": len(report.deleted),
        "confirmedDeleted": len(report.confirmed),
        "waiting": report.waiting,
        "failed": report.failed,
    }
