"""Staff codes (issue 16): create, read, list, change, rotate, retry and remove the keypad codes of
the people who keep the rooms (`core.staff`). Each is a booking to the sync engine (its PIN
claimed on every lock in the transaction that creates it, so no guest is ever given it), which puts
it on the locks, confirms it, has the reconciler repair it and removes it when it is deleted.
Nothing is sent to Nuki before the request is known to be good: bad input is a 422 naming the
field, and nothing is written.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING

from staykey.core import commands, staff
from staykey.core.models import ENDED, Booking, BookingStatus, Room
from staykey.core.pins import generate_pin
from staykey.core.staff import StaffCodeIn, StaffCodePatch
from staykey.errors import Conflict, NotFound, UpstreamUnavailable, ValidationFailed
from staykey.observability import count, logger
from staykey.services.bookings import watch_stays
from staykey.services.sync import Sync, rewrite
from staykey.store import BookingExists, NameTaken, PinTaken, Store

if TYPE_CHECKING:
    from staykey.adapters.schedules import Scheduler
    from staykey.core.parts import StaffPart
    from staykey.core.timeutil import Clock
    from staykey.services.bookings import Bookings
    from staykey.settings import Settings

# How long a staff code's locks are hot for the watcher after a change (its writes confirmed, a
# deletion in Nuki Web noticed soon); afterwards the reconciler's sweeps and signals keep it.
HOT_AFTER_CHANGE = timedelta(hours=1)


class StaffCodes:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        scheduler: Scheduler,
        clock: Clock,
        sync: Sync,
        bookings: Bookings,
        pin_choice: Callable[[str], str] = secrets.choice,
    ) -> None:
        self.settings = settings
        self.store = store
        self.scheduler = scheduler
        self.clock = clock
        self.sync = sync
        self.bookings = bookings
        self.pin_choice = pin_choice

    def get(self, staff_code_id: str) -> Booking:
        booking = self.store.get_booking(staff.booking_id(staff_code_id))
        if booking is None or booking.staff is None:
            raise NotFound(f"staff code {staff_code_id!r} does not exist")
        return booking

    def page(self, limit: int, after: str | None = None) -> tuple[list[Booking], str | None]:
        return self.store.staff_codes(after, limit)

    # ------------------------------------------------------------------ create

    def create(self, request: StaffCodeIn) -> tuple[Booking, bool]:
        """A new staff code, its PIN reserved on every lock; (staff code, False) for a replay."""
        existing = self.store.get_booking(staff.booking_id(request.staffCodeId))
        if existing is not None:
            return self._replay(existing, request), False
        rooms = self._rooms(request.roomIds)
        locks = self._locks(rooms, request.smartlockIds)
        zone = request.timezone or (rooms[0].timezone if rooms else "UTC")
        part = staff.part_of(request, zone)
        now = self.clock.now()
        staff.window(part, now, now)  # a 422 before anything is written
        avoid = self.store.known_codes(locks)
        name_attempt = 0
        for _ in range(25):
            pin = generate_pin(avoid, self.pin_choice)
            code = staff.new_staff_code(part, locks, pin, name_attempt, now, request.request_hash())
            try:
                self.store.create_booking(code, None, now, [commands.claim(i, "keypad", pin) for i in locks])
            except PinTaken:
                avoid.add(pin)
                continue
            except NameTaken:
                name_attempt += 1
                continue
            except BookingExists:
                found = self.store.get_booking(code.bookingId)
                assert found is not None
                return self._replay(found, request), False
            break
        else:  # pragma: no cover - needs 25 collisions in a row
            raise UpstreamUnavailable("could not reserve a PIN; try again")
        logger.info("staff code created", staff_code_id=request.staffCodeId, locks=locks)
        count("StaffCodeCreated")
        self._follow(code)
        return self.sync.process(code.bookingId, read_back=False), True

    def _replay(self, existing: Booking, request: StaffCodeIn) -> Booking:
        if existing.staff is not None and existing.status in ENDED and existing.requestHash != request.request_hash():
            raise Conflict(
                f"staff code {request.staffCodeId!r} was removed and its id is kept with its history; "
                "make the new one under another staffCodeId"
            )
        if existing.staff is None or existing.requestHash != request.request_hash():
            raise Conflict(
                f"staff code {request.staffCodeId!r} exists with a different request; "
                "change it with PATCH /staff-codes/{staffCodeId} instead"
            )
        self._follow(existing)
        return existing

    def _rooms(self, room_ids: list[str]) -> list[Room]:
        rooms, missing = [], []
        for room_id in room_ids:
            room = self.store.get_room(room_id)
            if room is None:
                missing.append(room_id)
            else:
                rooms.append(room)
        if missing:
            raise ValidationFailed(
                "a staff code names rooms that do not exist",
                details=[{"field": "roomIds", "message": f"no room {', '.join(map(repr, missing))}"}],
            )
        return rooms

    def _locks(self, rooms: list[Room], smartlock_ids: list[int]) -> list[int]:
        """The staff code's locks: every lock of its rooms, then the locks named, each once. A
        lock named must be a lock of some room; every lock must take keypad codes (some room opens
        it with its keypad); ValidationFailed naming the field otherwise."""
        every = self.store.list_rooms()
        keypad = {i for r in every for i in r.smartlockIds if r.access_of(i) == "keypad"}
        known = {i for r in every for i in r.smartlockIds}
        details = []
        if not rooms and not smartlock_ids:
            details.append({"field": "roomIds", "message": "give at least one room (roomIds) or lock (smartlockIds)"})
        stray = [i for i in smartlock_ids if i not in known]
        if stray:
            details.append(
                {
                    "field": "smartlockIds",
                    "message": f"lock(s) {', '.join(map(str, stray))} belong to no room; add them to a room first",
                }
            )
        of_rooms = list(dict.fromkeys(i for r in rooms for i in r.smartlockIds))
        locks = list(dict.fromkeys([*of_rooms, *smartlock_ids]))
        for field, mine in (("roomIds", of_rooms), ("smartlockIds", [i for i in smartlock_ids if i not in of_rooms])):
            keyless = [i for i in mine if i in known and i not in keypad]  # no room opens it with its keypad
            if keyless:
                details.append(
                    {
                        "field": field,
                        "message": f"lock(s) {', '.join(map(str, keyless))} are opened with the Nuki app only (no room "
                        "uses a keypad there): a staff code is a keypad code",
                    }
                )
        if len(locks) > staff.MAX_STAFF_LOCKS:
            field = "roomIds" if len(of_rooms) > staff.MAX_STAFF_LOCKS else "smartlockIds"
            details.append({"field": field, "message": f"a staff code may open at most {staff.MAX_STAFF_LOCKS} locks"})
        if details:
            raise ValidationFailed("the staff code's locks cannot take it", details=details)
        return locks

    # ------------------------------------------------------------------ changes

    def patch(self, staff_code_id: str, change: StaffCodePatch) -> Booking:
        """A new name, schedule, dates, rooms or locks; the codes on the locks follow."""
        code = self._live(staff_code_id)
        assert code.staff is not None
        part: StaffPart = change.applied_to(code.staff)
        rooms = self._rooms(part.roomIds)
        locks = tuple(self._locks(rooms, part.smartlockIds))
        now = self.clock.now()
        staff.window(part, code.createdAt, now)
        pin, avoid = code.pin, set(code.pinHistory)
        for _ in range(25):
            try:
                updated, _ = rewrite(
                    self.store, code.bookingId, partial(staff.change, part=part, locks=locks, pin=pin, now=now), now
                )
            except PinTaken:  # someone else's on a new lock: the staff code takes another PIN
                avoid.add(pin)
                pin = generate_pin(avoid | self.store.known_codes(locks), self.pin_choice)
                continue
            break
        else:  # pragma: no cover
            raise UpstreamUnavailable("could not reserve a PIN on the new locks; try again")
        logger.info("staff code changed", staff_code_id=staff_code_id, fields=sorted(change.model_fields_set))
        self._follow(updated)
        return self.sync.process(updated.bookingId, read_back=False)

    def rotate_pin(self, staff_code_id: str) -> Booking:
        """A new PIN: on every lock beside the old one, which goes once the new one is on them all."""
        code = self._live(staff_code_id)
        return self.bookings.rotate_pin(code.bookingId)

    def retry(self, staff_code_id: str) -> Booking:
        code = self.get(staff_code_id)
        if code.status != BookingStatus.FAILED:
            raise Conflict(
                f"staff code {staff_code_id!r} is {staff.to_api(code)['status']}; only a failed one is retried"
            )
        return self.bookings.retry(code.bookingId)

    def remove(self, staff_code_id: str) -> Booking:
        """The staff code comes off every lock (`removing`, then `removed` once the locks confirm)."""
        code = self.get(staff_code_id)
        if code.status in ENDED:
            return code  # removed, or being removed: the same answer again
        now = self.clock.now()
        end = partial(commands.end, target=BookingStatus.REVOKING, reason="removed", now=now)
        ended, _ = rewrite(self.store, code.bookingId, end, now)
        self.scheduler.delete("expire", code.bookingId)
        watch_stays(self.store, ended, now)
        logger.info("staff code removed", staff_code_id=staff_code_id)
        count("StaffCodeRemoved")
        return self.sync.process(code.bookingId, read_back=False)

    def _live(self, staff_code_id: str) -> Booking:
        code = self.get(staff_code_id)
        if code.status in ENDED:
            status = staff.to_api(code)["status"]
            raise Conflict(f"staff code {staff_code_id!r} is {status}: make a new one under another staffCodeId")
        return code

    def _follow(self, code: Booking) -> None:
        """Its last date's removal (none without one), and its locks hot for the watcher a while."""
        if code.status in ENDED:
            return
        if code.staff is not None and code.staff.allowedUntilDate is None:
            self.scheduler.delete("expire", code.bookingId)
        else:
            self.scheduler.upsert("expire", code.bookingId, code.validUntil)
        now = self.clock.now()
        near = code.model_copy(update={"provisionAt": now, "validUntil": min(code.validUntil, now + HOT_AFTER_CHANGE)})
        watch_stays(self.store, near, now)


__all__ = ["StaffCodes"]
