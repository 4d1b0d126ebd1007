"""The console's audit log: AUDIT#{yyyy-mm} / {at}#{id}, and its index by booking."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from staykey.core.timeutil import iso_utc
from staykey.store import keys as indexes
from staykey.store.table import Table


class AuditItems(Table):
    # -- audit (the console's log of operator actions) --------------------------------------

    def put_audit(self, entry: dict[str, Any], at: datetime, expires_at: datetime) -> None:
        """One audit entry (`entry` holds `id`, `actor`, `action` ...; never a PIN or guest data):
        under its month, newest first, and under its booking in gsi1."""
        stamp = iso_utc(at)
        item = {
            **entry,
            "pk": indexes.audit_month_pk(at),
            "sk": f"{stamp}#{entry['id']}",
            "at": stamp,
            "expiresAt": int(expires_at.timestamp()),
        }
        if entry.get("bookingId"):
            item["gsi1pk"] = indexes.audit_booking_pk(str(entry["bookingId"]))
            item["gsi1sk"] = item["sk"]
        self._put(item, "attribute_not_exists(pk)")

    def audit_month(self, month_pk: str, limit: int, before: str | None = None) -> tuple[list[dict[str, Any]], bool]:
        """Audit entries of one month partition, newest first, older than sort key `before`;
        (entries, more in this month)."""
        condition = "pk = :p" + (" AND sk < :b" if before else "")
        values: dict[str, Any] = {":p": month_pk, **({":b": before} if before else {})}
        res = self.client.query(
            TableName=self.table_name,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=self._codec.dump(values),
            ScanIndexForward=False,
            Limit=limit,
            ConsistentRead=True,
        )
        return [self._codec.load(raw) for raw in res.get("Items", [])], "LastEvaluatedKey" in res

    def audit_for_booking(self, booking_id: str, limit: int) -> list[dict[str, Any]]:
        return list(self._query(indexes.audit_booking_pk(booking_id), index="gsi1", forward=False, limit=limit))
