"""Guests as Nuki account users: found or created by email for a booking that needs one (app
access, keypad codes linked to the guest), and deleted at Nuki when the guest's data is purged,
only if StayKey created it.

* `ensure` (called by the sync engine's writer when a round asks for the account user): look the
  email up (``GET /account/user?email=``); if Nuki has none, mark the creation as under way in the
  store, create it (``PUT /account/user`` with the guest's name, email and Nuki language), and
  record it as ours. A user Nuki already had is recorded as found (never deleted by StayKey),
  unless the marker says an earlier attempt of ours created it (an invocation that died after
  Nuki answered). Either way the booking is added to the user's item, and the user's purge moves
  to the latest of its bookings' guest-data expiry.
* `purge` (a schedule, hourly): every user StayKey created whose bookings have all ended and whose
  guest data has expired is deleted at Nuki (``DELETE /account/user/{id}``, asynchronous); the next
  run confirms it by listing the account's users, and sends the delete again if it did not apply.

Emails and names are never logged; Nuki's errors are redacted (staykey.nuki.errors).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from staykey.core.models import FINISHED, Booking
from staykey.core.timeutil import Clock, parse_iso
from staykey.nuki import AccountUserCreate, NukiError, NukiInvalidRequest, nuki_language
from staykey.nuki.client import ACCOUNT_USER_PAGE
from staykey.observability import count, logger
from staykey.store import Store

if TYPE_CHECKING:
    from staykey.nuki import NukiClient
    from staykey.settings import Settings

# A delete Nuki took that the listing still shows this long after: sent again.
RESEND_DELETE_AFTER = timedelta(minutes=10)
LIST_PAGES_MAX = 100


@dataclass
class PurgeReport:
    due: int = 0
    deleted: list[int] = field(default_factory=list)  # delete sent
    confirmed: list[int] = field(default_factory=list)  # gone at Nuki, forgotten here
    waiting: int = 0  # a booking still needs it
    failed: int = 0


class AccountUsers:
    def __init__(self, settings: Settings, store: Store, nuki: Callable[[], NukiClient], clock: Clock) -> None:
        self.settings = settings
        self.store = store
        self._nuki = nuki
        self.clock = clock

    @property
    def nuki(self) -> NukiClient:
        return self._nuki()

    def purge_at(self, b: Booking) -> datetime:
        """When the guest data of `b` expires (the same instant as its guest item's TTL)."""
        return b.validUntil + timedelta(days=self.settings.guest_data_retention_days)

    # ------------------------------------------------------------------ find or create

    def ensure(self, b: Booking) -> int:
        """The guest's Nuki account user for `b`: found by email, or created. NukiError if Nuki
        cannot be asked or refuses; ValueError if the booking has no guest data."""
        guest = b.guest
        if guest is None:
            raise ValueError("the booking has no guest data")
        now = self.clock.now()
        found = self.nuki.find_account_users(guest.email)
        created = False
        if found:
            account_user_id = found[0].account_user_id
            created = self.store.account_user_pending(guest.email, now)  # an earlier try of ours made it
        else:
            self.store.mark_account_user_pending(guest.email, now)
            body = AccountUserCreate(email=guest.email, name=guest.name, language=nuki_language(guest.locale) or "en")
            try:
                account_user_id = self.nuki.create_account_user(body).account_user_id
            except NukiInvalidRequest:
                # Refused: perhaps an earlier attempt of this very request arrived after all.
                again = self.nuki.find_account_users(guest.email)
                if not again:
                    raise
                account_user_id = again[0].account_user_id
            created = True
        self.store.record_account_user(account_user_id, b.bookingId, created=created, purge_at=self.purge_at(b))
        if created:
            self.store.clear_account_user_pending(guest.email)
        count("AccountUserCreated" if created else "AccountUserFound")
        logger.info(
            "guest's Nuki account user " + ("created" if created else "found"),
            booking_id=b.bookingId,
            account_user_id=account_user_id,
        )
        return account_user_id

    def bookings_of(self, account_user_id: int) -> list[str]:
        """The bookings that use an account user (for attributing the app's entries)."""
        item = self.store.get_account_user(account_user_id)
        return list(item.get("bookings") or []) if item else []

    # ------------------------------------------------------------------ privacy

    def purge(self) -> PurgeReport:
        """Delete at Nuki the account users StayKey created whose guests' data is gone; confirm
        earlier deletions. Never touches an account user StayKey did not create."""
        now = self.clock.now()
        report = PurgeReport()
        due = self.store.account_users_due(now)
        report.due = len(due)
        present: set[int] | None = None
        if any(item.get("deleteSentAt") for item in due):
            try:
                present = self._listed()
            except NukiError as exc:  # confirmed on a later run
                logger.warning("listing Nuki's account users failed", error=type(exc).__name__, status=exc.status)
        for item in due:
            account_user_id = int(item["accountUserId"])
            if not item.get("created"):
                continue  # not ours: never deleted at Nuki (and never in this index)
            still = self._still_needed(item, now)
            if still is not None:
                self.store.reschedule_account_user(account_user_id, still)
                report.waiting += 1
                continue
            sent = parse_iso(str(item["deleteSentAt"])) if item.get("deleteSentAt") else None
            if sent is not None and present is not None and account_user_id not in present:
                self.store.forget_account_user(account_user_id)
                report.confirmed.append(account_user_id)
                count("AccountUserDeleted")
                logger.info("guest's Nuki account user deleted at Nuki", account_user_id=account_user_id)
                continue
            if sent is not None and now - sent < RESEND_DELETE_AFTER:
                continue  # Nuki deletes asynchronously: the next run looks again
            try:
                self.nuki.delete_account_user(account_user_id)
            except NukiError as exc:
                report.failed += 1
                logger.warning(
                    "deleting a guest's Nuki account user failed; the next run tries again",
                    account_user_id=account_user_id,
                    error=type(exc).__name__,
                    status=exc.status,
                )
                continue
            self.store.mark_account_user_deleting(account_user_id, now)
            report.deleted.append(account_user_id)
        if report.failed:
            count("AccountUserPurgeFailed", report.failed)
        return report

    def _still_needed(self, item: dict[str, object], now: datetime) -> datetime | None:
        """When the user may go, if not yet: a booking that has not ended, or whose guest data is kept."""
        ids = [str(i) for i in item.get("bookings") or []]  # type: ignore[attr-defined]
        bookings = self.store.get_bookings(ids)
        later = [self.purge_at(b) for b in bookings.values() if b.status not in FINISHED or self.purge_at(b) > now]
        if not later:
            return None
        return max(max(later), now + timedelta(hours=1))

    def _listed(self) -> set[int]:
        """Every account user Nuki lists now (page by page)."""
        seen: set[int] = set()
        offset = 0
        for _ in range(LIST_PAGES_MAX):
            page = self.nuki.list_account_users(offset=offset, limit=ACCOUNT_USER_PAGE)
            seen |= {u.account_user_id for u in page}
            if len(page) < ACCOUNT_USER_PAGE:
                break
            offset += len(page)
        return seen


__all__ = ["AccountUsers", "PurgeReport"]
