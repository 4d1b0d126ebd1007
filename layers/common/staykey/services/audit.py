"""The audit log: who did what, when, through the console (every action, every PIN revealed).

Entries name the operator (their Cognito username), the action, the booking or lock it concerned,
and what came of it; never a PIN and never guest data. They live under their month
(`AUDIT#{yyyy-mm}`, newest first) and under their booking (gsi1), and expire after
AUDIT_RETENTION_DAYS (default two years). An entry is written after the action, with its outcome:
an action that was refused is recorded as refused.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from staykey.core.timeutil import Clock, parse_iso
from staykey.edge.pagination import decode_cursor, encode_cursor
from staykey.store import Store, fanout
from staykey.store import keys as indexes

ACTIONS = (
    "checkout",
    "cancel",
    "resend_email",
    "retry",
    "rotate_pin",
    "reveal_pin",
    "give_backup_code",
    "sign_in",
    "sign_out",
    "staff_code_create",
    "staff_code_remove",
)
MONTHS_BACK = 24
MONTHS_AT_ONCE = 6
_AUDIT_KEY = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z#[a-f0-9]{16}")


@dataclass
class AuditEntry:
    id: str
    at: datetime
    actor: str
    action: str
    outcome: str
    booking_id: str | None = None
    smartlock_id: int | None = None
    detail: str | None = None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> AuditEntry:
        at = parse_iso(str(item["at"]))
        assert at is not None
        return cls(
            id=str(item["id"]),
            at=at,
            actor=str(item["actor"]),
            action=str(item["action"]),
            outcome=str(item.get("outcome", "ok")),
            booking_id=item.get("bookingId"),
            smartlock_id=int(item["smartlockId"]) if item.get("smartlockId") is not None else None,
            detail=item.get("detail"),
        )


class Audit:
    def __init__(self, store: Store, clock: Clock, retention_days: int = 730) -> None:
        self.store = store
        self.clock = clock
        self.retention = timedelta(days=retention_days)

    def record(
        self,
        actor: str,
        action: str,
        outcome: str = "ok",
        *,
        booking_id: str | None = None,
        smartlock_id: int | None = None,
        detail: str | None = None,
    ) -> AuditEntry:
        if action not in ACTIONS:
            raise ValueError(f"unknown audit action {action!r}")
        now = self.clock.now()
        entry = AuditEntry(secrets.token_hex(8), now, actor, action, outcome, booking_id, smartlock_id, detail)
        self.store.put_audit(
            {
                "id": entry.id,
                "actor": actor,
                "action": action,
                "outcome": outcome,
                "bookingId": booking_id,
                "smartlockId": smartlock_id,
                "detail": detail,
            },
            now,
            now + self.retention,
        )
        return entry

    def recent(self, limit: int = 50, cursor: str | None = None) -> tuple[list[AuditEntry], str | None]:
        """Newest first, across months; (entries, nextCursor)."""
        bound = {"audit": "all"}
        before = decode_cursor(cursor, bound, _AUDIT_KEY)
        now = self.clock.now()
        month = parse_iso(before.split("#", 1)[0]) if before else now
        assert month is not None
        months = []
        for _ in range(MONTHS_BACK):
            months.append(indexes.audit_month_pk(month))
            month = month.replace(day=1, hour=0, minute=0, second=0, microsecond=0) - timedelta(seconds=1)
        out: list[AuditEntry] = []
        # Month partitions newest first, MONTHS_AT_ONCE at a time (a quiet log spans many months;
        # the first round usually fills the page). Only the first month read starts at the cursor.
        for start in range(0, len(months), MONTHS_AT_ONCE):
            batch = months[start : start + MONTHS_AT_ONCE]
            want = limit - len(out)
            reads = fanout.each(
                [
                    partial(self.store.audit_month, pk, want, before if start + n == 0 else None)
                    for n, pk in enumerate(batch)
                ]
            )
            for items, _ in reads:
                out += [AuditEntry.from_item(item) for item in items]
                if len(out) >= limit:
                    out = out[:limit]
                    last = out[-1]
                    return out, encode_cursor(f"{last.at.strftime('%Y-%m-%dT%H:%M:%SZ')}#{last.id}", bound)
        return out, None

    def for_booking(self, booking_id: str, limit: int = 100) -> list[AuditEntry]:
        return [AuditEntry.from_item(item) for item in self.store.audit_for_booking(booking_id, limit)]
