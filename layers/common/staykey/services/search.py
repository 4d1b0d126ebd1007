"""Finding bookings: `GET /bookings` for the shop and the console's Bookings and Today pages.

Filters (all optional, combined with AND): `roomId`; `status` (one or more); a stay that
overlaps [`from`, `to`) (validFrom < to and validUntil > from; either end may be left open);
`updatedSince` (changed at or after); `guest` (a piece of the guest's name or email, case and
accents ignored; only bookings whose guest data is still kept: it is deleted
GUEST_DATA_RETENTION_DAYS after the stay).

Which index answers, and so the order of the results (see `staykey.store` and `staykey.store.keys`):

| given          | index                          | order                      |
|----------------|--------------------------------|----------------------------|
| guest          | live guest data (gsi3 GUESTS)  | by the end of the stay     |
| updatedSince   | by last change (gsi3 UPD#year) | by updatedAt, oldest first |
| roomId         | the room's stays (gsi1)        | by validFrom               |
| status=failed  | failed bookings (gsi4, sparse) | by validFrom               |
| anything else  | stays by year (gsi2 STAY#year) | by validFrom               |

The other filters apply to what that index reads. Pages are keyset pages (`staykey.edge.pagination`):
a page holds at most `limit` bookings and may hold fewer, even none, when a selective filter
meets many bookings; `nextCursor` is null only at the end. A booking changed while a client pages
through `updatedSince` moves to the end and is seen again: for a sync, that is what it wants.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from staykey.core.models import ID_PATTERN, Booking, BookingStatus
from staykey.core.timeutil import Clock, iso_utc
from staykey.edge.pagination import Query, bad, decode_cursor, encode_cursor
from staykey.errors import ValidationFailed
from staykey.store import KEY_MAX, KEY_MIN, IndexPage, Store, fanout
from staykey.store import keys as indexes
from staykey.store.keys import iso

LIMIT_DEFAULT = 50
LIMIT_MAX = 100
# Items one index read may look at for a page (a selective filter gives a short page, not a long read).
READ_BUDGET = 500
# Year groups of the stay index read at once by a walk (an open range starts at FIRST_YEAR).
PREFETCH_GROUPS = 4
# A walk of at most this many year groups reads them all for the page at once (no probes).
READ_ALL_GROUPS = 2
GUEST_QUERY_MAX = 100

PARAMETERS = ("roomId", "status", "from", "to", "updatedSince", "guest", "limit", "cursor")
_STAY_KEY = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z#[A-Za-z0-9._-]{1,64}")
_GUEST_KEY = re.compile(r"\d{10}#[A-Za-z0-9._-]{1,64}")
EARLIEST = datetime(indexes.FIRST_YEAR, 1, 1, tzinfo=UTC)


def _utc(q: Query, key: str) -> datetime | None:
    """The query's date-time `key` in UTC; one that UTC puts outside years 1-9999 is refused."""
    at = q.instant(key)
    try:
        return at.astimezone(UTC) if at is not None else None
    except OverflowError:
        raise bad(key, "is out of range: in UTC it must fall in the years 0001-9999") from None


