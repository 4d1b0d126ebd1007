"""The keys the table's secondary indexes sort by, in one place (see the docstring of `staykey.store`).

Pure functions: the store writes these attributes on every booking, guest, activity and audit item,
and the search services build their key conditions from the same functions, so a key is never
spelled twice.

Index overloading (single-table design): each GSI serves several item kinds, told apart by the
partition key's prefix.

| index | item     | partition key                          | sort key                  |
|-------|----------|----------------------------------------|---------------------------|
| gsi1  | activity | ACT#BOOKING#{id} / ACT#LOCK#{lockId}   | {at}#{logId}              |
| gsi1  | booking  | ROOMSTAY#{roomId}                      | {validFrom}#{bookingId}   |
| gsi1  | audit    | AUD#BOOKING#{id}                       | {at}#{auditId}            |
| gsi1  | staff code | STAFF (a booking with `staff`: only here) | {staffCodeId}           |
| gsi1  | backup code | POOL#{smartlockId}                    | {smartlockId}.{serial:04d} |
| gsi2  | booking  | STAY#{year of validFrom}[#LONG][#{shard}] | {validFrom}#{bookingId} |
| gsi2  | activity | ACTDAY#{day of at, UTC}                | {at}#{logId}              |
| gsi3  | booking  | UPD#{year of updatedAt}[#{shard}]      | {updatedAt}#{bookingId}   |
| gsi3  | guest    | GUESTS                                 | {expiresAt:010d}#{id}     |
| gsi4  | booking  | FAILED (only while failed: sparse)     | {validFrom}#{bookingId}   |

Instants are `iso_utc` strings (to the second, one format), so string order is time order.
"""

from __future__ import annotations

import hashlib
import unicodedata
from datetime import UTC, datetime, timedelta

from staykey.core.timeutil import iso_utc

# A stay longer than this goes to its year's #LONG partition of gsi2, so that a range query looks
# back only SHORT_STAY for the many short stays and the full MAX_STAY only for the few long ones.
SHORT_STAY = timedelta(days=31)
MAX_STAY = timedelta(days=366)  # models.MAX_STAY_DAYS: no stay starts longer before a range
STAFF_PK = "STAFF"


def pool_pk(smartlock_id: int) -> str:
    """A lock's backup codes (gsi1): sorted by `<lock>.<serial>`, serials zero-padded."""
    return f"POOL#{smartlock_id}"


# No booking of StayKey starts before this year: walks over year partitions start here.
FIRST_YEAR = 2020


def iso(at: datetime) -> str:
    """`iso_utc` of an instant that is there."""
    text = iso_utc(at)
    assert text is not None
    return text


def iso_ms(at: datetime) -> str:
    """An instant to the millisecond, UTC (`2026-11-26T12:25:49.123Z`): sorts as time does."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def stay_sort_key(valid_from: datetime, booking_id: str) -> str:
    return f"{iso(valid_from)}#{booking_id}"


def room_stay_pk(room_id: str) -> str:
    return f"ROOMSTAY#{room_id}"


# Every booking write writes its stay and last-change index entries: one partition a year for all
# bookings would take a large share of the table's traffic at fleet scale (issue 17's benchmark:
# 13 %), so each year is spread over INDEX_SHARDS partitions by booking, and a search reads them
# all. Shard 0 is the unsuffixed key, where bookings written before the shards were added stay.
INDEX_SHARDS = 8


def index_shard(booking_id: str) -> int:
    return int.from_bytes(hashlib.sha256(booking_id.encode()).digest()[:2], "big") % INDEX_SHARDS


def _sharded(base: str, shard: int) -> str:
    return base if shard == 0 else f"{base}#{shard}"


def stay_pk(year: int, long: bool, shard: int = 0) -> str:
    return _sharded(f"STAY#{year}" + ("#LONG" if long else ""), shard)


def stay_partition(valid_from: datetime, valid_until: datetime, booking_id: str) -> str:
    return stay_pk(valid_from.year, valid_until - valid_from > SHORT_STAY, index_shard(booking_id))


def updated_pk(year: int, shard: int = 0) -> str:
    return _sharded(f"UPD#{year}", shard)


def updated_partition(updated_at: datetime, booking_id: str) -> str:
    return updated_pk(updated_at.year, index_shard(booking_id))


def updated_sort_key(updated_at: datetime, booking_id: str) -> str:
    return f"{iso(updated_at)}#{booking_id}"


GUESTS_PK = "GUESTS"
# Failed bookings, and only those (gsi4 is sparse: a booking leaves it with its next save).
FAILED_PK = "FAILED"


def guest_sort_key(expires_at: int, booking_id: str) -> str:
    return f"{expires_at:010d}#{booking_id}"


def activity_day_pk(at: datetime) -> str:
    return f"ACTDAY#{iso(at)[:10]}"


def booking_history_pk(booking_id: str) -> str:
    """A booking's kept events (staykey.store.history)."""
    return f"HISTORY#BOOKING#{booking_id}"


def audit_booking_pk(booking_id: str) -> str:
    return f"AUD#BOOKING#{booking_id}"


def audit_month_pk(at: datetime) -> str:
    return f"AUDIT#{iso(at)[:7]}"


def searchable(text: str) -> str:
    """Text folded for a case- and accent-insensitive substring match: "Zoë Łukasz" -> "zoe łukasz"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(ch for ch in decomposed if not unicodedata.combining(ch)).split())
