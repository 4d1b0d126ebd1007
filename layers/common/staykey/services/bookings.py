"""The shop's (and the operator's) commands on a booking: create, change, check out, cancel, the
two schedules' triggers, retry, email again. Each reads what it needs, applies one pure change
(`core.commands`) in one transaction with its code claims, keeps the schedules and the guest data
in step, and hands the booking to the sync engine (`services.sync.Sync.process`), which puts the
codes on the locks, confirms them, tells the guest and takes the codes off again.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

from staykey.core import commands
from staykey.core.looks import removal_waits
from staykey.core.models import ENDED, Booking, BookingIn, BookingPatch, BookingStatus, Guest, Room, window_for
from staykey.core.pins import generate_pin
from staykey.core.text import email_key
from staykey.core.timeutil import Clock
from staykey.errors import Conflict, NotFound, UpstreamUnavailable
from staykey.observability import count, logger
from staykey.services.sync import Sync, rewrite
from staykey.store import BookingExists, NameTaken, PinTaken, Store

if TYPE_CHECKING:
    from staykey.adapters.schedules import Scheduler
    from staykey.settings import Settings


# Running stays (hot locks) from which a stay's removal takes its full share of EXPIRY_SPREAD_MINUTES.
EXPIRY_SPREAD_FULL_AT = 500


class Bookings:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        scheduler: Scheduler,
        clock: Clock,
        sync: Sync,
        pin_choice: Callable[[str], str] = secrets.choice,
    ) -> None:
        """`pin_choice` draws a PIN's digits (a cryptographic source; a simulator passes a seeded one)."""
        self.settings = settings
        self.store = store
        self.scheduler = scheduler
        self.clock = clock
        self.sync = sync
        self.pin_choice = pin_choice
        # After an end or a change: backup codes of locks it no longer uses go (services.backup).
        self.changed: Callable[[Booking], None] = lambda b: None

    def get(self, booking_id: str) -> Booking:
        booking = self.store.get_booking(booking_id, self.clock.now())
        if booking is None:
            raise NotFound(f"booking {booking_id!r} does not exist")
        return booking

    def _room(self, room_id: str) -> Room:
        room = self.store.get_room(room_id)
        if room is None:
            raise NotFound(f"room {room_id!r} does not exist; create it with PUT /rooms/{room_id}")
        return room

    # ------------------------------------------------------------------ create

    def create(self, request: BookingIn) -> tuple[Booking, bool]:
        """A new booking with its PIN reserved; (booking, False) for a replay of the same request."""
        existing = self.store.get_booking(request.bookingId, self.clock.now())
        if existing is not None:
            return self._replay(existing, request), False
        room = self._room(request.roomId)
        window = window_for(room, request.checkIn, request.checkOut)
        commands.check_window(*window, room, self.clock.now())
        now = self.clock.now()
        guest = Guest(**request.guest.model_dump())
        commands.check_guest(room.roomId, [commands.lock_state(room, i) for i in room.smartlockIds], guest)
        avoid = self.store.known_codes(room.smartlockIds)
        name_attempt = 0
        for _ in range(25):
            pin = generate_pin(avoid, self.pin_choice)
            lead = lead_for(self.settings, request.bookingId)
            booking = commands.new_booking(request, room, window, pin, name_attempt, lead, now)
            try:
                self.store.create_booking(
                    booking,
                    guest,
                    guest_expiry(self.settings, booking.validUntil),
                    commands.claims_for(room, pin),
                )
            except PinTaken:
                avoid.add(pin)
                continue
            except NameTaken:
                name_attempt += 1
                continue
            except BookingExists:
                existing = self.store.get_booking(request.bookingId, self.clock.now())
                assert existing is not None
                return self._replay(existing, request), False
            break
        else:  # pragma: no cover - needs 25 collisions in a row
            raise UpstreamUnavailable("could not reserve a PIN; try again")
        booking.guest = guest
        logger.info(
            "booking created",
            booking_id=booking.bookingId,
            status=booking.status.value,
            locks=[lock.smartlockId for lock in booking.locks],
        )
        count("BookingCreated")
        self._ensure_schedules(booking)
        watch_stays(self.store, booking, self.clock.now())
        if booking.status == BookingStatus.PROVISIONING:
            booking = self.sync.process(booking.bookingId, read_back=False)
        return booking, True

    def _replay(self, existing: Booking, request: BookingIn) -> Booking:
        if existing.requestHash != request.request_hash():
            raise Conflict(
                f"booking {request.bookingId!r} exists with a different request; "
                "change it with PATCH /bookings/{bookingId} instead"
            )
        # The first attempt may have stopped before its schedules were written: make sure now.
        self._ensure_schedules(existing)
        return existing

    def _ensure_schedules(self, booking: Booking) -> None:
        if booking.status in ENDED:
            return
        self.scheduler.upsert("expire", booking.bookingId, expire_at(self.settings, booking))
        if booking.status == BookingStatus.SCHEDULED:
            self.scheduler.upsert("provision", booking.bookingId, booking.provisionAt)

    def _drop_schedules(self, booking_id: str) -> None:
        for kind in ("provision", "expire"):
            self.scheduler.delete(kind, booking_id)

    # ------------------------------------------------------------------ the schedules

    def start_provisioning(self, booking_id: str) -> Booking:
        """The provisioning schedule fired (validFrom - lead)."""
        booking = self.get(booking_id)
        if booking.status != BookingStatus.SCHEDULED:
            return booking
        if booking.provisionAt - self.clock.now() > timedelta(minutes=1):
            # A stale schedule from before a change moved the window: put the right one back.
            self._ensure_schedules(booking)
            return booking
        now = self.clock.now()
        rewrite(self.store, booking_id, partial(commands.start_provisioning, now=now), now)
        logger.info("provisioning started", booking_id=booking_id)
        return self.sync.process(booking_id, read_back=False)

    def expire(self, booking_id: str) -> Booking:
        """The end schedule fired at validUntil: the booking ends; its removals go at `removal_at`."""
        booking = self.get(booking_id)
        if booking.validUntil - self.clock.now() > timedelta(minutes=1):
            self._ensure_schedules(booking)
            return booking
        wait = removal_at(self.settings, booking, self.store.watch_state().hot)  # hot: stays running
        return self._end(booking_id, BookingStatus.REVOKING, "stay ended", wait)

    # ------------------------------------------------------------------ ending

    def checkout(self, booking_id: str) -> Booking:
        """Early checkout: the PIN stops working now."""
        booking = self.get(booking_id)
        if booking.status == BookingStatus.CANCELLED:
            raise Conflict(f"booking {booking_id!r} is cancelled")
        return self._end(booking_id, BookingStatus.REVOKING, "checked out early")

    def cancel(self, booking_id: str) -> Booking:
        booking = self.get(booking_id)
        if booking.status in (BookingStatus.REVOKED, BookingStatus.REVOKING):
            raise Conflict(f"booking {booking_id!r} is already checked out ({booking.status.value})")
        return self._end(booking_id, BookingStatus.CANCELLED, "cancelled")

    def _end(self, booking_id: str, target: BookingStatus, reason: str, wait: datetime | None = None) -> Booking:
        now = self.clock.now()
        end = partial(commands.end, target=target, reason=reason, now=now, wait=wait)
        ended, _ = rewrite(self.store, booking_id, end, now)
        watch_stays(self.store, ended, self.clock.now())
        self.changed(ended)
        logger.info("booking ending", booking_id=booking_id, reason=reason)
        out = self.sync.process(booking_id, read_back=False)
        # Dropped once the round that plans the removals (and their wake-up) has run: an invocation
        # that dies before it is retried by its schedule (an ended booking ends again as a no-op).
        self._drop_schedules(booking_id)
        return out

    # ------------------------------------------------------------------ changes

    def patch(self, booking_id: str, change: BookingPatch) -> Booking:
        """Change the stay, the room or the guest; the locks and the guest follow.

        Only a PATCH that names `roomId` takes the room's current locks and times: otherwise the
        booking keeps its locks, and a stay point that did not change keeps its instant, even if
        the operator has since changed the room.
        """
        booking = self.get(booking_id)
        commands.changeable(booking)
        moving = change.roomId is not None
        room = self._room(change.roomId or booking.roomId)
        check_in = change.checkIn if change.checkIn is not None else commands.stay_point(booking.checkIn)
        check_out = change.checkOut if change.checkOut is not None else commands.stay_point(booking.checkOut)
        valid_from, valid_until = window_for(room, check_in, check_out)
        if not moving:
            valid_from = booking.validFrom if change.checkIn is None else valid_from
            valid_until = booking.validUntil if change.checkOut is None else valid_until
        if {"checkIn", "checkOut", "roomId"} & change.model_fields_set:
            commands.check_window(valid_from, valid_until, room, self.clock.now())
        now = self.clock.now()
        guest = Guest(**change.guest.model_dump()) if change.guest else booking.guest
        if moving:
            new_locks = tuple(room.smartlockIds)
            access = tuple((i, room.access_of(i)) for i in room.smartlockIds)
            commands.check_guest(room.roomId, [commands.lock_state(room, i) for i in room.smartlockIds], guest)
        else:
            new_locks = tuple(lk.smartlockId for lk in booking.locks if lk.desired == "present")
            access = tuple((lk.smartlockId, lk.access) for lk in booking.locks if lk.desired == "present")
            if change.guest is not None:
                commands.check_guest(booking.roomId, [lk for lk in booking.locks if lk.desired == "present"], guest)
        new_email = (
            change.guest is not None
            and booking.guest is not None
            and email_key(change.guest.email) != email_key(booking.guest.email)
        )
        avoid: set[str] = set()
        rotation_pin = booking.rotation.pin if booking.rotation else None
        pin = booking.pin
        for _ in range(25):
            resolved = commands.Change(
                check_in=check_in,
                check_out=check_out,
                valid_from=valid_from,
                valid_until=valid_until,
                room=room if moving else None,
                locks=new_locks,
                pin=pin,
                lead=lead_for(self.settings, booking_id),
                access=access,
                new_guest_email=new_email,
                rotation_pin=rotation_pin,
            )
            try:
                updated, _ = rewrite(self.store, booking_id, partial(commands.patch, change=resolved, now=now), now)
            except PinTaken as taken:
                # The booking's PIN (or its rotation's new one) is someone else's on a new lock: another.
                if rotation_pin is not None and _taken_by_another(
                    self.store, booking_id, taken.smartlock_ids, rotation_pin
                ):
                    avoid.add(rotation_pin)
                    rotation_pin = generate_pin(
                        avoid | set(booking.pinHistory) | self.store.known_codes(new_locks), self.pin_choice
                    )
                else:
                    avoid.add(pin)
                    pin = generate_pin(avoid | self.store.known_codes(new_locks), self.pin_choice)
                continue
            break
        else:  # pragma: no cover
            raise UpstreamUnavailable("could not reserve a PIN on the new room's locks; try again")
        _guest_data_follows(self.store, booking, updated, guest if change.guest is not None else None, self.settings)
        self._ensure_schedules(updated)
        watch_stays(self.store, updated, self.clock.now())
        self.changed(updated)
        if updated.status != BookingStatus.SCHEDULED:
            self.scheduler.delete("provision", booking_id)
        logger.info("booking changed", booking_id=booking_id, fields=sorted(change.model_fields_set))
        return self.sync.process(booking_id, read_back=False)

    def rotate_pin(self, booking_id: str) -> Booking:
        """Give the booking a new PIN (the shop's or an operator's request): chosen as every PIN is
        (claimed on every lock of the booking in one transaction, never a code known there), put on
        every lock as a second code while the old one keeps working, and only once every lock
        confirmed it does the booking switch: the answer's `pin` changes, the guest is emailed the
        new PIN, then the old codes are removed (`core.decide`). Until then `pinRotation` says how it
        goes. A scheduled booking (nothing on its locks yet) just reserves the new PIN. Asking again
        while a rotation is in progress joins it (its failed locks start afresh). 409 for a booking
        that has ended, naming its status; nothing is written then."""
        booking = self.get(booking_id)
        if booking.status in ENDED:
            raise Conflict(f"booking {booking_id!r} is {booking.status.value}: an ended booking has no PIN to rotate")
        now = self.clock.now()
        locks = [lk.smartlockId for lk in booking.locks if lk.desired == "present" and lk.access == "keypad"]
        avoid = set(booking.pinHistory) | self.store.known_codes(locks)
        for _ in range(25):
            pin = generate_pin(avoid, self.pin_choice)
            try:
                updated, _ = rewrite(self.store, booking_id, partial(commands.rotate, pin=pin, now=now), now)
            except PinTaken:
                avoid.add(pin)
                continue
            break
        else:  # pragma: no cover - needs 25 collisions in a row
            raise UpstreamUnavailable("could not reserve a new PIN; try again")
        if updated.rotation is None:
            logger.info("PIN rotated (nothing on the locks yet)", booking_id=booking_id)
            count("PinRotated")
            return updated
        logger.info("PIN rotation started", booking_id=booking_id, locks=locks)
        count("PinRotationStarted")
        return self.sync.process(booking_id, read_back=False)

    def resend_email(self, booking_id: str) -> Booking:
        """Email the guest again (the shop's or an operator's request) through the same outbox: only
        an active booking's guest is told a PIN (told means true); 409 when there is nothing to send."""
        booking = self.get(booking_id)
        if booking.status != BookingStatus.ACTIVE:
            confirmed = "the guest is emailed only once the code is confirmed on every lock"
            raise Conflict(f"booking {booking_id!r} is {booking.status.value}: {confirmed}")
        if not booking.notifyGuest:
            raise Conflict(f"booking {booking_id!r} has notifyGuest false: the shop tells the guest itself")
        if booking.guest is None:
            raise Conflict(f"booking {booking_id!r} has no guest data any more (removed after the stay)")
        now = self.clock.now()
        rewrite(self.store, booking_id, partial(commands.resend_email, now=now), now)
        logger.info("guest email to be sent again", booking_id=booking_id)
        return self.sync.process(booking_id, read_back=False)

    def retry(self, booking_id: str) -> Booking:
        """Try a failed booking again: its failed locks get a fresh start (as a PATCH gives them)
        and the engine runs, with the full confirmation deadline ahead of it. 409 unless failed."""
        booking = self.get(booking_id)
        if booking.status != BookingStatus.FAILED:
            raise Conflict(f"booking {booking_id!r} is {booking.status.value}; only a failed booking can be retried")
        now = self.clock.now()
        rewrite(self.store, booking_id, partial(commands.retry, now=now), now)
        logger.info("failed booking retried", booking_id=booking_id)
        count("BookingRetried")
        return self.sync.process(booking_id, read_back=False)