@dataclass(frozen=True)
class BookingFilter:
    room_id: str | None = None
    statuses: tuple[BookingStatus, ...] = ()
    start: datetime | None = None  # the query's `from`
    end: datetime | None = None  # the query's `to`
    updated_since: datetime | None = None
    guest: str | None = None

    @classmethod
    def from_query(cls, q: Query) -> BookingFilter:
        room_id = q.get("roomId")
        if room_id is not None and not re.fullmatch(ID_PATTERN, room_id):
            raise bad("roomId", "must match [A-Za-z0-9._-]{1,64}")
        statuses: list[BookingStatus] = []
        for raw in q.all("status"):
            try:
                statuses.append(BookingStatus(raw.strip()))
            except ValueError:
                known = ", ".join(s.value for s in BookingStatus)
                raise bad("status", f"{raw[:40]!r} is not a booking status ({known})") from None
        start, end = _utc(q, "from"), _utc(q, "to")
        if start is not None and end is not None and end <= start:
            raise bad("to", "must be after from")
        guest = q.text("guest", max_length=100, min_length=2)
        return cls(
            room_id=room_id,
            statuses=tuple(dict.fromkeys(statuses)),
            start=start,
            end=end,
            updated_since=_utc(q, "updatedSince"),
            guest=indexes.searchable(guest) if guest else None,
        )

    def mode(self) -> str:
        if self.guest:
            return "guest"
        if self.updated_since is not None:
            return "updated"
        if self.room_id is not None:
            return "room"
        if self.statuses == (BookingStatus.FAILED,):
            return "failed"
        return "stay"

    def key(self) -> dict[str, Any]:
        """What a cursor is bound to."""
        return {
            "roomId": self.room_id,
            "status": sorted(s.value for s in self.statuses),
            "from": iso_utc(self.start),
            "to": iso_utc(self.end),
            "updatedSince": iso_utc(self.updated_since),
            "guest": self.guest,
        }

    def matches(self, b: Booking) -> bool:
        if self.room_id is not None and b.roomId != self.room_id:
            return False
        if self.statuses and b.status not in self.statuses:
            return False
        if self.start is not None and not b.validUntil > self.start:
            return False
        if self.end is not None and not b.validFrom < self.end:
            return False
        return not (self.updated_since is not None and b.updatedAt < self.updated_since)

    def expression(self, skip: tuple[str, ...] = ()) -> tuple[str | None, dict[str, str], dict[str, Any]]:
        """The DynamoDB filter for what the chosen index does not decide by its keys."""
        parts: list[str] = []
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        if self.room_id is not None and "room" not in skip:
            parts.append("#fr = :fr")
            names["#fr"], values[":fr"] = "roomId", self.room_id
        if self.statuses:
            refs = [f":fs{i}" for i in range(len(self.statuses))]
            parts.append(f"#fs IN ({', '.join(refs)})")
            names["#fs"] = "status"
            values.update({ref: s.value for ref, s in zip(refs, self.statuses, strict=True)})
        if self.start is not None:
            parts.append("#fu > :ff")
            names["#fu"], values[":ff"] = "validUntil", iso_utc(self.start)
        if self.end is not None and "end" not in skip:
            parts.append("#fv < :ft")
            names["#fv"], values[":ft"] = "validFrom", iso_utc(self.end)
        return (" AND ".join(parts) or None), names, values


@dataclass
class BookingPage:
    items: list[Booking]
    next_cursor: str | None

    def to_api(self) -> dict[str, Any]:
        return {"items": [b.to_api() for b in self.items], "nextCursor": self.next_cursor}


@dataclass
class _Source:
    index: str
    pk: str
    lo: str = KEY_MIN
    hi: str = KEY_MAX


@dataclass
class _Group:
    """Sources whose keys all lie in [floor, ceiling); groups follow each other in key order."""

    sources: list[_Source]
    ceiling: str = KEY_MAX
    filter_skip: tuple[str, ...] = field(default_factory=tuple)


