"""Guests' Nuki account users: which bookings use one and until when each needs it (`stays`: its
guest data's expiry, moved with the stay), whether StayKey created it (only those are ever deleted
at Nuki), when it may be deleted (`purgeAt`: the latest of its bookings'), whether its deletion was
decided (`deleteSentAt`: then no booking may take it any more), and the attempts of a creation
(so a user created by an invocation that died before it could record it is still known as ours,
and only that one).

| item                                   | key                                            |
|----------------------------------------|------------------------------------------------|
| an account user of a guest             | ACCOUNTUSER#{accountUserId} / ACCOUNTUSER      |
| due for deletion at Nuki (ours only)   | gsi2: AUPURGE / {purgeAt}#{accountUserId}      |
| the attempts of a creation             | AUNEW#{sha256 of the email} / AUNEW            |
| ... by its last attempt (for the purge)| gsi2: AUNEW / {last attempt}#{sha256}          |

No item holds the guest's name or email: the account user's id, the booking ids, instants, and
the creation attempts' one-way hash of the address.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from staykey.core.models import Booking
from staykey.core.text import email_key
from staykey.core.timeutil import iso_utc, parse_iso
from staykey.errors import ConcurrentModification
from staykey.store.bookings import BookingItems
from staykey.store.keys import iso, iso_ms
from staykey.store.table import BOOKING_SK, KEY_MIN, Table

ACCOUNT_SK = "ACCOUNTUSER"
PURGE_PK = "AUPURGE"
PENDING_PK = "AUNEW"
# A creation's attempts are settled by the hourly purge; this is only the backstop (an outage of
# Nuki's listing for this long).
PENDING_TTL = timedelta(days=14)
# An account user StayKey did not create is forgotten (never deleted at Nuki) this long after its
# last booking's guest data expired.
FOUND_TTL = timedelta(days=1)


class AccountUserDeleting(Exception):
    """The account user's deletion at Nuki was decided: no booking may take it any more (a new one
    is created for the guest once it is gone)."""


def email_tag(email: str) -> str:
    return hashlib.sha256(email_key(email).encode()).hexdigest()


def _stays(item: dict[str, Any] | None) -> dict[str, str]:
    """Each booking's guest-data expiry (items written before `stays` give every booking `purgeAt`)."""
    if not item:
        return {}
    if isinstance(item.get("stays"), dict):
        return {str(k): str(v) for k, v in item["stays"].items()}
    return {str(b): str(item["purgeAt"]) for b in item.get("bookings") or [] if item.get("purgeAt")}


