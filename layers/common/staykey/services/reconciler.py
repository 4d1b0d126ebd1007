"""The reconciler: every lock holds exactly the codes the bookings say, and no code that is not ours
is ever touched.

It works per lock, never per booking, so its work grows with the locks and what they hold, not
with past bookings. For one lock:

1. read: the lock (`GET /smartlock/{id}`; an offline lock is skipped this round), its keypad codes
   (`GET /smartlock/{id}/auth?types=13`), and what we keep under `LOCK#{id}`: the code claims
   (`CODE#{pin}`, ours and foreign; they lead to the bookings that hold or reserve a code there)
   and `META`;
2. classify every code listed and every booking that claims a code there (`Drift`), and plan one
   `Action` for each;
3. execute the actions.

`plan_lock` does 1 and 2 and writes nothing; `reconcile_lock` is `execute(plan_lock(...))`. The plan
command (`python -m tools.reconcile_plan`) prints `plan_lock`'s actions, so it shows exactly the
actions a run then takes.

Ownership comes from our records and our naming, never from a prefix alone. A code is ours when:
its Nuki id is recorded on the lock state of a booking that claims a code on this lock; or the
claim item of its (lock, code) names a booking and the code's name is that booking's auth name; or
its name is a booking's auth name in our name index AND its code is one we chose for that booking
(`pinHistory`). Everything else is someone else's: never changed, never deleted, but counted and
its code remembered (a `foreign` claim), so no PIN we choose collides with it.

What happens to drift:

* a booking's own code (missing, changed in Nuki, left after the booking stopped wanting it, on the
  lock but unconfirmed, a write stuck in flight): through the sync engine
  (`Sync.heal`, or `Bookings.expire` for a stay whose removal never ran), the one code path
  that writes to Nuki for bookings and confirms by read-backs;
* an orphan (ours, but its booking is unknown, or the lock state of its booking does not track it:
  a duplicate, a late landing after the booking moved or ended): deleted here, and confirmed by
  reading back (a follow-up of this lock through the reconcile queue; a delete that does not apply
  is sent again, after a sync, until the code is gone); its claim is released once it is gone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from staykey.adapters.reconcile_queue import LockJob, LockQueue
from staykey.core import onlock
from staykey.core.models import FINISHED, Booking, BookingStatus, LockState, LockStatus
from staykey.core.pins import looks_like_our_name
from staykey.core.timeutil import Clock, iso_utc
from staykey.events import model as events
from staykey.nuki import errors as nuki_errors
from staykey.nuki.models import KEYPAD_CODE_AUTH_TYPE
from staykey.observability import count, logger
from staykey.store import CodeItem, Store

if TYPE_CHECKING:
    from staykey.nuki import NukiClient, SmartlockAuth
    from staykey.services.bookings import Bookings
    from staykey.services.sync import Sync
    from staykey.settings import Settings

# Bookings.expire acts once validUntil is less than a minute away; so do we.
EXPIRY_GRACE = timedelta(minutes=1)


class Drift(StrEnum):
    """What the reconciler found, per code on a lock or per booking that claims a code there."""

    OK = "ok"  # ours, expected, as the booking says
    PENDING = "pending"  # a write of the sync engine in flight; its read-backs confirm it
    WAITING = "waiting"  # the booking waits for a free slot: the lock holds Nuki's limit
    FAILED = "failed"  # the lock state gave up (the booking says why); nothing to do here
    NOT_DUE = "not_due"  # ours, on the lock before the booking's provisioning time; adopted then
    OVERDUE = "overdue"  # still scheduled after its provisioning time (the schedule was lost): provisioned
    MISSING = "missing"  # expected, not on the lock: created again
    UNCONFIRMED = "unconfirmed"  # on the lock (or gone) but not recorded so: recorded and confirmed
    WRONG_CODE = "wrong_code"  # ours, code or name changed in Nuki: updated
    WRONG_WINDOW = "wrong_window"  # ours, dates or restrictions changed in Nuki: updated
    EXPIRED = "expired"  # the stay is over: removed
    CANCELLED = "cancelled"  # the booking was cancelled: removed
    MOVED = "moved"  # the booking no longer uses this lock: removed
    UNKNOWN = "unknown"  # claimed for a booking we do not have: removed
    DUPLICATE = "duplicate"  # a second code of one booking on one lock: removed
    REMOVED = "removed"  # an orphan deletion, confirmed by read-back
    STALE_CLAIM = "stale_claim"  # a claim on a code no booking needs any more: released
    FOREIGN = "foreign"  # not ours: left alone, counted, its code remembered
    OFFLINE = "offline"  # the lock is offline: skipped this round
    UNREACHABLE = "unreachable"  # Nuki did not answer for this lock: skipped this round


# Not drift: no "found" metric for these.
QUIET = frozenset({Drift.OK, Drift.PENDING, Drift.FOREIGN, Drift.NOT_DUE})


class Do(StrEnum):
    NONE = "none"
    HEAL = "heal"  # Sync.heal: the engine writes and confirms
    EXPIRE = "expire"  # Bookings.expire: the stay's removal, which never ran
    PROVISION = "provision"  # Bookings.start_provisioning: the schedule that should have run
    DELETE = "delete"  # an orphan: delete it, confirm by read-back
    CONFIRM = "confirm"  # an orphan deletion is confirmed: stop tracking it
    RELEASE = "release"  # release a booking's claim on a code
    REMEMBER = "remember"  # record a foreign code (after releasing a stale claim on it)
    FORGET = "forget"  # a foreign code is gone from the lock: forget it


@dataclass(frozen=True)
class Action:
    """One thing the reconciler does (or, `Do.NONE`, notes) on one lock. Never holds a PIN in its
    repr or its dict: `code` is only for the store's bookkeeping."""

    smartlock_id: int
    drift: Drift
    do: Do
    booking_id: str | None = None
    auth_id: str | None = None  # Nuki's id of the code (24 hex), never the code itself
    note: str = ""
    code: str | None = field(default=None, repr=False, compare=False)

    def key(self) -> tuple[int, str, str, str | None, str | None]:
        return (self.smartlock_id, self.drift.value, self.do.value, self.booking_id, self.auth_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "smartlockId": self.smartlock_id,
            "drift": self.drift.value,
            "action": self.do.value,
            "bookingId": self.booking_id,
            "authId": self.auth_id,
            "note": self.note,
        }


