"""The sync engine's shell: it reads, lets `core.decide` decide, writes, and carries the plan out.

Every Nuki write is a request that may not happen. So each lock of a booking carries the write in
flight on it and what we sent; a write counts only once it is *seen* on the lock, by a read-back
(`GET /smartlock/{id}/auth`, on a backoff schedule through the lifecycle queue), by a
`DEVICE_AUTHS` webhook that can stand for a look (`core.onlock.usable`), or by the reconciler's
list. Every trigger (the shop's commands, the two one-time schedules, the queue's follow-ups,
webhooks, the reconciler) comes to `process`, and one round goes:

1. read the booking, and the locks to look at (read-backs, `services.readback`);
2. decide (`core.decide.decide`): the booking to save and the plan;
3. save it with the plan's code claims and releases in one transaction (optimistic locking on the
   booking's `version`: on a conflict, read again and decide again, so two triggers never send the
   same write);
4. carry the plan out: metrics, the follow-up (queued before the writes: should the invocation die
   while talking to Nuki, the follow-up finds the writes in flight and carries on), the Nuki writes
   (`services.writes`), and what Nuki answered as a second, write-free round
   (`core.decide.after_outcome`), then the auth index, log lines and the guest's email.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from staykey.adapters.mail import GuestNotice, Mailer
from staykey.core import commands, decide, onlock
from staykey.core.models import Booking, BookingStatus, LockState
from staykey.core.pins import generate_pin
from staykey.core.round import Context, Look, Outcome, Plan
from staykey.core.timeutil import Clock, parse_iso
from staykey.errors import ConcurrentModification, NotFound, UpstreamUnavailable
from staykey.observability import count, logger
from staykey.services.readback import CodeCounts, LockMetas, ReadBack
from staykey.store import PinTaken, Store, TxExtras

if TYPE_CHECKING:
    from staykey.adapters.jobs import JobQueue
    from staykey.nuki import NukiClient, SmartlockAuth
    from staykey.services.writes import NukiWriter
    from staykey.settings import Settings

SAVE_ATTEMPTS = 5
# A follow-up that arrives before its time (SQS delays are whole seconds) waits the rest, up to this.
MAX_WAIT_SECONDS = 2.0


def rewrite(
    store: Store,
    booking_id: str,
    change: Callable[[Booking], Any],
    now: datetime,
) -> tuple[Booking, Any]:
    """Read the booking, change it (`change` returns a Plan or commands.Claims with the claims to
    write and release, or None), save it in one transaction; read and change again on a conflict.
    (booking as saved, what `change` returned). KeyError: no such booking."""
    for _ in range(SAVE_ATTEMPTS):
        booking = store.get_booking(booking_id, now)
        if booking is None:
            raise KeyError(booking_id)
        result = change(booking)
        extras = TxExtras(claims=list(result.claims), releases=list(result.releases)) if result is not None else None
        try:
            return store.save_booking(booking, extras), result
        except ConcurrentModification:
            continue
    raise ConcurrentModification(f"booking {booking_id} keeps changing; try again")


def _wait_for(due: datetime | None, clock: Clock, sleep: Callable[[float], None] | None) -> None:
    """The queue delays by whole seconds and delivers a little early or late: a read-back timed to a
    lock's sync delay waits for its moment (`due`), up to MAX_WAIT_SECONDS."""
    wait = (due - clock.now()).total_seconds() if due is not None else 0.0
    if sleep is not None and 0 < wait <= MAX_WAIT_SECONDS:
        sleep(wait)


def record_lookups(store: Store, booking: Booking, plan: Plan) -> None:
    """What a saved round asks to be found by: the auth ids it saw (attribution), and its writes nobody
    waits for (the shared look reads their locks: `services.shared`)."""
    for ix in plan.index_auths:
        store.index_auth(ix.smartlock_id, ix.booking_id, ix.nuki_id, ix.auth_id, ix.expires_at)
    plan.index_auths = []
    for lock_id, at, by in plan.shared_at:
        try:
            store.await_look(lock_id, booking.bookingId, at, by)
        except Exception as exc:  # its own read-back still comes (SHARED_WAIT)
            logger.warning("shared look not asked for", smartlock_id=lock_id, error=type(exc).__name__)
    plan.shared_at = []


def signal(store: Store, smartlock_id: int, now: datetime, after: float = 0.0) -> None:
    """Something says the lock may have drifted: the watcher looks at it (`after` seconds from now)."""
    try:
        store.signal_lock(smartlock_id, now + timedelta(seconds=after))
    except Exception as exc:  # the daily sweep still comes
        logger.warning("lock signal not saved", smartlock_id=smartlock_id, error=type(exc).__name__)