class AccountUserItems(Table):
    def get_account_user(self, account_user_id: int) -> dict[str, Any] | None:
        return self._get(f"ACCOUNTUSER#{account_user_id}", ACCOUNT_SK)

    def record_account_user(
        self, account_user_id: int, booking_id: str, *, created: bool, purge_at: datetime, attempts: int = 5
    ) -> dict[str, Any]:
        """Add a booking to an account user's item (created if new), with its guest data's expiry
        (replacing what it had: a stay that got shorter brings the purge forward). Once created by
        StayKey it stays ours; `purgeAt` is the latest of its bookings'. AccountUserDeleting when
        its deletion was decided. Optimistic: read, change, write."""
        for _ in range(attempts):
            old = self.get_account_user(account_user_id)
            if old is not None and old.get("deleteSentAt"):
                raise AccountUserDeleting(f"account user {account_user_id} is being deleted")
            version = int(old.get("version", 0)) if old else 0
            stays = {**_stays(old), booking_id: iso(purge_at)}
            ours = bool(old and old.get("created")) or created
            item = self._account_item(account_user_id, stays, ours, _latest(stays), version + 1, old)
            condition = "attribute_not_exists(pk)" if old is None else "version = :v"
            if self._put(item, condition, values=None if old is None else {":v": version}):
                return item
        raise ConcurrentModification(f"account user {account_user_id} keeps changing; try again")

    def recover_account_user(
        self, account_user_id: int, booking_id: str, expiry: Callable[[Booking], datetime], attempts: int = 5
    ) -> bool:
        """A user our creation attempt for `booking_id` made, found by the purge after the invocation
        died: recorded as ours for the booking, with the booking's guest-data expiry (`expiry`), and
        named among the booking's account users (`GuestAccount.former`), in one transaction against
        both items' versions. A change of the stay's end writes the booking first, then moves every
        user the booking names: before this, the recording reads the new end; after it, the change
        names this user. False if there is no such booking (nothing written); AccountUserDeleting
        when its deletion was decided."""
        for _ in range(attempts):
            raw = self._get(f"BOOKING#{booking_id}", BOOKING_SK)
            if raw is None:
                return False
            booking = Booking.model_validate(raw)
            old = self.get_account_user(account_user_id)
            if old is not None and old.get("deleteSentAt"):
                raise AccountUserDeleting(f"account user {account_user_id} is being deleted")
            version = int(old.get("version", 0)) if old else 0
            stays = {**_stays(old), booking_id: iso(expiry(booking))}
            item = self._account_item(account_user_id, stays, True, _latest(stays), version + 1, old)
            account = booking.account
            if account_user_id not in account.every_user():
                account = account.model_copy(update={"former": [*account.former, account_user_id]})
            saved = booking.model_copy(update={"account": account, "version": booking.version + 1})
            condition = "attribute_not_exists(pk)" if old is None else "version = :v"
            codes = self._transact(
                [
                    self._tx_put(BookingItems.booking_item(saved), "version = :v", {":v": booking.version}),
                    self._tx_put(item, condition, None if old is None else {":v": version}),
                ]
            )
            if not codes:
                return True
        raise ConcurrentModification(f"account user {account_user_id} keeps changing; try again")

    def restay_account_user(self, account_user_id: int, booking_id: str, purge_at: datetime, attempts: int = 5) -> None:
        """A booking of the account user changed its stay: its guest data's expiry is `purge_at` now,
        earlier or later (nothing to do if the booking is not the user's, or its deletion was decided)."""
        for _ in range(attempts):
            old = self.get_account_user(account_user_id)
            if old is None or old.get("deleteSentAt") or booking_id not in (old.get("bookings") or []):
                return
            version = int(old.get("version", 0))
            stays = {**_stays(old), booking_id: iso(purge_at)}
            item = self._account_item(
                account_user_id, stays, bool(old.get("created")), _latest(stays), version + 1, old
            )
            if self._put(item, "version = :v", values={":v": version}):
                return
        raise ConcurrentModification(f"account user {account_user_id} keeps changing; try again")

    def _account_item(
        self,
        account_user_id: int,
        stays: dict[str, str],
        created: bool,
        purge_at: datetime,
        version: int,
        old: dict[str, Any] | None,
    ) -> dict[str, Any]:
        item: dict[str, Any] = {
            "pk": f"ACCOUNTUSER#{account_user_id}",
            "sk": ACCOUNT_SK,
            "accountUserId": account_user_id,
            "bookings": sorted(stays),
            "stays": stays,
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

    def reschedule_account_user(self, item: dict[str, Any], purge_at: datetime) -> bool:
        """Its purge is not due yet (a booking still needs it): look again at `purge_at`. False if
        the item changed since it was read."""
        account_user_id = int(item["accountUserId"])
        version = int(item.get("version", 0))
        new = self._account_item(account_user_id, _stays(item), bool(item.get("created")), purge_at, version + 1, item)
        return self._put(new, "version = :v", values={":v": version})

    def mark_account_user_deleting(self, item: dict[str, Any], at: datetime) -> bool:
        """Decide the account user's deletion, if the item is as it was read (no booking took it
        since): from now on no booking takes it (`record_account_user` refuses). False otherwise."""
        version = int(item.get("version", 0))
        new = {**item, "deleteSentAt": iso_utc(at), "version": version + 1}
        return self._put(new, "version = :v", values={":v": version})

    def touch_account_user_deleting(self, account_user_id: int, at: datetime) -> None:
        """The delete was sent (again) at `at`."""
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

    # -- the attempts of a creation ------------------------------------------------------------

    def mark_account_user_pending(self, email: str, at: datetime, booking_id: str, purge_at: datetime) -> str:
        """Note a creation attempt (before it is sent): when, for which booking, and that booking's
        guest-data expiry. Returns the attempt's key (to drop it if Nuki certainly created nothing)."""
        key = iso_ms(at)
        self._change_attempts(
            email, lambda attempts: {**attempts, key: {"bookingId": booking_id, "purgeAt": iso(purge_at)}}
        )
        return key

    def account_user_attempts(self, email: str) -> dict[str, dict[str, str]]:
        """The creation attempts noted for this email: {when sent: {bookingId, purgeAt}}."""
        item = self._get(f"AUNEW#{email_tag(email)}", PENDING_PK)
        return dict(item.get("attempts") or {}) if item else {}

    def drop_account_user_attempt(self, email: str, key: str) -> None:
        """An attempt Nuki certainly did not apply (a definite refusal): it proves nothing."""
        self._change_attempts(email, lambda attempts: {k: v for k, v in attempts.items() if k != key})

    def _change_attempts(self, email: str, change: Callable[[dict[str, Any]], dict[str, Any]], tries: int = 5) -> None:
        tag = email_tag(email)
        for _ in range(tries):
            old = self._get(f"AUNEW#{tag}", PENDING_PK)
            version = int(old.get("version", 0)) if old else 0
            attempts = change(dict(old.get("attempts") or {}) if old else {})
            condition, values = ("attribute_not_exists(pk)", None) if old is None else ("version = :v", {":v": version})
            if not attempts:
                if old is None or self._delete(f"AUNEW#{tag}", PENDING_PK, condition, values):
                    return
                continue
            last = max(attempts)
            sent = parse_iso(last)
            assert sent is not None
            item = {
                "pk": f"AUNEW#{tag}",
                "sk": PENDING_PK,
                "tag": tag,
                "attempts": attempts,
                "version": version + 1,
                "expiresAt": int((sent + PENDING_TTL).timestamp()),
                "gsi2pk": PENDING_PK,
                "gsi2sk": f"{last}#{tag}",
            }
            if self._put(item, condition, values=values):
                return
        raise ConcurrentModification("a guest's account user creation keeps changing; try again")

    def clear_account_user_pending(self, email: str) -> None:
        self._delete(f"AUNEW#{email_tag(email)}", PENDING_PK)

    def account_user_creations_settled(self, before: datetime, limit: int = 100) -> list[dict[str, Any]]:
        """Creation attempts whose last one was sent before `before` (so it has landed, or never will)."""
        return self.index_range("gsi2", PENDING_PK, KEY_MIN, f"{iso_ms(before)}#~", want=limit, budget=limit).items

    def settle_account_user_pending(self, item: dict[str, Any]) -> bool:
        """Forget a creation's attempts once the purge has judged them, unless one came since."""
        return self._delete(str(item["pk"]), PENDING_PK, "version = :v", {":v": int(item.get("version", 0))})


def _latest(stays: dict[str, str]) -> datetime:
    instants = [parse_iso(v) for v in stays.values()]
    return max(i for i in instants if i is not None)


__all__ = ["AccountUserDeleting", "AccountUserItems", "email_tag"]
