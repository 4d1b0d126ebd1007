"""What each console page shows, computed from the services the shop API uses (search, locks,
activity, audit, the booking commands): no second copy of their logic, no rendering here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from staykey.console.timeline import TimelineContext, TimelineEvent, timeline
from staykey.core.models import ENDED, ActivityItem, Booking, BookingStatus, LockStatus, Room
from staykey.core.timeutil import zone
from staykey.services.activity import Activity
from staykey.services.audit import Audit, AuditEntry
from staykey.services.locks import Locks, LockView
from staykey.services.search import BookingFilter, BookingSearch
from staykey.settings import Settings
from staykey.store import Store, fanout

# A booking arriving this soon whose code is not confirmed everywhere is at risk.
AT_RISK = timedelta(hours=72)
FAILED_AHEAD = timedelta(days=14)
# Every zone's today lies within this of now.
WINDOW = timedelta(hours=36)
UPCOMING_MAX = 500
# A booking's timeline shows its newest entries, at most this many.
TIMELINE_ENTRIES = 200


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
class BookingPage:
    """A booking's page: the booking with its guest, its room, its audit entries and timeline."""

    booking: Booking
    room: Room | None
    audit: list[AuditEntry]
    events: list[TimelineEvent]


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
        activity: Activity | None = None,
        audit: Audit | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.search = search
        self.locks = locks
        self.activity = activity
        self.audit = audit
        self._queue_depths = queue_depths  # () -> {queue name: visible messages}
        self._webhook_fallbacks = webhook_fallbacks  # (now) -> entries polling found that webhooks missed

    def all_locks(self) -> list[LockView]:
        return self.locks.all()

    def booking(self, booking_id: str, now: datetime) -> BookingPage | None:
        """A booking's page (None: no such booking): the booking, its audit entries, its activity
        and its kept events read at once, then its room."""
        assert self.activity is not None
        assert self.audit is not None
        activity, audit = self.activity, self.audit
        b, entries, (items, _), history = fanout.gather(
            lambda: self.store.get_booking(booking_id, now),
            lambda: audit.for_booking(booking_id),
            lambda: activity.page_for_booking(booking_id, TIMELINE_ENTRIES, known=True),
            lambda: self.store.booking_history(booking_id),
        )
        if b is None:
            return None
        room = self.store.get_room(b.roomId)
        return BookingPage(b, room, entries, timeline(TimelineContext(b, items, entries, history)))

    def lock(
        self, smartlock_id: int, cursor: str | None, limit: int = 50
    ) -> tuple[LockView, list[ActivityItem], str | None]:
        """A lock's page: the lock with its codes and upcoming stays, and a page of what happened
        on it that was not a guest's, read at once (NotFound: no such lock)."""
        assert self.activity is not None
        activity = self.activity
        view, (items, next_cursor) = fanout.gather(
            lambda: self.locks.get(smartlock_id),
            lambda: activity.page_for_lock(smartlock_id, limit, cursor, known=True),
        )
        return view, items, next_cursor

    def today(self, now: datetime) -> Today:
        """Arrivals, departures and in-house guests (every zone's today lies within 36 hours of
        now), what needs attention. Its reads go out at once: rooms, locks, one key range of the
        stay index from 36 hours back to AT_RISK ahead (today's stays and the arrivals at risk),
        the failed bookings ahead, the webhook registration and the dead-letter queues; then the
        guests of the bookings shown."""
        window = BookingFilter(start=now - WINDOW, end=now + WINDOW)
        ahead = BookingFilter(start=now, end=now + AT_RISK)
        stays_filter = BookingFilter(start=now - WINDOW, end=now + max(WINDOW, AT_RISK))
        failed_filter = BookingFilter(statuses=(BookingStatus.FAILED,), start=now, end=now + FAILED_AHEAD)

        def rooms_and_locks() -> tuple[list[Room], list[LockView]]:
            room_list = self.store.list_rooms()
            return room_list, self.locks.all(room_list)

        (room_list, lock_views), stays, failed, webhook, dead_letters = fanout.gather(
            rooms_and_locks,
            lambda: self.search.all(stays_filter, guests=False),
            lambda: self.search.all(failed_filter, max_items=200, guests=False),
            lambda: self.store.get_config("WEBHOOK"),
            lambda: self._queue_depths() if self._queue_depths is not None else {},
        )
        rooms = {room.roomId: room for room in room_list}
        locks = {view.smartlock_id: view for view in lock_views}
        shown = [b for b in stays if window.matches(b) and b.status != BookingStatus.CANCELLED]
        guests = self.store.get_guests([b.bookingId for b in shown], now)
        arrivals, departures, in_house = [], [], []
        for b in shown:
            b.guest = guests.get(b.bookingId)
            r = Readiness(b, rooms.get(b.roomId), [locks[lk.smartlockId] for lk in b.locks if lk.smartlockId in locks])
            today = local_day(now, b.timezone)
            if local_day(b.validFrom, b.timezone) == today:
                arrivals.append(r)
            elif local_day(b.validUntil, b.timezone) == today:
                departures.append(r)
            elif b.validFrom <= now < b.validUntil and b.status not in ENDED:
                in_house.append(r)
        attention = Attention()
        attention.failed = failed
        for b in [b for b in stays if ahead.matches(b)][:UPCOMING_MAX]:
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
        attention.dead_letters = dead_letters
        if webhook is None:
            attention.webhooks = "unregistered"
        elif self._webhook_fallbacks is not None and self._webhook_fallbacks(now) > 0:
            attention.webhooks = "lapsed"
        key = lambda r: (r.booking.validFrom, r.booking.bookingId)  # noqa: E731
        return Today(
            now, sorted(arrivals, key=key), sorted(departures, key=key), sorted(in_house, key=key), attention, rooms
        )
