"""Guests as Nuki account users: found or created by email for a booking that needs one (app
access, keypad codes linked to the guest), and deleted at Nuki when the guest's data is purged,
only if StayKey created it.

* `ensure` (called by the sync engine's writer when a round asks for the account user): look the
  email up (``GET /account/user?email=``; only a user with exactly that email counts, whatever else
  Nuki answers); if Nuki has none, note the attempt in the store (when, for which booking), create
  it (``PUT /account/user`` with the guest's name, email and Nuki language; Nuki's answer must carry
  the same email), and record it as ours. A user Nuki already had is recorded as found (never
  deleted by StayKey), unless StayKey can prove it created it: Nuki's `creationDate` of the user
  falls within one of our noted attempts for that email (from its sending to the longest the
  request could take, with some clock skew). An attempt Nuki certainly refused proves nothing and
  is dropped. A user whose deletion is under way (at Nuki, or decided by the purge) is never taken
  for a new booking: the round tries again, and creates a new one once it is gone.
* `purge` (a schedule, hourly): first the creation attempts that have settled: a user Nuki lists
  with the attempt's email, created within an attempt, is recorded as ours for the attempt's
  booking (an invocation died after Nuki created it, and the booking may have ended since), and
  the booking names it among its account users (so its stay's changes move that user's purge); then
  every user StayKey created whose bookings have all ended and whose guest data has expired is
  deleted at Nuki (``DELETE /account/user/{id}``, asynchronous), the deletion decided in the store
  first, only if no booking took the user meanwhile; the next run confirms it by listing the
  account's users, and sends the delete again if it did not apply. A booking's guest-data expiry
  moves with its stay (`Bookings.patch`): a shorter stay brings the purge forward.

Emails and names are never logged; Nuki's errors are redacted (staykey.nuki.errors).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from staykey.core.models import FINISHED, Booking, Guest
from staykey.core.text import email_key
from staykey.core.timeutil import Clock, parse_iso
from staykey.nuki import AccountUser, AccountUserCreate, NukiError, NukiInvalidRequest, nuki_language
from staykey.nuki.client import ACCOUNT_USER_PAGE
from staykey.nuki.errors import NukiProtocolError
from staykey.observability import count, logger
from staykey.store import Store
from staykey.store.accounts import AccountUserDeleting, email_tag

if TYPE_CHECKING:
    from staykey.nuki import NukiClient
    from staykey.settings import Settings

# A delete Nuki took that the listing still shows this long after: sent again.
RESEND_DELETE_AFTER = timedelta(minutes=10)
LIST_PAGES_MAX = 100
# Nuki's clock and ours, when Nuki's `creationDate` of a user is compared with our attempts.
CREATION_SKEW = timedelta(seconds=60)


class AccountUserBusy(Exception):
    """The guest's account user is being deleted (at Nuki, or decided by the purge): a booking
    cannot take it; the round tries again and creates a new one once it is gone."""


def same_email(a: str, b: str) -> bool:
    return email_key(a) == email_key(b)


@dataclass
class PurgeReport:
    due: int = 0
    deleted: list[int] = field(default_factory=list)  # delete sent
    recovered: list[int] = field(default_factory=list)  # created by an attempt that died, recorded now
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
        cannot be asked or refuses; AccountUserBusy while the guest's user is being deleted;
        ValueError if the booking has no guest data."""
        guest = b.guest
        if guest is None:
            raise ValueError("the booking has no guest data")
        purge_at = self.purge_at(b)
        user = self._find(guest.email)
        if user is None:
            user, created = self._create(b, guest, purge_at)
        else:
            created = self._ours(user, guest.email)
        if user.operation_id is not None:
            raise AccountUserBusy("the guest's Nuki account user is being deleted at Nuki; a new one follows")
        account_user_id = user.account_user_id
        try:
            self.store.record_account_user(account_user_id, b.bookingId, created=created, purge_at=purge_at)
        except AccountUserDeleting:
            raise AccountUserBusy("the guest's Nuki account user is being deleted; a new one follows") from None
        if created:
            self.store.clear_account_user_pending(guest.email)
        count("AccountUserCreated" if created else "AccountUserFound")
        logger.info(
            "guest's Nuki account user " + ("created" if created else "found"),
            booking_id=b.bookingId,
            account_user_id=account_user_id,
        )
        return account_user_id

    def _find(self, email: str) -> AccountUser | None:
        """The account user with exactly this email (Nuki's answer to the lookup is not trusted to
        be filtered: another person's user is never the guest's)."""
        return next((u for u in self.nuki.find_account_users(email) if same_email(u.email, email)), None)

    def _create(self, b: Booking, guest: Guest, purge_at: datetime) -> tuple[AccountUser, bool]:
        """Create the guest's user, the attempt noted first; (the user, whether we created it)."""
        key = self.store.mark_account_user_pending(guest.email, self.clock.now(), b.bookingId, purge_at)
        body = AccountUserCreate(email=guest.email, name=guest.name, language=nuki_language(guest.locale) or "en")
        try:
            user = self.nuki.create_account_user(body)
        except NukiInvalidRequest as exc:
            # Refused (Nuki has a user with this email): someone else's, or an earlier attempt of
            # ours that arrived after all; only our attempts' times can tell.
            if not exc.after_ambiguous_retry:
                self.store.drop_account_user_attempt(guest.email, key)
            again = self._find(guest.email)
            if again is None:
                raise
            return again, self._ours(again, guest.email)
        except NukiError as exc:
            if _certainly_not_applied(exc):
                self.store.drop_account_user_attempt(guest.email, key)
            raise
        if not same_email(user.email, guest.email):
            # Not the user we asked for: never recorded; the purge finds ours, if Nuki made it.
            raise NukiProtocolError(
                "Nuki answered the creation of an account user with another email",
                status=200,
                operation="PUT /account/user",
            )
        return user, True

    def _ours(self, user: AccountUser, email: str) -> bool:
        """Whether StayKey created `user`: recorded so, or created within one of our attempts."""
        item = self.store.get_account_user(user.account_user_id)
        if item is not None and item.get("created"):
            return True
        return self._proved(user, self.store.account_user_attempts(email)) is not None

    def _proved(self, user: AccountUser, attempts: dict[str, dict[str, str]]) -> dict[str, str] | None:
        """The attempt of ours that created `user` (Nuki's creationDate within its time), if any."""
        made = user.creation_date
        if made is None:
            return None  # nothing proves it ours: foreign untouched wins
        for sent, attempt in sorted(attempts.items()):
            at = parse_iso(sent)
            if at is not None and at - CREATION_SKEW <= made <= at + self._longest_call() + CREATION_SKEW:
                return attempt
        return None

    def _longest_call(self) -> timedelta:
        """The longest a creation request of ours can take (its retries, the last one's timeout)."""
        s = self.settings
        return timedelta(seconds=s.nuki_max_total_seconds + s.nuki_timeout_seconds + 5)

    def bookings_of(self, account_user_id: int) -> list[str]:
        """The bookings that use an account user (for attributing the app's entries)."""
        item = self.store.get_account_user(account_user_id)
        return list(item.get("bookings") or []) if item else []

    # ------------------------------------------------------------------ privacy

    def purge(self) -> PurgeReport:
        """Record the users our settled creation attempts made; delete at Nuki the account users
        StayKey created whose guests' data is gone; confirm earlier deletions. Never touches an
        account user StayKey did not create."""
        now = self.clock.now()
        report = PurgeReport()
        self._settle_creations(now, report)
        due = self.store.account_users_due(now)
        report.due = len(due)
        present: set[int] | None = None
        if any(item.get("deleteSentAt") for item in due):
            try:
                present = {u.account_user_id for u in self._listed()}
            except NukiError as exc:  # confirmed on a later run
                logger.warning("listing Nuki's account users failed", error=type(exc).__name__, status=exc.status)
        for listed in due:
            item = self.store.get_account_user(int(listed["accountUserId"]))  # as it is now, not as indexed
            if item is None or not item.get("created"):
                continue  # not ours: never deleted at Nuki (and never in this index)
            account_user_id = int(item["accountUserId"])
            sent = parse_iso(str(item["deleteSentAt"])) if item.get("deleteSentAt") else None
            if sent is None:
                still = self._still_needed(item, now)
                if still is not None:
                    self.store.reschedule_account_user(item, still)
                    report.waiting += 1
                elif self.store.mark_account_user_deleting(item, now):  # no booking took it meanwhile
                    self._delete(account_user_id, now, report)
                continue
            if present is not None and account_user_id not in present:
                self.store.forget_account_user(account_user_id)
                report.confirmed.append(account_user_id)
                count("AccountUserDeleted")
                logger.info("guest's Nuki account user deleted at Nuki", account_user_id=account_user_id)
            elif now - sent >= RESEND_DELETE_AFTER:  # Nuki deletes asynchronously: else look again later
                self._delete(account_user_id, now, report)
        if report.failed:
            count("AccountUserPurgeFailed", report.failed)
        return report

    def _delete(self, account_user_id: int, now: datetime, report: PurgeReport) -> None:
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
            return
        self.store.touch_account_user_deleting(account_user_id, now)
        report.deleted.append(account_user_id)

    def _settle_creations(self, now: datetime, report: PurgeReport) -> None:
        """Creation attempts that have settled: a user Nuki lists for the attempt's email, created
        within one of them, is ours (the invocation died before it could record it): recorded for
        the attempt's booking, so it is purged with it even if that booking ended meanwhile."""
        settled = self.store.account_user_creations_settled(now - self._longest_call() - CREATION_SKEW)
        if not settled:
            return
        try:
            users = self._listed()
        except NukiError as exc:  # settled on a later run
            logger.warning("listing Nuki's account users failed", error=type(exc).__name__, status=exc.status)
            return
        by_tag: dict[str, list[AccountUser]] = {}
        for user in users:
            by_tag.setdefault(email_tag(user.email), []).append(user)
        for marker in settled:
            for user in by_tag.get(str(marker.get("tag")), []):
                attempt = self._proved(user, dict(marker.get("attempts") or {}))
                if attempt is not None:
                    self._recover(user.account_user_id, attempt, report)
            self.store.settle_account_user_pending(marker)

    def _recover(self, account_user_id: int, attempt: dict[str, str], report: PurgeReport) -> None:
        """Recorded for the attempt's booking, which learns it too (its stay's changes move the
        user's purge as they move every user the booking has had), with the booking's guest-data
        expiry as it is now; with the attempt's, if the booking is gone."""
        booking_id = str(attempt["bookingId"])
        try:
            if not self.store.recover_account_user(account_user_id, booking_id, self.purge_at):
                purge_at = parse_iso(str(attempt["purgeAt"]))
                assert purge_at is not None
                self.store.record_account_user(account_user_id, booking_id, created=True, purge_at=purge_at)
        except AccountUserDeleting:
            return
        report.recovered.append(account_user_id)
        count("AccountUserRecovered")
        logger.info("guest's Nuki account user created by an attempt that died, recorded", booking_id=booking_id)

    def _still_needed(self, item: dict[str, object], now: datetime) -> datetime | None:
        """When the user may go, if not yet: a booking that has not ended, or whose guest data is kept."""
        ids = [str(i) for i in item.get("bookings") or []]  # type: ignore[attr-defined]
        bookings = self.store.get_bookings(ids)
        later = [self.purge_at(b) for b in bookings.values() if b.status not in FINISHED or self.purge_at(b) > now]
        if not later:
            return None
        return max(max(later), now + timedelta(hours=1))

    def _listed(self) -> list[AccountUser]:
        """Every account user Nuki lists now (page by page)."""
        seen: list[AccountUser] = []
        offset = 0
        for _ in range(LIST_PAGES_MAX):
            page = self.nuki.list_account_users(offset=offset, limit=ACCOUNT_USER_PAGE)
            seen += page
            if len(page) < ACCOUNT_USER_PAGE:
                break
            offset += len(page)
        return seen


def _certainly_not_applied(exc: NukiError) -> bool:
    """A refusal Nuki answered at once, with no earlier attempt of the request in doubt."""
    return not exc.retryable and exc.status is not None and 400 <= exc.status < 500 and not exc.after_ambiguous_retry


__all__ = ["AccountUserBusy", "AccountUsers", "PurgeReport", "same_email"]
