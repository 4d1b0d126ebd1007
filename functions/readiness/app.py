"""The scheduled readiness checks (EventBridge Scheduler input {"action": "readiness"}, at the
template's ReadinessSchedule rate): every booking whose stay starts within the first of
ReadinessCheckHours (48 by default) has its locks checked when a check is due (staykey.core.readiness),
`readiness` put on it (`ok`, or `at_risk` with its reasons), the `BookingsAtRisk` gauge emitted (an
alarm watches it). An operator may invoke it with {"action": "readiness", "bookingId": "..."} to
check one booking now."""

from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from staykey import wiring
from staykey.core.models import ID_PATTERN
from staykey.observability import logger


class ReadinessRun(BaseModel):
    action: Literal["readiness"]
    bookingId: str | None = Field(default=None, pattern=ID_PATTERN)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    run = ReadinessRun.model_validate(event)
    checks = wiring.readiness()
    if run.bookingId is not None:
        booking = checks.check(run.bookingId)
        readiness = booking.readiness.to_api() if booking is not None and booking.readiness else None
        return {"bookingId": run.bookingId, "readiness": readiness}
    out = checks.run().to_dict()
    try:
        # Backup codes (services.backup): pools filled, given where a code missed its deadline, the
        # used ones of ended stays removed. A failure is logged; the next run does what this did not.
        out["backupCodes"] = wiring.backup_pools().run()
    except Exception as exc:
        logger.exception("backup codes run failed", error=type(exc).__name__)
    return out