def _guest_data_follows(
    store: Store, before: Booking, after: Booking, new_guest: Guest | None, settings: Settings
) -> None:
    """The guest data's expiry follows the stay (a stay moved later must not lose it before it
    ends), and so does the guest's Nuki account user's purge: earlier for a shorter stay too."""
    expiry = partial(guest_expiry, settings)
    moved = after.validUntil != before.validUntil
    guest = new_guest or before.guest
    if guest is not None and (new_guest is not None or moved):
        store.save_guest(after.bookingId, guest, expiry(after.validUntil))
    if moved:  # the former guest's user too (a new email): it holds their data at Nuki
        for account_user_id in after.account.every_user():
            store.restay_account_user(account_user_id, after.bookingId, expiry(after.validUntil))


def guest_expiry(settings: Settings, valid_until: datetime) -> datetime:
    """When a booking's guest data goes: GUEST_DATA_RETENTION_DAYS after its stay."""
    return valid_until + timedelta(days=settings.guest_data_retention_days)


def lead_for(settings: Settings, booking_id: str) -> timedelta:
    """How long before the stay this booking's code goes on: PROVISION_LEAD_HOURS, and a share of
    PROVISION_SPREAD_MINUTES more (fixed per booking), so that the many stays that start at the
    same check-in time do not all write to Nuki in the same second."""
    extra = settings.provision_spread_minutes * spread(booking_id, "provision")
    return timedelta(hours=settings.provision_lead_hours, minutes=extra)


