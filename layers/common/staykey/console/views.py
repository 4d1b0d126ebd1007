"""What each console page shows, computed from the services the shop API uses (search, locks,
activity, audit, the booking commands): no second copy of their logic, no rendering here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from staykey.core.models import ENDED, Booking, BookingStatus, LockStatus, Room
from staykey.core.timeutil import zone
from staykey.services.locks import Locks, LockView
from staykey.services.search import BookingFilter, BookingSearch
from staykey.settings import Settings
from staykey.store import Store

# A booking arriving this soon whose code is not confirmed everywhere is at risk.
AT_RISK = timedelta(hours=72)
FAILED_AHEAD = timedelta(days=14)


@dataclass
class Readiness:
    booking: Booking
    room: Room | None
    locks: list[LockView]

    @property
    def confirmed(self) -> bool:
        present = [lk for lk in self.booking.locks if lk.desired == "present"]
        return bool(present) and all(lk.status == LockStatus.ACTIVE and lk.op is None for lk in present)

    @property
    def problems(self) -> list[str]:
        out = []
        for view in self.locks:
            if view.online is False:
                out.append(f"{view.smartlock_id}: offline")
            if view.meta.get("batteryCritical"):
                out.append(f"{view.smartlock_id}: battery critical")
            if view.meta.get("keypadBatteryCritical"):
                out.append(f"{view.smartlock_id}: keypad battery critical")
        return out

    @property
    def ready(self) -> bool:
        return self.confirmed and not self.problems


@dataclass
class Attention:
    failed: list[Booking] = field(default_factory=list)
    at_risk: list[Readiness] = field(default_factory=list)
    offline: list[LockView] = field(default_factory=list)
    battery: list[LockView] = field(default_factory=list)
    near_capacity: list[LockView] = field(default_factory=list)
    dead_letters: dict[str, int] = field(default_factory=dict)
    webhooks: str | None = None  # None: fine; "unregistered" or "lapsed"

    def empty(self) -> bool:
        return not (
            self.failed
            or self.at_risk
            or self.offline
            or self.battery
            or self.near_capacity
            or any(self.dead_letters.values())
            or self.webhooks
        )


@dataclass
class Today:
    now: datetime
    arrivals: list[Readiness]
    departures: list[Readiness]
    in_house: list[Readiness]
    attention: Attention
    rooms: dict[str, Room]


def local_day(at: datetime, tz_name: str) -> date:
    return at.astimezone(zone(tz_name)).date()


class ConsoleViews:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        search: BookingSearch,
        locks: Locks,
        queue_depths: Any = None,
        webhook_fallbacks: Any = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.search = search
        self.locks = locks
        self._queue_depths = queue_depths  # () -> {queue name: visible messages}
        self._webhook_fallbacks = webhook_fallbacks  # (now) -> entries polling found that webhooks missed

    def all_locks(self) -> list[LockView]:
        out: list[LockView] = []
        cursor = None
        while True:
            page, cursor = self.locks.page(100, cursor)
            out += page
            if cursor is None:
                return out

    def today(self, now: datetime) -> Today:
        rooms = {room.roomId: room for room in self.store.list_rooms()}
        locks = {view.smartlock_id: view for view in self.all_locks()}
        # Every zone's today lies within 36 hours of now.
        window = self.search.all(BookingFilter(start=now - timedelta(hours=36), end=now + timedelta(hours=36)))
        arrivals, departures, in_house = [], [], []
        for b in window:
            if b.status == BookingStatus.CANCELLED:
                continue
            r = Readiness(b, rooms.get(b.roomId), [locks[lk.smartlockId] for lk in b.locks if lk.smartlockId in locks])
            today = local_day(now, b.timezone)
            if local_day(b.validFrom, b.timezone) == today:
                arrivals.append(r)
            elif local_day(b.validUntil, b.timezone) == today:
                departures.append(r)
            elif b.validFrom <= now < b.validUntil and b.status not in ENDED:
                in_house.append(r)
        attention = Attention()
        attention.failed = self.search.all(
            BookingFilter(statuses=(BookingStatus.FAILED,), start=now, end=now + FAILED_AHEAD), max_items=200
        )
        upcoming = self.search.all(BookingFilter(start=now, end=now + AT_RISK), max_items=500)
        for b in upcoming:
            if b.status in ENDED or b.status == BookingStatus.FAILED or b.validFrom < now:
                continue
            r = Readiness(b, rooms.get(b.roomId), [locks[lk.smartlockId] for lk in b.locks if lk.smartlockId in locks])
            due = b.provisionAt <= now
            if r.problems or (due and not r.confirmed):
                attention.at_risk.append(r)
        for view in locks.values():
            if view.online is False:
                attention.offline.append(view)
            if view.meta.get("batteryCritical") or view.meta.get("keypadBatteryCritical"):
                attention.battery.append(view)
            if (view.code_count or 0) >= self.settings.capacity_warning_codes:
                attention.near_capacity.append(view)
        if self._queue_depths is not None:
            attention.dead_letters = self._queue_depths()
        if self.store.get_config("WEBHOOK") is None:
            attention.webhooks = "unregistered"
        elif self._webhook_fallbacks is not None and self._webhook_fallbacks(now) > 0:
            attention.webhooks = "lapsed"
        key = lambda r: (r.booking.validFrom, r.booking.bookingId)  # noqa: E731
        return Today(
            now, sorted(arrivals, key=key), sorted(departures, key=key), sorted(in_house, key=key), attention, rooms
        )
