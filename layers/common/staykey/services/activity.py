"""Guest activity: every Nuki log entry stored once, under the booking whose code was used or,
when it is not a guest's, under its lock; check-in detection; what the webhooks tell us.

Two ways in, one way to store:

* webhooks (`DEVICE_LOGS`, `DEVICE_AUTHS`, `DEVICE_STATUS`), verified by the receiver
  (`staykey.edge.nuki_webhook`) and queued, arrive here through the webhook processor;
* polling `GET /smartlock/{id}/log` from a cursor kept per lock (`staykey.services.polling`), for
  accounts without webhooks (Nuki's Advanced API) and to fill in what a lost webhook missed.

Both call `record()`, so a booking's activity is the same with webhooks on or off, and an entry
seen both ways (or delivered twice) is stored once: the item is keyed on Nuki's log id and
written with a condition that it does not exist.

Attribution: an entry belongs to a booking when its `authId` is one of the auth ids the sync engine
indexed when it confirmed the booking's code (or app authorization) on that lock (Nuki's 24-hex
`id` or the numeric `authId`; which one logs carry is not documented, so both are indexed); else
when its `accountUserId` is a guest's Nuki account user and one of that user's bookings opens this
lock with the app at that time; or, as a last resort, when its `name` is the booking's unique auth
name and the lock is one of the booking's. Everything
else (codes and users that are not ours, app and manual operations, door sensor events, failed
keypad attempts with an invalid code) is kept under the lock for the operator. Stored entries
hold the booking id and Nuki's numbers, never guest data, names or PINs.

Check-in: the first successful keypad entry with a booking's code (or app entry with its app
authorization) sets its `firstEntryAt`; an
earlier entry that arrives later moves it back (webhooks and polls may come in any order).
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, TypeGuard

from staykey.core.models import ActivityItem, BookingStatus
from staykey.core.staff import STAFF_PREFIX, is_pool, is_staff
from staykey.core.timeutil import Clock, iso_utc, parse_iso
from staykey.edge.pagination import decode_cursor, encode_cursor
from staykey.errors import NotFound, ValidationFailed
from staykey.events import model as events
from staykey.nuki import (
    DeviceLogsWebhook,
    DeviceStatusWebhook,
    LogState,
    LogTrigger,
    SmartlockLog,
    SmartlockState,
    WebhookPayload,
    action_name,
    is_successful_app_entry,
    is_successful_keypad_entry,
    source_name,
    state_name,
    trigger_name,
)
from staykey.nuki.models import SERVER_STATE_OFFLINE
from staykey.observability import count, logger
from staykey.store import Store, fanout
from staykey.store.keys import activity_day_pk, iso

if TYPE_CHECKING:
    from staykey.settings import Settings

ACTIVITY_LIMIT_DEFAULT = 100
# A lock back online is looked at this long after (its waiting writes land a sync delay later).
BACK_ONLINE_CHECK_SECONDS = 120
ACTIVITY_LIMIT_MAX = 1000
# The feed across locks reads back at most this many days per page.
FEED_DAYS = 14
FEED_DAYS_AT_ONCE = 3
ACTIVITY_KEY = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z#[A-Za-z0-9._~-]{0,64}")


def is_success(trigger: int, state: int) -> bool:
    """Whether an entry reports something that happened: state 0, except that for the keypad-error
    trigger (253, Tap to Unlock) state 0 means "access document revoked"."""
    return state == LogState.SUCCESS and trigger != LogTrigger.KEYPAD_ERROR


class Activity:
    def __init__(self, settings: Settings, store: Store, clock: Clock) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock

    # ------------------------------------------------------------------ webhooks

    def handle_webhook(self, payload: WebhookPayload, received_at: datetime | None = None) -> str:
        """One verified DEVICE_LOGS or DEVICE_STATUS webhook; what became of it (for the log line).
        (DEVICE_AUTHS go to the sync engine: `services.webhooks.WebhookProcessor`.)"""
        if isinstance(payload, DeviceLogsWebhook):
            return "stored" if self.record(payload.smartlock_log, via="webhook") else "duplicate"
        if isinstance(payload, DeviceStatusWebhook):
            updated = self.observe_status(payload, received_at or self.clock.now())
            return "status" if updated else "stale_status"
        return "ignored"

    def observe_status(self, event: DeviceStatusWebhook, at: datetime) -> bool:
        """DEVICE_STATUS: the lock's last known state in LOCK#/META, unless a newer one is there."""
        state = event.state or SmartlockState()
        online = None if event.server_state is None else event.server_state != SERVER_STATE_OFFLINE
        fields = {
            "online": online,
            "serverState": event.server_state,
            "batteryCritical": state.battery_critical,
            "batteryCharge": state.battery_charge,
            "batteryCharging": state.battery_charging,
            "keypadBatteryCritical": state.keypad_battery_critical,
            "doorsensorBatteryCritical": state.doorsensor_battery_critical,
            "doorState": state.door_state,
            "lockState": state.state,
        }
        back: list[bool] = []

        def lock_events(old: dict[str, Any]) -> list[events.Event]:
            back[:] = [old.get("online") is False and online is True]
            return events.lock_events(event.smartlock_id, old, fields)

        # lock.offline / lock.online / lock.battery_critical, written with the state they report.
        updated = self.store.update_lock_state(event.smartlock_id, fields, lock_events, stamp=("statusAt", at))
        if updated and any(back):
            # Back online: what waited for it lands now; the watcher looks at the lock.
            self.store.signal_lock(event.smartlock_id, self.clock.now() + timedelta(seconds=BACK_ONLINE_CHECK_SECONDS))
        if updated and (state.battery_critical or state.keypad_battery_critical):
            # A dead keypad battery locks guests out: worth an alarm.
            count("BatteryCritical")
            logger.warning(
                "battery critical",
                smartlock_id=event.smartlock_id,
                lock=bool(state.battery_critical),
                keypad=bool(state.keypad_battery_critical),
            )
        if updated and online is False:
            logger.warning("lock offline", smartlock_id=event.smartlock_id)
        return updated

    # ------------------------------------------------------------------ one log entry

    def record(self, log: SmartlockLog, *, via: str) -> bool:
        """Attribute and store one log entry; False if it was stored before (by either way in).

        firstEntryAt is set before the entry is stored, so a failure between the two steps is
        repaired by the retry (the queue's, or the next poll) instead of being skipped as a duplicate.
        """
        if self.store.activity_exists(log.id):
            return False
        booking_id, attributed_by = self._attribute(log)
        if _guests(booking_id) and (is_successful_keypad_entry(log) or is_successful_app_entry(log)):
            self._first_entry(booking_id, log)
        entry = {
            "id": log.id,
            "at": log.date,
            "smartlockId": log.smartlock_id,
            "action": log.action,
            "trigger": log.trigger,
            "source": log.source,
            "state": log.state,
            "deviceType": log.device_type,
            "bookingId": booking_id,
            "attributedBy": attributed_by,
            # Nuki's opaque reference of the auth used: lets an operator find it in Nuki Web.
            "authRef": log.auth_id,
            "via": via,
        }
        expires_at = log.date + timedelta(days=self.settings.activity_retention_days)
        # access.entry, written with the entry (a duplicate delivery writes neither).
        access = (
            [events.access_entry({**to_item({**entry, "at": iso_utc(log.date)}).to_api(), **_whose(booking_id)})]
            if events.is_access(log.action, log.trigger)
            else []
        )
        stored = self.store.put_activity(entry, expires_at, access)
        if stored:
            count("EntryRecorded")
            logger.info(
                "activity recorded",
                booking_id=booking_id,
                smartlock_id=log.smartlock_id,
                log_id=log.id,
                action=action_name(log.action),
                trigger=trigger_name(log.trigger),
                success=is_success(log.trigger, log.state),
                via=via,
            )
        return stored

    def _attribute(self, log: SmartlockLog) -> tuple[str | None, str | None]:
        if log.auth_id:
            booking_id = self.store.booking_id_for_auth(log.smartlock_id, log.auth_id)
            if booking_id is not None:
                return _user_of(self.store, booking_id), "authId"
        if log.account_user_id is not None:
            booking_id = self._by_account_user(log)
            if booking_id is not None:
                return booking_id, "accountUser"
        if log.name and not _known_foreign(self.store, log):
            booking_id = self.store.booking_id_for_name(log.name)
            if booking_id is not None:
                booking = self.store.get_booking(booking_id)
                lock = booking.lock(log.smartlock_id) if booking is not None else None
                # Names are ours only on our bookings' locks; on a lock the guest opens with the app,
                # an entry naming another account user is someone else's, whatever its name (an
                # adversarial run; a keypad entry names the code's owner account, not the guest).
                user = booking.account.accountUserId if booking is not None else None
                theirs = log.account_user_id not in (None, user) and lock is not None and lock.access == "app"
                if lock is not None and not theirs:
                    return _user_of(self.store, booking_id), "name"
        return None, None

    def _by_account_user(self, log: SmartlockLog) -> str | None:
        """The booking of the guest's account user that opens this lock with the app at that time."""
        assert log.account_user_id is not None
        item = self.store.get_account_user(log.account_user_id)
        slack = timedelta(minutes=1)
        cancelled = None
        for booking_id in (item or {}).get("bookings") or []:
            b = self.store.get_booking(str(booking_id))
            lock = b.lock(log.smartlock_id) if b is not None else None
            app = b is not None and lock is not None and lock.access == "app"
            if app and b is not None and b.validFrom - slack <= log.date <= b.validUntil + slack:
                if b.status != BookingStatus.CANCELLED:
                    return b.bookingId
                # A cancelled booking of the same guest and stay (cancelled, then booked again)
                # is the entry's only if no live booking matches (found by an adversarial run).
                cancelled = cancelled or b.bookingId
        return cancelled

    def _first_entry(self, booking_id: str, log: SmartlockLog) -> None:
        checked_in = events.checked_in(booking_id, log.smartlock_id, log.date)  # written with the first only
        changed, first = self.store.record_first_entry(booking_id, log.date, self.clock.now(), checked_in)
        if first:
            count("GuestCheckedIn")
            logger.info("guest checked in", booking_id=booking_id, smartlock_id=log.smartlock_id, at=iso_utc(log.date))
        elif changed:
            logger.info("an earlier entry arrived late; firstEntryAt moved back", booking_id=booking_id)

    # ------------------------------------------------------------------ reading

    def for_booking(self, booking_id: str, limit: int = ACTIVITY_LIMIT_DEFAULT) -> list[ActivityItem]:
        """A booking's activity, newest first; NotFound for an unknown booking."""
        if self.store.get_booking(booking_id) is None:
            raise NotFound(f"booking {booking_id!r} does not exist")
        return self._items(Store.activity_owner_key(booking_id, 0), limit)

    def for_lock(self, smartlock_id: int, limit: int = ACTIVITY_LIMIT_DEFAULT) -> list[ActivityItem]:
        """What happened on a lock that was not a guest's, newest first; NotFound for a lock that
        no room lists and that was never polled or reported on."""
        known = any(smartlock_id in room.smartlockIds for room in self.store.list_rooms())
        if not known and not self.store.get_lock_meta(smartlock_id):
            raise NotFound(f"lock {smartlock_id} is not in any room")
        return self._items(Store.activity_owner_key(None, smartlock_id), limit)

    def page_for_booking(
        self, booking_id: str, limit: int = ACTIVITY_LIMIT_DEFAULT, cursor: str | None = None, known: bool = False
    ) -> tuple[list[ActivityItem], str | None]:
        """A booking's activity, newest first, a page at a time: (items, nextCursor). NotFound for
        an unknown booking, unless the caller `known`s it (it reads the booking itself)."""
        if not known and self.store.get_booking(booking_id) is None:
            raise NotFound(f"booking {booking_id!r} does not exist")
        return self._page(Store.activity_owner_key(booking_id, 0), limit, cursor)

    def page_for_lock(
        self, smartlock_id: int, limit: int = ACTIVITY_LIMIT_DEFAULT, cursor: str | None = None, known: bool = False
    ) -> tuple[list[ActivityItem], str | None]:
        """What happened on a lock that was not a guest's, newest first, a page at a time. NotFound
        for an unknown lock, unless the caller `known`s it (it reads the lock itself)."""
        if not known:
            rooms, meta = fanout.gather(self.store.list_rooms, lambda: self.store.get_lock_meta(smartlock_id))
            if not any(smartlock_id in room.smartlockIds for room in rooms) and not meta:
                raise NotFound(f"lock {smartlock_id} is not in any room")
        return self._page(Store.activity_owner_key(None, smartlock_id), limit, cursor)

    def _page(self, owner_key: str, limit: int, cursor: str | None) -> tuple[list[ActivityItem], str | None]:
        bound = {"activity": owner_key}
        before = decode_cursor(cursor, bound, ACTIVITY_KEY)
        page = self.store.activity_page(owner_key, max(1, min(ACTIVITY_LIMIT_MAX, limit)), before)
        now = self.clock.now().timestamp()
        items = [to_item(raw) for raw in page.items if raw.get("expiresAt", math.inf) > now]
        return items, encode_cursor(page.last_key, bound) if page.last_key else None

    def feed(
        self,
        limit: int = 50,
        cursor: str | None = None,
        *,
        smartlock_id: int | None = None,
        booking_id: str | None = None,
        failed_only: bool = False,
        days: int = FEED_DAYS,
    ) -> tuple[list[ActivityItem], str | None]:
        """Everything recorded on every lock, newest first (the console's Activity page), from the
        by-day index; filtered by lock, booking, or failed attempts only. Reads back at most `days`
        days per page; the cursor goes on from there."""
        bound = {"feed": [smartlock_id, booking_id, failed_only]}
        before = decode_cursor(cursor, bound, ACTIVITY_KEY)
        parts: list[str] = []
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        if smartlock_id is not None:
            parts.append("#fl = :fl")
            names["#fl"], values[":fl"] = "smartlockId", smartlock_id
        if booking_id is not None:
            parts.append("#fb = :fb")
            names["#fb"], values[":fb"] = "bookingId", booking_id
        if failed_only:
            parts.append("#fs <> :ok")
            names["#fs"], values[":ok"] = "state", int(LogState.SUCCESS)
        now = self.clock.now()
        day = parse_iso(before.split("#", 1)[0]) if before else now
        assert day is not None
        out: list[ActivityItem] = []
        starts = [day]
        for _ in range(days - 1):
            starts.append(starts[-1].replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(seconds=1))
        # Days newest first, FEED_DAYS_AT_ONCE at a time; only the first day read starts at the cursor.
        for first in range(0, days, FEED_DAYS_AT_ONCE):
            batch = starts[first : first + FEED_DAYS_AT_ONCE]
            want = limit - len(out)
            pages = fanout.each(
                [
                    partial(
                        self.store.index_range,
                        "gsi2",
                        activity_day_pk(start),
                        forward=False,
                        after=before if first + n == 0 else None,
                        want=want,
                        budget=ACTIVITY_LIMIT_MAX,
                        filter_expression=" AND ".join(parts) or None,
                        names=names,
                        values=values,
                    )
                    for n, start in enumerate(batch)
                ]
            )
            for start, page in zip(batch, pages, strict=True):
                day = start
                raws = page.items
                if len(out) + len(raws) > limit:  # a day read for more than the page still wants
                    raws = raws[: limit - len(out)]
                    out += [to_item(raw) for raw in raws if raw.get("expiresAt", math.inf) > now.timestamp()]
                    return out, encode_cursor(str(raws[-1]["gsi2sk"]), bound)
                out += [to_item(raw) for raw in raws if raw.get("expiresAt", math.inf) > now.timestamp()]
                if page.last_key is not None:
                    return out, encode_cursor(page.last_key, bound)
                if len(out) >= limit:
                    return out, encode_cursor(iso(day.replace(hour=0, minute=0, second=0)) + "#", bound)
        day = day.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(seconds=1)
        oldest = now - timedelta(days=self.settings.activity_retention_days)
        if day < oldest:
            return out, None
        return out, encode_cursor(iso(day) + "#~", bound)

    def polled_first(self, since: datetime) -> int:
        """Entries since `since` that polling stored before any webhook delivered them: with
        webhooks registered, a sign that they lapsed."""
        now = self.clock.now()
        found = 0
        for day in {activity_day_pk(since), activity_day_pk(now)}:
            page = self.store.index_range(
                "gsi2",
                day,
                iso(since),
                want=1,
                budget=ACTIVITY_LIMIT_MAX,
                filter_expression="#via = :poll",
                names={"#via": "via"},
                values={":poll": "poll"},
            )
            found += len(page.items)
        return found

    def _items(self, owner_key: str, limit: int) -> list[ActivityItem]:
        limit = max(1, min(ACTIVITY_LIMIT_MAX, limit))
        now = self.clock.now().timestamp()
        # DynamoDB removes expired items within days, not at once: never show them.
        return [
            to_item(raw) for raw in self.store.list_activity(owner_key, limit) if raw.get("expiresAt", math.inf) > now
        ]