class BookingSearch:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def search(self, f: BookingFilter, limit: int = LIMIT_DEFAULT, cursor: str | None = None) -> BookingPage:
        if not 1 <= limit <= LIMIT_MAX:
            raise ValidationFailed(
                "bad query parameter", details=[{"field": "limit", "message": f"must be 1 to {LIMIT_MAX}"}]
            )
        mode = f.mode()
        bound = {"mode": mode, **f.key()}
        after = decode_cursor(cursor, bound, _GUEST_KEY if mode == "guest" else _STAY_KEY)
        now = self.clock.now()
        if mode == "guest":
            bookings, last = self._by_guest(f, limit, after, now)
        else:
            raws, last = self._walk(self._groups(f, mode, now), f, limit, after)
            bookings = [Booking.model_validate(raw) for raw in raws]
            bookings = [b for b in bookings if f.matches(b)]
            guests = self.store.get_guests([b.bookingId for b in bookings], now)
            for b in bookings:
                b.guest = guests.get(b.bookingId)
        return BookingPage(bookings, encode_cursor(last, bound) if last is not None else None)

    def all(self, f: BookingFilter, max_items: int = 5000, guests: bool = True) -> list[Booking]:
        """Every booking that matches, at most `max_items` (the console's Today): one walk over the
        index (continued only where a read's budget ran out), the guests read once at the end."""
        now = self.clock.now()
        mode = f.mode()
        if mode == "guest":
            out: list[Booking] = []
            cursor: str | None = None
            while len(out) < max_items:
                page = self.search(f, LIMIT_MAX, cursor)
                out += page.items
                cursor = page.next_cursor
                if cursor is None:
                    break
            return out[:max_items]
        groups = self._groups(f, mode, now)
        bookings: list[Booking] = []
        after: str | None = None
        while len(bookings) < max_items:
            raws, after = self._walk(groups, f, max_items - len(bookings), after)
            bookings += [b for b in (Booking.model_validate(raw) for raw in raws) if f.matches(b)]
            if after is None:
                break
        bookings = bookings[:max_items]
        if guests:
            found = self.store.get_guests([b.bookingId for b in bookings], now)
            for b in bookings:
                b.guest = found.get(b.bookingId)
        return bookings

    # ------------------------------------------------------------------ plans

    def _groups(self, f: BookingFilter, mode: str, now: datetime) -> list[_Group]:
        if mode == "updated":
            assert f.updated_since is not None
            lo = iso(f.updated_since)
            # Nothing changed before FIRST_YEAR: an updatedSince of 0065 reads 2020's partition first,
            # not one empty partition a year since then (thousands of reads, a gateway timeout).
            return [
                _Group(
                    [_Source("gsi3", indexes.updated_pk(year, shard), lo) for shard in range(indexes.INDEX_SHARDS)],
                    ceiling=str(year + 1),
                )
                for year in range(max(f.updated_since.year, indexes.FIRST_YEAR), now.year + 1)
            ]
        hi = iso(f.end) if f.end is not None else KEY_MAX
        # No stay starts before FIRST_YEAR, so an earlier `from` looks back from there (from 0001-01-01
        # a look back would leave the calendar).
        start = max(f.start, EARLIEST) if f.start is not None else None
        if mode == "room":
            assert f.room_id is not None
            lo = iso(start - indexes.MAX_STAY) if start is not None else KEY_MIN
            return [_Group([_Source("gsi1", indexes.room_stay_pk(f.room_id), lo, hi)], filter_skip=("room",))]
        if mode == "failed":
            lo = iso(f.start - indexes.MAX_STAY) if f.start is not None else KEY_MIN
            return [_Group([_Source("gsi4", indexes.FAILED_PK, lo, hi)])]
        # The stay index, year by year: short stays looked back SHORT_STAY, long ones MAX_STAY.
        short_lo = iso(start - indexes.SHORT_STAY) if start is not None else KEY_MIN
        long_lo = iso(start - indexes.MAX_STAY) if start is not None else KEY_MIN
        first = (start - indexes.MAX_STAY).year if start is not None else indexes.FIRST_YEAR
        # No stay starts more than three years ahead of the day it was booked: a `to` of 9999 walks
        # the same years as none (not one empty partition a year until then).
        last = min(f.end.year, now.year + 4) if f.end is not None else now.year + 4
        groups = []
        for year in range(max(first, indexes.FIRST_YEAR), last + 1):
            sources = [
                _Source("gsi2", indexes.stay_pk(year, long, shard), long_lo if long else short_lo, hi)
                for long in (False, True)
                for shard in range(indexes.INDEX_SHARDS)
            ]
            groups.append(_Group([s for s in sources if s.lo <= hi and s.lo < str(year + 1)], ceiling=str(year + 1)))
        return groups

    def _walk(
        self, groups: list[_Group], f: BookingFilter, limit: int, after: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Up to `limit` matching items after the position `after`, in key order across the groups;
        (items, the position to continue from, or None at the end)."""
        out: list[dict[str, Any]] = []
        groups = [g for g in groups if after is None or after < g.ceiling]  # the cursor is past the others
        # Groups read ahead: (read in full for the page, or probed for one item; their pages).
        ahead: dict[int, tuple[bool, list[IndexPage]]] = {}
        probe = len(groups) > READ_ALL_GROUPS
        for n, group in enumerate(groups):
            want = limit - len(out)
            if n in ahead:
                full, found = ahead.pop(n)
                # A probed source that had more is read again for the page.
                again = [s for s, page in zip(group.sources, found, strict=True) if page.last_key is not None]
                again = [] if full else again
                reread = iter(fanout.each([partial(self._read_source, s, group, f, want, after) for s in again]))
                read = [page if full or page.last_key is None else next(reread) for page in found]
            else:
                # This group for the page and the next few at once: a walk of a few groups (a
                # bounded range) reads them all for the page; a longer one (an open range, most
                # of whose year groups are empty) probes them for one item each, and a page that
                # spans two years reads the second one again.
                later = range(n + 1, min(len(groups), n + PREFETCH_GROUPS))
                each = (want, READ_BUDGET) if not probe else (1, 1)
                calls = [partial(self._read_source, s, group, f, want, after) for s in group.sources]
                calls += [
                    partial(self._read_source, s, groups[m], f, each[0], after, each[1])
                    for m in later
                    for s in groups[m].sources
                ]
                results = iter(fanout.each(calls))
                read = [next(results) for _ in group.sources]
                for m in later:
                    ahead[m] = (not probe, [next(results) for _ in groups[m].sources])
            pages = list(zip(group.sources, read, strict=True))
            sort_attr = f"{group.sources[0].index}sk" if group.sources else "gsi2sk"
            # A source that stopped early has read its keys only up to its last_key: beyond the
            # smallest such key another source's items may be missing, so the page stops there.
            cut = min((page.last_key for _, page in pages if page.last_key is not None), default=None)
            merged = sorted((item for _, page in pages for item in page.items), key=lambda i: str(i[sort_attr]))
            if cut is not None:
                merged = [item for item in merged if str(item[sort_attr]) <= cut]
            if len(merged) > want:
                merged = merged[:want]
                cut = str(merged[-1][sort_attr])
            out += merged
            if cut is not None:
                return out, cut
            if len(out) >= limit:
                return out, str(out[-1][sort_attr])
        return out, None

    def _read_source(
        self, source: _Source, group: _Group, f: BookingFilter, want: int, after: str | None, budget: int = READ_BUDGET
    ) -> IndexPage:
        """Up to `want` matching items of one source, reading at most `budget` (1: a probe, which
        says whether the source's range holds anything at all)."""
        expression, names, values = f.expression(group.filter_skip)
        return self.store.index_range(
            source.index,
            source.pk,
            source.lo,
            source.hi,
            after=after,
            want=want,
            budget=budget,
            filter_expression=expression,
            names=names,
            values=values,
        )

    def _by_guest(
        self, f: BookingFilter, limit: int, after: str | None, now: datetime
    ) -> tuple[list[Booking], str | None]:
        assert f.guest is not None
        page = self.store.index_range(
            "gsi3",
            indexes.GUESTS_PK,
            after=after,
            want=limit,
            budget=READ_BUDGET * 4,
            filter_expression="contains(#gs, :gq) AND #ge > :gn",
            names={"#gs": "search", "#ge": "expiresAt"},
            values={":gq": f.guest, ":gn": int(now.timestamp())},
        )
        ids = [str(item["pk"]).removeprefix("BOOKING#") for item in page.items]
        found = self.store.get_bookings(ids)
        guests = self.store.get_guests(ids, now)
        out = []
        for booking_id in ids:
            booking = found.get(booking_id)
            if booking is None or not f.matches(booking):
                continue
            booking.guest = guests.get(booking_id)
            out.append(booking)
        return out, page.last_key