def expire_at(settings: Settings, booking: Booking) -> datetime:
    """When the stay's end schedule fires: at its end (the booking turns `revoking` then)."""
    return booking.validUntil


def removal_at(settings: Settings, booking: Booking, hot: int | None) -> datetime:
    """When a stay's end sends its removals to Nuki: a share of EXPIRY_SPREAD_MINUTES after the end,
    fixed per booking, so that a fleet's check-outs (every stay ends at the same hour) do not all
    reach Nuki in the same second. The code stopped opening the door at the end, by its own window.
    The spread grows with the fleet's running stays (`hot`: locks with a stay near, at the
    watcher's last count), in full from EXPIRY_SPREAD_FULL_AT: a few check-outs need none, and keep
    the whole 15 minutes a code may stay after its end for what Nuki may throw at their removal."""
    scale = min(1.0, (hot or 0) / EXPIRY_SPREAD_FULL_AT)
    minutes = settings.expiry_spread_minutes * scale * spread(booking.bookingId, "expire")
    return booking.validUntil + timedelta(minutes=minutes)


def watch_stays(store: Store, booking: Booking, now: datetime) -> None:
    """The booking's stay on each of its locks, for the watcher (`core.watch`): a lock is hot from
    when the code goes on until a while after it must be off (now, for a lock the booking left
    or a booking that ended; a booking that ended before its code went on leaves nothing). A
    removal waiting its share of EXPIRY_SPREAD_MINUTES ends the stay when it is due: the watcher's
    look after the end comes after it, and heals a removal whose wake-up was lost."""
    try:
        for lock in booking.locks:
            ended = booking.status in ENDED or lock.desired == "absent"
            end = min(now, booking.validUntil) if ended else booking.validUntil
            waits = [s.retryAt for s in booking.slots_on(lock.smartlockId) if s.retryAt and removal_waits(s, now)]
            end = max([end, *waits]) if ended else end
            if ended and booking.provisionAt > now:
                store.unwatch_stays(lock.smartlockId, [booking.bookingId])
            else:
                store.watch_stay(lock.smartlockId, booking.bookingId, min(booking.provisionAt, end), end)
    except Exception as exc:  # the locks are still swept; the booking must not fail for this
        logger.warning("stay not recorded for the watcher", booking_id=booking.bookingId, error=type(exc).__name__)


def watch_for_a_while(store: Store, booking: Booking, now: datetime, hours: float = 1.0) -> None:
    """A code with no stay near (a staff code, a backup code) just written: its locks hot for the
    watcher for `hours` (its writes confirmed, a deletion in Nuki Web noticed soon), not for as long
    as it lasts (the reconciler's sweeps and signals keep it afterwards)."""
    end = min(booking.validUntil, now + timedelta(hours=hours))
    watch_stays(store, booking.model_copy(update={"provisionAt": now, "validUntil": end}), now)


def spread(booking_id: str, what: str) -> float:
    """A fraction in [0, 1), the same for the same booking and purpose, spread evenly over bookings."""
    digest = hashlib.sha256(f"{what}:{booking_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


__all__ = ["Bookings", "expire_at", "lead_for", "removal_at", "spread", "watch_for_a_while", "watch_stays"]


def _taken_by_another(store: Store, booking_id: str, smartlock_ids: list[int], pin: str) -> bool:
    """Whether another booking holds `pin` on one of the locks."""
    return any(
        c.pin == pin and c.booking_id != booking_id for lock_id in smartlock_ids for c in store.codes_on_lock(lock_id)
    )