def activity_limit(raw: str | None) -> int:
    """The `limit` query parameter of the activity routes: 1..ACTIVITY_LIMIT_MAX, default 100."""
    if raw is None or raw == "":
        return ACTIVITY_LIMIT_DEFAULT
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6) or not 1 <= int(raw) <= ACTIVITY_LIMIT_MAX:
        raise ValidationFailed(
            "bad query parameter",
            details=[{"field": "limit", "message": f"must be a whole number from 1 to {ACTIVITY_LIMIT_MAX}"}],
        )
    return int(raw)


def _known_foreign(store: Store, log: SmartlockLog) -> bool:
    """The entry's authorization is one the reconciler listed as someone else's (a code named like
    ours is theirs all the same: its name says nothing; adversarial review helper-32, F5)."""
    return bool(log.auth_id) and any(
        c.owner == "foreign" and c.nuki_id == log.auth_id for c in store.codes_on_lock(log.smartlock_id)
    )


def _user_of(store: Store, booking_id: str) -> str:
    """Whose entry a code's is: a backup code's, the booking it was given to (services.backup)."""
    if not is_pool(booking_id):
        return booking_id
    code = store.get_booking(booking_id)
    used = code.staff.usedBy if code is not None and code.staff is not None else None
    return used or booking_id


def _guests(booking_id: str | None) -> TypeGuard[str]:
    """Whether an entry is a guest's: a booking's code, not a staff code's (which checks no one in)."""
    return booking_id is not None and not is_staff(booking_id) and not is_pool(booking_id)


