"""The booking lifecycle: reserve a PIN, put it on the locks, confirm it, tell the guest, remove it.

Every Nuki write is a request that may not happen. So each lock of a booking carries the write in
flight on it (`op`: create, update or delete) and what we sent; a write counts only once it is
*seen* on the lock, by a read-back (`GET /smartlock/{id}/auth`, on a backoff schedule through the
lifecycle queue) or by a `DEVICE_AUTHS` webhook. All triggers (the shop's API calls, the two
one-time schedules, the queue's follow-ups, webhooks) funnel into the same steps:

1. apply what was observed on the locks (read-back or webhook) to each lock's state;
2. plan the writes that bring each lock to what the booking wants, mark them in flight and save
   (optimistic locking on the booking's `version`, so two triggers never send the same write);
3. send them to Nuki; record refusals (400, 403, 422: the lock fails, with Nuki's reason),
   transient trouble (429, 5xx, 423, timeouts after the client's own retries, and 401, which is
   account-wide and alarmed: try again later), codes that vanished (403/404 on an id we hold:
   create again, or count as removed) and conflicts (409: if the code is ours, an earlier attempt
   arrived; if it is someone else's, choose another PIN);
4. settle the booking's status from its locks, email the guest once it is active, and queue the
   next read-back while anything is unconfirmed.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from staykey.adapters.mail import GuestNotice, Mailer
from staykey.core import onlock
from staykey.core.models import (
    ENDED,
    MAX_STAY_DAYS,
    Booking,
    BookingIn,
    BookingPatch,
    BookingStatus,
    Guest,
    LockState,
    LockStatus,
    Room,
    stay_point_json,
    window_for,
)
from staykey.core.pins import auth_name, generate_pin
from staykey.core.timeutil import Clock, iso_utc
from staykey.errors import Conflict, NotFound, UpstreamUnavailable, ValidationFailed
from staykey.nuki import errors as nuki_errors
from staykey.observability import count, logger
from staykey.store import BookingExists, CodeClaim, NameTaken, PinTaken, Store, TxExtras

if TYPE_CHECKING:
    from staykey.adapters.jobs import JobQueue
    from staykey.adapters.schedules import Scheduler
    from staykey.nuki import NukiClient, SmartlockAuth
    from staykey.settings import Settings

EMAIL_LEASE = timedelta(minutes=2)
# Read-backs of an online lock that may miss a write before we send it again, and how long after
# the write at least: Nuki applies writes seconds later, sometimes tens of seconds (the sandbox's
# 10 s sync delay, `make bench`); three quick read-backs alone (1, 3, 6 s) would re-send a create
# that is merely slow, meet our own pending code (409) and fail the booking.
RESEND_AFTER_CHECKS = 3
RESEND_AFTER = timedelta(minutes=2)
WEBHOOK_CONFIG_MAX_AGE = 60.0  # seconds
# A create we look for after the booking ended (op "find") has not landed once the lock was online and
# read back without it for this long: Nuki applies writes seconds, at most tens of seconds, after it
# accepted them on an online lock.
FIND_ONLINE_WINDOW = timedelta(minutes=10)
# A delete Nuki accepted whose code is still listed this long after: sent again, after a sync. Longer
# than any sync delay seen (tens of seconds), so a delete that is merely slow is not sent twice.
RESEND_DELETE_AFTER = timedelta(seconds=75)
REMOVAL_LOOK_EVERY = 120.0  # seconds, at most, between read-backs of a removal in its first hour
# After a lock refused our code (a full keypad) and we deleted it: the next try, at the earliest.
REFUSED_RETRY_SECONDS = 900
# Nuki refused a write with 403 (no subscription, no permission): tried again this often.
FORBIDDEN_RETRY_SECONDS = 3600
EMAIL_MAX_ATTEMPTS = 8
# SES errors that no retry will cure.
EMAIL_PERMANENT = {"MessageRejected", "MailFromDomainNotVerifiedException", "ConfigurationSetDoesNotExistException"}


def _refused(exc: BaseException) -> bool:
    """Nuki refused this request for good: a bad request, or no right to this lock (403).

    A 401 is account-wide (a rotated or revoked token): every booking would fail for good if we
    took it as final, so it is retried like an outage, with its own metric and alarm.
    """
    if isinstance(exc, nuki_errors.NukiAuthError):
        return exc.status != 401
    return isinstance(exc, nuki_errors.NukiInvalidRequest | nuki_errors.NukiRefused)


def _gone(exc: BaseException) -> bool:
    """The auth we addressed by its id does not exist (Nuki answers 403 or 404 for unknown ids)."""
    return isinstance(exc, nuki_errors.NukiNotFound) or (
        isinstance(exc, nuki_errors.NukiAuthError) and exc.status == 403
    )


@dataclass
class Plan:
    """Writes decided in step 2, sent in step 3."""

    creates: list[int] = field(default_factory=list)
    updates: list[tuple[int, str]] = field(default_factory=list)
    deletes: list[tuple[int, str]] = field(default_factory=list)
    resend_deletes: list[tuple[int, str]] = field(default_factory=list)
    stale: list[tuple[int, str]] = field(default_factory=list)
    pin: str = ""
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    email: GuestNotice | None = None
    email_fingerprint: str = ""
    next_check_delay: float | None = None
    releases: list[CodeClaim] = field(default_factory=list)
    metrics: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    logs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]

    def writes(self) -> bool:
        return bool(self.creates or self.updates or self.deletes or self.resend_deletes or self.stale)


@dataclass
class Outcome:
    """What Nuki answered to the writes of one plan, per lock."""

    failed: dict[int, tuple[str, int | None]] = field(default_factory=dict)  # lock -> (reason, HTTP status)
    transient: dict[int, str] = field(default_factory=dict)
    foreign_conflict: dict[int, str | None] = field(default_factory=dict)  # lock -> the other auth's id
    unsent: list[int] = field(default_factory=list)  # refused as a whole: send again
    vanished: list[int] = field(default_factory=list)

    def any(self) -> bool:
        return bool(self.failed or self.transient or self.foreign_conflict or self.unsent or self.vanished)


@dataclass
class Observation:
    """What we saw of our code on one lock: the full auth list (read-back) or one webhook event."""

    auths: list[SmartlockAuth]
    complete: bool  # True: the lock's whole list, so "not in it" means absent
    deleted_ids: set[str] = field(default_factory=set)
    online: bool | None = None  # known only when we asked (while looking for a late create)
    # When it was true: the read-back's time, or Nuki's updateDate of a webhook's auth.
    stamp: datetime | None = None


class Lifecycle:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        nuki: Callable[[], NukiClient],
        scheduler: Scheduler,
        jobs: JobQueue,
        mailer: Mailer,
        clock: Clock,
        pin_choice: Callable[[str], str] = secrets.choice,
    ) -> None:
        """`pin_choice` draws a PIN's digits (a cryptographic source; a simulator passes a seeded one)."""
        self.settings = settings
        self.store = store
        self._nuki = nuki
        self.scheduler = scheduler
        self.jobs = jobs
        self.mailer = mailer
        self.clock = clock
        self.pin_choice = pin_choice
        self._webhook_seen: tuple[float, bool] | None = None

    @property
    def nuki(self) -> NukiClient:
        return self._nuki()

    # ------------------------------------------------------------------ shop API entry points

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

    def _check_window(
        self, check_in: Any, check_out: Any, valid_from: datetime, valid_until: datetime, room: Room
    ) -> None:
        now = self.clock.now()
        start = valid_from + timedelta(minutes=room.accessBeforeMinutes)
        end = valid_until - timedelta(minutes=room.accessAfterMinutes)
        details = []
        if end <= start:
            details.append(
                {
                    "field": "checkOut",
                    "message": f"must be after checkIn ({iso_utc(end)} is not after {iso_utc(start)})",
                }
            )
        elif end <= now:
            details.append({"field": "checkOut", "message": f"is in the past ({iso_utc(end)})"})
        elif end - start > timedelta(days=MAX_STAY_DAYS):
            details.append({"field": "checkOut", "message": f"a stay may last at most {MAX_STAY_DAYS} days"})
        elif start - now > timedelta(days=3 * 366):
            details.append({"field": "checkIn", "message": "is more than three years away"})
        if details:
            raise ValidationFailed("the stay's dates do not make a valid window", details=details)

    def create(self, request: BookingIn) -> tuple[Booking, bool]:
        """A new booking with its PIN reserved; (booking, False) for a replay of the same request."""
        existing = self.store.get_booking(request.bookingId, self.clock.now())
        if existing is not None:
            return self._replay(existing, request), False
        room = self._room(request.roomId)
        valid_from, valid_until = window_for(room, request.checkIn, request.checkOut)
        self._check_window(request.checkIn, request.checkOut, valid_from, valid_until, room)
        now = self.clock.now()
        provision_at = valid_from - timedelta(hours=self.settings.provision_lead_hours)
        status = BookingStatus.PROVISIONING if provision_at <= now else BookingStatus.SCHEDULED
        guest = Guest(**request.guest.model_dump())
        avoid = self.store.known_codes(room.smartlockIds)
        name_attempt = 0
        for _ in range(25):
            pin = generate_pin(avoid, self.pin_choice)
            booking = Booking(
                bookingId=request.bookingId,
                roomId=room.roomId,
                status=status,
                pin=pin,
                pinHistory=[pin],
                authName=auth_name(request.bookingId, name_attempt),
                validFrom=valid_from,
                validUntil=valid_until,
                checkIn=stay_point_json(request.checkIn),
                checkOut=stay_point_json(request.checkOut),
                timezone=room.timezone,
                notifyGuest=request.notifyGuest,
                locks=[LockState(smartlockId=lock_id) for lock_id in room.smartlockIds],
                createdAt=now,
                updatedAt=now,
                provisionAt=provision_at,
                requestHash=request.request_hash(),
            )
            try:
                self.store.create_booking(
                    booking,
                    guest,
                    self._guest_expiry(valid_until),
                    [CodeClaim(lock_id, pin) for lock_id in room.smartlockIds],
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
        if booking.status == BookingStatus.PROVISIONING:
            booking = self.process(booking.bookingId, read_back=False)
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

    def _guest_expiry(self, valid_until: datetime) -> datetime:
        return valid_until + timedelta(days=self.settings.guest_data_retention_days)

    def _ensure_schedules(self, booking: Booking) -> None:
        if booking.status in ENDED:
            return
        self.scheduler.upsert("expire", booking.bookingId, booking.validUntil)
        if booking.status == BookingStatus.SCHEDULED:
            self.scheduler.upsert("provision", booking.bookingId, booking.provisionAt)

    def _drop_schedules(self, booking_id: str) -> None:
        for kind in ("provision", "expire"):
            self.scheduler.delete(kind, booking_id)

    def start_provisioning(self, booking_id: str) -> Booking:
        """The provisioning schedule fired (validFrom - lead)."""
        booking = self.get(booking_id)
        if booking.status != BookingStatus.SCHEDULED:
            return booking
        if booking.provisionAt - self.clock.now() > timedelta(minutes=1):
            # A stale schedule from before a change moved the window: put the right one back.
            self._ensure_schedules(booking)
            return booking

        def mutate(b: Booking) -> None:
            if b.status == BookingStatus.SCHEDULED:
                b.status = BookingStatus.PROVISIONING
                b.updatedAt = self.clock.now()

        self.store.update_booking(booking_id, mutate, now=self.clock.now())
        logger.info("provisioning started", booking_id=booking_id)
        return self.process(booking_id, read_back=False)

    def expire(self, booking_id: str) -> Booking:
        """The removal schedule fired at validUntil."""
        booking = self.get(booking_id)
        if booking.validUntil - self.clock.now() > timedelta(minutes=1):
            self._ensure_schedules(booking)
            return booking
        return self._end(booking_id, BookingStatus.REVOKING, "stay ended")

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

    def resend_email(self, booking_id: str) -> Booking:
        """Send the guest's email again (an operator's or the shop's request): the same notice
        through the same outbox as the first one, so it is sent once SES takes it and retried
        with backoff if SES does not. Only an active booking's guest is told a PIN (told means
        true); 409 when there is nothing to send."""
        booking = self.get(booking_id)
        if booking.status != BookingStatus.ACTIVE:
            raise Conflict(
                f"booking {booking_id!r} is {booking.status.value}: the guest is emailed only once the code "
                "is confirmed on every lock"
            )
        if not booking.notifyGuest:
            raise Conflict(f"booking {booking_id!r} has notifyGuest false: the shop tells the guest itself")
        if booking.guest is None:
            raise Conflict(f"booking {booking_id!r} has no guest data any more (removed after the stay)")
        now = self.clock.now()

        def mutate(b: Booking) -> None:
            if b.emailPending and b.emailLeaseUntil is not None and b.emailLeaseUntil > now:
                raise Conflict(f"an email to the guest of {booking_id!r} is being sent right now")
            # Forget what the guest was told: the engine's settle step sends the notice again.
            b.emailFingerprint, b.emailError, b.emailPending, b.emailLeaseUntil = None, None, None, None
            b.updatedAt = now

        self.store.update_booking(booking_id, mutate, now=now)
        logger.info("guest email to be sent again", booking_id=booking_id)
        return self.process(booking_id, read_back=False)

    def retry(self, booking_id: str) -> Booking:
        """Try a failed booking again: its failed locks get a fresh start (as a PATCH gives them)
        and the engine runs, with the full confirmation deadline ahead of it. 409 unless failed."""
        booking = self.get(booking_id)
        if booking.status != BookingStatus.FAILED:
            raise Conflict(f"booking {booking_id!r} is {booking.status.value}; only a failed booking can be retried")
        now = self.clock.now()

        def mutate(b: Booking) -> None:
            if b.status != BookingStatus.FAILED:
                raise Conflict(f"booking {booking_id!r} is {b.status.value}; only a failed booking can be retried")
            for lock in b.locks:
                if lock.desired == "present" and lock.status == LockStatus.FAILED:
                    _reset(lock)
            b.status, b.statusReason, b.pinChoices, b.updatedAt = BookingStatus.PROVISIONING, None, 1, now

        self.store.update_booking(booking_id, mutate, now=now)
        logger.info("failed booking retried", booking_id=booking_id)
        count("BookingRetried")
        return self.process(booking_id, read_back=False)

    def _end(self, booking_id: str, target: BookingStatus, reason: str) -> Booking:
        now = self.clock.now()

        def mutate(b: Booking) -> TxExtras | None:
            if b.status in ENDED:
                return None
            extras = TxExtras()
            b.status = target
            b.statusReason = reason
            b.updatedAt = now
            for lock in b.locks:
                lock.desired = "absent"
                if lock.status == LockStatus.FAILED and lock.op is None:
                    _reset(lock)
                if lock.sentPin is None and lock.op is None:
                    # Nothing was ever sent to this lock: nothing to remove.
                    lock.status = LockStatus.REMOVED
                    extras.releases.append(CodeClaim(lock.smartlockId, b.pin))
            if target == BookingStatus.REVOKING and all(lk.status == LockStatus.REMOVED for lk in b.locks):
                b.status = BookingStatus.REVOKED
            return extras

        self.store.update_booking(booking_id, mutate, now=now)
        self._drop_schedules(booking_id)
        logger.info("booking ending", booking_id=booking_id, reason=reason)
        return self.process(booking_id, read_back=False)

    def patch(self, booking_id: str, change: BookingPatch) -> Booking:
        """Change the stay, the room or the guest; the locks and the guest follow.

        Only a PATCH that names `roomId` takes the room's current locks and times: otherwise the
        booking keeps its locks, and a stay point that did not change keeps its instant, even if
        the operator has since changed the room.
        """
        booking = self.get(booking_id)
        _changeable(booking)
        moving = change.roomId is not None
        room = self._room(change.roomId or booking.roomId)
        check_in = change.checkIn if change.checkIn is not None else _stay_point(booking.checkIn)
        check_out = change.checkOut if change.checkOut is not None else _stay_point(booking.checkOut)
        valid_from, valid_until = window_for(room, check_in, check_out)
        if not moving:
            valid_from = booking.validFrom if change.checkIn is None else valid_from
            valid_until = booking.validUntil if change.checkOut is None else valid_until
        if {"checkIn", "checkOut", "roomId"} & change.model_fields_set:
            self._check_window(check_in, check_out, valid_from, valid_until, room)
        now = self.clock.now()
        guest = Guest(**change.guest.model_dump()) if change.guest else booking.guest
        if moving:
            new_locks = list(room.smartlockIds)
        else:
            new_locks = [lk.smartlockId for lk in booking.locks if lk.desired == "present"]
        avoid: set[str] = set()
        for _ in range(25):
            pin = booking.pin
            if avoid:
                pin = generate_pin(avoid | self.store.known_codes(new_locks), self.pin_choice)

            def mutate(b: Booking, pin: str = pin) -> TxExtras:
                _changeable(b)  # an expiry or cancellation may have won the race
                extras = TxExtras()
                old_pin = b.pin
                present = {lk.smartlockId for lk in b.locks if lk.desired == "present"}
                added = [lock_id for lock_id in new_locks if lock_id not in present]
                if moving:
                    b.roomId, b.timezone = room.roomId, room.timezone
                b.checkIn = stay_point_json(check_in)
                b.checkOut = stay_point_json(check_out)
                b.validFrom, b.validUntil = valid_from, valid_until
                b.provisionAt = valid_from - timedelta(hours=self.settings.provision_lead_hours)
                b.updatedAt = now
                if pin != old_pin:
                    extras.claims += [CodeClaim(lock_id, pin) for lock_id in new_locks]
                    extras.releases += [CodeClaim(lk.smartlockId, old_pin) for lk in b.locks if lk.heldPin != old_pin]
                    b.pin = pin
                    b.pinHistory.append(pin)
                else:
                    extras.claims += [CodeClaim(lock_id, pin) for lock_id in added]
                for lock in b.locks:
                    if lock.smartlockId in new_locks:
                        lock.desired = "present"
                        if lock.status == LockStatus.FAILED:
                            _reset(lock)
                        if lock.op == "find":
                            # Back on a lock we were leaving: the create we sent is wanted again.
                            lock.op = "create"
                    else:
                        lock.desired = "absent"
                        if lock.sentPin is None and lock.op is None:
                            lock.status = LockStatus.REMOVED
                            extras.releases.append(CodeClaim(lock.smartlockId, old_pin))
                b.locks += [LockState(smartlockId=lock_id) for lock_id in added if b.lock(lock_id) is None]
                if b.status == BookingStatus.FAILED:
                    b.status, b.statusReason, b.pinChoices = BookingStatus.PROVISIONING, None, 1
                if b.status == BookingStatus.SCHEDULED and b.provisionAt <= now:
                    b.status = BookingStatus.PROVISIONING
                return extras

            try:
                updated = self.store.update_booking(booking_id, mutate, now=now)
            except PinTaken:
                avoid.add(pin)
                continue
            break
        else:  # pragma: no cover
            raise UpstreamUnavailable("could not reserve a PIN on the new room's locks; try again")
        # The guest data's expiry follows the stay: a stay moved later must not lose it before it ends.
        if guest is not None and (change.guest is not None or updated.validUntil != booking.validUntil):
            self.store.save_guest(booking_id, guest, self._guest_expiry(updated.validUntil))
        self._ensure_schedules(updated)
        if updated.status != BookingStatus.SCHEDULED:
            self.scheduler.delete("provision", booking_id)
        logger.info("booking changed", booking_id=booking_id, fields=sorted(change.model_fields_set))
        return self.process(booking_id, read_back=False)

    # ------------------------------------------------------------------ follow-ups and webhooks

    def run_job(self, job: dict[str, Any]) -> Booking | None:
        """A delayed follow-up from the lifecycle queue: read back and carry on."""
        booking_id = str(job["bookingId"])
        booking = self.store.get_booking(booking_id, self.clock.now())
        if booking is None:
            return None
        if int(job.get("seq", -1)) != booking.checkSeq:
            return booking  # a newer follow-up replaced this one
        return self.process(booking_id, read_back=True)

    def observe_auth(self, smartlock_id: int, auth: SmartlockAuth, deleted: bool) -> Booking | None:
        """A DEVICE_AUTHS webhook about one of our codes: only a claim about the lock.

        A deletion of the code we recorded is final (Nuki never reuses an id). Any other body counts
        as a look at the lock only when it says everything the rule needs and is news
        (`staykey.core.onlock.usable`: newer than what we saw, not from before the write it would
        confirm); otherwise, replayed, duplicated, late or lean (Nuki's own example has no
        `enabled`), it is a reason to read the lock back, never to move the booking.
        None: not a code of ours.
        """
        booking_id = self.store.booking_id_for_auth(smartlock_id, auth.id) or self.store.booking_id_for_name(auth.name)
        booking = self.store.get_booking(booking_id, self.clock.now()) if booking_id else None
        if booking is None:
            return None
        lock = booking.lock(smartlock_id)
        if lock is None:
            return booking  # not a lock this booking uses (any more): the reconciler looks after it
        if deleted:
            if auth.id != lock.nukiId:
                return booking  # not the code we track there (a duplicate we removed, or history)
            observation = Observation(auths=[], complete=False, deleted_ids={auth.id})
            return self.process(booking.bookingId, read_back=False, observed={smartlock_id: observation})
        if onlock.usable(auth, lock.seenAt, lock.opSentAt if lock.op else None):
            observation = Observation(auths=[auth], complete=False, stamp=auth.update_date)
            return self.process(booking.bookingId, read_back=False, observed={smartlock_id: observation})
        return self.process(booking.bookingId, read_back=False, read_locks={smartlock_id})

    # ------------------------------------------------------------------ the engine

    def process(
        self,
        booking_id: str,
        *,
        read_back: bool,
        observed: dict[int, Observation] | None = None,
        read_locks: Collection[int] = (),
    ) -> Booking:
        """Steps 1-4 of the module docstring; re-runs after choosing a new PIN.

        `read_back`: read every lock with a write in flight; `read_locks`: read these too.
        """
        # Only a read-back needs the booking before the first update (which reads it anyway).
        booking = self.get(booking_id) if read_back or read_locks else None
        extra = set(read_locks)
        for _ in range(self.settings.max_pin_choices + 2):
            observations = dict(observed or {})
            if read_back or extra:
                assert booking is not None
                observations.update(self._read_back(booking, extra, everything=read_back))
            plan = Plan()

            def mutate(
                b: Booking,
                observations: dict[int, Observation] = observations,
                plan: Plan = plan,
                asked: set[int] = extra,
            ) -> TxExtras:
                plan.reset()
                for lock in b.locks:
                    # Asked to look at: until a complete look lands (below), the follow-ups look again.
                    lock.recheck = lock.recheck or lock.smartlockId in asked
                return self._observe_and_plan(b, observations, plan)

            booking = self.store.update_booking(booking_id, mutate, now=self.clock.now())
            self._emit(plan)
            # The follow-up goes out before the writes: should this invocation die while talking
            # to Nuki, the follow-up still finds the writes marked in flight and carries on.
            self._queue_next(booking, plan)
            outcome = self._execute(booking, plan) if plan.writes() else Outcome()
            if outcome.any():
                plan2 = Plan()

                def apply(b: Booking, outcome: Outcome = outcome, plan2: Plan = plan2) -> TxExtras:
                    plan2.reset()
                    self._apply_outcome(b, outcome, plan2)
                    return self._observe_and_plan(b, {}, plan2, send=False)

                booking = self.store.update_booking(booking_id, apply, now=self.clock.now())
                self._emit(plan2)
                self._queue_next(booking, plan2)
                plan.email = plan.email or plan2.email
                plan.logs += plan2.logs
            if outcome.vanished and not outcome.foreign_conflict:
                observed, read_back, extra = None, False, set()
                continue  # our code disappeared while we changed it: create it again now
            if outcome.foreign_conflict:
                booking = self._choose_again(booking, outcome.foreign_conflict)
                observed, read_back, extra = None, False, set()
                if booking.status != BookingStatus.FAILED:
                    continue
            self._after(booking, plan)
            return booking
        assert booking is not None
        return booking

    def _read_back(
        self, booking: Booking, extra: Collection[int] = (), everything: bool = True
    ) -> dict[int, Observation]:
        """`GET /smartlock/{id}/auth` of the locks with a write in flight (`everything`) and of `extra`."""
        observations = {}
        for lock in booking.locks:
            if not ((everything and (lock.op is not None or lock.recheck)) or lock.smartlockId in extra):
                continue
            stamp = self.clock.now()
            try:
                auths = self.nuki.list_auths(lock.smartlockId, types=(13,))
            except nuki_errors.NukiError as exc:
                logger.warning(
                    "read-back failed",
                    booking_id=booking.bookingId,
                    smartlock_id=lock.smartlockId,
                    error=type(exc).__name__,
                )
                continue
            online = None
            if lock.op == "find" or (lock.op in ("create", "update") and lock.opChecks >= 2):
                with contextlib.suppress(nuki_errors.NukiError):
                    online = self.nuki.get_smartlock(lock.smartlockId).online
            observations[lock.smartlockId] = Observation(auths=auths, complete=True, online=online, stamp=stamp)
        return observations

    def _observe_and_plan(
        self, b: Booking, observations: dict[int, Observation], plan: Plan, send: bool = True
    ) -> TxExtras:
        now = self.clock.now()
        extras = TxExtras()
        for lock in b.locks:
            if lock.smartlockId in observations:
                self._apply_observation(b, lock, observations[lock.smartlockId], now, plan)
        if send:
            self._plan_writes(b, now, plan)
        self._check_deadlines(b, now, plan)
        self._settle(b, now, plan)
        # Locks the booking moved away from are dropped once their code is gone.
        b.locks = [
            lk
            for lk in b.locks
            if not (
                lk.desired == "absent"
                and lk.status == LockStatus.REMOVED
                and b.status
                in (
                    BookingStatus.PROVISIONING,
                    BookingStatus.ACTIVE,
                    BookingStatus.FAILED,
                    BookingStatus.SCHEDULED,
                )
            )
        ]
        self._plan_next_check(b, now, plan)
        extras.releases += plan.releases
        b.updatedAt = now if (plan.writes() or observations) else b.updatedAt
        return extras

    def _ours(self, b: Booking, lock: LockState, obs: Observation) -> tuple[SmartlockAuth | None, list[SmartlockAuth]]:
        """Our code on the lock in an observation (the id we recorded, whatever its name or code now;
        else our name with the PIN we sent), and other codes of ours with earlier PINs (duplicates)."""
        match = next((a for a in obs.auths if lock.nukiId and a.id == lock.nukiId), None)
        mine = [a for a in obs.auths if a.name == b.authName]
        if match is None:
            want = lock.sentPin or b.pin
            match = next((a for a in mine if onlock.code_of(a) == want), None)
        stale = [a for a in mine if a is not match and onlock.code_of(a) in b.pinHistory]
        return match, stale

    def _apply_observation(self, b: Booking, lock: LockState, obs: Observation, now: datetime, plan: Plan) -> None:
        """One look at one lock, through the one rule of `staykey.core.onlock`: every path comes here."""
        if obs.stamp is not None and lock.seenAt is not None and obs.stamp < lock.seenAt:
            return  # older than what we saw already (a reconciler's list read before a webhook we applied)
        if obs.stamp is not None:
            lock.seenAt = obs.stamp
        if obs.complete:
            lock.recheck = False
        match, stale = self._ours(b, lock, obs)
        if obs.complete:
            plan.stale += [(lock.smartlockId, a.id) for a in stale]
        if lock.nukiId and lock.nukiId in obs.deleted_ids:
            match = None
            gone = True
        else:
            gone = obs.complete and match is None
        if match is not None:
            self._seen_code(b, lock, match, obs, now, plan)
        elif gone:
            self._seen_gone(b, lock, obs, now, plan)

    def _seen_code(
        self, b: Booking, lock: LockState, match: SmartlockAuth, obs: Observation, now: datetime, plan: Plan
    ) -> None:
        """Our code is on the lock (`match`); what that means for the write in flight and the booking."""
        if lock.nukiId != match.id or lock.authId is None:
            lock.nukiId, lock.authId = match.id, match.auth_id
            self.store.index_auth(
                lock.smartlockId,
                b.bookingId,
                match.id,
                match.auth_id,
                b.validUntil + timedelta(days=self.settings.activity_retention_days),
            )
        if lock.op == "find":
            lock.op, lock.opChecks = None, 0  # found what may have landed: the plan step deletes it now
            return
        if lock.op == "delete":
            lock.opChecks += 1
            sent = lock.opSentAt or now
            if lock.opChecks >= self.settings.removal_resend_after_checks and now - sent >= RESEND_DELETE_AFTER:
                # Nuki took the delete and the code is still there ("ghost entries"): sync the lock
                # and delete again, as often as it takes (each try is a minute or more apart).
                plan.resend_deletes.append((lock.smartlockId, match.id))
                lock.opSentAt = now
            return
        if b.code_unwanted(lock):
            if lock.status == LockStatus.REMOVED and lock.op is None:
                # Our code showed up after we took it off (a late write landing): remove it again.
                lock.status = LockStatus.PENDING
                plan.logs.append(("our code reappeared on a lock; removing it", {"smartlock_id": lock.smartlockId}))
            return  # the plan step turns whatever is in flight into a removal
        if not b.wants_code(lock):
            return  # on the lock before its provisioning time: adopted when it is sent
        if lock.op in ("create", "update"):
            if not onlock.differences(match, lock.sentPin, lock.sentFrom, lock.sentUntil, b.authName):
                self._confirmed(b, lock, plan)
            elif match.error:
                self._refused_code(b, lock, match, now, plan)
            else:
                lock.opChecks += 1
                if obs.online and self._unseen_long(lock, now):
                    lock.op, lock.sentFrom = None, None  # the update never arrived: send it again
            return
        # No write in flight: does the lock hold what the booking wants?
        if not onlock.differences(match, b.pin, b.validFrom, b.validUntil, b.authName):
            if lock.status != LockStatus.ACTIVE:
                # A late confirmation (a lock back online after we gave up) or a code to adopt.
                lock.sentPin, lock.sentFrom, lock.sentUntil = b.pin, b.validFrom, b.validUntil
                self._confirmed(b, lock, plan)
        elif match.error:
            self._refused_code(b, lock, match, now, plan)
        else:
            # On the lock but not as the booking says (changed in Nuki Web, an old write landing
            # late): not what we told anyone. Write it again, with the full restriction set.
            if lock.status == LockStatus.ACTIVE:
                lock.status = LockStatus.PENDING
                plan.metrics.append(("CodeChanged", {}))
                plan.logs.append(
                    ("our code was changed on a lock; writing it again", {"smartlock_id": lock.smartlockId})
                )
            lock.sentFrom, lock.retryAt = None, None

    def _refused_code(self, b: Booking, lock: LockState, match: SmartlockAuth, now: datetime, plan: Plan) -> None:
        """The lock stored our code with an error (a full keypad): it never opens the door. The
        booking fails and says why; the refused code is deleted, and the code goes on again later."""
        if not lock.refused:
            plan.metrics.append(("LockFull" if onlock.lock_full(match) else "CodeRefused", {}))
            if lock.status != LockStatus.FAILED:
                plan.metrics.append(("ProvisioningFailed", {}))
            plan.logs.append(("the lock refused our code", {"smartlock_id": lock.smartlockId}))
        lock.refused = True
        lock.status, lock.op, lock.retryAt = LockStatus.FAILED, None, None
        lock.error = f"the lock refused the code: {match.error}"

    def _seen_gone(self, b: Booking, lock: LockState, obs: Observation, now: datetime, plan: Plan) -> None:
        """Nothing of ours on the lock (a complete list without it, or its deletion)."""
        if lock.op == "find":
            # Only a lock that is online tells us the create will not land after all.
            if obs.online is not False:
                lock.opChecks += 1
            if obs.online:
                lock.findSince = lock.findSince or now
            elif obs.online is False:
                lock.findSince = None
            return
        if lock.op == "delete" or (b.code_unwanted(lock) and lock.nukiId is not None):
            if b.wants_code(lock):
                # The refused code we deleted to make room: the code goes on again after a pause.
                lock.nukiId, lock.authId, lock.op, lock.refused, lock.opChecks = None, None, None, False, 0
                lock.retryAt = now + timedelta(seconds=REFUSED_RETRY_SECONDS)
                return
            self._removed(b, lock, plan)
            return
        if b.code_unwanted(lock):
            return
        if lock.op in ("create", "update"):
            lock.opChecks += 1
            if lock.op == "create" and obs.online and self._unseen_long(lock, now):
                # An online lock would have shown it by now: the create never reached Nuki
                # (a lost request, a dead invocation). Send it again.
                lock.op = None
                plan.logs.append(
                    ("create not seen on an online lock; sending it again", {"smartlock_id": lock.smartlockId})
                )
            if lock.op == "update" and obs.complete and lock.nukiId:
                # Our code vanished from the lock while we were changing it: create it again.
                lock.nukiId, lock.authId, lock.op = None, None, None
            return
        if lock.nukiId is not None and b.wants_code(lock):
            # Someone deleted our code; put it back (the plan step creates it again).
            logger.warning("our code disappeared from a lock", booking_id=b.bookingId, smartlock_id=lock.smartlockId)
            plan.metrics.append(("CodeDisappeared", {}))
            lock.nukiId, lock.authId, lock.heldPin, lock.refused = None, None, None, False
            if lock.status == LockStatus.ACTIVE:
                lock.status = LockStatus.PENDING

    @staticmethod
    def _unseen_long(lock: LockState, now: datetime) -> bool:
        """The write in flight on `lock` was missed by enough read-backs, long enough, to be lost."""
        sent_long_ago = lock.opSentAt is None or now - lock.opSentAt >= RESEND_AFTER
        return lock.opChecks >= RESEND_AFTER_CHECKS and sent_long_ago

    @staticmethod
    def _find_over(lock: LockState, now: datetime) -> bool:
        """A create we looked for will not land: the lock has been online, and read back without it,
        for FIND_ONLINE_WINDOW since we sent it. (An offline lock keeps a write pending for days.)"""
        if lock.findSince is None or lock.opChecks < RESEND_AFTER_CHECKS:
            return False
        since = max(lock.findSince, lock.opSentAt or lock.findSince)
        return now - since >= FIND_ONLINE_WINDOW

    def _confirmed(self, b: Booking, lock: LockState, plan: Plan) -> None:
        if lock.heldPin and lock.heldPin != lock.sentPin:
            plan.releases.append(CodeClaim(lock.smartlockId, lock.heldPin))
        lock.heldPin = lock.sentPin
        lock.status, lock.op, lock.error, lock.opChecks, lock.retryAt = LockStatus.ACTIVE, None, None, 0, None
        lock.firstSentAt, lock.retries, lock.refused, lock.findSince = None, 0, False, None
        plan.metrics.append(("PinConfirmed", {}))
        plan.logs.append(("code confirmed on lock", {"smartlock_id": lock.smartlockId}))

    def _removed(self, b: Booking, lock: LockState, plan: Plan) -> None:
        pins = {lock.heldPin, lock.sentPin, b.pin} - {None}
        if not b.code_unwanted(lock):
            pins.discard(b.pin)  # moved away and back: the code goes on again under the same claim
        for pin in pins:
            plan.releases.append(CodeClaim(lock.smartlockId, str(pin)))
        lock.status, lock.op, lock.error, lock.opChecks, lock.retryAt = (
            LockStatus.REMOVED,
            None,
            None,
            0,
            None,
        )
        lock.nukiId, lock.authId, lock.heldPin, lock.sentPin, lock.firstSentAt = None, None, None, None, None
        lock.retries, lock.refused, lock.findSince = 0, False, None
        plan.metrics.append(("CodeRemoved", {}))
        plan.logs.append(("code removed from lock", {"smartlock_id": lock.smartlockId}))

    def _plan_writes(self, b: Booking, now: datetime, plan: Plan) -> None:
        plan.pin, plan.valid_from, plan.valid_until = b.pin, b.validFrom, b.validUntil
        for lock in b.locks:
            if lock.op in ("create", "update") and b.code_unwanted(lock):
                # The booking ended while a write was in flight: find what landed and remove it.
                lock.op, lock.opSentAt, lock.opChecks, lock.findSince = "find", now, 0, None
                if lock.nukiId:
                    lock.op = None
            if lock.op is not None:
                continue
            if lock.retryAt is not None:
                if lock.retryAt > now:
                    continue
                lock.retryAt = None  # due: it is acted on now, or nothing waits on it any more
            if b.wants_code(lock):
                if lock.stopped:
                    continue  # refused for good (a bad request): a change of the booking retries it
                if lock.refused and lock.nukiId:
                    # Make room for another try: the refused code goes first.
                    plan.deletes.append((lock.smartlockId, lock.nukiId))
                    lock.op, lock.opSentAt, lock.opChecks = "delete", now, 0
                elif lock.nukiId is None:
                    if self._waits_for_capacity(lock, now, plan):
                        continue
                    self._send(lock, b, now, plan)
                elif lock.sentPin != b.pin or lock.sentFrom != b.validFrom or lock.sentUntil != b.validUntil:
                    self._send(lock, b, now, plan)
            elif b.code_unwanted(lock) and lock.status != LockStatus.REMOVED:
                if lock.nukiId:
                    plan.deletes.append((lock.smartlockId, lock.nukiId))
                    lock.op, lock.opSentAt, lock.opChecks = "delete", now, 0
                elif lock.sentPin is None:
                    self._removed(b, lock, plan)
                else:
                    # A create may still land; look for it on the next read-backs.
                    lock.op, lock.opSentAt, lock.opChecks, lock.findSince = "find", now, 0, None

    def _send(self, lock: LockState, b: Booking, now: datetime, plan: Plan) -> None:
        """Mark a create (no code of ours known on the lock) or an update as in flight."""
        if lock.nukiId is None:
            plan.creates.append(lock.smartlockId)
            self._mark(lock, "create", b, now)
        elif lock.sentPin != b.pin or lock.sentFrom != b.validFrom or lock.sentUntil != b.validUntil:
            plan.updates.append((lock.smartlockId, lock.nukiId))
            self._mark(lock, "update", b, now)

    @staticmethod
    def _mark(lock: LockState, op: str, b: Booking, now: datetime) -> None:
        lock.op = op  # type: ignore[assignment]
        lock.opSentAt, lock.opChecks = now, 0
        if lock.status != LockStatus.FAILED:
            lock.status = LockStatus.PENDING  # a failed lock stays failed (and says so) until confirmed
        lock.firstSentAt = lock.firstSentAt or now
        lock.sentPin, lock.sentFrom, lock.sentUntil = b.pin, b.validFrom, b.validUntil

    def _deadline(self, b: Booking, lock: LockState) -> datetime | None:
        """When an unconfirmed code fails the booking: validFrom, but never sooner than
        CONFIRM_MIN_SECONDS after it was first sent. None: nothing unconfirmed, or failed already."""
        unconfirmed = b.wants_code(lock) and (
            lock.op in ("create", "update")
            or (lock.op is None and lock.retryAt is not None and lock.status == LockStatus.PENDING)
        )
        if not unconfirmed or lock.status == LockStatus.FAILED or lock.firstSentAt is None:
            return None
        return max(b.validFrom, lock.firstSentAt + timedelta(seconds=self.settings.confirm_min_seconds))

    def _check_deadlines(self, b: Booking, now: datetime, plan: Plan) -> None:
        """A code not confirmed by its deadline fails the booking (it says why, a metric and an alarm
        follow); the write goes on all the same: read-backs and retries continue, and a confirmation
        that comes later makes the booking active after all."""
        for lock in b.locks:
            deadline = self._deadline(b, lock)
            if deadline is not None and now >= deadline:
                if lock.op:
                    lock.error = (
                        f"Nuki accepted the code but the lock did not confirm it by {iso_utc(deadline)}; "
                        "the lock is probably offline"
                    )
                elif lock.error and lock.error.startswith("waiting: "):
                    lock.error = (
                        f"the code could not go on by {iso_utc(deadline)}: {lock.error.removeprefix('waiting: ')}"
                    )
                else:
                    lock.error = f"Nuki could not be reached until {iso_utc(deadline)}: {lock.error}"
                lock.status = LockStatus.FAILED
                plan.metrics.append(("ProvisioningFailed", {}))
            if lock.op == "find" and self._find_over(lock, now):
                # We never saw the code arrive on a lock that was online long enough: nothing to delete.
                # The reconciler deletes it should it land after all.
                self._removed(b, lock, plan)

    def _settle(self, b: Booking, now: datetime, plan: Plan) -> None:
        present = [lk for lk in b.locks if lk.desired == "present"]
        before = b.status
        if b.status in (BookingStatus.PROVISIONING, BookingStatus.FAILED, BookingStatus.ACTIVE):
            if present and all(lk.status == LockStatus.ACTIVE and lk.op is None for lk in present):
                b.status, b.statusReason = BookingStatus.ACTIVE, None
            elif any(lk.status == LockStatus.FAILED for lk in present):
                b.status = BookingStatus.FAILED
                b.statusReason = "; ".join(
                    f"lock {lk.smartlockId}: {lk.error or 'not confirmed yet; trying again'}"
                    for lk in present
                    if lk.error or lk.status == LockStatus.FAILED
                )
            else:
                b.status = BookingStatus.PROVISIONING
        elif b.status == BookingStatus.REVOKING and all(lk.status == LockStatus.REMOVED for lk in b.locks):
            b.status = BookingStatus.REVOKED
        if b.status != before:
            plan.logs.append((f"booking {b.status.value}", {"previous": before.value}))
            plan.metrics.append((f"Booking{b.status.value.capitalize()}", {}))
        if b.status == BookingStatus.ACTIVE and b.notifyGuest and b.guest is not None:
            # An outbox with a lease: the invocation that takes the lease sends; the email counts as
            # sent only once SES took it. Should the sender die, the lease runs out and a follow-up
            # sends again (a guest may rarely get it twice; never not at all).
            # The booking item outlives the guest data (GUEST_DATA_RETENTION_DAYS): the address
            # enters its fingerprint only as a one-way tag, enough to notice a new address.
            address = hashlib.sha256(f"{b.bookingId}:{b.guest.email.lower()}".encode()).hexdigest()[:12]
            fingerprint = f"{b.notice_fingerprint()}:{address}"
            if b.emailFingerprint == f"{b.notice_fingerprint()}:{b.guest.email}":
                b.emailFingerprint = fingerprint  # written before the tag: same notice, no second email
            lease_free = b.emailLeaseUntil is None or b.emailLeaseUntil <= now
            if fingerprint != b.emailFingerprint and lease_free:
                if b.emailPending != fingerprint:
                    b.emailAttempts = 0
                b.emailPending, b.emailLeaseUntil = fingerprint, now + EMAIL_LEASE
                plan.email = self._notice(b, updated=b.emailFingerprint is not None)
                plan.email_fingerprint = fingerprint

    def _notice(self, b: Booking, updated: bool) -> GuestNotice:
        assert b.guest is not None
        room = self.store.get_room(b.roomId)
        return GuestNotice(
            to=b.guest.email,
            guest_name=b.guest.name,
            locale=b.guest.locale,
            room_name=room.name if room else b.roomId,
            pin=b.pin,
            valid_from=b.validFrom,
            valid_until=b.validUntil,
            timezone=b.timezone,
            booking_id=b.bookingId,
            updated=updated,
        )

    def _plan_next_check(self, b: Booking, now: datetime, plan: Plan) -> None:
        """Queue the next look: a read-back while a write is in flight (on the confirmation backoff,
        counted from when that write was sent, however many other triggers came meanwhile), or a
        wake-up when the next retry or deadline falls due. Never sooner than a second, and never for
        a time that passed: a due retry is acted on by the plan step, not waited for."""
        gaps = [self._next_look(lk, now) for lk in b.locks if lk.op is not None]
        gaps += [REMOVAL_LOOK_EVERY for lk in b.locks if lk.recheck and lk.op is None]
        wake = [
            lk.retryAt for lk in b.locks if lk.op is None and lk.retryAt is not None and lk.status != LockStatus.REMOVED
        ]
        if b.emailPending and b.emailLeaseUntil is not None:
            wake.append(b.emailLeaseUntil)
        if not gaps and not wake:
            return
        # A deadline that falls before the next look is a look of its own: the booking fails, and
        # says why, when the deadline passes, not at whatever read-back comes after it.
        wake += [d for lk in b.locks if (d := self._deadline(b, lk)) is not None and d > now]
        gaps += [(w - now).total_seconds() for w in wake]
        b.checkSeq += 1
        plan.next_check_delay = max(1.0, min(gaps))

    def _next_look(self, lock: LockState, now: datetime) -> float:
        """Seconds to the next read-back of a write in flight: the first point of the backoff (its
        gaps added up from the send) that is still ahead. A removal is looked at every two minutes at
        least, for its first hour: a code must be gone within minutes of the end."""
        delays = self._backoff()
        elapsed = max(0.0, (now - (lock.opSentAt or now)).total_seconds())
        point = 0.0
        for gap in delays:
            point += gap
            if point > elapsed + 0.5:
                break
        else:
            last = delays[-1]
            point += last * (1 + (elapsed - point) // last)
        ahead = point - elapsed
        if lock.op in ("delete", "find") and elapsed < 3600:
            ahead = min(ahead, REMOVAL_LOOK_EVERY)
        return ahead

    def _backoff(self) -> list[float]:
        # Whether the webhook is registered, read at most once a minute per container: it changes
        # when an operator runs tools.register_webhook, and a stale answer only shifts read-backs.
        now = self.clock.now().timestamp()
        if self._webhook_seen is None or abs(now - self._webhook_seen[0]) > WEBHOOK_CONFIG_MAX_AGE:
            registered = False
            with contextlib.suppress(Exception):
                registered = self.store.get_config("WEBHOOK") is not None
            self._webhook_seen = (now, registered)
        registered = self._webhook_seen[1]
        s = self.settings
        return s.confirm_backoff_with_webhooks_seconds if registered else s.confirm_backoff_seconds

    # ------------------------------------------------------------------ Nuki writes

    def _execute(self, b: Booking, plan: Plan) -> Outcome:
        """Send the plan's writes. Every failure lands in the outcome: nothing escapes, so a
        booking never stays marked "in flight" for a write that was never sent."""
        out = Outcome()
        if plan.creates:
            self._create(b, plan, out)
        for lock_id, nuki_id in plan.updates:
            self._update(b, plan, lock_id, nuki_id, out)
        self._delete(b, plan.deletes, out)
        for lock_id, nuki_id in plan.resend_deletes:
            with contextlib.suppress(Exception):
                self.nuki.sync(lock_id)
            self._delete(b, [(lock_id, nuki_id)], out)
        for lock_id, nuki_id in plan.stale:
            # An earlier attempt of ours that landed late under our name: remove the duplicate.
            with contextlib.suppress(Exception):
                self.nuki.delete_auth(lock_id, nuki_id)
                logger.info("duplicate of our code removed", booking_id=b.bookingId, smartlock_id=lock_id)
        return out

    def _create(self, b: Booking, plan: Plan, out: Outcome) -> None:
        from staykey.nuki import KeypadCodeCreate

        assert plan.valid_from is not None
        assert plan.valid_until is not None
        try:
            body = KeypadCodeCreate(
                name=b.authName, code=int(plan.pin), allowed_from=plan.valid_from, allowed_until=plan.valid_until
            )
        except ValueError:  # pydantic's ValidationError is one; its message never holds the PIN
            out.failed.update(dict.fromkeys(plan.creates, ("the stay is too short for Nuki (under a second)", None)))
            return
        try:
            self.nuki.create_keypad_code(plan.creates, body)
            logger.info("code sent to locks", booking_id=b.bookingId, smartlock_ids=plan.creates)
        except nuki_errors.NukiCodeConflict as exc:
            self._classify_conflict(b, plan.creates, plan.pin, out, exc)
        except Exception as exc:
            self._failure(exc, plan.creates, out)

    def _update(self, b: Booking, plan: Plan, lock_id: int, nuki_id: str, out: Outcome) -> None:
        from staykey.nuki import SmartlockAuthUpdate

        assert plan.valid_from is not None
        assert plan.valid_until is not None
        # Always the full restriction set: Nuki clears what an update leaves out (forum 40095).
        body = SmartlockAuthUpdate(
            name=b.authName,
            code=int(plan.pin),
            allowed_from=plan.valid_from,
            allowed_until=plan.valid_until,
            allowed_week_days=127,
            allowed_from_time=0,
            allowed_until_time=0,
            enabled=True,
            remote_allowed=False,
        )
        try:
            self.nuki.update_auth(lock_id, nuki_id, body)
            logger.info("code update sent", booking_id=b.bookingId, smartlock_id=lock_id)
        except nuki_errors.NukiCodeConflict as exc:
            self._classify_conflict(b, [lock_id], plan.pin, out, exc)
        except Exception as exc:
            if _gone(exc):
                out.vanished.append(lock_id)  # someone deleted our code: create it again
            else:
                self._failure(exc, [lock_id], out)

    def _delete(self, b: Booking, targets: Sequence[tuple[int, str]], out: Outcome) -> None:
        if not targets:
            return
        try:
            if len(targets) == 1:
                self.nuki.delete_auth(targets[0][0], targets[0][1])
            else:
                self.nuki.delete_auths([nuki_id for _, nuki_id in targets])
            logger.info("code removal sent", booking_id=b.bookingId, smartlock_ids=[t[0] for t in targets])
        except Exception as exc:
            if not _gone(exc):
                self._failure(exc, [lock_id for lock_id, _ in targets], out)
            elif len(targets) > 1:
                # A bulk delete is refused as a whole when one id is unknown: delete one by one.
                for target in targets:
                    self._delete(b, [target], out)
            # else: the code is gone already; the read-back confirms it

    def _failure(self, exc: BaseException, lock_ids: Sequence[int], out: Outcome) -> None:
        reason = _reason(exc)
        if _refused(exc):
            status = exc.status if isinstance(exc, nuki_errors.NukiError) else None
            if status == 403:
                count("NukiForbidden")
            out.failed.update(dict.fromkeys(lock_ids, (reason, status)))
            return
        if not isinstance(exc, nuki_errors.NukiError):  # a 401 is counted by the client's hook (nuki_calls)
            logger.warning("Nuki call failed unexpectedly; will retry", error=type(exc).__name__)
        out.transient.update(dict.fromkeys(lock_ids, reason))

    def _classify_conflict(
        self, b: Booking, lock_ids: Sequence[int], pin: str, out: Outcome, exc: nuki_errors.NukiCodeConflict
    ) -> None:
        """409: the code exists on a lock. Ours (an earlier attempt arrived) or someone else's?

        We read the locks back. A holder under another name is someone else's code: remember it
        and choose another PIN. Our own name means an earlier attempt of ours arrived: the write
        counts as sent. No visible holder: if an earlier attempt of this very request may have
        reached Nuki (`after_ambiguous_retry`), it is ours still pending; otherwise nothing of this
        request was applied and the holder is invisible to us (someone's pending code), so we
        choose another PIN all the same, within the bounded number of choices.
        """
        holders: dict[int, SmartlockAuth | None] = {}
        for lock_id in lock_ids:
            try:
                auths = self.nuki.list_auths(lock_id, types=(13,))
            except nuki_errors.NukiError as err:
                out.transient[lock_id] = _reason(err)
                continue
            holders[lock_id] = next((a for a in auths if a.code is not None and f"{a.code:06d}" == pin), None)
        foreign = {lock_id: h for lock_id, h in holders.items() if h is not None and h.name != b.authName}
        for lock_id, holder in foreign.items():
            self.store.release_code(lock_id, pin, b.bookingId)
            self.store.record_foreign_code(lock_id, pin, holder.name, holder.id, self.clock.now())
            out.foreign_conflict[lock_id] = holder.id
            logger.info(
                "code taken by someone else on a lock; choosing another", booking_id=b.bookingId, smartlock_id=lock_id
            )
        unseen = [lock_id for lock_id, h in holders.items() if h is None]
        if exc.after_ambiguous_retry:
            return  # our earlier attempt may be pending: confirm it by read-back
        if foreign or len(unseen) == len(holders):
            # The request was refused as a whole: nothing of it is on the locks we did not see it on.
            out.unsent += unseen
            if not foreign and unseen:
                out.foreign_conflict[unseen[0]] = None

    def _apply_outcome(self, b: Booking, out: Outcome, plan: Plan) -> None:
        now = self.clock.now()
        for lock in b.locks:
            lock_id = lock.smartlockId
            if lock_id in out.failed:
                reason, status = out.failed[lock_id]
                if lock.status != LockStatus.FAILED:
                    plan.metrics.append(("ProvisioningFailed", {}))
                lock.status, lock.op, lock.error = LockStatus.FAILED, None, reason
                if status == 403:
                    # No subscription or no permission: an operator's fix; tried again hourly until then.
                    lock.retryAt = now + timedelta(seconds=FORBIDDEN_RETRY_SECONDS)
                else:
                    lock.stopped = True  # a request no retry cures: a change of the booking retries it
            elif lock_id in out.transient:
                was = lock.op
                lock.op = None
                lock.error = f"retrying: {out.transient[lock_id]}"
                lock.retries += 1
                # A removal keeps trying every two minutes at most: a code must be gone within
                # minutes of the end, also after Nuki was out of reach for a while.
                cap = REMOVAL_LOOK_EVERY if b.code_unwanted(lock) else 900
                lock.retryAt = now + timedelta(seconds=min(cap, 5 * 2 ** min(lock.retries, 8)))
                if was == "update":
                    lock.sentFrom = None  # it may not have arrived: send the update again when due
                if lock.desired == "absent" and lock.nukiId is None and lock.status != LockStatus.FAILED:
                    lock.status = LockStatus.PENDING
            elif lock_id in out.foreign_conflict or lock_id in out.unsent:
                # Nothing of ours was written: the lock keeps what it held (if anything).
                lock.op, lock.sentPin = None, lock.heldPin
                if lock.status != LockStatus.FAILED:
                    lock.status = LockStatus.PENDING
                if lock.heldPin is not None:
                    lock.sentFrom, lock.sentUntil = None, None
            elif lock_id in out.vanished:
                lock.nukiId, lock.authId, lock.op, lock.heldPin = None, None, None, None

    def _choose_again(self, booking: Booking, conflicts: dict[int, str | None]) -> Booking:
        now = self.clock.now()
        old = booking.pin
        lock_ids = [lk.smartlockId for lk in booking.locks if lk.desired == "present"]
        avoid = self.store.known_codes(lock_ids) | set(booking.pinHistory)
        for _ in range(25):
            pin = generate_pin(avoid, self.pin_choice)

            def mutate(b: Booking, pin: str = pin) -> TxExtras | None:
                if b.pin != old:
                    return None
                extras = TxExtras()
                if b.pinChoices >= self.settings.max_pin_choices:
                    for lock in b.locks:
                        if lock.smartlockId in conflicts:
                            lock.status, lock.op = LockStatus.FAILED, None
                            lock.error = "every PIN we chose was already on the lock (409 conflict)"
                    b.status = BookingStatus.FAILED
                    b.statusReason = "code conflict on the lock"
                    return extras
                extras.claims += [CodeClaim(lock_id, pin) for lock_id in lock_ids]
                extras.releases += [CodeClaim(lk.smartlockId, old) for lk in b.locks if lk.heldPin != old]
                b.pin, b.pinChoices, b.updatedAt = pin, b.pinChoices + 1, now
                b.pinHistory.append(pin)
                return extras

            try:
                updated = self.store.update_booking(booking.bookingId, mutate, now=now)
            except PinTaken:
                avoid.add(pin)
                continue
            if updated.status == BookingStatus.FAILED:
                count("ProvisioningFailed")
            else:
                count("PinChosenAgain")
            return updated
        raise UpstreamUnavailable("could not reserve another PIN; try again")

    # ------------------------------------------------------------------ after a save

    def _emit(self, plan: Plan) -> None:
        for name, dims in plan.metrics:
            count(name, dimensions=dims)
        plan.metrics.clear()

    def _queue_next(self, booking: Booking, plan: Plan) -> None:
        if plan.next_check_delay is not None:
            self.jobs.send({"bookingId": booking.bookingId, "seq": booking.checkSeq}, plan.next_check_delay)
            plan.next_check_delay = None

    def _after(self, booking: Booking, plan: Plan) -> None:
        for message, fields in plan.logs:
            logger.info(message, booking_id=booking.bookingId, **fields)
        if plan.email is not None:
            self._send_email(booking, plan.email, plan.email_fingerprint)

    def _send_email(self, booking: Booking, notice: GuestNotice, fingerprint: str) -> None:
        now = self.clock.now()
        try:
            self.mailer.send(notice)
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
            plan = Plan()

            def failed(b: Booking) -> None:
                if b.emailPending != fingerprint:
                    return
                b.emailAttempts += 1
                if code in EMAIL_PERMANENT or b.emailAttempts >= EMAIL_MAX_ATTEMPTS:
                    # Give up on this email (the booking stays active); the alarm tells the operator.
                    b.emailFingerprint, b.emailPending, b.emailLeaseUntil = fingerprint, None, None
                    b.emailError = f"the guest email could not be sent: {code}"
                    return
                b.emailLeaseUntil = now + timedelta(seconds=min(3600, 60 * 2 ** (b.emailAttempts - 1)))
                self._plan_next_check(b, now, plan)

            updated = self.store.update_booking(booking.bookingId, failed, now=now)
            gave_up = updated.emailPending is None
            logger.warning("guest email failed", booking_id=booking.bookingId, error=code, gave_up=gave_up)
            count("GuestEmailFailed" if gave_up else "GuestEmailRetried")
            self._queue_next(updated, plan)
            return

        def sent(b: Booking) -> None:
            if b.emailPending == fingerprint:
                b.emailFingerprint, b.emailSentAt, b.emailError = fingerprint, now, None
                b.emailPending, b.emailLeaseUntil, b.emailAttempts = None, None, 0

        self.store.update_booking(booking.bookingId, sent, now=now)
        count("GuestNotified")
        logger.info("guest notified", booking_id=booking.bookingId, updated=notice.updated)

    # ------------------------------------------------------------------ capacity and the reconciler

    def _waits_for_capacity(self, lock: LockState, now: datetime, plan: Plan) -> bool:
        """True when a create must wait: the lock holds Nuki's limit of keypad codes, as last counted
        (`Store.code_count`: the reconciler's count of every keypad code listed on the lock). The
        lock says why, and the engine looks again in 15 minutes. A lock never counted never waits."""
        held = self.store.code_count(lock.smartlockId)
        limit = self.settings.max_codes_per_lock
        if held is None or held < limit:
            if lock.error and lock.error.startswith("waiting: "):
                lock.error = None
            return False
        lock.error = (
            f"waiting: lock {lock.smartlockId} holds {held} keypad codes, Nuki's limit is {limit}; "
            "the code goes on as soon as one is removed"
        )
        lock.retryAt = now + timedelta(minutes=15)
        lock.firstSentAt = lock.firstSentAt or now  # waiting counts as trying: the deadline applies
        plan.metrics.append(("ProvisioningWaitsForCapacity", {}))
        return True

    def heal(
        self, booking_id: str, smartlock_id: int, auths: Sequence[SmartlockAuth], *, stalled_before: datetime
    ) -> Booking | None:
        """The reconciler's entry point. It listed every keypad code on `smartlock_id` (`auths`) and
        found this booking's code there not as the booking says: missing, changed in Nuki, still
        there after the booking stopped wanting it, there but not recorded as confirmed, or a write
        of ours unconfirmed since before `stalled_before` (its follow-ups died).

        The list is a look at the lock like any read-back: the engine applies it through the one
        rule (`_apply_observation`: adopt, confirm, record a removal, notice a change or a
        disappearance) and plans the writes that follow. A write in flight that is not stalled is
        left to its own read-backs; a stalled one is forgotten, so the list decides again. None: no
        such booking.
        """
        taken_at = self.clock.now()

        def mark(b: Booking) -> None:
            lock = b.lock(smartlock_id)
            if lock is None:
                return
            if lock.op is not None:
                if lock.opSentAt is not None and lock.opSentAt > stalled_before:
                    return
                lock.op = None
            lock.retryAt = None

        try:
            self.store.update_booking(booking_id, mark, now=taken_at)
        except KeyError:
            return None
        logger.info("reconciler heals a lock", booking_id=booking_id, smartlock_id=smartlock_id)
        observed = {smartlock_id: Observation(auths=list(auths), complete=True, stamp=taken_at)}
        return self.process(booking_id, read_back=False, observed=observed)


_reason = nuki_errors.describe


def _stay_point(raw: str) -> Any:
    from datetime import date

    if len(raw) == 10:
        return date.fromisoformat(raw)
    return datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(UTC)


def _reset(lock: LockState) -> None:
    """A failed lock gets a fresh start (a PATCH retries it; an ending booking removes what landed).
    A refused code on it stays known, so it is deleted before the next try."""
    lock.status, lock.error, lock.op = LockStatus.PENDING, None, None
    lock.firstSentAt, lock.opChecks, lock.retryAt, lock.retries, lock.stopped = None, 0, None, 0, False


def _changeable(booking: Booking) -> None:
    if booking.status in ENDED:
        raise Conflict(f"booking {booking.bookingId!r} is {booking.status.value} and cannot change")
