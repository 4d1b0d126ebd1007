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
from functools import partial
from typing import TYPE_CHECKING

from staykey.core import commands, staff
from staykey.core.models import ENDED, Booking, BookingStatus, Room
from staykey.core.pins import generate_pin
from staykey.core.staff import StaffCodeIn, StaffCodePatch
from staykey.errors import Conflict, NotFound, UpstreamUnavailable, ValidationFailed
from staykey.observability import count, logger
from staykey.services.bookings import watch_for_a_while, watch_stays
from staykey.services.sync import Sync, rewrite
from staykey.store import BookingExists, NameTaken, PinTaken, Store

if TYPE_CHECKING:
    from staykey.adapters.schedules import Scheduler
    from staykey.core.parts import StaffPart
    from staykey.core.timeutil import Clock
    from staykey.services.bookings import Bookings
    from staykey.settings import Settings


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
            code = staff.new_staff_code(part, locks, pin, name_attempt, now, _hash(request, zone))
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
        same = existing.staff is not None and existing.requestHash == _hash(request, existing.staff.timezone)
        if existing.staff is not None and existing.status in ENDED and not same:
            raise Conflict(
                f"staff code {request.staffCodeId!r} was removed and its id is kept with its history; "
                "make the new one under another staffCodeId"
            )
        if not same:
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
        """A new name, schedule, dates, rooms or locks; the codes on the locks follow. The change is
        applied to the staff code as it is when written (another change that came first stays,
        adversarial review helper-32: F1, F2); only a PATCH naming roomIds or smartlockIds takes
        the rooms' current locks (F6)."""
        code = self._live(staff_code_id)
        assert code.staff is not None
        part: StaffPart = change.applied_to(code.staff)  # its 422s before anything is written
        moving = bool({"roomIds", "smartlockIds"} & change.model_fields_set)
        locks = tuple(self._locks(self._rooms(part.roomIds), part.smartlockIds)) if moving else None
        now = self.clock.now()
        staff.window(part, code.createdAt, now)
        # Another PIN (for the code, or its rotation's new one) only where a new lock of the change
        # has the one it has as someone else's code (F4: the rotation's PIN too).
        pin: str | None = None
        rotation_pin: str | None = None
        avoid = set(code.pinHistory)
        for _ in range(25):
            step = partial(staff.change, change=change, locks=locks, pin=pin, rotation_pin=rotation_pin, now=now)
            try:
                updated, _ = rewrite(self.store, code.bookingId, step, now)
            except PinTaken as taken:
                fresh = self.store.get_booking(code.bookingId) or code
                on = locks or tuple(lk.smartlockId for lk in fresh.locks if lk.desired == "present")
                known = self.store.known_codes(on) | set(fresh.pinHistory)
                theirs = {
                    c.pin
                    for i in taken.smartlock_ids
                    for c in self.store.codes_on_lock(i)
                    if c.booking_id != code.bookingId
                }
                if fresh.rotation is not None and (rotation_pin or fresh.rotation.pin) in theirs:
                    avoid.add(rotation_pin or fresh.rotation.pin)
                    rotation_pin = generate_pin(avoid | known, self.pin_choice)
                else:
                    avoid.add(pin or fresh.pin)
                    pin = generate_pin(avoid | known, self.pin_choice)
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
        """Its last date's removal (none without one), and its locks hot for the watcher a while;
        from the staff code as stored now (two changes at once: the last one written decides)."""
        code = self.store.get_booking(code.bookingId) or code
        if code.status in ENDED:
            return
        if code.staff is not None and code.staff.allowedUntilDate is None:
            self.scheduler.delete("expire", code.bookingId)
        else:
            self.scheduler.upsert("expire", code.bookingId, code.validUntil)
        watch_for_a_while(self.store, code, self.clock.now())


def _hash(request: StaffCodeIn, zone: str) -> str:
    """A request's hash with its zone as resolved: the room's zone named or left out is the same
    request (adversarial review helper-32, F7)."""
    return request.model_copy(update={"timezone": request.timezone or zone}).request_hash()


__all__ = ["StaffCodes"]