def _whose(booking_id: str | None) -> dict[str, Any]:
    """Whose code an entry was, as an `access.entry` names it: a booking's, or a staff code's."""
    if booking_id is not None and is_staff(booking_id):
        return {"bookingId": None, "staffCodeId": booking_id.removeprefix(STAFF_PREFIX)}
    return {"bookingId": None if booking_id is not None and is_pool(booking_id) else booking_id}


def to_item(raw: dict[str, Any]) -> ActivityItem:
    """A stored entry as the API shows it: readable names from Nuki's numbers (so names for values a
    later spec adds appear for old entries too)."""
    action, trigger, source, state = (int(raw[key]) for key in ("action", "trigger", "source", "state"))
    at = parse_iso(str(raw["at"]))
    assert at is not None
    return ActivityItem(
        id=str(raw["id"]),
        at=at,
        smartlockId=int(raw["smartlockId"]),
        action=action_name(action),
        trigger=trigger_name(trigger),
        source=source_name(source),
        success=is_success(trigger, state),
        state=state_name(state, source=source, trigger=trigger),
        bookingId=raw.get("bookingId"),
    )


__all__ = [
    "ACTIVITY_LIMIT_DEFAULT",
    "ACTIVITY_LIMIT_MAX",
    "Activity",
    "activity_limit",
    "is_success",
    "to_item",
]
