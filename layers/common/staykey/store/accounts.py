"""Guests' Nuki account users: which bookings use one, whether StayKey created it (only those are
ever deleted at Nuki), when it may be deleted (`purgeAt`: its bookings' guest data is gone), and
the marker of a creation under way (so a user created by an invocation that died before it could
record it is still known as ours).

| item                                   | key                                            |
|----------------------------------------|------------------------------------------------|
| an account user of a guest             | ACCOUNTUSER#{accountUserId} / ACCOUNTUSER      |
| due for deletion at Nuki (ours only)   | gsi2: AUPURGE / {purgeAt}#{accountUserId}      |
| a creation under way                   | AUNEW#{sha256 of the email} / AUNEW            |

No item holds the guest's name or email: the account user's id, the booking ids, instants, and
the creation marker's one-way hash of the address (which expires after a day).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from staykey.core.timeutil import iso_utc, parse_iso
from staykey.errors import ConcurrentModification
from staykey.store.keys import iso
from staykey.store.table import KEY_MIN, Table

ACCOUNT_SK = "ACCOUNTUSER"
PURGE_PK = "AUPURGE"
PENDING_TTL = timedelta(days=1)
# An account user StayKey did not create is forgotten (never deleted at Nuki) this long after its
# last booking's guest data expired.
FOUND_TTL = timedelta(days=1)


def email_tag(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


class AccountUserItems(Table):
    def get_account_user(self, account_user_id: int) -> dict[str, Any] | None:
        return self._get(f"ACCOUNTUSER#{account_user_id}", ACCOUNT_SK)

    def record_account_user(
        self, account_user_id: int, booking_id: str, *, created: bool, purge_at: datetime, attempts: int = 5
    ) -> dict[str, Any]:
        """Add a booking to an account user's item (created if new): once created by StayKey it stays
        ours, and its `purgeAt` is the latest of its bookings'. Optimistic: read, change, write."""
        for _ in range(attempts):
            old = self.get_account_user(account_user_id)
            version = int(old.get("version", 0)) if old else 0
            bookings = sorted({*((old.get("bookings") or []) if old else []), booking_id})
            ours = bool(old and old.get("created")) or created
            before = parse_iso(str(old["purgeAt"])) if old and old.get("purgeAt") else None
            purge = max(purge_at, before) if before is not None else purge_at
            item = self._account_item(account_user_id, bookings, ours, purge, version + 1, old)
            condition = "attribute_not_exists(pk)" if old is None else "version = :v"
            if self._put(item, condition, values=None if old is None else {":v": version}):
                return item
        raise ConcurrentModification(f"account user {account_user_id} keeps changing; try again")

    def _account_item(
        self,
        account_user_id: int,
        bookings: list[str],
        created: bool,
        purge_at: datetime,
        version: int,
        old: dict[str, Any] | None,
    ) -> dict[str, Any]:
        item: dict[str, Any] = {
            "pk": f"ACCOUNTUSER#{account_user_id}",
            "sk": ACCOUNT_SK,
            "accountUserId": account_user_id,
            "bookings": bookings,
            "created": created,
            "purgeAt": iso(purge_at),
            "version": version,
        }
        if old and old.get("deleteSentAt"):
            item["deleteSentAt"] = old["deleteSentAt"]
        if created:  # only the users we created are due for deletion at Nuki
            item["gsi2pk"], item["gsi2sk"] = PURGE_PK, f"{iso(purge_at)}#{account_user_id:010d}"
        else:
            item["expiresAt"] = int((purge_at + FOUND_TTL).timestamp())
        return item

    def reschedule_account_user(self, account_user_id: int, purge_at: datetime) -> None:
        """Its purge is not due yet (a booking still needs it): look again at `purge_at`."""
        item = self.get_account_user(account_user_id)
        if item is None:
            return
        bookings = list(item.get("bookings") or [])
        self._put(
            self._account_item(
                account_user_id, bookings, bool(item.get("created")), purge_at, int(item.get("version", 0)) + 1, item
            ),
            "version = :v",
            values={":v": int(item.get("version", 0))},
        )

    def mark_account_user_deleting(self, account_user_id: int, at: datetime) -> None:
        self.client.update_item(
            TableName=self.table_name,
            Key=self._codec.dump({"pk": f"ACCOUNTUSER#{account_user_id}", "sk": ACCOUNT_SK}),
            UpdateExpression="SET #d = :d",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={"#d": "deleteSentAt"},
            ExpressionAttributeValues=self._codec.dump({":d": iso_utc(at)}),
        )

    def forget_account_user(self, account_user_id: int) -> None:
        self._delete(f"ACCOUNTUSER#{account_user_id}", ACCOUNT_SK)

    def account_users_due(self, now: datetime, limit: int = 100) -> list[dict[str, Any]]:
        """Account users StayKey created whose purge is due, oldest first (at most `limit`)."""
        page = self.index_range("gsi2", PURGE_PK, KEY_MIN, f"{iso(now)}#~", want=limit, budget=limit)
        return page.items

    # -- a creation under way --------------------------------------------------------------

    def mark_account_user_pending(self, email: str, now: datetime) -> None:
        tag = email_tag(email)
        self._put(
            {"pk": f"AUNEW#{tag}", "sk": "AUNEW", "at": iso_utc(now), "expiresAt": int((now + PENDING_TTL).timestamp())}
        )

    def account_user_pending(self, email: str, now: datetime) -> bool:
        item = self._get(f"AUNEW#{email_tag(email)}", "AUNEW")
        return item is not None and int(item.get("expiresAt", 0)) > now.timestamp()

    def clear_account_user_pending(self, email: str) -> None:
        self._delete(f"AUNEW#{email_tag(email)}", "AUNEW")


__all__ = ["AccountUserItems", "email_tag"]