class Sync:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        nuki: Callable[[], NukiClient],
        jobs: JobQueue,
        mailer: Mailer,
        clock: Clock,
        writer: NukiWriter,
        pin_choice: Callable[[str], str],
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        """`sleep`: a follow-up that came early waits for its time (Lambda: `time.sleep`)."""
        self.settings = settings
        self.sleep = sleep
        self.store = store
        self.jobs = jobs
        self.mailer = mailer
        self.clock = clock
        self.writer = writer
        self.pin_choice = pin_choice
        self.reads = ReadBack(settings, store, nuki, clock)
        self.after_round: Callable[[Booking], None] = lambda b: None  # a backup code's user follows it

    # ------------------------------------------------------------------ triggers

    def run_job(self, job: dict[str, Any]) -> Booking | None:
        """A delayed follow-up from the lifecycle queue: read back and carry on."""
        booking_id = str(job["bookingId"])
        booking = self.store.get_booking(booking_id, self.clock.now())
        if booking is None:
            return None
        if int(job.get("seq", -1)) != booking.checkSeq:
            return booking  # a newer follow-up replaced this one
        _wait_for(parse_iso(job.get("at")), self.clock, self.sleep)
        return self.process(booking_id, read_back=True)

    def observe_webhook(self, auth: SmartlockAuth, deleted: bool) -> str:
        """DEVICE_AUTHS: our codes go to `observe_auth` (confirmation, removal); a keypad code that
        is not ours is remembered on its lock (forgotten once deleted), so we never choose it there.
        What became of it: "ours", "foreign" or "ignored"."""
        booking = self.observe_auth(auth.smartlock_id, auth, deleted)
        if booking is not None:
            logger.info(
                "our code changed on a lock",
                booking_id=booking.bookingId,
                smartlock_id=auth.smartlock_id,
                deleted=deleted,
                status=booking.status.value,
            )
            return "ours"
        if not auth.is_keypad_code or auth.code is None:
            return "ignored"
        pin = f"{auth.code:06d}"
        if deleted:
            self.store.forget_foreign_code(auth.smartlock_id, pin)
        elif not self.store.record_foreign_code(auth.smartlock_id, pin, auth.name, auth.id, self.clock.now()):
            # The code is reserved for one of our bookings: its write will meet a 409 and the
            # engine chooses another PIN; the reconciler remembers the code.
            logger.warning("a code reserved for a booking was added by someone else", smartlock_id=auth.smartlock_id)
            signal(self.store, auth.smartlock_id, self.clock.now())
        return "foreign"

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
        lock = _slot_for(booking, smartlock_id, auth)
        if lock is None:
            # A code of ours on a lock its booking does not use (any more): the reconciler's case.
            signal(self.store, smartlock_id, self.clock.now())
            return booking
        if deleted:
            if auth.id != lock.nukiId:
                return booking  # not the code we track there (a duplicate we removed, or history)
            look = Look(auths=[], complete=False, deleted_ids={auth.id})
            return self.process(booking.bookingId, read_back=False, observed={smartlock_id: look})
        needs_user = lock.access == "app" or lock.link
        if onlock.usable(auth, lock.seenAt, lock.opSentAt if lock.op else None, needs_user):
            look = Look(auths=[auth], complete=False, stamp=auth.update_date)
            return self.process(booking.bookingId, read_back=False, observed={smartlock_id: look})
        return self.process(booking.bookingId, read_back=False, read_locks={smartlock_id})

    def heal(
        self, booking_id: str, smartlock_id: int, auths: list[SmartlockAuth], *, stalled_before: datetime
    ) -> Booking | None:
        """The reconciler's entry point. It listed every keypad code on `smartlock_id` (`auths`) and
        found this booking's code there not as the booking says: missing, changed in Nuki, still
        there after the booking stopped wanting it, there but not recorded as confirmed, or a write
        of ours unconfirmed since before `stalled_before` (its follow-ups died).

        The list is a look at the lock like any read-back: the round applies it through the one
        rule (adopt, confirm, record a removal, notice a change or a disappearance) and plans the
        writes that follow. A write in flight that is not stalled is left to its own read-backs; a
        stalled one is forgotten, so the list decides again. None: no such booking.
        """
        taken_at = self.clock.now()

        def forget_stalled(b: Booking) -> None:
            for lock in b.slots_on(smartlock_id):  # the booking's code, and a PIN rotation's
                if lock.op is not None:
                    if lock.opSentAt is not None and lock.opSentAt > stalled_before:
                        continue
                    lock.op = None
                lock.retryAt = None

        try:
            rewrite(self.store, booking_id, forget_stalled, taken_at)
        except KeyError:
            return None
        logger.info("reconciler heals a lock", booking_id=booking_id, smartlock_id=smartlock_id)
        observed = {smartlock_id: Look(auths=list(auths), complete=True, stamp=taken_at)}
        return self.process(booking_id, read_back=False, observed=observed)

    # ------------------------------------------------------------------ one round, and the next

    def process(
        self,
        booking_id: str,
        *,
        read_back: bool,
        observed: dict[int, Look] | None = None,
        read_locks: Collection[int] = (),
    ) -> Booking:
        """Rounds until nothing is left to do now (see the module docstring); again after a new PIN.
        `read_back`: read every lock with a write in flight; `read_locks`: read these too."""
        # Only a read-back needs the booking before the first round (which reads it anyway).
        booking = self.store.get_booking(booking_id, self.clock.now()) if read_back or read_locks else None
        if booking is None and (read_back or read_locks):
            raise NotFound(f"booking {booking_id!r} does not exist")
        extra = set(read_locks)
        for _ in range(self.settings.max_pin_choices + 2):
            looks = dict(observed or {})
            metas = LockMetas(self.store)
            if read_back or extra:
                assert booking is not None
                looks.update(self.reads.looks(booking, extra, everything=read_back, ctx=self._context(metas)))

            def round_(
                b: Booking, looks: dict[int, Look] = looks, asked: set[int] = extra, metas: LockMetas = metas
            ) -> Plan:
                for lock in b.locks:
                    # Asked to look at: until a complete look lands, the follow-ups look again.
                    lock.recheck = lock.recheck or lock.smartlockId in asked
                return decide.decide(b, looks, self._context(metas))

            booking, plan = rewrite(self.store, booking_id, round_, self.clock.now())
            self.reads.learn(plan.sync_samples, metas)
            email = self._carry_out(booking, plan)
            outcome = self.writer.execute(booking, plan) if plan.writes() else Outcome()
            for lock_id in [*outcome.transient, *plan.recount]:
                # A timeout or a 5xx may have landed all the same (a 4xx, or a write never sent, did
                # not); a write waits for room: the watcher looks at (and counts) the lock later.
                signal(self.store, lock_id, self.clock.now(), self.settings.failed_write_check_seconds)
            if outcome.any():

                def answered(b: Booking, outcome: Outcome = outcome, metas: LockMetas = metas) -> Plan:
                    return decide.after_outcome(b, outcome, self._context(metas))

                booking, plan2 = rewrite(self.store, booking_id, answered, self.clock.now())
                email = self._carry_out(booking, plan2) or email
                plan.logs += plan2.logs
                plan.warnings += plan2.warnings
            if (outcome.vanished or outcome.account_user is not None) and not outcome.foreign_conflict:
                observed, read_back, extra = None, False, set()
                self._log(booking, plan)
                # Our code disappeared while we changed it: create it again now; or the guest's
                # Nuki account user is there now: what waited for it goes on.
                continue
            if outcome.foreign_conflict:
                booking = self._choose_again(booking, outcome.foreign_conflict)
                observed, read_back, extra = None, False, set()
                if booking.status != BookingStatus.FAILED:
                    continue
            if outcome.rotation is not None and outcome.rotation.foreign_conflict:
                from staykey.services import rotation  # a PIN rotation's new code met someone else's

                pin = booking.rotation.pin if booking.rotation else None
                booking = rotation.choose_again(self, booking, outcome.rotation.foreign_conflict)
                observed, read_back, extra = None, False, set()
                if booking.rotation is not None and booking.rotation.pin != pin:
                    continue
            self._after(booking, plan, email)
            return booking
        assert booking is not None
        return booking

    def _context(self, metas: LockMetas) -> Context:
        delays, shared = self.reads.sync_delays(metas), self.settings.shared_looks == "ENABLED"
        return Context(self.settings, self.clock.now(), self.reads.backoff(), CodeCounts(metas), delays, shared)

    def _carry_out(self, booking: Booking, plan: Plan) -> tuple[GuestNotice, str] | None:
        """What follows a saved round before its writes: metrics, the follow-up, the auth index;
        the guest's notice and its fingerprint, if the round took the email's lease."""
        for name, dims in plan.metrics:
            count(name, dimensions=dims)
        plan.metrics = []
        if plan.next_check_delay is not None:
            due = self.clock.now() + timedelta(seconds=plan.next_check_delay)
            job = {"bookingId": booking.bookingId, "seq": booking.checkSeq, "at": due.isoformat()}
            self.jobs.send(job, plan.next_check_delay)
            plan.next_check_delay = None
        record_lookups(self.store, booking, plan)
        if not plan.email or booking.guest is None:
            return None
        room = self.store.get_room(booking.roomId)
        notice = GuestNotice(
            to=booking.guest.email,
            guest_name=booking.guest.name,
            locale=booking.guest.locale,
            room_name=room.name if room else booking.roomId,
            pin=booking.pin,
            valid_from=booking.validFrom,
            valid_until=booking.validUntil,
            timezone=booking.timezone,
            booking_id=booking.bookingId,
            updated=plan.email_updated,
            keypad=any(lk.access == "keypad" for lk in booking.locks if lk.desired == "present"),
            app=any(lk.access == "app" for lk in booking.locks if lk.desired == "present"),
            doors=tuple((c.smartlockId, door_name(self.store, c.smartlockId), c.pin) for c in booking.backups),
        )
        return notice, plan.email_fingerprint

    def _log(self, booking: Booking, plan: Plan) -> None:
        for message, fields in plan.warnings:
            logger.warning(message, booking_id=booking.bookingId, **fields)
        plan.warnings = []

    def _after(self, booking: Booking, plan: Plan, email: tuple[GuestNotice, str] | None) -> None:
        self._log(booking, plan)
        self.after_round(booking)
        for message, fields in plan.logs:
            logger.info(message, booking_id=booking.bookingId, **fields)
        if email is not None:
            self._send_email(booking, *email)

    # ------------------------------------------------------------------ another PIN

    def _choose_again(self, booking: Booking, conflicts: dict[int, str | None]) -> Booking:
        now = self.clock.now()
        old = booking.pin
        lock_ids = [lk.smartlockId for lk in booking.locks if lk.desired == "present" and lk.access == "keypad"]
        avoid = self.store.known_codes(lock_ids) | set(booking.pinHistory)
        for _ in range(25):
            pin = generate_pin(avoid, self.pin_choice)

            def choose(b: Booking, pin: str = pin) -> commands.Claims | None:
                return commands.choose_again(b, old, pin, set(conflicts), lock_ids, self.settings.max_pin_choices, now)

            try:
                updated, _ = rewrite(self.store, booking.bookingId, choose, now)
            except PinTaken:
                avoid.add(pin)
                continue
            if updated.status == BookingStatus.FAILED:
                count("ProvisioningFailed")
            else:
                count("PinChosenAgain")
            return updated
        raise UpstreamUnavailable("could not reserve another PIN; try again")

    # ------------------------------------------------------------------ the guest's email

    def _send_email(self, booking: Booking, notice: GuestNotice, fingerprint: str) -> None:
        now = self.clock.now()
        try:
            self.mailer.send(notice)
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
            metas = LockMetas(self.store)

            def failed(b: Booking) -> Plan:
                return decide.email_failed(b, fingerprint, code, self._context(metas))

            updated, plan = rewrite(self.store, booking.bookingId, failed, now)
            gave_up = updated.emailPending is None
            logger.warning("guest email failed", booking_id=booking.bookingId, error=code, gave_up=gave_up)
            count("GuestEmailFailed" if gave_up else "GuestEmailRetried")
            self._carry_out(updated, plan)
            return

        def sent(b: Booking) -> None:
            decide.email_sent(b, fingerprint, now)

        rewrite(self.store, booking.bookingId, sent, now)
        count("GuestNotified")
        logger.info("guest notified", booking_id=booking.bookingId, updated=notice.updated)


def _slot_for(booking: Booking, smartlock_id: int, auth: SmartlockAuth) -> LockState | None:
    """Which code of the booking on this lock a webhook's auth is about: the one with its id, else
    the one with its PIN (a PIN rotation puts a second code on the lock), else the booking's."""
    slots = booking.slots_on(smartlock_id)
    code = onlock.code_of(auth)
    return (
        next((s for s in slots if s.nukiId and s.nukiId == auth.id), None)
        or next((s for s in slots if code is not None and code in (s.sentPin, booking.target_pin(s))), None)
        or booking.lock(smartlock_id)
    )


__all__ = ["Sync", "rewrite", "signal"]


def door_name(store: Store, smartlock_id: int) -> str:
    """A door as the guest's email names it: the lock's name at Nuki, or its id."""
    try:
        name = store.get_lock_meta(smartlock_id).get("name")
    except Exception:  # the email goes out all the same
        name = None
    return str(name) if name else f"Lock {smartlock_id}"