@dataclass
class LockPlan:
    """What the reconciler found on one lock and what it does about it."""

    smartlock_id: int
    at: datetime
    state: str = "online"  # online, offline, unreachable
    reason: str | None = None
    server_state: int | None = None
    in_room: bool = True
    auths: list[SmartlockAuth] = field(default_factory=list, repr=False)
    code_count: int | None = None  # every keypad code Nuki listed
    ours: int = 0
    foreign: int = 0
    claims: int = 0
    orphan_attempts: dict[str, int] = field(default_factory=dict)
    actions: list[Action] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)  # one per action, after execute

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "smartlockId": self.smartlock_id,
            "state": self.state,
            "at": iso_utc(self.at),
            "keypadCodes": self.code_count,
            "ours": self.ours,
            "foreign": self.foreign,
            "inRoom": self.in_room,
            "actions": [a.to_dict() for a in self.actions],
        }
        if self.reason:
            out["reason"] = self.reason
        if self.outcomes:
            for item, outcome in zip(out["actions"], self.outcomes, strict=False):
                item["outcome"] = outcome
        return out


class ReconcileIncomplete(Exception):
    """Some action of a lock failed for a reason other than Nuki (a bug, DynamoDB): retry the lock."""


class Reconciler:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        nuki: Callable[[], NukiClient],
        bookings: Callable[[], Bookings],
        sync: Callable[[], Sync],
        queue: LockQueue,
        clock: Clock,
        metric: Callable[..., None] = count,
    ) -> None:
        self.settings = settings
        self.store = store
        self._nuki = nuki
        self._bookings = bookings
        self._sync = sync
        self.queue = queue
        self.clock = clock
        self.metric = metric

    @property
    def nuki(self) -> NukiClient:
        return self._nuki()

    @property
    def bookings(self) -> Bookings:
        return self._bookings()

    @property
    def sync(self) -> Sync:
        return self._sync()

    # ------------------------------------------------------------------ which locks

    def room_locks(self) -> set[int]:
        return {lock_id for room in self.store.list_rooms() for lock_id in room.smartlockIds}

    def locks(self) -> list[int]:
        """Every lock of every room, and locks taken out of all rooms that still hold codes of ours."""
        return sorted(self.room_locks() | set(self.store.registered_locks()))

    def enqueue_all(
        self, lock_ids: Iterable[int] | None = None, reason: Literal["scheduled", "manual"] = "scheduled"
    ) -> int:
        """The scheduled run: one message per lock on the reconcile queue. Returns how many."""
        rooms = self.room_locks()
        registered = set(self.store.registered_locks())
        self.store.register_locks(sorted(rooms - registered))
        chosen = sorted(set(lock_ids) if lock_ids is not None else rooms | registered)
        self.queue.send([LockJob(smartlockId=lock_id, reason=reason) for lock_id in chosen])
        logger.info("reconcile run queued", locks=len(chosen), outside_rooms=len(registered - rooms))
        self.metric("ReconcileLocksQueued", len(chosen))
        return len(chosen)

    # ------------------------------------------------------------------ plan, execute, both

    def plan_lock(self, smartlock_id: int, *, room_locks: set[int] | None = None) -> LockPlan:
        """What the reconciler would do on one lock now. Reads Nuki and the store; writes nothing."""
        now = self.clock.now()
        rooms = room_locks if room_locks is not None else self.room_locks()
        plan = LockPlan(smartlock_id, now, in_room=smartlock_id in rooms)
        meta = self.store.get_lock_meta(smartlock_id)
        plan.orphan_attempts = {str(k): int(v) for k, v in (meta.get("orphanDeletes") or {}).items()}
        try:
            lock = self.nuki.get_smartlock(smartlock_id)
            plan.server_state = lock.server_state
            if not lock.online:
                plan.state = "offline"
                plan.actions.append(
                    Action(smartlock_id, Drift.OFFLINE, Do.NONE, note="Nuki reports it offline; skipped this round")
                )
                return plan
            plan.auths = [
                a
                for a in self.nuki.list_auths(smartlock_id, types=(KEYPAD_CODE_AUTH_TYPE,))
                if a.type == KEYPAD_CODE_AUTH_TYPE
            ]
        except nuki_errors.NukiError as exc:
            plan.state, plan.reason = "unreachable", _reason(exc)
            plan.actions.append(Action(smartlock_id, Drift.UNREACHABLE, Do.NONE, note=plan.reason))
            return plan
        _Classifier(self, plan).run()
        return plan

    def execute(self, plan: LockPlan, *, attempt: int = 0) -> LockPlan:
        """Carry out a plan's actions; every action is attempted, a failed one is retried next run."""
        lock_id, now = plan.smartlock_id, self.clock.now()
        if plan.state != "online":
            self._skipped(plan, now)
            return plan
        codes = plan.code_count or 0
        # First, so that provisioning triggered below sees the fresh count; with lock.online and
        # lock.capacity_warning when this count or state is a transition.
        counted = {
            "online": True,
            "serverState": plan.server_state if plan.server_state is not None else 0,
            "codeCount": codes,
            "ourCodes": plan.ours,
            "foreignCodes": plan.foreign,
            "codesCountedAt": iso_utc(now),
            "reconciledAt": iso_utc(now),
        }
        self.store.update_lock_state(lock_id, counted, lambda old: self._lock_events(lock_id, old, counted))
        near = codes >= self.settings.capacity_warning_codes
        if near or self.settings.per_lock_metrics == "all":
            self.metric("KeypadCodes", codes, {"smartlockId": str(lock_id)})
        self.metric("KeypadCodes", codes)
        logger.info(
            "keypad codes counted", smartlock_id=lock_id, keypad_codes=codes, ours=plan.ours, foreign=plan.foreign
        )
        if near:
            self.metric("LocksNearCapacity")
            logger.warning(
                "lock near Nuki's keypad code limit",
                smartlock_id=lock_id,
                keypad_codes=codes,
                limit=self.settings.max_codes_per_lock,
            )
        if plan.foreign:
            self.metric("ForeignCodes", plan.foreign)
        attempts = dict(plan.orphan_attempts)
        stalled_before = now - timedelta(seconds=self.settings.reconcile_stall_seconds)
        deletes_sent, broken = 0, []
        for action in plan.actions:
            if action.drift not in QUIET:
                self.metric("ReconcileDriftFound", 1, {"driftClass": action.drift.value})
            try:
                outcome = self._do(action, plan, attempts, stalled_before, now)
            except nuki_errors.NukiError as exc:
                outcome = f"failed: {_reason(exc)}"
            except Exception as exc:
                outcome = f"failed: {type(exc).__name__}"
                broken.append(exc)
            plan.outcomes.append(outcome)
            if action.do == Do.NONE:
                continue
            fields: dict[str, Any] = {
                "smartlock_id": lock_id,
                "drift": action.drift.value,
                "action": action.do.value,
                "booking_id": action.booking_id,
                "auth_id": action.auth_id,
                "outcome": outcome,
            }
            if outcome == "done":
                logger.info("reconcile action", **fields)
                if action.drift not in QUIET:
                    self.metric("ReconcileDriftFixed", 1, {"driftClass": action.drift.value})
                deletes_sent += action.do == Do.DELETE
            else:
                logger.warning("reconcile action failed; the next run tries again", **fields)
                self.metric("ReconcileActionFailed")
        if attempts != plan.orphan_attempts:
            self.store.update_lock_meta(lock_id, orphanDeletes=attempts)
        if deletes_sent and attempt < self.settings.reconcile_follow_ups:
            # Confirm by reading back: this lock again, shortly.
            self.queue.send(
                [LockJob(smartlockId=lock_id, reason="confirm", attempt=attempt + 1)],
                self.settings.reconcile_confirm_delay_seconds,
            )
        if not plan.in_room and plan.claims == 0 and plan.ours == 0:
            self.store.unregister_lock(lock_id)  # out of every room and nothing of ours on it
        if broken:
            raise ReconcileIncomplete(f"lock {lock_id}: {len(broken)} actions failed") from broken[0]
        return plan

    def reconcile_lock(self, smartlock_id: int, *, attempt: int = 0, room_locks: set[int] | None = None) -> LockPlan:
        """The run for one lock: the plan, then its execution."""
        return self.execute(self.plan_lock(smartlock_id, room_locks=room_locks), attempt=attempt)

    def plan_locks(self, lock_ids: Iterable[int] | None = None, concurrency: int = 1) -> list[LockPlan]:
        rooms = self.room_locks()
        ids = sorted(set(lock_ids)) if lock_ids is not None else self.locks()
        return self._each(ids, lambda lock_id: self.plan_lock(lock_id, room_locks=rooms), concurrency)

    def reconcile_locks(self, lock_ids: Iterable[int] | None = None, concurrency: int = 1) -> list[LockPlan]:
        rooms = self.room_locks()
        ids = sorted(set(lock_ids)) if lock_ids is not None else self.locks()
        return self._each(ids, lambda lock_id: self.reconcile_lock(lock_id, room_locks=rooms), concurrency)

    @staticmethod
    def _each(ids: list[int], work: Callable[[int], LockPlan], concurrency: int) -> list[LockPlan]:
        if concurrency <= 1 or len(ids) <= 1:
            return [work(lock_id) for lock_id in ids]
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            return list(pool.map(work, ids))

    # ------------------------------------------------------------------ execution

    def _skipped(self, plan: LockPlan, now: datetime) -> None:
        plan.outcomes = ["skipped" for _ in plan.actions]
        if plan.state == "offline":
            offline = {
                "online": False,
                "serverState": plan.server_state if plan.server_state is not None else 4,
                "offlineSeenAt": iso_utc(now),
            }
            lock_id = plan.smartlock_id
            self.store.update_lock_state(lock_id, offline, lambda old: self._lock_events(lock_id, old, offline))
            self.metric("LockOffline")
            self.metric("ReconcileDriftFound", 1, {"driftClass": Drift.OFFLINE.value})
            logger.warning("lock offline; skipped this round", smartlock_id=plan.smartlock_id)
        else:
            self.metric("ReconcileLockFailed")
            self.metric("ReconcileDriftFound", 1, {"driftClass": Drift.UNREACHABLE.value})
            logger.warning("lock unreachable; skipped this round", smartlock_id=plan.smartlock_id, reason=plan.reason)

    def _lock_events(self, lock_id: int, old: dict[str, Any], new: dict[str, Any]) -> list[events.Event]:
        return events.lock_events(
            lock_id,
            old,
            new,
            capacity_warning=self.settings.capacity_warning_codes,
            capacity_limit=self.settings.max_codes_per_lock,
        )

    def _do(
        self, action: Action, plan: LockPlan, attempts: dict[str, int], stalled_before: datetime, now: datetime
    ) -> str:
        lock_id = plan.smartlock_id
        if action.do == Do.NONE:
            return "-"
        if action.do == Do.HEAL:
            assert action.booking_id is not None
            self.sync.heal(action.booking_id, lock_id, plan.auths, stalled_before=stalled_before)
        elif action.do == Do.EXPIRE:
            assert action.booking_id is not None
            self.bookings.expire(action.booking_id)
        elif action.do == Do.PROVISION:
            assert action.booking_id is not None
            self.bookings.start_provisioning(action.booking_id)
        elif action.do == Do.DELETE:
            assert action.auth_id is not None
            sent = attempts.get(action.auth_id, 0)
            if sent:
                # Sent before and still there: Nuki acknowledged a delete it did not apply. Sync
                # the lock with the device, then send the delete again.
                try:
                    self.nuki.sync(lock_id)
                except nuki_errors.NukiError as exc:
                    logger.info("sync before a repeated delete failed", smartlock_id=lock_id, error=type(exc).__name__)
            attempts[action.auth_id] = sent + 1
            with contextlib.suppress(nuki_errors.NukiNotFound):  # gone already; the read-back confirms it
                self.nuki.delete_auth(lock_id, action.auth_id)
        elif action.do == Do.CONFIRM:
            assert action.auth_id is not None
            attempts.pop(action.auth_id, None)
            self.metric("OrphanDeleteConfirmed")
        elif action.do == Do.RELEASE:
            assert action.code is not None
            assert action.booking_id is not None
            self.store.release_code(lock_id, action.code, action.booking_id)
        elif action.do == Do.REMEMBER:
            assert action.code is not None
            if action.booking_id is not None:
                self.store.release_code(lock_id, action.code, action.booking_id)
            name = next((a.name for a in plan.auths if a.id == action.auth_id), None)
            self.store.record_foreign_code(lock_id, action.code, name, action.auth_id, now)
        elif action.do == Do.FORGET:
            assert action.code is not None
            self.store.forget_foreign_code(lock_id, action.code)
        return "done"


