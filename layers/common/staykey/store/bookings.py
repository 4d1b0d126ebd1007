"""Bookings: the booking item, its guest item (which expires), its name index, and the code
claims written in the same transaction; optimistic locking on the booking's version."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from staykey.core.models import Booking, BookingStatus, Guest
from staykey.errors import ConcurrentModification
from staykey.events import model as ev
from staykey.store import keys as indexes
from staykey.store.history import HistoryItems
from staykey.store.table import BOOKING_SK, GUEST_SK
from staykey.store.types import BookingExists, CodeClaim, NameTaken, PinTaken, TxExtras


class BookingItems(HistoryItems):
    # -- bookings --------------------------------------------------------------------------

    @staticmethod
    def booking_item(booking: Booking) -> dict[str, Any]:
        if booking.staff is not None:
            # A staff code: in the staff index only (gsi1 STAFF), in no list of stays or changes; a
            # backup code in its lock's pool (gsi1 POOL#lock, by serial).
            backup = booking.staff.kind == "backup"
            return {
                "pk": f"BOOKING#{booking.bookingId}",
                "sk": BOOKING_SK,
                **booking.model_dump(mode="json"),
                "gsi1pk": indexes.pool_pk(booking.locks[0].smartlockId) if backup else indexes.STAFF_PK,
                "gsi1sk": booking.staff.staffCodeId,
            }
        stay_key = indexes.stay_sort_key(booking.validFrom, booking.bookingId)
        return {
            "pk": f"BOOKING#{booking.bookingId}",
            "sk": BOOKING_SK,
            **booking.model_dump(mode="json"),
            # The search indexes (see the module docstring): by room, by stay, by last change.
            "gsi1pk": indexes.room_stay_pk(booking.roomId),
            "gsi1sk": stay_key,
            "gsi2pk": indexes.stay_partition(booking.validFrom, booking.validUntil, booking.bookingId),
            "gsi2sk": stay_key,
            "gsi3pk": indexes.updated_partition(booking.updatedAt, booking.bookingId),
            "gsi3sk": indexes.updated_sort_key(booking.updatedAt, booking.bookingId),
            # Failed bookings in a sparse index of their own (None: not written, see Codec.dump).
            "gsi4pk": indexes.FAILED_PK if booking.status == BookingStatus.FAILED else None,
            "gsi4sk": stay_key if booking.status == BookingStatus.FAILED else None,
        }

    @staticmethod
    def _guest_item_for(booking_id: str, guest: Guest, expires_at: datetime) -> dict[str, Any]:
        # Guest data has its own item so DynamoDB TTL can remove it N days after the stay while
        # the booking (no personal data) stays for the operator's records. It is in the guest
        # index (gsi3, GUESTS) with a folded copy of name and email for the console's search; the
        # index entry goes when the item goes.
        expires = int(expires_at.timestamp())
        return {
            "pk": f"BOOKING#{booking_id}",
            "sk": GUEST_SK,
            **guest.model_dump(),
            "expiresAt": expires,
            "gsi3pk": indexes.GUESTS_PK,
            "gsi3sk": indexes.guest_sort_key(expires, booking_id),
            "search": indexes.searchable(f"{guest.name} {guest.email}"),
        }

    def guest_item(self, booking: Booking, guest: Guest, expires_at: datetime) -> dict[str, Any]:
        return self._guest_item_for(booking.bookingId, guest, expires_at)

    @staticmethod
    def _claim_sk(claim: CodeClaim, booking_id: str) -> str:
        """CODE#{pin} for a PIN a booking holds on a lock; CODEAPP#{bookingId} for its place on an app lock."""
        return f"CODEAPP#{booking_id}" if claim.app else f"CODE#{claim.pin}"

    def code_item(self, claim: CodeClaim, booking: Booking) -> dict[str, Any]:
        return {
            "pk": f"LOCK#{claim.smartlock_id}",
            "sk": self._claim_sk(claim, booking.bookingId),
            "owner": "app" if claim.app else "booking",
            "bookingId": booking.bookingId,
            "authName": booking.authName,
            "smartlockId": claim.smartlock_id,
        }

    def create_booking(
        self, booking: Booking, guest: Guest | None, guest_expires_at: datetime, claims: Sequence[CodeClaim]
    ) -> None:
        """Write a new booking, its guest item (a staff code has none), its name index, its code
        claims, its first event and the event's history item atomically."""
        events = ev.booking_events(None, booking)
        items = [
            self._tx_put(self.booking_item(booking), "attribute_not_exists(pk)"),
            self._tx_put(
                {"pk": f"NAME#{booking.authName}", "sk": "NAME", "bookingId": booking.bookingId},
                "attribute_not_exists(pk)",
            ),
            *[self._tx_put(self.code_item(c, booking), "attribute_not_exists(pk)") for c in claims],
            *([self._tx_put(self.guest_item(booking, guest, guest_expires_at))] if guest is not None else []),
            *self._tx_events(events),
            *self._tx_history(booking, events),
        ]
        codes = self._transact(items)
        if not codes:
            booking._stored = ev.booking_snapshot(booking)
            return
        if codes[0] == "ConditionalCheckFailed":
            raise BookingExists(booking.bookingId)
        if codes[1] == "ConditionalCheckFailed":
            raise NameTaken(booking.authName)
        taken = [c.smartlock_id for c, code in zip(claims, codes[2:], strict=False) if code == "ConditionalCheckFailed"]
        if taken:
            raise PinTaken(taken)
        raise ConcurrentModification("the booking could not be written; try again")

    def get_booking(self, booking_id: str, now: datetime | None = None) -> Booking | None:
        booking: Booking | None = None
        guest: Guest | None = None
        for item in self._query(f"BOOKING#{booking_id}"):
            if item["sk"] == BOOKING_SK:
                booking = Booking.model_validate(item)
            # DynamoDB deletes expired items within days, not at once: never show them.
            elif item["sk"] == GUEST_SK and (now is None or item.get("expiresAt", 0) > now.timestamp()):
                guest = Guest.model_validate(item)
        if booking is not None:
            booking.guest = guest
            booking._stored = ev.booking_snapshot(booking)
        return booking

    def staff_codes(self, after: str | None = None, limit: int = 100) -> tuple[list[Booking], str | None]:
        """Staff codes by id, a page at a time (`after`: the last id of the page before); the next
        page's `after`, or None."""
        page = self.index_range("gsi1", indexes.STAFF_PK, after=after, want=limit, budget=limit + 1)
        return [Booking.model_validate(item) for item in page.items], page.last_key

    def pool_codes(self, smartlock_id: int) -> list[Booking]:
        """A lock's backup codes (services.backup), every one ever made, in the order made."""
        page = self.index_range("gsi1", indexes.pool_pk(smartlock_id), want=1000, budget=1000)
        return [Booking.model_validate(item) for item in page.items]

    def get_bookings(self, booking_ids: Iterable[str]) -> dict[str, Booking]:
        """Several bookings by id in one BatchGetItem per 100 (strongly consistent, at once), without
        their guest data; ids with no booking are left out. For readers of many bookings at once
        (the reconciler reads every booking that claims a code on a lock)."""
        items = self.batch_get([(f"BOOKING#{i}", BOOKING_SK) for i in sorted(set(booking_ids))], consistent=True)
        return {pk.removeprefix("BOOKING#"): Booking.model_validate(item) for (pk, _), item in items.items()}

    def booking_parts(self, booking_ids: Iterable[str], attributes: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Some attributes of several bookings (strongly consistent, one BatchGetItem per 100, at
        once): what a list needs, not the whole item. Ids with no booking are left out."""
        keys = [(f"BOOKING#{i}", BOOKING_SK) for i in sorted(set(booking_ids))]
        items = self.batch_get(keys, consistent=True, attributes=("bookingId", *attributes))
        return {pk.removeprefix("BOOKING#"): item for (pk, _), item in items.items()}

    def save_booking(
        self, booking: Booking, extras: TxExtras | None = None, guest: tuple[Guest, datetime] | None = None
    ) -> Booking:
        """Write `booking` if nobody else wrote it since we read it (optimistic locking), with the
        events of the change (derived from what was read, `booking._stored`, and `extras.events`)."""
        expected = booking.version
        saved = booking.model_copy(update={"version": expected + 1})
        extras = extras or TxExtras()
        events = ([] if booking._stored is None else ev.booking_events(booking._stored, saved)) + extras.events
        # One operation per item in a transaction: drop repeats, and a release of what is claimed.
        claims = list({c.key: c for c in extras.claims}.values())
        claimed = {c.key for c in claims}
        releases = [c for c in {c.key: c for c in extras.releases}.values() if c.key not in claimed]
        extras = TxExtras(claims=claims, releases=releases, events=extras.events)
        put = self._tx_put(self.booking_item(saved), "attribute_exists(pk) AND version = :v", {":v": expected})
        items = [
            put,
            *[
                self._tx_put(
                    self.code_item(c, saved),
                    "attribute_not_exists(pk) OR bookingId = :b",
                    {":b": saved.bookingId},
                )
                for c in extras.claims
            ],
            *[
                self._tx_delete(
                    f"LOCK#{c.smartlock_id}",
                    self._claim_sk(c, saved.bookingId),
                    "bookingId = :b",
                    {":b": saved.bookingId},
                )
                for c in extras.releases
            ],
        ]
        if guest is not None:
            items.append(self._tx_put(self.guest_item(saved, guest[0], guest[1])))
        items += self._tx_events(events)
        items += self._tx_history(saved, events)
        if len(items) == 1:
            # The booking alone: the transaction's Put as a PutItem (the same item, condition and
            # values `_put` would make of them, made once).
            if not self._put_request(dict(put["Put"])):
                raise ConcurrentModification(f"booking {booking.bookingId} changed meanwhile")
            saved.guest = booking.guest
            saved._stored = ev.booking_snapshot(saved)
            return saved
        codes = self._transact(items)
        if codes:
            if codes[0] == "ConditionalCheckFailed":
                raise ConcurrentModification(f"booking {booking.bookingId} changed meanwhile")
            n_claims = len(extras.claims)
            taken = [
                c.smartlock_id
                for c, code in zip(extras.claims, codes[1 : 1 + n_claims], strict=False)
                if code == "ConditionalCheckFailed"
            ]
            if taken:
                raise PinTaken(taken)
            # A release whose item is already gone (or was never ours) is fine: retry without it.
            n_releases = len(extras.releases)
            released = [
                c
                for c, code in zip(extras.releases, codes[1 + n_claims : 1 + n_claims + n_releases], strict=False)
                if code is None
            ]
            retry = TxExtras(claims=extras.claims, releases=released, events=extras.events)
            return self.save_booking(booking, retry, guest)
        saved.guest = guest[0] if guest else booking.guest
        saved._stored = ev.booking_snapshot(saved)
        return saved

    def get_guests(self, booking_ids: Iterable[str], now: datetime) -> dict[str, Guest]:
        """The guest data of several bookings (one BatchGetItem per 100); expired data is left out,
        whatever DynamoDB's TTL timing."""
        items = self.batch_get([(f"BOOKING#{i}", GUEST_SK) for i in booking_ids])
        return {
            pk.removeprefix("BOOKING#"): Guest.model_validate(item)
            for (pk, _), item in items.items()
            if item.get("expiresAt", 0) > now.timestamp()
        }

    def save_guest(self, booking_id: str, guest: Guest, expires_at: datetime) -> None:
        self._put(self._guest_item_for(booking_id, guest, expires_at))

    def update_booking(
        self,
        booking_id: str,
        mutate: Callable[[Booking], TxExtras | None],
        *,
        now: datetime | None = None,
        attempts: int = 5,
    ) -> Booking:
        """Read, change, write with optimistic locking; re-run `mutate` on a fresh copy on conflict."""
        for _ in range(attempts):
            booking = self.get_booking(booking_id, now)
            if booking is None:
                raise KeyError(booking_id)
            extras = mutate(booking)
            try:
                return self.save_booking(booking, extras)
            except ConcurrentModification:
                continue
        raise ConcurrentModification(f"booking {booking_id} keeps changing; try again")

    def booking_id_for_name(self, auth_name: str) -> str | None:
        item = self._get("NAME#" + auth_name, "NAME", consistent=False)
        return item["bookingId"] if item else None
