"""Rooms: the operator's map from a room to its locks, zone and default times.

A room is checked against the Nuki account when it is set up (`Rooms.put`), so a lock StayKey
cannot use is refused then, naming it, and not found out by a failed booking 72 hours before a
stay. Every lock is read with ``GET /smartlock/{id}``; it is refused (422, ``smartlockIds.N``)
when Nuki does not know it (404) or refuses access to it (403, 402, 400), when it has no keypad
paired and guests open it with a keypad code (`access` "keypad", the default; a lock with `app`
access needs none), or when it reports a Smart Hosting subscription that is not in force (no state, a state other
than ACTIVE or PENDING_CANCEL, or past its expirationDate: `core.readiness.not_in_force`). When
Nuki cannot be asked (unreachable, 5xx, 429 after the client's retries, a refused API token) the
answer is 503 and nothing is written. This is the one place the check lives: the shop API and the
operators' console both set rooms up through it.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from staykey.core.models import Room, RoomIn
from staykey.core.readiness import LockReport, not_in_force
from staykey.core.timeutil import Clock
from staykey.edge.pagination import decode_cursor, encode_cursor
from staykey.errors import NotFound, UpstreamUnavailable, ValidationFailed
from staykey.nuki.errors import NukiAuthError, NukiInvalidRequest, NukiNotFound, NukiRefused, describe
from staykey.observability import logger
from staykey.store import Store

if TYPE_CHECKING:
    from staykey.nuki import NukiClient, Smartlock

ROOMS_LIMIT_DEFAULT = 100
ROOMS_LIMIT_MAX = 100
_ROOM_KEY = re.compile(r"[A-Za-z0-9._-]{1,64}")


class Rooms:
    def __init__(
        self, store: Store, clock: Clock, *, nuki: Callable[[], NukiClient], max_codes: int = 200, pool: int = 3
    ) -> None:
        """`max_codes`: MAX_CODES_PER_LOCK; `pool`: BACKUP_POOL_SIZE (a room's backup codes per lock)."""
        self.store = store
        self.clock = clock
        self._nuki = nuki
        self.max_codes = max_codes
        self.pool = pool
        self.names: dict[int, str | None] = {}

    def put(self, room_id: str, room_in: RoomIn) -> tuple[Room, bool]:
        """Create or replace a room; (room, created). Existing bookings keep the locks they have.

        Raises ValidationFailed naming every lock StayKey cannot use, UpstreamUnavailable when
        Nuki cannot be asked; nothing is written then.
        """
        self.check_locks(room_in.smartlockIds, room_in.access_of)
        if room_in.backupCodes:
            self.check_pool(room_in)
        now = self.clock.now()
        existing = self.store.get_room(room_id)
        room = Room(
            **room_in.model_dump(),
            roomId=room_id,
            createdAt=existing.createdAt if existing else now,
            updatedAt=now,
        )
        self.store.put_room(room)
        # Looked after from now on (reconciled, polled), also once the room no longer lists them.
        self.store.register_locks(room.smartlockIds)
        for lock_id in room.smartlockIds:
            if self.names.get(lock_id):
                self.store.update_lock_meta(lock_id, name=self.names[lock_id])
        return room, existing is None

    def check_locks(self, smartlock_ids: list[int], access: Callable[[int], str] = lambda _: "keypad") -> None:
        """Every lock exists in the Nuki account, has a keypad (for keypad access) and a
        subscription in force."""
        problems: list[dict[str, Any]] = []
        nuki = self._nuki()
        for index, smartlock_id in enumerate(smartlock_ids):
            field = f"smartlockIds.{index}"
            try:
                lock = nuki.get_smartlock(smartlock_id)
            except NukiNotFound:
                problems.append(
                    {"field": field, "message": f"lock {smartlock_id} does not exist in the Nuki account (Nuki: 404)"}
                )
                continue
            except NukiAuthError as exc:
                if exc.status == 401:
                    logger.warning("Nuki refused the API token while checking a room", smartlock_id=smartlock_id)
                    raise UpstreamUnavailable(
                        f"Nuki refused StayKey's API token (401) when checking lock {smartlock_id}: the operator "
                        "must renew the token; nothing was written",
                        details=[{"field": field, "message": "could not be checked: Nuki refused StayKey's token"}],
                    ) from None
                problems.append(
                    {
                        "field": field,
                        "message": f"Nuki refuses access to lock {smartlock_id} ({exc.status}): it is not in the "
                        "Nuki account StayKey's token belongs to, or the token may not manage it",
                    }
                )
                continue
            except (NukiRefused, NukiInvalidRequest) as exc:
                problems.append({"field": field, "message": f"lock {smartlock_id} is refused by Nuki: {describe(exc)}"})
                continue
            except Exception as exc:  # unreachable, 5xx, 429 or 423 after retries, an unreadable answer
                logger.warning("Nuki unavailable while checking a room", smartlock_id=smartlock_id, error=describe(exc))
                raise UpstreamUnavailable(
                    f"Nuki could not be asked about lock {smartlock_id} ({describe(exc)}); nothing was written, "
                    "try again",
                    details=[{"field": field, "message": f"could not be checked: {describe(exc)}"}],
                ) from None
            self.names[smartlock_id] = lock.name  # for the guest's email (a door's name), once the room is put
            problem = _unusable(lock, access(smartlock_id), self.clock.now())
            if problem:
                problems.append({"field": field, "message": f"lock {smartlock_id} {problem}"})
        if problems:
            raise ValidationFailed("a lock of the room cannot be used", details=problems)

    def check_pool(self, room_in: RoomIn) -> None:
        """Each keypad lock has room for the pool of backup codes besides the codes it holds (Nuki's
        list of its codes); ValidationFailed naming backupPoolSize otherwise. Nuki unreachable: the
        PUT is refused (UpstreamUnavailable), nothing is written."""
        size = room_in.backupPoolSize or self.pool
        problems: list[dict[str, Any]] = []
        for lock_id in (i for i in room_in.smartlockIds if room_in.access_of(i) == "keypad"):
            # The pool's unused codes on the lock now: the new pool takes their place (a given one
            # stays until its stay ends; one not on the lock takes no slot: helper-34, F6).
            pooled = sum(
                1
                for c in self.store.pool_codes(lock_id)
                if c.status.value == "active" and c.staff is not None and c.staff.usedBy is None
            )
            try:
                held = len(self._nuki().list_auths(lock_id))  # now, not the last count: it is set up once
            except Exception as exc:
                raise UpstreamUnavailable(
                    f"Nuki could not list the codes of lock {lock_id} ({describe(exc)}); nothing was written",
                    details=[{"field": "backupPoolSize", "message": f"could not be checked: {describe(exc)}"}],
                ) from None
            if held - pooled + size > self.max_codes:
                problems.append(
                    {
                        "field": "backupPoolSize",
                        "message": f"lock {lock_id} holds {held - pooled} of its {self.max_codes} keypad codes: "
                        f"{size} backup codes do not fit",
                    }
                )
        if problems:
            raise ValidationFailed("the room's locks cannot hold its backup codes", details=problems)

    def get(self, room_id: str) -> Room:
        room = self.store.get_room(room_id)
        if room is None:
            raise NotFound(f"room {room_id!r} does not exist")
        return room

    def list(self) -> list[Room]:
        return self.store.list_rooms()

    def page(
        self, limit: int = ROOMS_LIMIT_DEFAULT, cursor: str | None = None
    ) -> tuple[builtins.list[Room], str | None]:
        """Rooms by id, `limit` at a time: (rooms, nextCursor)."""
        after = decode_cursor(cursor, {"list": "rooms"}, _ROOM_KEY)
        rooms, last = self.store.rooms_page(limit, after)
        return rooms, encode_cursor(last, {"list": "rooms"}) if last else None


def _unusable(lock: Smartlock, access: str, now: datetime) -> str | None:
    if access == "keypad" and not lock.has_keypad:
        return (
            "has no keypad paired: StayKey's PINs are keypad codes (pair a Nuki Keypad with it first, "
            'or give guests app access to it: "access": {"' + str(lock.smartlock_id) + '": "app"})'
        )
    # The rule readiness applies before each arrival, here without a stay: in force now.
    subscription = not_in_force(LockReport.of(lock), now)
    if subscription:
        return f"cannot be used: it {subscription} (Nuki serves short-rental integrations only on locks with one)"
    return None