class _Classifier:
    """Step 2 for one lock: who owns each code, and what each booking with a claim here wants."""

    def __init__(self, reconciler: Reconciler, plan: LockPlan) -> None:
        self.r = reconciler
        self.store = reconciler.store
        self.plan = plan
        self.lock_id = plan.smartlock_id
        self.now = plan.at
        self.stalled_before = self.now - timedelta(seconds=reconciler.settings.reconcile_stall_seconds)
        self._bookings: dict[str, Booking | None] = {}

    def booking(self, booking_id: str) -> Booking | None:
        if booking_id not in self._bookings:
            self._bookings[booking_id] = self.store.get_booking(booking_id)
        return self._bookings[booking_id]

    def prefetch(self, booking_ids: list[str]) -> None:
        """Read the bookings that claim codes here in one batch, not one query each (a lock with
        150 codes of ours would otherwise cost 150 DynamoDB round trips)."""
        wanted = [i for i in booking_ids if i not in self._bookings]
        if len(wanted) > 1:
            found = self.store.get_bookings(wanted)
            self._bookings.update({i: found.get(i) for i in wanted})

    def add(self, drift: Drift, do: Do, **kw: Any) -> None:
        self.plan.actions.append(Action(self.lock_id, drift, do, **kw))

    def run(self) -> None:
        plan, auths = self.plan, self.plan.auths
        plan.code_count = len(auths)
        claims = self.store.codes_on_lock(self.lock_id)
        plan.claims = len(claims)
        by_code = {c.pin: c for c in claims}
        claimed = sorted({c.booking_id for c in claims if c.owner != "foreign" and c.booking_id})
        self.prefetch(claimed)
        recorded: dict[str, str] = {}
        for booking_id in claimed:
            b = self.booking(booking_id)
            state = b.lock(self.lock_id) if b else None
            if state is not None and state.nukiId:
                recorded[state.nukiId] = booking_id
        owner: dict[str, str] = {}
        foreign: list[SmartlockAuth] = []
        for auth in auths:
            found = self._owner(auth, recorded, by_code)
            if found is None:
                foreign.append(auth)
            else:
                owner[auth.id] = found
        plan.ours, plan.foreign = len(owner), len(foreign)

        for booking_id in sorted(set(claimed) | set(owner.values())):
            mine = [a for a in auths if owner.get(a.id) == booking_id]
            self._booking(booking_id, self.booking(booking_id), mine)

        listed = {a.id for a in auths}
        for auth_id in sorted(plan.orphan_attempts):
            if auth_id not in listed:
                self.add(Drift.REMOVED, Do.CONFIRM, auth_id=auth_id, note="orphan deletion confirmed by read-back")

        on_lock = {code for a in auths if (code := _code(a)) is not None}
        for claim in claims:
            if claim.owner == "foreign" or not claim.booking_id or claim.pin in on_lock:
                continue
            if not _claim_needed(self.booking(claim.booking_id), self.lock_id, claim.pin):
                self.add(
                    Drift.STALE_CLAIM,
                    Do.RELEASE,
                    booking_id=claim.booking_id,
                    code=claim.pin,
                    note="a code no booking needs here any more: its claim is released",
                )
        for auth in foreign:
            self._foreign(auth, by_code)
        for claim in claims:
            if claim.owner == "foreign" and claim.pin not in on_lock:
                self.add(
                    Drift.FOREIGN,
                    Do.FORGET,
                    auth_id=claim.nuki_id,
                    code=claim.pin,
                    note="a code someone else added is gone: forgotten",
                )

    def _owner(self, auth: SmartlockAuth, recorded: Mapping[str, str], by_code: Mapping[str, CodeItem]) -> str | None:
        """The booking a code on the lock belongs to, from our records; None: not ours."""
        if auth.id in recorded:
            return recorded[auth.id]
        code = _code(auth)
        if code is None:
            return None
        claim = by_code.get(code)
        if claim is not None and claim.owner != "foreign" and claim.booking_id and claim.auth_name == auth.name:
            return claim.booking_id
        if looks_like_our_name(auth.name):  # only a hint that a lookup may find something
            booking_id = self.store.booking_id_for_name(auth.name)
            b = self.booking(booking_id) if booking_id else None
            if b is not None and code in b.pinHistory:
                return booking_id
        return None

    def _booking(self, booking_id: str, b: Booking | None, mine: list[SmartlockAuth]) -> None:
        if b is None:
            for auth in mine:
                self.add(Drift.UNKNOWN, Do.DELETE, booking_id=booking_id, auth_id=auth.id, note="no such booking")
            return
        state = b.lock(self.lock_id)
        if b.status not in FINISHED and b.status != BookingStatus.REVOKING and b.validUntil <= self.now - EXPIRY_GRACE:
            self.add(
                Drift.EXPIRED,
                Do.EXPIRE,
                booking_id=booking_id,
                auth_id=mine[0].id if mine else None,
                note=f"the stay ended at {iso_utc(b.validUntil)} and its removal never ran",
            )
            return
        if b.status == BookingStatus.SCHEDULED and b.provisionAt <= self.now - EXPIRY_GRACE and not mine:
            self.add(
                Drift.OVERDUE,
                Do.PROVISION,
                booking_id=booking_id,
                note=f"still scheduled although its code was due on the locks at {iso_utc(b.provisionAt)}",
            )
            return
        # A write with no send time, or sent before the stall limit, is stuck: its follow-ups died.
        stalled = (
            state is not None
            and state.op is not None
            and (state.opSentAt is None or state.opSentAt <= self.stalled_before)
        )
        in_flight = state is not None and state.op is not None and not stalled
        held = next((a for a in mine if state is not None and state.nukiId and a.id == state.nukiId), None)
        want = (state.sentPin if state is not None else None) or b.pin
        named = next((a for a in mine if a.name == b.authName and _code(a) == want), None)
        primary = held or named
        if state is not None and b.wants_code(state):
            self._wanted(booking_id, b, state, mine, held, primary, in_flight, stalled)
        else:
            self._unwanted(booking_id, b, state, mine, primary, in_flight)

    def _wanted(
        self,
        booking_id: str,
        b: Booking,
        state: LockState,
        mine: list[SmartlockAuth],
        held: SmartlockAuth | None,
        primary: SmartlockAuth | None,
        in_flight: bool,
        stalled: bool,
    ) -> None:
        for auth in mine:
            if auth is not primary:
                self.add(Drift.DUPLICATE, Do.DELETE, booking_id=booking_id, auth_id=auth.id, note="a second code")
        primary_id = primary.id if primary else None
        if in_flight:
            note = f"a {state.op} is in flight; its read-backs confirm it"
            self.add(Drift.PENDING, Do.NONE, booking_id=booking_id, auth_id=primary_id, note=note)
        elif state.status == LockStatus.FAILED:
            if primary is not None:
                note = "on the lock although the booking gave up on it: confirm it"
                self.add(Drift.UNCONFIRMED, Do.HEAL, booking_id=booking_id, auth_id=primary_id, note=note)
            else:
                self.add(Drift.FAILED, Do.NONE, booking_id=booking_id, note=state.error or "")
        elif held is not None:
            drift = onlock.drift_class(onlock.differences(held, b.pin, b.validFrom, b.validUntil, b.authName))
            if drift is not None:
                note = "changed in Nuki: update with the full restriction set"
                self.add(Drift(drift), Do.HEAL, booking_id=booking_id, auth_id=held.id, note=note)
            elif state.status != LockStatus.ACTIVE or stalled:
                note = "on the lock as booked, not confirmed yet: confirm it"
                self.add(Drift.UNCONFIRMED, Do.HEAL, booking_id=booking_id, auth_id=held.id, note=note)
            else:
                self.add(Drift.OK, Do.NONE, booking_id=booking_id, auth_id=held.id)
        elif primary is not None:
            note = "on the lock, its id not recorded: adopt and confirm it"
            self.add(Drift.UNCONFIRMED, Do.HEAL, booking_id=booking_id, auth_id=primary_id, note=note)
        elif (self.plan.code_count or 0) >= self.r.settings.max_codes_per_lock:
            note = f"the lock holds {self.plan.code_count} keypad codes, Nuki's limit"
            self.add(Drift.WAITING, Do.NONE, booking_id=booking_id, note=note)
        else:
            self.add(Drift.MISSING, Do.HEAL, booking_id=booking_id, note="not on the lock: create it again and confirm")

    def _unwanted(
        self,
        booking_id: str,
        b: Booking,
        state: LockState | None,
        mine: list[SmartlockAuth],
        primary: SmartlockAuth | None,
        in_flight: bool,
    ) -> None:
        if b.status == BookingStatus.CANCELLED:
            drift = Drift.CANCELLED
        elif b.status in (BookingStatus.REVOKED, BookingStatus.REVOKING) or b.validUntil <= self.now:
            drift = Drift.EXPIRED
        elif b.status == BookingStatus.SCHEDULED and state is not None and state.desired == "present":
            drift = Drift.NOT_DUE
        else:
            drift = Drift.MOVED
        for auth in mine:
            if auth is primary and state is not None and drift == Drift.NOT_DUE:
                note = "on the lock before its provisioning time; adopted when it is sent"
                self.add(drift, Do.NONE, booking_id=booking_id, auth_id=auth.id, note=note)
            elif auth is primary and state is not None and in_flight:
                note = f"a {state.op} is in flight; its read-backs confirm it"
                self.add(Drift.PENDING, Do.NONE, booking_id=booking_id, auth_id=auth.id, note=note)
            elif auth is primary and state is not None:
                note = "the sync engine removes it and confirms by read-back"
                self.add(drift, Do.HEAL, booking_id=booking_id, auth_id=auth.id, note=note)
            else:
                note = "an orphan: deleted, confirmed by read-back"
                self.add(drift, Do.DELETE, booking_id=booking_id, auth_id=auth.id, note=note)
        if not mine and state is not None and state.status != LockStatus.REMOVED:
            if in_flight:
                note = f"a {state.op} is in flight; its read-backs confirm it"
                self.add(Drift.PENDING, Do.NONE, booking_id=booking_id, note=note)
            elif state.nukiId:
                note = "gone from the lock; the sync engine records the removal"
                self.add(Drift.UNCONFIRMED, Do.HEAL, booking_id=booking_id, note=note)

    def _foreign(self, auth: SmartlockAuth, by_code: Mapping[str, CodeItem]) -> None:
        code = _code(auth)
        claim = by_code.get(code) if code is not None else None
        if code is None:
            self.add(Drift.FOREIGN, Do.NONE, auth_id=auth.id, note="someone else's; no code listed")
        elif claim is None:
            self.add(Drift.FOREIGN, Do.REMEMBER, auth_id=auth.id, code=code, note="someone else's: its code remembered")
        elif claim.owner == "foreign":
            self.add(Drift.FOREIGN, Do.NONE, auth_id=auth.id, note="someone else's, known")
        elif claim.booking_id and not _claim_needed(self.booking(claim.booking_id), self.lock_id, code):
            note = "someone else's, on a code a booking of ours gave up: its code remembered"
            self.add(Drift.FOREIGN, Do.REMEMBER, booking_id=claim.booking_id, auth_id=auth.id, code=code, note=note)
        else:
            note = "someone else's, on the PIN reserved for this booking; the booking chooses another when it is sent"
            self.add(Drift.FOREIGN, Do.NONE, booking_id=claim.booking_id, auth_id=auth.id, note=note)


def _code(auth: SmartlockAuth) -> str | None:
    return None if auth.code is None else f"{auth.code:06d}"


def _claim_needed(b: Booking | None, smartlock_id: int, pin: str) -> bool:
    """Does a booking still need its claim on `pin` at this lock (held, being sent, or reserved)?"""
    if b is None:
        return False
    state = b.lock(smartlock_id)
    if state is None or (state.status == LockStatus.REMOVED and (b.status in FINISHED or state.desired == "absent")):
        return False
    return pin in {b.pin, state.heldPin, state.sentPin}


_reason = nuki_errors.describe


__all__ = ["QUIET", "Action", "Do", "Drift", "LockPlan", "ReconcileIncomplete", "Reconciler"]
