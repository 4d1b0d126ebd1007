"""The DynamoDB store: one table, access patterns first, keys second.

Access patterns and their keys (pk / sk):

| pattern                                         | item                                  |
|-------------------------------------------------|---------------------------------------|
| room by id; all rooms                           | ROOMS / ROOM#{roomId}                 |
| booking by id                                   | BOOKING#{id} / BOOKING                |
| the booking's guest data (expires, see privacy) | BOOKING#{id} / GUEST                  |
| booking by its Nuki auth name (attribution)     | NAME#{authName} / NAME                |
| codes held or reserved on a lock, ours and not  | LOCK#{smartlockId} / CODE#{pin}       |
| booking by a lock's auth ids (attribution)      | LOCK#{id} / AUTH#{nukiId}, AUTHID#{authId} |
| a lock's last known state, log cursor           | LOCK#{smartlockId} / META             |
| locks the reconciler looks after (beyond rooms) | LOCKS / LOCK#{smartlockId}            |
| one Nuki log entry (dedup on Nuki's log id)     | LOG#{logId} / LOG; gsi1: ACT#... / {at}#{logId} |
| activity across every lock, newest first        | gsi2: ACTDAY#{yyyy-mm-dd} / {at}#{logId} |
| bookings of a room by stay (GET /bookings?roomId) | gsi1: ROOMSTAY#{roomId} / {validFrom}#{id} |
| bookings whose stay overlaps a range            | gsi2: STAY#{yyyy}[#LONG] / {validFrom}#{id} |
| bookings changed since (GET /bookings?updatedSince) | gsi3: UPD#{yyyy} / {updatedAt}#{id}  |
| live guest data by name or email (console)      | gsi3: GUESTS / {expiresAt}#{id}, filter on `search` |
| operator actions (audit), newest first          | AUDIT#{yyyy-mm} / {at}#{id}; gsi1: AUD#BOOKING#{id} |
| webhook registration                            | CONFIG / WEBHOOK                      |
| an event waiting for the dispatcher (the outbox) | BOOKING#{id} or LOCK#{id} / EVENT#{eventId} |
| the event feed (GET /events), its counter       | FEED / SEQ#{seq:020d}, FEED / COUNTER |
| the shop's webhook endpoints                    | WEBHOOKS / ENDPOINT#{endpointId}      |

Events (staykey.events.model) are written in the same transaction as the change they describe: a save of
a booking derives them from what it read (`Booking._stored`) and what it writes, so an event exists
iff its change was saved. The table's stream carries them to the event dispatcher.

The index keys are built in one place, `staykey.store.keys`. Searches (`services/search.py`) read
key ranges, never the whole table:

* A stay overlaps [from, to) when validFrom < to and validUntil > from. The stay index sorts by
  validFrom in year partitions, so a range query reads the years from (from - longest stay) to
  `to`. Stays of more than 31 days live in their year's `#LONG` partition: a query looks back 31
  days in the short partitions and 366 days (the longest stay allowed) only in the long ones,
  which hold few bookings. `validUntil > from` is a filter on what the key range reads.
* Pages are keyset pages: the cursor holds the last sort key returned, and the next page reads
  strictly after it (partitions of one year are merged in sort-key order). A page reads at most a
  bounded number of items, so a selective filter may give a short page with a cursor to go on.
* Guest data expires (GUEST_DATA_RETENTION_DAYS after the stay) and so does its index entry;
  the guest search reads the GUESTS partition (live guest data only: upcoming, current and
  recent stays) with a substring filter on a case- and accent-folded copy of name and email.
* Every write of a booking rewrites its index keys (a changed room, stay or time moves it);
  DynamoDB keeps the indexes eventually consistent, so a list may lag a write by a moment.

What is due lives in EventBridge Scheduler (one-time schedules) and the lifecycle queue (delayed
read-backs), not in a table scan.

PIN allocation is race-free: the booking item and one CODE item per lock are written in one
transaction, each conditional on not existing, so two bookings can never hold one code on a shared
lock, whatever the timing. Codes that others put on a lock get CODE items too (owner "foreign").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from staykey.adapters.aws import LazyClient
from staykey.core.models import Booking, Guest, Room
from staykey.core.timeutil import iso_utc
from staykey.errors import ConcurrentModification
from staykey.events import model as ev
from staykey.store import keys as indexes

BOOKING_SK = "BOOKING"
GUEST_SK = "GUEST"
# Bounds of the sort keys of the indexes (all ASCII, starting with a digit).
KEY_MIN = " "
KEY_MAX = "~"


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [_plain(v) for v in value]
    return value


class _Codec:
    def __init__(self) -> None:
        from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

        self._ser = TypeSerializer()
        self._de = TypeDeserializer()

    def dump(self, item: dict[str, Any]) -> dict[str, Any]:
        return {k: self._ser.serialize(v) for k, v in item.items() if v is not None}

    def load(self, item: dict[str, Any]) -> dict[str, Any]:
        return {k: _plain(self._de.deserialize(v)) for k, v in item.items()}


@dataclass
class CodeClaim:
    """A (lock, code) pair to claim for a booking, or to release."""

    smartlock_id: int
    pin: str


@dataclass
class TxExtras:
    """Additional writes that must happen atomically with a booking update."""

    claims: list[CodeClaim] = field(default_factory=list)
    releases: list[CodeClaim] = field(default_factory=list)
    # Events beyond those the store derives from the booking's change (staykey.events.model).
    events: list[ev.Event] = field(default_factory=list)


class PinTaken(Exception):
    def __init__(self, smartlock_ids: list[int]) -> None:
        super().__init__(f"code taken on {smartlock_ids}")
        self.smartlock_ids = smartlock_ids


class BookingExists(Exception):
    pass


class NameTaken(Exception):
    pass


@dataclass
class CodeItem:
    smartlock_id: int
    pin: str
    owner: str  # "booking" or "foreign"
    booking_id: str | None
    auth_name: str | None
    nuki_id: str | None


@dataclass
class IndexPage:
    """Items read from one index partition in sort-key order, and how far the read got.

    `last_key` is the sort key of the last item read (a later read continues after it), or None
    when the key range was read to its end."""

    items: list[dict[str, Any]]
    last_key: str | None


class Store:
    client = LazyClient("dynamodb")

    def __init__(self, table_name: str, client: Any | None = None) -> None:
        self.table_name = table_name
        self._client = client
        self._codec = _Codec()

    # -- low level -------------------------------------------------------------------------

    def _get(self, pk: str, sk: str, consistent: bool = True) -> dict[str, Any] | None:
        res = self.client.get_item(
            TableName=self.table_name, Key=self._codec.dump({"pk": pk, "sk": sk}), ConsistentRead=consistent
        )
        return self._codec.load(res["Item"]) if "Item" in res else None

    def _query(
        self,
        pk: str,
        sk_prefix: str | None = None,
        *,
        index: str | None = None,
        forward: bool = True,
        limit: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        key_attr, sort_attr = ("gsi1pk", "gsi1sk") if index else ("pk", "sk")
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "#p = :p" + (" AND begins_with(#s, :s)" if sk_prefix else ""),
            "ExpressionAttributeNames": {"#p": key_attr, **({"#s": sort_attr} if sk_prefix else {})},
            "ExpressionAttributeValues": self._codec.dump({":p": pk, **({":s": sk_prefix} if sk_prefix else {})}),
            "ScanIndexForward": forward,
        }
        if index:
            kwargs["IndexName"] = index
        else:
            kwargs["ConsistentRead"] = True
        returned = 0
        while True:
            if limit:
                kwargs["Limit"] = limit - returned
            res = self.client.query(**kwargs)
            for raw in res.get("Items", []):
                returned += 1
                yield self._codec.load(raw)
            if "LastEvaluatedKey" not in res or (limit and returned >= limit):
                return
            kwargs["ExclusiveStartKey"] = res["LastEvaluatedKey"]

    def index_range(
        self,
        index: str,
        pk: str,
        lo: str = KEY_MIN,
        hi: str = KEY_MAX,
        *,
        forward: bool = True,
        after: str | None = None,
        want: int = 100,
        budget: int = 1000,
        filter_expression: str | None = None,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
    ) -> IndexPage:
        """Up to `want` items of `index` with partition key `pk` and a sort key in [lo, hi] (strictly
        after `after` in reading order), that pass `filter_expression`. At most `budget` items are
        read (DynamoDB filters after reading), so a selective filter gives a short page, never an
        unbounded read."""
        key_attr, sort_attr = f"{index}pk", f"{index}sk"
        if after is not None:
            lo, hi = (max(lo, after), hi) if forward else (lo, min(hi, after))
        if lo > hi:
            return IndexPage([], None)
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": index,
            "KeyConditionExpression": "#ip = :ip AND #is BETWEEN :lo AND :hi",
            "ExpressionAttributeNames": {"#ip": key_attr, "#is": sort_attr, **(names or {})},
            "ExpressionAttributeValues": self._codec.dump({":ip": pk, ":lo": lo, ":hi": hi, **(values or {})}),
            "ScanIndexForward": forward,
        }
        if filter_expression:
            kwargs["FilterExpression"] = filter_expression
        matched: list[dict[str, Any]] = []
        read = 0
        while True:
            kwargs["Limit"] = max(1, min(budget - read, 250))
            res = self.client.query(**kwargs)
            read += int(res.get("ScannedCount", 0))
            raw_items = res.get("Items", [])
            more = "LastEvaluatedKey" in res
            for n, raw in enumerate(raw_items):
                item = self._codec.load(raw)
                if after is not None and item[sort_attr] == after:
                    continue
                matched.append(item)
                if len(matched) >= want:
                    last = n == len(raw_items) - 1 and not more
                    return IndexPage(matched, None if last else str(item[sort_attr]))
            if not more:
                return IndexPage(matched, None)
            if read >= budget:
                return IndexPage(matched, str(self._codec.load(res["LastEvaluatedKey"])[sort_attr]))
            kwargs["ExclusiveStartKey"] = res["LastEvaluatedKey"]

    def batch_get(
        self, keys: Sequence[tuple[str, str]], consistent: bool = False
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """Items by (pk, sk), 100 keys per BatchGetItem; missing items are left out."""
        found: dict[tuple[str, str], dict[str, Any]] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 100):
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": [self._codec.dump({"pk": pk, "sk": sk}) for pk, sk in unique[start : start + 100]],
                    "ConsistentRead": consistent,
                }
            }
            for _ in range(6):
                res = self.client.batch_get_item(RequestItems=request)
                for raw in res.get("Responses", {}).get(self.table_name, []):
                    item = self._codec.load(raw)
                    found[(str(item["pk"]), str(item["sk"]))] = item
                request = res.get("UnprocessedKeys") or {}
                if not request:
                    break
            for key in (request.get(self.table_name) or {}).get("Keys", []):  # throttled all along
                loaded = self._codec.load(key)
                single = self._get(str(loaded["pk"]), str(loaded["sk"]), consistent=consistent)
                if single is not None:
                    found[(str(single["pk"]), str(single["sk"]))] = single
        return found

    def _put(
        self,
        item: dict[str, Any],
        condition: str | None = None,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
    ) -> bool:
        kwargs: dict[str, Any] = {"TableName": self.table_name, "Item": self._codec.dump(item)}
        if condition:
            kwargs["ConditionExpression"] = condition
        if names:
            kwargs["ExpressionAttributeNames"] = names
        if values:
            kwargs["ExpressionAttributeValues"] = self._codec.dump(values)
        try:
            self.client.put_item(**kwargs)
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _delete(
        self,
        pk: str,
        sk: str,
        condition: str | None = None,
        values: dict[str, Any] | None = None,
        names: dict[str, str] | None = None,
    ) -> bool:
        kwargs: dict[str, Any] = {"TableName": self.table_name, "Key": self._codec.dump({"pk": pk, "sk": sk})}
        if condition:
            kwargs["ConditionExpression"] = condition
            kwargs["ExpressionAttributeValues"] = self._codec.dump(values or {})
        if names:
            kwargs["ExpressionAttributeNames"] = names
        try:
            self.client.delete_item(**kwargs)
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _transact(self, items: list[dict[str, Any]]) -> list[str | None]:
        """Run a transaction; on cancellation return the failure code per item, else []."""
        try:
            self.client.transact_write_items(TransactItems=items)
        except self.client.exceptions.TransactionCanceledException as exc:
            reasons = exc.response.get("CancellationReasons", [])
            codes = [r.get("Code") if r.get("Code") not in (None, "None") else None for r in reasons]
            if not any(codes):
                raise
            return codes
        return []

    def _tx_put(
        self, item: dict[str, Any], condition: str | None = None, values: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        put: dict[str, Any] = {"TableName": self.table_name, "Item": self._codec.dump(item)}
        if condition:
            put["ConditionExpression"] = condition
        if values:
            put["ExpressionAttributeValues"] = self._codec.dump(values)
        return {"Put": put}

    def _tx_delete(
        self, pk: str, sk: str, condition: str | None = None, values: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        delete: dict[str, Any] = {"TableName": self.table_name, "Key": self._codec.dump({"pk": pk, "sk": sk})}
        if condition:
            delete["ConditionExpression"] = condition
        if values:
            delete["ExpressionAttributeValues"] = self._codec.dump(values)
        return {"Delete": delete}

    def _tx_update(
        self,
        pk: str,
        sk: str,
        update: str,
        condition: str,
        names: dict[str, str],
        values: dict[str, Any],
    ) -> dict[str, Any]:
        op: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": self._codec.dump({"pk": pk, "sk": sk}),
            "UpdateExpression": update,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
        }
        if values:
            op["ExpressionAttributeValues"] = self._codec.dump(values)
        return {"Update": op}

    # -- events (the outbox) ---------------------------------------------------------------

    @staticmethod
    def event_item(event: ev.Event) -> dict[str, Any]:
        """The outbox item of an event: under its booking's (or lock's) partition, so DynamoDB
        Streams delivers one booking's events in order; removed by the dispatcher once handled."""
        return {
            "pk": event.partition(),
            "sk": f"EVENT#{event.id}",
            "eventId": event.id,
            "eventType": event.type,
            "body": event.body(),
            "expiresAt": int((event.timestamp + ev.OUTBOX_TTL).timestamp()),
        }

    def _tx_events(self, events: Sequence[ev.Event]) -> list[dict[str, Any]]:
        return [self._tx_put(self.event_item(e), "attribute_not_exists(pk)") for e in events]

    # -- rooms -----------------------------------------------------------------------------

    def put_room(self, room: Room) -> None:
        self._put({"pk": "ROOMS", "sk": f"ROOM#{room.roomId}", **room.model_dump(mode="json")})

    def get_room(self, room_id: str) -> Room | None:
        item = self._get("ROOMS", f"ROOM#{room_id}")
        return Room.model_validate(item) if item else None

    def list_rooms(self) -> list[Room]:
        return [Room.model_validate(item) for item in self._query("ROOMS", "ROOM#")]

    def rooms_page(self, limit: int, after: str | None = None) -> tuple[list[Room], str | None]:
        """Rooms in id order, `limit` at a time, after the room id `after`; (rooms, last id or None)."""
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :p AND begins_with(sk, :s)",
            "ExpressionAttributeValues": self._codec.dump({":p": "ROOMS", ":s": "ROOM#"}),
            "ConsistentRead": True,
            "Limit": limit,
        }
        if after is not None:
            kwargs["ExclusiveStartKey"] = self._codec.dump({"pk": "ROOMS", "sk": f"ROOM#{after}"})
        res = self.client.query(**kwargs)
        rooms = [Room.model_validate(self._codec.load(raw)) for raw in res.get("Items", [])]
        more = "LastEvaluatedKey" in res and len(rooms) == limit
        return rooms, rooms[-1].roomId if more and rooms else None

    # -- bookings --------------------------------------------------------------------------

    @staticmethod
    def _booking_item(booking: Booking) -> dict[str, Any]:
        stay_key = indexes.stay_sort_key(booking.validFrom, booking.bookingId)
        return {
            "pk": f"BOOKING#{booking.bookingId}",
            "sk": BOOKING_SK,
            **booking.model_dump(mode="json"),
            # The search indexes (see the module docstring): by room, by stay, by last change.
            "gsi1pk": indexes.room_stay_pk(booking.roomId),
            "gsi1sk": stay_key,
            "gsi2pk": indexes.stay_partition(booking.validFrom, booking.validUntil),
            "gsi2sk": stay_key,
            "gsi3pk": indexes.updated_pk(booking.updatedAt.year),
            "gsi3sk": indexes.updated_sort_key(booking.updatedAt, booking.bookingId),
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

    def _guest_item(self, booking: Booking, guest: Guest, expires_at: datetime) -> dict[str, Any]:
        return self._guest_item_for(booking.bookingId, guest, expires_at)

    def _code_item(self, claim: CodeClaim, booking: Booking) -> dict[str, Any]:
        return {
            "pk": f"LOCK#{claim.smartlock_id}",
            "sk": f"CODE#{claim.pin}",
            "owner": "booking",
            "bookingId": booking.bookingId,
            "authName": booking.authName,
            "smartlockId": claim.smartlock_id,
        }

    def create_booking(
        self, booking: Booking, guest: Guest, guest_expires_at: datetime, claims: Sequence[CodeClaim]
    ) -> None:
        """Write a new booking, its guest item, its name index and its code claims atomically."""
        items = [
            self._tx_put(self._booking_item(booking), "attribute_not_exists(pk)"),
            self._tx_put(
                {"pk": f"NAME#{booking.authName}", "sk": "NAME", "bookingId": booking.bookingId},
                "attribute_not_exists(pk)",
            ),
            *[self._tx_put(self._code_item(c, booking), "attribute_not_exists(pk)") for c in claims],
            self._tx_put(self._guest_item(booking, guest, guest_expires_at)),
            *self._tx_events(ev.booking_events(None, booking)),
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

    def get_bookings(self, booking_ids: Iterable[str]) -> dict[str, Booking]:
        """Several bookings by id in one BatchGetItem per 100 (strongly consistent), without their
        guest data; ids with no booking are left out. For readers of many bookings at once (the
        reconciler reads every booking that claims a code on a lock)."""
        ids = sorted(set(booking_ids))
        found: dict[str, Booking] = {}
        for start in range(0, len(ids), 100):
            keys = [self._codec.dump({"pk": f"BOOKING#{i}", "sk": BOOKING_SK}) for i in ids[start : start + 100]]
            request: dict[str, Any] = {self.table_name: {"Keys": keys, "ConsistentRead": True}}
            for _ in range(5):
                res = self.client.batch_get_item(RequestItems=request)
                for raw in res.get("Responses", {}).get(self.table_name, []):
                    booking = Booking.model_validate(self._codec.load(raw))
                    found[booking.bookingId] = booking
                request = res.get("UnprocessedKeys") or {}
                if not request:
                    break
            for key in (request.get(self.table_name) or {}).get("Keys", []):  # throttled all along
                booking_id = str(self._codec.load(key)["pk"]).removeprefix("BOOKING#")
                single = self.get_booking(booking_id)
                if single is not None:
                    single.guest = None
                    found[booking_id] = single
        return found

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
        claims = list({(c.smartlock_id, c.pin): c for c in extras.claims}.values())
        claimed = {(c.smartlock_id, c.pin) for c in claims}
        releases = [
            c
            for c in {(c.smartlock_id, c.pin): c for c in extras.releases}.values()
            if (c.smartlock_id, c.pin) not in claimed
        ]
        extras = TxExtras(claims=claims, releases=releases, events=extras.events)
        items = [
            self._tx_put(self._booking_item(saved), "attribute_exists(pk) AND version = :v", {":v": expected}),
            *[
                self._tx_put(
                    self._code_item(c, saved),
                    "attribute_not_exists(pk) OR bookingId = :b",
                    {":b": saved.bookingId},
                )
                for c in extras.claims
            ],
            *[
                self._tx_delete(f"LOCK#{c.smartlock_id}", f"CODE#{c.pin}", "bookingId = :b", {":b": saved.bookingId})
                for c in extras.releases
            ],
        ]
        if guest is not None:
            items.append(self._tx_put(self._guest_item(saved, guest[0], guest[1])))
        items += self._tx_events(events)
        if len(items) == 1:
            if not self._put(
                self._booking_item(saved), "attribute_exists(pk) AND version = :v", values={":v": expected}
            ):
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

    # -- codes on locks --------------------------------------------------------------------

    def codes_on_lock(self, smartlock_id: int) -> list[CodeItem]:
        return [
            CodeItem(
                smartlock_id=smartlock_id,
                pin=item["sk"].removeprefix("CODE#"),
                owner=item.get("owner", "booking"),
                booking_id=item.get("bookingId"),
                auth_name=item.get("authName"),
                nuki_id=item.get("nukiId"),
            )
            for item in self._query(f"LOCK#{smartlock_id}", "CODE#")
        ]

    def known_codes(self, smartlock_ids: Iterable[int]) -> set[str]:
        return {code.pin for lock_id in smartlock_ids for code in self.codes_on_lock(lock_id)}

    def record_foreign_code(
        self, smartlock_id: int, pin: str, name: str | None, nuki_id: str | None, now: datetime
    ) -> bool:
        """Remember a code someone else put on a lock, so we never choose it there."""
        return self._put(
            {
                "pk": f"LOCK#{smartlock_id}",
                "sk": f"CODE#{pin}",
                "owner": "foreign",
                "authName": name,
                "nukiId": nuki_id,
                "smartlockId": smartlock_id,
                "seenAt": iso_utc(now),
            },
            "attribute_not_exists(pk) OR #o = :f",
            {"#o": "owner"},
            {":f": "foreign"},
        )

    def forget_foreign_code(self, smartlock_id: int, pin: str) -> bool:
        return self._delete(f"LOCK#{smartlock_id}", f"CODE#{pin}", "#o = :f", {":f": "foreign"}, {"#o": "owner"})

    def release_code(self, smartlock_id: int, pin: str, booking_id: str) -> bool:
        return self._delete(f"LOCK#{smartlock_id}", f"CODE#{pin}", "bookingId = :b", {":b": booking_id})

    # -- attribution indexes ---------------------------------------------------------------

    def index_auth(
        self,
        smartlock_id: int,
        booking_id: str,
        nuki_id: str | None,
        auth_id: int | None,
        expires_at: datetime,
    ) -> None:
        ttl = int(expires_at.timestamp())
        if nuki_id:
            self._put(
                {
                    "pk": f"LOCK#{smartlock_id}",
                    "sk": f"AUTH#{nuki_id}",
                    "bookingId": booking_id,
                    "expiresAt": ttl,
                }
            )
        if auth_id is not None:
            self._put(
                {
                    "pk": f"LOCK#{smartlock_id}",
                    "sk": f"AUTHID#{auth_id}",
                    "bookingId": booking_id,
                    "expiresAt": ttl,
                }
            )

    def booking_id_for_auth(self, smartlock_id: int, auth_ref: str) -> str | None:
        """A log's authId is the auth's 24-hex id or its numeric authId: try both indexes."""
        for sk in (f"AUTH#{auth_ref}", f"AUTHID#{auth_ref}"):
            item = self._get(f"LOCK#{smartlock_id}", sk, consistent=False)
            if item:
                return str(item["bookingId"])
        return None

    # -- activity (Nuki log entries) --------------------------------------------------------

    @staticmethod
    def activity_owner_key(booking_id: str | None, smartlock_id: int) -> str:
        """gsi1pk of an entry: its booking's, or its lock's when it is not a guest's."""
        return f"ACT#BOOKING#{booking_id}" if booking_id else f"ACT#LOCK#{smartlock_id}"

    def activity_exists(self, log_id: str) -> bool:
        return self._get(f"LOG#{log_id}", "LOG") is not None

    def put_activity(self, entry: dict[str, Any], expires_at: datetime, events: Sequence[ev.Event] = ()) -> bool:
        """Store one Nuki log entry once (keyed on Nuki's log id); False if it was stored before.
        `events` are written with it, and only with it (a duplicate delivery writes none).

        `entry` holds `id`, `at` (datetime), `smartlockId`, optional `bookingId` and plain fields;
        never guest data or a PIN.
        """
        at = iso_utc(entry["at"])
        item = {
            **entry,
            "pk": f"LOG#{entry['id']}",
            "sk": "LOG",
            "at": at,
            "gsi1pk": self.activity_owner_key(entry.get("bookingId"), int(entry["smartlockId"])),
            "gsi1sk": f"{at}#{entry['id']}",
            # The feed across every lock and booking (the console's Activity page), by day.
            "gsi2pk": indexes.activity_day_pk(entry["at"]),
            "gsi2sk": f"{at}#{entry['id']}",
            "expiresAt": int(expires_at.timestamp()),
        }
        if not events:
            return self._put(item, "attribute_not_exists(pk)")
        codes = self._transact([self._tx_put(item, "attribute_not_exists(pk)"), *self._tx_events(events)])
        if codes and codes[0] == "ConditionalCheckFailed":
            return False
        if codes:
            raise ConcurrentModification(f"activity entry {entry['id']} could not be written; try again")
        return True

    def list_activity(self, owner_key: str, limit: int) -> list[dict[str, Any]]:
        """Entries under `owner_key` (see activity_owner_key), newest first."""
        return list(self._query(owner_key, index="gsi1", forward=False, limit=limit))

    def activity_page(self, owner_key: str, limit: int, before: str | None = None) -> IndexPage:
        """Entries under `owner_key`, newest first, older than the sort key `before`."""
        return self.index_range("gsi1", owner_key, forward=False, after=before, want=limit, budget=limit + 1)

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

    def record_first_entry(
        self, booking_id: str, at: datetime, now: datetime, checked_in: ev.Event | None = None
    ) -> tuple[bool, bool]:
        """Set the booking's firstEntryAt to `at` unless an entry at or before `at` is recorded.

        (changed, first): `first` is True when there was no firstEntryAt before (the check-in).
        One conditional UpdateItem that also bumps `version`, so a lifecycle save based on an
        older read fails its optimistic-locking condition and re-reads instead of overwriting.
        Instants are stored to the second in one format (iso_utc), so string order is time order.
        `checked_in` (the guest.checked_in event) is written with the first one only, in its
        transaction; an earlier entry arriving later moves firstEntryAt back without an event.
        """
        names = {"#f": "firstEntryAt", "#u": "updatedAt", "#v": "version"}
        if checked_in is not None:
            first = self._tx_update(
                f"BOOKING#{booking_id}",
                BOOKING_SK,
                "SET #f = :at, #u = :now, #v = if_not_exists(#v, :zero) + :one",
                "attribute_exists(pk) AND attribute_not_exists(#f)",
                names,
                {":at": iso_utc(at), ":now": iso_utc(now), ":zero": 0, ":one": 1},
            )
            codes = self._transact([first, *self._tx_events([checked_in])])
            if not codes:
                return True, True
            if codes[0] != "ConditionalCheckFailed":
                raise ConcurrentModification(f"booking {booking_id}: check-in could not be written; try again")
        try:
            res = self.client.update_item(
                TableName=self.table_name,
                Key=self._codec.dump({"pk": f"BOOKING#{booking_id}", "sk": BOOKING_SK}),
                UpdateExpression=(
                    "SET #f = :at, #u = :now, #v = if_not_exists(#v, :zero) + :one, #up = :up, #us = :us"
                ),
                ConditionExpression="attribute_exists(pk) AND (attribute_not_exists(#f) OR #f > :at)",
                ExpressionAttributeNames={
                    "#f": "firstEntryAt",
                    "#u": "updatedAt",
                    "#v": "version",
                    "#up": "gsi3pk",
                    "#us": "gsi3sk",
                },
                ExpressionAttributeValues=self._codec.dump(
                    {
                        ":at": iso_utc(at),
                        ":now": iso_utc(now),
                        ":zero": 0,
                        ":one": 1,
                        ":up": indexes.updated_pk(now.year),
                        ":us": indexes.updated_sort_key(now, booking_id),
                    }
                ),
                ReturnValues="UPDATED_OLD",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False, False
        return True, "firstEntryAt" not in res.get("Attributes", {})

    def update_lock_meta_if_newer(self, smartlock_id: int, stamp: str, at: datetime, **fields: Any) -> bool:
        """Set `fields` and `stamp` = `at` on LOCK#/META unless it holds a newer `stamp` already
        (out-of-order webhooks, overlapping polls). None values are left out."""
        fields = {key: value for key, value in fields.items() if value is not None}
        fields[stamp] = iso_utc(at)
        names = {f"#{i}": key for i, key in enumerate(fields)}
        values = {f":{i}": value for i, value in enumerate(fields.values())}
        stamp_ref = f"#{len(fields) - 1}"
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=self._codec.dump({"pk": f"LOCK#{smartlock_id}", "sk": "META"}),
                UpdateExpression="SET " + ", ".join(f"#{i} = :{i}" for i in range(len(fields))),
                ConditionExpression=f"attribute_not_exists({stamp_ref}) OR {stamp_ref} <= :{len(fields) - 1}",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=self._codec.dump(values),
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    # -- lock state ------------------------------------------------------------------------

    def get_lock_meta(self, smartlock_id: int) -> dict[str, Any]:
        return self._get(f"LOCK#{smartlock_id}", "META") or {}

    def get_lock_metas(self, smartlock_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """Several locks' META items in one BatchGetItem per 100 (locks never reported on: absent)."""
        items = self.batch_get([(f"LOCK#{i}", "META") for i in smartlock_ids])
        return {int(pk.removeprefix("LOCK#")): item for (pk, _), item in items.items()}

    def update_lock_meta(self, smartlock_id: int, **fields: Any) -> None:
        names = {f"#{i}": key for i, key in enumerate(fields)}
        values = {f":{i}": value for i, value in enumerate(fields.values())}
        self.client.update_item(
            TableName=self.table_name,
            Key=self._codec.dump({"pk": f"LOCK#{smartlock_id}", "sk": "META"}),
            UpdateExpression="SET " + ", ".join(f"#{i} = :{i}" for i in range(len(fields))),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=self._codec.dump(values),
        )

    def update_lock_state(
        self,
        smartlock_id: int,
        fields: dict[str, Any],
        events: Callable[[dict[str, Any]], list[ev.Event]],
        *,
        stamp: tuple[str, datetime] | None = None,
        watch: Sequence[str] = ev.LOCK_WATCH,
        attempts: int = 5,
    ) -> bool:
        """Set `fields` on LOCK#/META with the events of the change (`events(old_meta)`), in one
        transaction conditional on the `watch`ed attributes being what `events` saw: two writers
        never both report one transition, and none is lost. With `stamp` (attribute, instant) the
        write is skipped (False) when META holds a newer instant there (out-of-order webhooks).
        None values in `fields` are left out."""
        fields = {key: value for key, value in fields.items() if value is not None}
        if stamp is not None:
            fields[stamp[0]] = iso_utc(stamp[1])
        for _ in range(attempts):
            old = self.get_lock_meta(smartlock_id)
            if stamp is not None and old.get(stamp[0]) is not None and str(old[stamp[0]]) > fields[stamp[0]]:
                return False
            names = {f"#f{i}": key for i, key in enumerate(fields)}
            values: dict[str, Any] = {f":f{i}": value for i, value in enumerate(fields.values())}
            conditions = []
            for i, key in enumerate(watch):
                names[f"#w{i}"] = key
                if old.get(key) is not None:
                    values[f":w{i}"] = old[key]
                    conditions.append(f"#w{i} = :w{i}")
                elif key not in old:
                    conditions.append(f"attribute_not_exists(#w{i})")
                else:
                    del names[f"#w{i}"]  # a stored null: nothing to compare with
            if stamp is not None:
                names["#s"] = stamp[0]
                values[":s"] = fields[stamp[0]]
                conditions.append("(attribute_not_exists(#s) OR #s <= :s)")
            update = self._tx_update(
                f"LOCK#{smartlock_id}",
                "META",
                "SET " + ", ".join(f"#f{i} = :f{i}" for i in range(len(fields))),
                " AND ".join(conditions),
                names,
                values,
            )
            found = events(old)
            codes = self._transact([update, *self._tx_events(found)])
            if not codes:
                return True
            if codes[0] != "ConditionalCheckFailed":
                raise ConcurrentModification(f"lock {smartlock_id}: its state could not be written; try again")
        raise ConcurrentModification(f"lock {smartlock_id}: its state keeps changing; try again")

    def code_count(self, smartlock_id: int) -> int | None:
        """Keypad codes on the lock at its last count (META `codeCount`: every code Nuki listed, ours
        and others'); None if it was never counted."""
        value = self.get_lock_meta(smartlock_id).get("codeCount")
        return None if value is None else int(value)

    def register_locks(self, smartlock_ids: Iterable[int]) -> None:
        """Remember locks for the reconciler, so a lock taken out of every room is still looked
        after while it holds codes of ours."""
        items = [{"pk": "LOCKS", "sk": f"LOCK#{i}", "smartlockId": int(i)} for i in smartlock_ids]
        for start in range(0, len(items), 25):
            requests = [{"PutRequest": {"Item": self._codec.dump(item)}} for item in items[start : start + 25]]
            for _ in range(5):
                res = self.client.batch_write_item(RequestItems={self.table_name: requests})
                requests = res.get("UnprocessedItems", {}).get(self.table_name, [])
                if not requests:
                    break

    def registered_locks(self) -> list[int]:
        return [int(item["smartlockId"]) for item in self._query("LOCKS", "LOCK#")]

    def unregister_lock(self, smartlock_id: int) -> None:
        self._delete("LOCKS", f"LOCK#{smartlock_id}")

    # -- config ----------------------------------------------------------------------------

    def get_config(self, name: str) -> dict[str, Any] | None:
        return self._get("CONFIG", name, consistent=False)

    def put_config(self, name: str, **fields: Any) -> None:
        self._put({"pk": "CONFIG", "sk": name, **fields})

    def delete_config(self, name: str) -> None:
        self._delete("CONFIG", name)
