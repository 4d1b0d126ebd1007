"""What StayKey knows of each lock: `GET /locks`, `GET /locks/{smartlockId}` and the console.

Nothing here calls Nuki: a lock's state is what the last reports said, kept in its `LOCK#/META`
item by DEVICE_STATUS webhooks (`Activity.observe_status`: online, batteries, door) and by the
reconciler (`Reconciler.execute`: online, the keypad codes Nuki listed, ours and others'). Every
figure carries the time it was reported, so an operator sees how fresh it is.

The locks are those of every room, and those the reconciler still looks after (a lock taken out
of every room while it holds codes of ours).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from staykey.core.models import ENDED, SMARTLOCK_ID_MAX, Booking, LockStatus, Room
from staykey.core.staff import STAFF_PREFIX, staff_status
from staykey.core.timeutil import Clock, iso_utc, parse_iso
from staykey.edge.pagination import decode_cursor, encode_cursor
from staykey.errors import NotFound
from staykey.services.search import BookingFilter, BookingSearch
from staykey.settings import Settings
from staykey.store import Store, fanout

LOCKS_LIMIT_DEFAULT = 100
LOCKS_LIMIT_MAX = 100
UPCOMING_DAYS = 30
_LOCK_KEY = re.compile(r"\d{1,19}")


def lock_id_from_path(raw: str) -> int:
    valid = raw.isascii() and raw.isdigit() and len(raw) <= 19
    if not valid or not 1 <= int(raw) <= SMARTLOCK_ID_MAX:
        raise NotFound(f"lock {raw[:40]!r} does not exist")
    return int(raw)


@dataclass
class LockCode:
    """A code we know to be on (or reserved on) a lock. Never the code itself."""

    owner: str  # "ours" or "others"
    name: str | None
    booking_id: str | None = None
    booking_status: str | None = None
    on_lock: bool | None = None  # ours: confirmed on the lock (False: reserved or on its way)

    def to_api(self) -> dict[str, Any]:
        if self.owner == "others":
            return {"owner": "others", "name": self.name}
        if self.booking_id is not None and self.booking_id.startswith(STAFF_PREFIX):
            # A staff code's (core.staff): named by its id, its status as the staff code answers it.
            status = staff_status(self.booking_status) if self.booking_status else None
            staff = {"staffCodeId": self.booking_id.removeprefix(STAFF_PREFIX), "staffCodeStatus": status}
            return {"owner": "ours", "name": self.name, "bookingId": None, **staff, "onLock": self.on_lock}
        return {
            "owner": "ours",
            "name": self.name,
            "bookingId": self.booking_id,
            "bookingStatus": self.booking_status,
            "onLock": self.on_lock,
        }


@dataclass
class LockView:
    smartlock_id: int
    rooms: list[Room]
    meta: dict[str, Any]
    max_codes: int
    codes: list[LockCode] | None = None
    upcoming: list[Booking] = field(default_factory=list)

    @property
    def online(self) -> bool | None:
        value = self.meta.get("online")
        return None if value is None else bool(value)

    @property
    def last_seen_at(self) -> datetime | None:
        """The last report that the lock was online: a DEVICE_STATUS or a reconcile run."""
        seen = [parse_iso(str(self.meta[key])) for key in ("reconciledAt",) if self.meta.get(key)]
        if self.meta.get("statusAt") and self.meta.get("online") is not False:
            seen.append(parse_iso(str(self.meta["statusAt"])))
        return max((s for s in seen if s is not None), default=None)

    @property
    def code_count(self) -> int | None:
        value = self.meta.get("codeCount")
        return None if value is None else int(value)

    @property
    def free(self) -> int | None:
        count = self.code_count
        return None if count is None else max(0, self.max_codes - count)

    def to_api(self) -> dict[str, Any]:
        m = self.meta
        out: dict[str, Any] = {
            "smartlockId": self.smartlock_id,
            "rooms": [{"roomId": r.roomId, "name": r.name} for r in self.rooms],
            "online": self.online,
            "lastSeenAt": iso_utc(self.last_seen_at),
            "battery": {
                "critical": m.get("batteryCritical"),
                "charge": m.get("batteryCharge"),
                "charging": m.get("batteryCharging"),
                "keypadCritical": m.get("keypadBatteryCritical"),
                "doorsensorCritical": m.get("doorsensorBatteryCritical"),
                "reportedAt": m.get("statusAt"),
            },
            "codes": {
                "ours": m.get("ourCodes"),
                "others": m.get("foreignCodes"),
                "total": self.code_count,
                "free": self.free,
                "limit": self.max_codes,
                "countedAt": m.get("codesCountedAt"),
            },
        }
        if self.codes is not None:
            out["codeList"] = [code.to_api() for code in self.codes]
            out["upcomingBookings"] = [
                {
                    "bookingId": b.bookingId,
                    "roomId": b.roomId,
                    "status": b.status.value,
                    "validFrom": iso_utc(b.validFrom),
                    "validUntil": iso_utc(b.validUntil),
                }
                for b in self.upcoming
            ]
        return out


class Locks:
    def __init__(self, settings: Settings, store: Store, clock: Clock) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock

    def page(self, limit: int = LOCKS_LIMIT_DEFAULT, cursor: str | None = None) -> tuple[list[LockView], str | None]:
        """Every lock, by id, `limit` at a time; (locks, nextCursor)."""
        after = decode_cursor(cursor, {"list": "locks"}, _LOCK_KEY)
        rooms, registered = fanout.gather(self.store.list_rooms, self.store.registered_locks)
        by_lock = _by_lock(rooms)
        ids = sorted(set(by_lock) | set(registered))
        if after is not None:
            ids = [i for i in ids if i > int(after)]
        page = ids[:limit]
        metas = self.store.get_lock_metas(page)
        views = [LockView(i, by_lock.get(i, []), metas.get(i, {}), self.settings.max_codes_per_lock) for i in page]
        more = len(ids) > limit
        return views, encode_cursor(str(page[-1]), {"list": "locks"}) if more and page else None

    def all(self, rooms: list[Room] | None = None) -> list[LockView]:
        """Every lock, by id (the console's Today and Locks pages): rooms (unless given) and the
        registry read at once, then every lock's state (one BatchGetItem per 100 locks, at once)."""
        if rooms is None:
            known, registered = fanout.gather(self.store.list_rooms, self.store.registered_locks)
        else:
            known, registered = rooms, self.store.registered_locks()
        by_lock = _by_lock(known)
        ids = sorted(set(by_lock) | set(registered))
        metas = self.store.get_lock_metas(ids)
        return [LockView(i, by_lock.get(i, []), metas.get(i, {}), self.settings.max_codes_per_lock) for i in ids]

    def get(self, smartlock_id: int) -> LockView:
        """One lock with its codes (ours with their booking's status, others' by name) and its
        upcoming bookings: its rooms, state and codes read at once, then the bookings."""
        rooms, meta, items = fanout.gather(
            self.store.list_rooms,
            lambda: self.store.get_lock_meta(smartlock_id),
            lambda: self.store.codes_on_lock(smartlock_id),
        )
        lock_rooms = _by_lock(rooms).get(smartlock_id, [])
        if not lock_rooms and not meta and smartlock_id not in self.store.registered_locks():
            raise NotFound(f"lock {smartlock_id} is not in any room")
        view = LockView(smartlock_id, lock_rooms, meta, self.settings.max_codes_per_lock)
        bookings, view.upcoming = fanout.gather(
            lambda: self.store.booking_parts(
                [c.booking_id for c in items if c.booking_id], ("status", "pin", "locks", "rotationCodes")
            ),
            lambda: self.upcoming(smartlock_id, lock_rooms),
        )
        codes: list[LockCode] = []
        for item in items:
            if item.owner == "foreign":
                codes.append(LockCode("others", item.auth_name))
                continue
            booking = bookings.get(item.booking_id or "")
            # The booking's code, or a PIN rotation's (two codes of one booking while it runs).
            slots = [*(booking or {}).get("locks", []), *((booking or {}).get("rotationCodes") or [])]
            on_lock = any(
                lk.get("smartlockId") == smartlock_id
                and lk.get("status") == LockStatus.ACTIVE.value
                and lk.get("heldPin") == item.pin
                for lk in slots
            )
            codes.append(
                LockCode(
                    "ours",
                    item.auth_name,
                    item.booking_id,
                    str(booking["status"]) if booking else None,
                    on_lock,
                )
            )
        view.codes = sorted(codes, key=lambda c: (c.owner != "ours", c.booking_id or "", c.name or ""))
        return view

    def upcoming(self, smartlock_id: int, rooms: list[Room], limit: int = 20) -> list[Booking]:
        """Bookings of the lock's rooms from now to UPCOMING_DAYS ahead that have not ended."""
        now = self.clock.now()
        search = BookingSearch(self.store, self.clock)
        found: dict[str, Booking] = {}
        filters = [BookingFilter(room_id=r.roomId, start=now, end=now + timedelta(days=UPCOMING_DAYS)) for r in rooms]
        for page in fanout.each([partial(search.search, f, limit) for f in filters]):
            for booking in page.items:
                if booking.status not in ENDED and booking.lock(smartlock_id) is not None:
                    found[booking.bookingId] = booking
        return sorted(found.values(), key=lambda b: b.validFrom)[:limit]


def _by_lock(rooms: list[Room]) -> dict[int, list[Room]]:
    by_lock: dict[int, list[Room]] = {}
    for room in rooms:
        for lock_id in room.smartlockIds:
            by_lock.setdefault(lock_id, []).append(room)
    return by_lock
