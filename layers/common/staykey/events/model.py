"""Events for the shop: what changed, as data with a stable id, derived from the change itself.

An event is written as an *outbox item* in the same DynamoDB transaction as the change it describes
(`staykey.store`), so it exists iff its change was saved. The table's stream carries it to the event
dispatcher, which puts it on the stack's EventBridge bus, on the feed behind ``GET /events`` and on
the delivery queue of every webhook endpoint that subscribed to its type (docs/events.md).

What an event never carries: a PIN, a guest's name or email, a Nuki token or secret. Only ids
(booking, room, lock, Nuki log entry), statuses, instants and reasons the shop API shows anyway.

The JSON of an event (`Event.body`, the exact bytes that are signed and delivered)::

    {"id": "evt_01JD...", "type": "booking.active", "timestamp": "2026-11-26T12:25:49.123Z",
     "data": {"bookingId": "B-1", ...}}

`id` is stable: every delivery of one event, by any of the three ways, carries the same id, so a
shop drops duplicates by it (delivery is at least once).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from staykey.core.timeutil import remembered_text

if TYPE_CHECKING:
    from staykey.core.models import Booking

# Every type, with what it means (docs/events.md and openapi.yaml's `webhooks` say the same).
EVENT_TYPES: dict[str, str] = {
    "booking.scheduled": "The booking was created; its PIN is reserved and goes onto the locks before the stay.",
    "booking.provisioning": "The code is being put on the room's locks (not yet confirmed on all of them).",
    "booking.active": (
        "The code is confirmed on every lock of the room: the PIN opens every door (or, where the guest was given "
        "a backup code, that code opens it)."
    ),
    "booking.failed": "The code could not be put on a lock; `data.statusReason` says why.",
    "booking.changed": "The stay, the room, the locks or the PIN changed; `data.changes` names what.",
    "booking.revoking": "The stay ended or the guest checked out early; the code is being removed.",
    "booking.revoked": "The code is confirmed gone from every lock.",
    "booking.cancelled": "The booking was cancelled; its code is removed from the locks.",
    "booking.at_risk": (
        "A readiness check before the arrival found a lock of the booking at risk (offline, a critical battery, "
        "no keypad, a lapsed subscription); `data.readiness.reasons` names each lock and why."
    ),
    "booking.ready": "A booking that was at risk is ready again: the cause is gone from every lock.",
    "booking.backup_assigned": (
        "The guest was given a backup code for `data.smartlockIds` (their code could not be confirmed there in "
        "time, or an operator asked); the booking (GET /bookings/{id}, `backupCodes`) has the codes."
    ),
    "guest.checked_in": "The guest's first successful keypad entry.",
    "access.entry": "A door was opened (unlock, unlatch) or someone used a keypad, successfully or not.",
    "lock.offline": "Nuki reports the lock offline.",
    "lock.online": "A lock that was offline is online again.",
    "lock.battery_critical": "The battery of a lock, its keypad or its door sensor became critical.",
    "lock.capacity_warning": "A lock holds CapacityWarningCodes keypad codes or more (Nuki's limit is 200).",
}
BOOKING_STATUS_EVENTS = {t.removeprefix("booking.") for t in EVENT_TYPES if t.startswith("booking.")} - {
    "changed",
    "at_risk",
    "ready",
    "backup_assigned",
}

# How long an event waits in the outbox for the dispatcher before DynamoDB removes it (the stream
# keeps records 24 hours; an item left longer was never dispatched and the dispatcher's alarms fired).
OUTBOX_TTL = timedelta(days=7)

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_id_lock = threading.Lock()
_last: tuple[int, int] = (0, 0)


def new_ulid() -> str:
    """A ULID: 48 bits of milliseconds, 80 random bits; increasing within a process."""
    global _last
    with _id_lock:
        ms = time.time_ns() // 1_000_000
        last_ms, last_rand = _last
        if ms <= last_ms:
            ms, rand = last_ms, (last_rand + 1) & ((1 << 80) - 1)
        else:
            rand = int.from_bytes(os.urandom(10), "big")
        _last = (ms, rand)
    value = (ms << 80) | rand
    return "".join(_CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(26)))


def new_event_id() -> str:
    return f"evt_{new_ulid()}"


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _iso(at: datetime | None) -> str | None:
    return None if at is None else remembered_text(at, _iso_text, _ISO_TEXTS)


def _iso_text(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_ISO_TEXTS: dict[datetime, str] = {}


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    timestamp: datetime
    data: Mapping[str, Any]

    def body(self) -> str:
        """The exact JSON that is stored, signed and delivered."""
        payload = {"id": self.id, "type": self.type, "timestamp": _stamp(self.timestamp), "data": dict(self.data)}
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)

    def partition(self) -> str:
        """The outbox item's partition: the booking's, or the lock's. DynamoDB Streams keeps the order
        of one partition's changes, so a booking's (or a lock's) events reach the dispatcher in order."""
        if self.data.get("bookingId"):
            return f"BOOKING#{self.data['bookingId']}"
        return f"LOCK#{self.data['smartlockId']}"


def new_event(event_type: str, data: Mapping[str, Any], now: datetime | None = None) -> Event:
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    return Event(new_event_id(), event_type, now or datetime.now(UTC), data)


def parse_body(body: str) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(body)
    return parsed


# ------------------------------------------------------------------------------ bookings

# What a booking.changed reports when it changes (the PIN only by name: its value is never in an event).
CHANGE_FIELDS = ("roomId", "checkIn", "checkOut", "validFrom", "validUntil", "smartlockIds")


def booking_snapshot(booking: Booking) -> dict[str, Any]:
    """What the events of a booking are computed from (kept with a booking read from the store)."""
    return {
        "status": booking.status.value,
        "roomId": booking.roomId,
        "checkIn": booking.checkIn,
        "checkOut": booking.checkOut,
        "validFrom": _iso(booking.validFrom),
        "validUntil": _iso(booking.validUntil),
        "smartlockIds": sorted(lk.smartlockId for lk in booking.locks if lk.desired == "present"),
        "pin": booking.pin,
        "readiness": _readiness_key(booking),
        "backups": sorted((code.smartlockId, code.poolId) for code in booking.backups),  # a replaced one is news too
    }


def _readiness_key(booking: Booking) -> list[str] | None:
    """What a readiness event is about: None (never checked), [] (ok), or the findings (at risk)."""
    r = booking.readiness
    if r is None:
        return None
    return sorted(f"{reason.smartlockId}:{reason.code}" for reason in r.reasons) if r.status == "at_risk" else []


def _booking_data(booking: Booking) -> dict[str, Any]:
    return {
        "bookingId": booking.bookingId,
        "roomId": booking.roomId,
        "status": booking.status.value,
        "statusReason": booking.statusReason,
        "checkIn": booking.checkIn,
        "checkOut": booking.checkOut,
        "validFrom": _iso(booking.validFrom),
        "validUntil": _iso(booking.validUntil),
        "locks": [lock.to_api() for lock in booking.locks],
        "readiness": booking.readiness.to_api() if booking.readiness else None,
    }


def booking_events(before: Mapping[str, Any] | None, after: Booking, now: datetime | None = None) -> list[Event]:
    """The events of saving `after` over the state `before` (a `booking_snapshot`; None: created).

    A new status is ``booking.<status>``; a change of the stay, room, locks or PIN is
    ``booking.changed`` (first, when both happen in one save). A staff code (`core.staff`) is no
    booking of the shop's: it has none."""
    if after.staff is not None:
        return []
    now = now or datetime.now(UTC)
    current = booking_snapshot(after)
    events: list[Event] = []
    if before is not None:
        changed = [f for f in CHANGE_FIELDS if before.get(f) != current[f]]
        if current["status"] in ("revoking", "revoked", "cancelled"):
            changed = [f for f in changed if f != "smartlockIds"]  # an ending booking leaves its locks
        pin_changed = before.get("pin") != current["pin"]
        if changed or pin_changed:
            data = _booking_data(after)
            data["changes"] = changed + (["pin"] if pin_changed else [])
            data["previous"] = {f: before.get(f) for f in changed}
            events.append(new_event("booking.changed", data, now))
    previous = None if before is None else before.get("status")
    if previous != current["status"]:
        data = _booking_data(after)
        data["previousStatus"] = previous
        events.append(new_event(f"booking.{current['status']}", data, now))
    given = [
        lock_id for lock_id, code in current["backups"] if (lock_id, code) not in ((before or {}).get("backups") or [])
    ]
    if given:  # the lock ids only: the shop reads the codes in the booking (GET /bookings/{id})
        events.append(new_event("booking.backup_assigned", {**_booking_data(after), "smartlockIds": given}, now))
    was, now_risk = (None if before is None else before.get("readiness")), current["readiness"]
    if now_risk and now_risk != was:  # at risk, or at risk for other reasons
        events.append(new_event("booking.at_risk", _booking_data(after), now))
    elif now_risk == [] and was:  # was at risk, is ready
        events.append(new_event("booking.ready", _booking_data(after), now))
    return events


# ------------------------------------------------------------------------------ activity

ENTRY_ACTIONS = frozenset({1, 3, 5})  # unlock, unlatch, lock'n'go with unlatch
KEYPAD_TRIGGERS = frozenset({253, 255})  # keypad error, keypad


def is_access(action: int, trigger: int) -> bool:
    """An entry worth an `access.entry`: a door opened, or anything done at a keypad. Not door
    sensor events, locking by hand or the lock's own housekeeping."""
    return action in ENTRY_ACTIONS or trigger in KEYPAD_TRIGGERS


def access_entry(item: Mapping[str, Any], now: datetime | None = None) -> Event:
    """`item` is an activity entry as the API shows it (`ActivityItem.to_api()` plus `bookingId`)."""
    data = {
        "bookingId": item.get("bookingId"),
        "smartlockId": item["smartlockId"],
        "entryId": item["id"],
        "at": item["at"],
        "action": item["action"],
        "trigger": item["trigger"],
        "source": item["source"],
        "success": item["success"],
        "state": item["state"],
    }
    if item.get("staffCodeId"):
        data["staffCodeId"] = item["staffCodeId"]  # a staff code's entry (core.staff)
    return new_event("access.entry", data, now)


def checked_in(booking_id: str, smartlock_id: int, at: datetime, now: datetime | None = None) -> Event:
    return new_event(
        "guest.checked_in", {"bookingId": booking_id, "smartlockId": smartlock_id, "firstEntryAt": _iso(at)}, now
    )


# ------------------------------------------------------------------------------ locks

# LOCK#/META attributes the lock events depend on (a change of one is a condition of the write).
LOCK_WATCH = ("online", "batteryCritical", "keypadBatteryCritical", "doorsensorBatteryCritical", "codeCount")
_BATTERIES = (
    ("batteryCritical", "lock"),
    ("keypadBatteryCritical", "keypad"),
    ("doorsensorBatteryCritical", "doorSensor"),
)


def lock_events(
    smartlock_id: int,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    *,
    capacity_warning: int | None = None,
    capacity_limit: int | None = None,
    now: datetime | None = None,
) -> list[Event]:
    """The events of a lock's state moving from `old` to `new` (LOCK#/META attributes; a key absent
    from `new` is unchanged). Transitions only: a lock reported offline twice is one lock.offline."""
    now = now or datetime.now(UTC)
    events: list[Event] = []
    online = new.get("online")
    if online is False and old.get("online") is not False:
        data = {"smartlockId": smartlock_id, "online": False, "serverState": new.get("serverState")}
        events.append(new_event("lock.offline", data, now))
    elif online is True and old.get("online") is False:
        data = {"smartlockId": smartlock_id, "online": True, "serverState": new.get("serverState")}
        events.append(new_event("lock.online", data, now))
    became = [name for key, name in _BATTERIES if new.get(key) is True and old.get(key) is not True]
    if became:
        merged = {**old, **new}
        data = {
            "smartlockId": smartlock_id,
            "critical": [name for key, name in _BATTERIES if merged.get(key) is True],
            "becameCritical": became,
            "batteryCharge": merged.get("batteryCharge"),
        }
        events.append(new_event("lock.battery_critical", data, now))
    codes = new.get("codeCount")
    if capacity_warning is not None and codes is not None and int(codes) >= capacity_warning:
        before = old.get("codeCount")
        if before is None or int(before) < capacity_warning:
            data = {
                "smartlockId": smartlock_id,
                "keypadCodes": int(codes),
                "warningAt": capacity_warning,
                "limit": capacity_limit,
            }
            events.append(new_event("lock.capacity_warning", data, now))
    return events


def types_of(events: Sequence[Event]) -> list[str]:
    return [e.type for e in events]
