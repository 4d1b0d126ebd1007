"""Backup codes (issue 16): when a booking's code cannot reach a lock in time (its bridge offline),
the guest gets one of that lock's backup codes instead of standing at the door.

A room with `backupCodes` on keeps a pool of BackupPoolSize codes (or its `backupPoolSize`) on each
of its keypad locks: valid every day, from when they went on until they are removed, known to no
one. Each is a booking to the sync engine (`core.staff.new_pool_code`, id `pool~<lock>.<serial>`,
its PIN claimed on its lock): confirmed on the lock, repaired by the reconciler, in no list. A pool
is filled only while its lock is online (a code sent to an offline lock would only fail).

`run` (every readiness run) fills the pools, gives a backup code to every booking whose code is not
confirmed on a lock BACKUP_DEADLINE_HOURS before its stay (or since), and removes the backup codes
of bookings that ended. `assign` is that step for one booking, also on an operator's request. A
backup code is given by one conditional write on the pool code (`usedBy`): never to two bookings.
The booking then holds it (`Booking.backups`): the lock counts as open to the guest, the guest's
email says which door takes which code, the shop gets `booking.backup_assigned` and reads the code
in the booking. After the stay (checkout, cancellation, expiry) the used codes are removed and the
pool is filled again once the lock is online.

A lock is open to the guest with its code confirmed or a backup code that holds (`Booking.covered`),
and the same rule says which locks need one: a backup code given before that stopped holding
(changed in Nuki Web and not yet written back, Nuki or the lock out of reach) is replaced by
another ready one of the pool, and ended (simulator seed 111).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from staykey.core import commands, staff
from staykey.core.models import ENDED, BackupCode, Booking, BookingStatus, LockStatus, Room
from staykey.core.pins import generate_pin
from staykey.errors import ConcurrentModification, Conflict, NotFound
from staykey.observability import count, logger
from staykey.services.bookings import watch_for_a_while, watch_stays
from staykey.store import BookingExists, NameTaken, PinTaken, Store

if TYPE_CHECKING:
    from datetime import datetime

    from staykey.core.timeutil import Clock
    from staykey.services.sync import Sync
    from staykey.settings import Settings

BACKUP_REASON_DEADLINE = "the code could not be confirmed on this lock in time"
BACKUP_REASON_OPERATOR = "an operator asked for it"


POOLS_INDEXED = "BACKUP_INDEXES"  # CONFIG: the indexes of rooms with backup codes and of pooled locks are complete


class BackupPools:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        clock: Clock,
        sync: Sync,
        pin_choice: Callable[[str], str] = secrets.choice,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.sync = sync
        self.pin_choice = pin_choice

    # ------------------------------------------------------------------ the pools

    def sizes(self, rooms: list[Room]) -> dict[int, int]:
        """Each keypad lock of a room with backup codes on, and the size of its pool (the largest
        any of its rooms asks for)."""
        out: dict[int, int] = {}
        for room in rooms:
            if not room.backupCodes:
                continue
            size = room.backupPoolSize or self.settings.backup_pool_size
            for lock_id in room.smartlockIds:
                if room.access_of(lock_id) == "keypad":
                    out[lock_id] = max(out.get(lock_id, 0), size)
        return out

    def fill(self, smartlock_id: int, size: int) -> list[str]:
        """Up to `size` unused backup codes on the lock, if it is online; the ids of those made."""
        if self.store.get_lock_meta(smartlock_id).get("online") is False:
            return []
        codes = self.store.pool_codes(smartlock_id)
        unused = [c for c in codes if c.status not in ENDED and c.staff is not None and c.staff.usedBy is None]
        made: list[str] = []
        serial = max((_serial(c) for c in codes), default=0)
        for _ in range(max(0, size - len(unused))):
            serial = self._make(smartlock_id, serial + 1)
            if serial:
                made.append(staff.POOL_PREFIX + f"{smartlock_id}.{serial:04d}")
        return made

    def _make(self, smartlock_id: int, serial: int) -> int:
        """A new backup code on the lock (its PIN claimed there in the same transaction); its
        serial (a later one when the serial was taken meanwhile), 0 if none could be made."""
        now = self.clock.now()
        self.store.mark_pooled(smartlock_id, now)  # before the code: a lock with codes is always among them
        avoid = self.store.known_codes([smartlock_id])
        attempt = 0
        for _ in range(25):
            pin = generate_pin(avoid, self.pin_choice)
            code = staff.new_pool_code(smartlock_id, serial, pin, attempt, now)
            try:
                self.store.create_booking(code, None, now, [commands.claim(smartlock_id, "keypad", pin)])
            except PinTaken:
                avoid.add(pin)
                continue
            except NameTaken:
                attempt += 1
                continue
            except BookingExists:
                serial += 1
                continue
            logger.info("backup code made", smartlock_id=smartlock_id, serial=serial)
            count("BackupCodeMade")
            watch_for_a_while(self.store, code, now)
            self.sync.process(code.bookingId, read_back=False)
            return serial
        return 0

    # ------------------------------------------------------------------ giving one to a booking

    def assign(self, booking_id: str, smartlock_ids: list[int] | None = None, reason: str = "") -> Booking:
        """Give the booking a backup code for each of `smartlock_ids` (None: each of its keypad
        locks whose code is not confirmed) it has none that holds for (one that stopped holding is
        replaced). 409 when a lock has no backup code ready (no pool, or every one used or not on
        the lock yet), and for a booking that is scheduled (its code goes on at its lead time) or ended."""
        booking = self.store.get_booking(booking_id)
        if booking is None or booking.staff is not None:
            raise NotFound(f"booking {booking_id!r} does not exist")
        if booking.status in ENDED or booking.status == BookingStatus.SCHEDULED:
            why = "it needs no backup code" if booking.status in ENDED else "its code goes on at its lead time"
            raise Conflict(f"booking {booking_id!r} is {booking.status.value}: {why}")
        if _far(booking, self.settings.backup_deadline_hours, self.clock.now()):
            raise Conflict(
                f"booking {booking_id!r} begins more than {self.settings.backup_deadline_hours:g} hours from now: a "
                "backup code opens without end, so one is given only from then on"
            )
        present = [lk for lk in booking.locks if lk.desired == "present" and lk.access == "keypad"]
        if smartlock_ids is None:
            wanted = [lk.smartlockId for lk in present if not (lk.status == LockStatus.ACTIVE and lk.op is None)]
        else:
            unknown = [i for i in smartlock_ids if i not in {lk.smartlockId for lk in present}]
            if unknown:
                raise Conflict(f"lock(s) {unknown} are not keypad locks of booking {booking_id!r}")
            wanted = smartlock_ids
        missing = []
        for lock_id in (i for i in wanted if not booking.covered(i)):
            code = self._take(lock_id, booking_id, {g.poolId for g in booking.backups})
            if code is None:
                missing.append(lock_id)
                count("BackupCodeUnavailable")
                logger.warning("no backup code ready for a booking", booking_id=booking_id, smartlock_id=lock_id)
                continue
            if not self._give(booking_id, lock_id, code, reason or BACKUP_REASON_OPERATOR):
                _untake(self.store, code.bookingId, booking_id)  # another request gave it one, or it ended
        if missing and smartlock_ids is not None:
            raise Conflict(f"no backup code is ready on lock(s) {missing} (no pool there, or none left on the lock)")
        return self.sync.process(booking_id, read_back=False)

    def _take(self, smartlock_id: int, booking_id: str, recorded: set[str] | None = None) -> Booking | None:
        """A backup code of the lock, confirmed there and unused, now the booking's (one conditional
        write: no other booking can take it too); or one it already took and did not record (an
        earlier try that died before the booking recorded it); None if there is none."""
        codes = self.store.pool_codes(smartlock_id)
        for code in codes:
            mine = code.staff is not None and code.staff.usedBy == booking_id
            if mine and code.status not in ENDED and code.bookingId not in (recorded or set()):
                return code
        for code in codes:
            part = code.staff
            ready = code.status == BookingStatus.ACTIVE and all(lk.op is None for lk in code.locks)
            if part is None or part.usedBy is not None or not ready:
                continue
            fresh = self.store.get_booking(code.bookingId)
            if fresh is None or fresh.staff is None or fresh.staff.usedBy is not None or fresh.version != code.version:
                continue
            if fresh.status != BookingStatus.ACTIVE:
                continue  # being removed (a smaller pool) since the list was read (helper-34, F3)
            fresh.staff.usedBy, fresh.staff.usedAt = booking_id, self.clock.now()
            try:
                return self.store.save_booking(fresh)
            except ConcurrentModification:
                continue  # taken (or changed) meanwhile: the next one
        return None

    def _give(self, booking_id: str, smartlock_id: int, code: Booking, reason: str) -> bool:
        """The booking records the code, in place of one for the lock that stopped holding (which
        then ends); False when it did not (it has one for the lock that holds: a request at the same
        time gave it, or it was written back meanwhile; or it ended meanwhile: helper-34, F1, F9)."""
        from staykey.services.sync import rewrite

        now = self.clock.now()
        given: list[bool] = []
        replaced: list[str] = []

        def give(b: Booking) -> None:
            del given[:], replaced[:]
            if b.status in ENDED or b.status == BookingStatus.SCHEDULED:
                return
            held = next((g for g in b.backups if g.smartlockId == smartlock_id), None)
            if held is not None and (held.ok or held.poolId == code.bookingId):
                given.append(held.poolId == code.bookingId)
                return
            replaced.extend([held.poolId] if held is not None else [])
            b.backups = [g for g in b.backups if g is not held]
            b.backups.append(
                BackupCode(smartlockId=smartlock_id, poolId=code.bookingId, pin=code.pin, assignedAt=now, reason=reason)
            )
            b.updatedAt = now
            given.append(True)

        rewrite(self.store, booking_id, give, now)
        if given and given[0]:
            logger.info("backup code given", booking_id=booking_id, smartlock_id=smartlock_id, reason=reason)
            count("BackupCodeAssigned")
            for pool_id in replaced:  # its PIN was the guest's: it goes, never to another booking
                self._end_code(pool_id, f"given to {booking_id}, replaced: it no longer held")
        return bool(given and given[0])

    def mirror(self, code: Booking) -> None:
        """After a backup code's round: the booking it was given to learns whether the code is on
        its lock as it should be (told means true: a lock counts as covered only while it is;
        helper-34, F2), and settles its status again."""
        from staykey.services.sync import rewrite

        part = code.staff
        if part is None or part.kind != "backup" or not part.usedBy:
            return
        ok = code.status == BookingStatus.ACTIVE and all(lk.op is None for lk in code.locks)
        user = self.store.get_booking(part.usedBy)
        given = next((g for g in (user.backups if user else []) if g.poolId == code.bookingId), None)
        if user is None or given is None or given.ok == ok or user.status in ENDED:
            return

        def follow(b: Booking) -> None:
            for g in b.backups:
                if g.poolId == code.bookingId:
                    g.ok = ok

        rewrite(self.store, user.bookingId, follow, self.clock.now())
        self.sync.process(user.bookingId, read_back=False)

    # ------------------------------------------------------------------ after the stay

    def release(self, booking: Booking) -> None:
        """The backup codes of a booking that ended, of locks it left (a move to another room), or
        given for a stay that moved away (a backup code opens without end: one given for days ahead
        would open during another guest's stay; helper-34, F4) come off their locks, and every other
        code of the pool that names the booking (two requests at once: only one was recorded; F1).
        The pool is filled again once the lock is online."""
        from staykey.services.sync import rewrite

        now = self.clock.now()
        ended = booking.status in ENDED
        far = _far(booking, self.settings.backup_deadline_hours, now + timedelta(minutes=15))
        gone = [g for g in booking.backups if ended or far or not booking.uses_lock(g.smartlockId)]
        kept = {g.poolId for g in booking.backups} - {g.poolId for g in gone}
        for lock_id in sorted({lk.smartlockId for lk in booking.locks} | {g.smartlockId for g in booking.backups}):
            for code in self.store.pool_codes(lock_id):
                used = code.staff.usedBy if code.staff else None
                if used == booking.bookingId and code.bookingId not in kept and code.status not in ENDED:
                    self._end_code(code.bookingId, f"given to {booking.bookingId}, which no longer needs it")
        if gone and not ended:

            def drop(b: Booking) -> None:
                b.backups = [g for g in b.backups if g.poolId not in {x.poolId for x in gone}]

            rewrite(self.store, booking.bookingId, drop, now)

    def _end_code(self, pool_id: str, why: str, unused_only: bool = False) -> None:
        """Remove a backup code from its lock (`unused_only`: unless it was given meanwhile)."""
        from staykey.services.sync import rewrite

        code = self.store.get_booking(pool_id)
        if code is None or code.status in ENDED:
            return
        now = self.clock.now()

        def end(b: Booking) -> commands.Claims | None:
            if unused_only and b.staff is not None and b.staff.usedBy:
                return None  # given to a booking since the pool was read (helper-34, F3)
            return commands.end(b, BookingStatus.REVOKING, why, now)

        ended, _ = rewrite(self.store, pool_id, end, now)
        if ended.status not in ENDED:
            return
        watch_stays(self.store, ended, now)
        logger.info("backup code removed", booking_id=pool_id)
        self.sync.process(pool_id, read_back=False)

    # ------------------------------------------------------------------ the periodic run

    def run(self) -> dict[str, int]:
        """Fill every pool, give backup codes where a deadline passed, remove the used codes of
        bookings that ended: what it did, counted."""
        out = {"made": 0, "given": 0, "removed": 0}
        index_once(self.store, self.clock)
        listed = self.store.backup_rooms()  # read once, and only the rooms with backup codes on
        sizes = self.sizes(listed)
        now = self.clock.now()
        deadline = timedelta(hours=self.settings.backup_deadline_hours)
        # The locks with a pool, or that had one (`Store.mark_pooled`): not every lock of the
        # account, which was a query per lock every run (10,000 at 10,000 locks). A lock with a pool
        # wanted is marked whether or not a code is made now (a full pool makes none).
        pooled = set(self.store.pooled_locks())
        for lock_id in sorted(set(sizes) - pooled):
            self.store.mark_pooled(lock_id, now)
        for lock_id in sorted(set(sizes) | pooled):
            codes = self.store.pool_codes(lock_id)
            if lock_id not in sizes and all(c.status in ENDED for c in codes):
                # Nothing left to remove and no pool wanted: forgotten, unless marked in the last
                # hour (a code being made now, not in what was just read)
                self.store.unmark_pooled(lock_id, now - timedelta(hours=1))
                continue
            used = [c for c in codes if c.staff and c.staff.usedBy and c.status not in ENDED]
            users = self.store.get_bookings(sorted({str(c.staff.usedBy) for c in used if c.staff}))
            for code in used:
                assert code.staff is not None
                b = users.get(str(code.staff.usedBy))
                recorded = b is not None and any(g.poolId == code.bookingId for g in b.backups)
                if b is None or b.status in ENDED:
                    self._end_code(code.bookingId, f"given to {code.staff.usedBy}, whose stay ended")
                    out["removed"] += 1
                elif recorded:
                    self.release(b)  # a lock it left, or a stay moved away
                elif _stale(code, now):  # taken and never recorded (a request that died between)
                    self._end_code(code.bookingId, f"taken for {code.staff.usedBy}, never given")
                    out["removed"] += 1
            unused = [c for c in codes if c.status not in ENDED and c.staff is not None and c.staff.usedBy is None]
            for extra in unused[sizes.get(lock_id, 0) :]:  # backup codes off, or fewer: the newest go
                self._end_code(extra.bookingId, "the pool is smaller now", unused_only=True)
                out["removed"] += 1
            out["made"] += len(self.fill(lock_id, sizes.get(lock_id, 0)))
        rooms = _opted_in(listed)
        for b in (b for b in _arriving(self.store, self.clock, now, deadline, set(sizes)) if b.roomId in rooms):
            before = {g.poolId for g in b.backups}
            try:
                after = self.assign(b.bookingId, None, BACKUP_REASON_DEADLINE)
            except (Conflict, NotFound):
                continue
            out["given"] += len({g.poolId for g in after.backups} - before)
        return out


def index_once(store: Store, clock: Clock) -> None:
    """Once per table: the rooms with backup codes on and the locks with pools, as stored before
    their indexes (`Store.backup_rooms`, `Store.pooled_locks`) were kept: every room and every
    registered lock read once, so that no pool made before is forgotten with its codes."""
    if store.get_config(POOLS_INDEXED) is not None:
        return
    now = clock.now()
    for room in store.list_rooms():
        if room.backupCodes:
            store.reindex_room(room)  # written again as read: into the index
    for lock_id in store.registered_locks():
        if store.pool_codes(lock_id):
            store.mark_pooled(lock_id, now)
    store.put_config(POOLS_INDEXED, at=now.isoformat())


def _opted_in(rooms: list[Room]) -> set[str]:
    """The rooms with backup codes on: only their guests are given one (the pool of a lock a room
    without them shares is for the rooms that asked)."""
    return {room.roomId for room in rooms if room.backupCodes}


def _untake(store: Store, pool_id: str, booking_id: str) -> None:
    """A code taken for a booking that did not record it goes back to the pool."""
    for _ in range(3):
        fresh = store.get_booking(pool_id)
        if fresh is None or fresh.staff is None or fresh.staff.usedBy != booking_id:
            return
        fresh.staff.usedBy, fresh.staff.usedAt = None, None
        try:
            store.save_booking(fresh)
            return
        except ConcurrentModification:
            continue


def _arriving(store: Store, clock: Clock, now: datetime, deadline: timedelta, pooled: set[int]) -> list[Booking]:
    """Bookings within `deadline` of their stay (or in it) with a code not confirmed on a lock
    that has a pool and no backup code there that holds: each is given one there."""
    from staykey.services.search import BookingFilter, BookingSearch

    search = BookingSearch(store, clock)
    found = search.all(BookingFilter(start=now, end=now + deadline), guests=False)
    out = []
    for b in found:
        if b.status not in (BookingStatus.PROVISIONING, BookingStatus.FAILED):
            continue
        if any(
            lk.smartlockId in pooled
            and lk.desired == "present"
            and lk.access == "keypad"
            and not (lk.status == LockStatus.ACTIVE and lk.op is None)
            and not b.covered(lk.smartlockId)
            for lk in b.locks
        ):
            out.append(b)
    return out


def _far(b: Booking, hours: float, now: datetime) -> bool:
    """Whether the stay begins more than the deadline's hours after `now`."""
    return b.validFrom - timedelta(hours=hours) > now


def _serial(code: Booking) -> int:
    try:
        return int(code.bookingId.rsplit(".", 1)[1])
    except (IndexError, ValueError):
        return 0


def _stale(code: Booking, now: datetime) -> bool:
    """A code given to a booking that no longer records it (it died between the two writes) for
    more than an hour: nobody was told it; it goes."""
    used = code.staff.usedAt if code.staff else None
    return used is not None and now - used > timedelta(hours=1)


__all__ = ["BackupPools"]
