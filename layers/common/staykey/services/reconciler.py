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

Who owns a code, and what each drift class means, is `core.drift` (pure); this module reads and acts.

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
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from staykey.adapters.reconcile_queue import LockJob, LockQueue
from staykey.core import drift
from staykey.core.drift import QUIET, Action, Do, Drift, LockPlan
from staykey.core.models import Booking
from staykey.core.timeutil import Clock, iso_utc
from staykey.core.watch import digest
from staykey.events import model as events
from staykey.nuki import errors as nuki_errors
from staykey.nuki.accounts import APP_AUTH_TYPE
from staykey.nuki.models import KEYPAD_CODE_AUTH_TYPE
from staykey.observability import count, logger
from staykey.services.sync import signal
from staykey.services.writes import still_there
from staykey.store import Store

if TYPE_CHECKING:
    from staykey.nuki import NukiClient
    from staykey.services.bookings import Bookings
    from staykey.services.sync import Sync
    from staykey.settings import Settings


# An offline lock is looked at again this long after (Nuki's sync applies what waited once it is back).
OFFLINE_RECHECK_SECONDS = 900
ROOM_LOCKS_MAX_AGE = timedelta(minutes=5)


def acts(plan: LockPlan) -> bool:
    """Whether carrying out the plan would do anything (write to Nuki, heal, or change our records)."""
    return any(action.do != Do.NONE for action in plan.actions)


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
        self._rooms: tuple[datetime, set[int]] | None = None

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

    def room_locks(self, fresh: bool = True) -> set[int]:
        """Every room's locks; not `fresh`: read at most every ROOM_LOCKS_MAX_AGE per container (all
        rooms are one partition: reading it for each lock reconciled makes it the table's busiest)."""
        now = self.clock.now()
        if fresh or self._rooms is None or not timedelta(0) <= now - self._rooms[0] <= ROOM_LOCKS_MAX_AGE:
            self._rooms = (now, {lock_id for room in self.store.list_rooms() for lock_id in room.smartlockIds})
        return set(self._rooms[1])

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
        rooms = room_locks if room_locks is not None else self.room_locks(fresh=False)
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
            # Keypad codes and app authorizations (ours for guests with app access; others' app users
            # are listed too, and never touched).
            kinds = (APP_AUTH_TYPE, KEYPAD_CODE_AUTH_TYPE)
            plan.auths = [a for a in self.nuki.list_auths(smartlock_id, types=kinds) if a.type in kinds]
        except nuki_errors.NukiError as exc:
            plan.state, plan.reason = "unreachable", _reason(exc)
            plan.actions.append(Action(smartlock_id, Drift.UNREACHABLE, Do.NONE, note=plan.reason))
            return plan
        return drift.classify(
            plan, self.facts(plan), self.settings.max_codes_per_lock, self.settings.reconcile_stall_seconds
        )

    def facts(self, plan: LockPlan) -> drift.LockFacts:
        """Our records for the lock: its claims, the bookings behind them (one batch read, not one
        query each: a lock with 150 codes of ours would otherwise cost 150 round trips), and the
        name index's answer for codes our records do not place."""
        claims = self.store.claims_on_lock(plan.smartlock_id)
        wanted = drift.claimed(claims)
        bookings: dict[str, Booking | None]
        if len(wanted) > 1:
            found = self.store.get_bookings(wanted)
            bookings = {i: found.get(i) for i in wanted}
        else:
            bookings = {i: self.store.get_booking(i) for i in wanted}
        facts = drift.LockFacts(claims, bookings)
        named: dict[str, str | None] = {}
        for name in drift.names_to_look_up(plan.smartlock_id, plan.auths, facts):
            if name not in named:
                named[name] = booking_id = self.store.booking_id_for_name(name)
                if booking_id and booking_id not in bookings:
                    bookings[booking_id] = self.store.get_booking(booking_id)
        return drift.LockFacts(claims, bookings, named)

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
        self.store.update_lock_state(lock_id, counted, lambda old: self.lock_events(lock_id, old, counted))
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
        if not acts(plan):
            self.store.watch_seen(lock_id, digest(plan.auths), plan.at)  # right as it is: the watcher's reference
        if not plan.in_room and plan.claims == 0 and plan.ours == 0 and plan.app_ours == 0:
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
        return _each(ids, lambda lock_id: self.plan_lock(lock_id, room_locks=rooms), concurrency)

    def reconcile_locks(self, lock_ids: Iterable[int] | None = None, concurrency: int = 1) -> list[LockPlan]:
        rooms = self.room_locks()
        ids = sorted(set(lock_ids)) if lock_ids is not None else self.locks()
        return _each(ids, lambda lock_id: self.reconcile_lock(lock_id, room_locks=rooms), concurrency)

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
            self.store.update_lock_state(lock_id, offline, lambda old: self.lock_events(lock_id, old, offline))
            self.metric("LockOffline")
            self.metric("ReconcileDriftFound", 1, {"driftClass": Drift.OFFLINE.value})
            logger.warning("lock offline; skipped this round", smartlock_id=plan.smartlock_id)
            _look_again(self.store, lock_id, now)
        else:
            self.metric("ReconcileLockFailed")
            self.metric("ReconcileDriftFound", 1, {"driftClass": Drift.UNREACHABLE.value})
            logger.warning("lock unreachable; skipped this round", smartlock_id=plan.smartlock_id, reason=plan.reason)
            _look_again(self.store, plan.smartlock_id, now)

    def lock_events(self, lock_id: int, old: dict[str, Any], new: dict[str, Any]) -> list[events.Event]:
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
            try:
                with contextlib.suppress(nuki_errors.NukiNotFound):  # gone already; the read-back confirms it
                    self.nuki.delete_auth(lock_id, action.auth_id)
            except nuki_errors.NukiAuthError as exc:
                if exc.status == 403 and still_there(self.nuki, lock_id, action.auth_id):
                    # Refused, not gone (no subscription, no permission): the operator's fix.
                    self.metric("NukiForbidden")
                raise
        elif action.do == Do.CONFIRM:
            assert action.auth_id is not None
            attempts.pop(action.auth_id, None)
            self.metric("OrphanDeleteConfirmed")
        elif action.do == Do.RELEASE:
            assert action.code is not None
            assert action.booking_id is not None
            self.store.release_code(lock_id, action.code, action.booking_id)
        elif action.do == Do.RELEASE_APP:
            assert action.booking_id is not None
            self.store.release_app_claim(lock_id, action.booking_id)
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


_reason = nuki_errors.describe


def _each(ids: list[int], work: Callable[[int], LockPlan], concurrency: int) -> list[LockPlan]:
    if concurrency <= 1 or len(ids) <= 1:
        return [work(lock_id) for lock_id in ids]
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(work, ids))


def _look_again(store: Store, lock_id: int, now: datetime) -> None:
    """A lock skipped while codes of ours wait for it is looked at again OFFLINE_RECHECK_SECONDS
    later, so that what waits is right minutes after it is back. By the watcher's signal, not a
    queued job: a lock has one signal, the earliest, however many runs skipped it (a job each
    would multiply: every skipped run of every copy queued one more)."""
    if any(claim.owner != "foreign" for claim in store.codes_on_lock(lock_id)):
        signal(store, lock_id, now, OFFLINE_RECHECK_SECONDS)


__all__ = ["OFFLINE_RECHECK_SECONDS", "ReconcileIncomplete", "Reconciler", "acts"]
