"""Looking at many locks' keypad codes at once, and finding which need the reconciler: the watcher's
checks of hot and signalled locks (`services.watch`) and the daily full sweep (`sweep`).

`read` lists the codes of the locks to look at with the read `core.watch.choose_reader` finds cheapest:
one `GET /smartlock/{id}/auth` per lock, the account's whole list in one answer, or its pages (an
account with unknown size is first asked for one page, whose `totalItems` says). `check` classifies one
lock from such a list (`Reconciler.plan_listed`: our records and `core.drift`, no Nuki call): a lock
with nothing to do is recorded as right as it is (the watcher's digest); a lock with drift goes on the
reconcile queue, where `reconcile_lock` reads it afresh (the lock's own list, whether it is online)
before it acts, so a page that shifted under a concurrent change never makes anyone delete or write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from staykey.adapters.reconcile_queue import LockJob, LockQueue
from staykey.core import drift
from staykey.core.drift import Action, Do, Drift, LockPlan
from staykey.core.timeutil import Clock, iso_utc
from staykey.core.watch import LockWatch, Reader, WatchSettings, choose_reader, digest, unpaged_cap
from staykey.nuki import errors as nuki_errors
from staykey.nuki.accounts import APP_AUTH_TYPE
from staykey.nuki.models import KEYPAD_CODE_AUTH_TYPE
from staykey.observability import count, logger
from staykey.services.reconciler import Reconciler, acts
from staykey.store import Store

if TYPE_CHECKING:
    from staykey.nuki import NukiClient, SmartlockAuth
    from staykey.settings import Settings

# What a look at a lock reads: keypad codes and app authorizations (ours for guests with app access;
# others' app users are listed too, and never touched), as `Reconciler.plan_lock` does.
KINDS = (APP_AUTH_TYPE, KEYPAD_CODE_AUTH_TYPE)
# Drift a listing shows on a code of a booking's (changed in Nuki): the booking is told at once.
CHANGED = (Drift.WRONG_CODE, Drift.WRONG_WINDOW)
# Stop classifying when less than this is left of the invocation's time: the rest go on the queue.
RESERVE_SECONDS = 30.0


def _not_about_size(exc: nuki_errors.NukiError) -> bool:
    """A failed read of the account's whole list whose cause is not the list's size: the token
    refused (401/403) or a rate limit (429)."""
    return isinstance(exc, nuki_errors.NukiAuthError) or exc.status == 429


@dataclass
class Listing:
    """Keypad codes of locks as one read found them."""

    at: datetime
    reader: Reader
    auths: dict[int, list[SmartlockAuth]] = field(default_factory=dict)
    codes: int | None = None  # keypad codes on the whole account (an account-wide read counts them)
    failed: set[int] = field(default_factory=set)  # locks whose own read failed
    calls: int = 0

    def of(self, smartlock_id: int) -> list[SmartlockAuth]:
        return self.auths.get(smartlock_id, [])


class LockChecks:
    def __init__(
        self,
        settings: Settings,
        watch: WatchSettings,
        store: Store,
        nuki: Callable[[], NukiClient],
        reconciler: Reconciler,
        queue: LockQueue,
        clock: Clock,
        metric: Callable[..., None] = count,
    ) -> None:
        self.settings = settings
        self.watch = watch
        self.store = store
        self._nuki = nuki
        self.reconciler = reconciler
        self.queue = queue
        self.clock = clock
        self.metric = metric

    @property
    def nuki(self) -> NukiClient:
        return self._nuki()

    # ------------------------------------------------------------------ reading

    def read(self, lock_ids: list[int], codes: int | None, paged: bool = True) -> Listing:
        """The keypad codes of `lock_ids` by the cheapest read (NukiError: a paged read failed; the
        account's whole list failing is read otherwise, and remembered: `core.watch.unpaged_cap`).
        `paged=False`: only reads whose answer is one moment of each lock (the lock's own list, or the
        account's whole list in one answer), so that a code missing from it is gone."""
        at = self.clock.now()
        w = self.watch
        cap = unpaged_cap(w.unpaged_max, self.store.watch_state(), at) if w.unpaged_max else 0
        reader = choose_reader(len(lock_ids), codes, w.page_size, cap, paged)
        first = None
        if codes is None and len(lock_ids) > 1 and paged:
            # How big is the account? One page says (and is the first page of a paged read).
            first = self.nuki.list_auths_page(0, w.page_size, types=KINDS)
            codes = first.pagination.total_items if first.pagination.total_items is not None else None
            reader = choose_reader(len(lock_ids), codes, w.page_size, cap)
            if reader == "account":
                reader = "paged"  # the first page is read already: cheaper to go on with the pages
        auths: list[SmartlockAuth] | None = None
        tried = reader == "account"
        too_big = False  # the whole list failed for what may be its size
        if tried:
            try:
                auths = self.nuki.list_account_auths(types=KINDS)
            except nuki_errors.NukiError as exc:
                # Nuki would not serve the whole list (after the client's retries): read otherwise,
                # now as well. A refused token or a rate limit says nothing of its size.
                logger.warning("the account's whole list failed; read otherwise", codes=codes, error=type(exc).__name__)
                too_big = not _not_about_size(exc)
                reader = choose_reader(len(lock_ids), codes, w.page_size, 0, paged)
        listing = Listing(at=at, reader=reader, codes=codes, calls=int(first is not None) + int(tried))
        if reader == "per-lock":
            for lock_id in lock_ids:
                listing.calls += 1
                try:
                    listing.auths[lock_id] = self.nuki.list_auths(lock_id, types=KINDS)
                except nuki_errors.NukiError as exc:
                    logger.warning("a lock's codes could not be read", smartlock_id=lock_id, error=type(exc).__name__)
                    listing.failed.add(lock_id)
            if too_big and len(listing.failed) < len(lock_ids):
                self._unpaged_failed(codes, at)
            return listing
        if auths is None:
            auths = list(first.results) if first is not None else []
            start = 0 if first is None else 1
            if first is None or (first.pagination.total_pages or 0) > 1:
                for page in self._pages(start):
                    listing.calls += 1
                    auths += page
        if too_big:
            self._unpaged_failed(codes, at)
        listing.codes = len(auths)
        for auth in auths:
            listing.auths.setdefault(auth.smartlock_id, []).append(auth)
        return listing

    def _unpaged_failed(self, codes: int | None, at: datetime) -> None:
        """The whole list failed while Nuki served the same codes otherwise: its size is the trouble.
        Not asked for at this size for a day (`core.watch.unpaged_cap`). A whole list failing in an
        outage (the other read failing too) is asked for again at the next run."""
        self.store.update_watch_state(unpagedFailed=codes, unpagedFailedAt=at)

    def _pages(self, start: int) -> Iterable[list[SmartlockAuth]]:
        page = start
        while True:
            answer = self.nuki.list_auths_page(page, self.watch.page_size, types=KINDS)
            if not answer.results:
                return
            yield list(answer.results)
            total = answer.pagination.total_pages
            if len(answer.results) < self.watch.page_size or (total is not None and page + 1 >= total):
                return
            page += 1

    def capacity(self, listing: Listing) -> None:
        """What the read says of the locks' keypad capacity (KeypadCodes feeds KeypadCapacityAlarm)."""
        counts = {
            lock_id: sum(a.type == KEYPAD_CODE_AUTH_TYPE for a in auths) for lock_id, auths in listing.auths.items()
        }
        if not counts:
            return
        self.metric("KeypadCodes", max(counts.values()))
        for lock_id, n in counts.items():
            if n >= self.settings.capacity_warning_codes:
                self.metric("KeypadCodes", n, {"smartlockId": str(lock_id)})

    # ------------------------------------------------------------------ classifying

    def check(
        self,
        smartlock_id: int,
        listing: Listing,
        reason: str,
        rooms: set[int] | None = None,
        watch: LockWatch | None = None,
    ) -> str:
        """One lock from a listing: "clean" (recorded as right), or "queued" (drift: the reconciler
        reads it afresh and acts)."""
        auths = listing.of(smartlock_id)
        plan = self.plan_listed(smartlock_id, auths, listing.at, rooms)
        acting = [a for a in plan.actions if a.do != Do.NONE]
        if acting and all(a.do == Do.REMEMBER and a.booking_id is None and a.code for a in acting):
            # Codes someone else added, seen on the lock: remembered here (a code listed is there,
            # whatever a page boundary did), no need to read the lock again.
            for action in acting:
                name = next((a.name for a in auths if a.id == action.auth_id), None)
                self.store.record_foreign_code(smartlock_id, str(action.code), name, action.auth_id, listing.at)
            acting = []
        if acting:
            self._tell_bookings(smartlock_id, auths, acting)
            self.queue.send([LockJob(smartlockId=smartlock_id, reason=reason)])
            logger.info(
                "drift found; the reconciler looks again",
                smartlock_id=smartlock_id,
                reason=reason,
                drift=sorted({a.drift.value for a in plan.actions if a.do != "none"}),
            )
            return "queued"
        seen = digest(auths)
        if watch is None or watch.seen != seen or watch.seen_at is None or watch.seen_at < listing.at:
            self.store.watch_seen(smartlock_id, seen, listing.at)
        return "clean"

    def _tell_bookings(self, smartlock_id: int, auths: list[SmartlockAuth], acting: list[Action]) -> None:
        """A code of a booking changed in Nuki (the listing shows it so): the booking is told as a
        `DEVICE_AUTHS` webhook would tell it (`Sync.observe_auth`), at once and whether or not the lock
        is online, so that it never stays or turns `active` on a code the lock no longer holds as
        booked while the reconciler waits for an offline lock to come back."""
        changed = {a.auth_id for a in acting if a.drift in CHANGED and a.booking_id and a.auth_id}
        for auth in auths:
            if auth.id not in changed:
                continue
            try:
                self.reconciler.sync.observe_auth(smartlock_id, auth, deleted=False)
            except Exception as exc:  # the reconciler still comes
                logger.warning(
                    "a changed code not told to its booking", smartlock_id=smartlock_id, error=type(exc).__name__
                )

    def plan_listed(
        self, smartlock_id: int, auths: list[SmartlockAuth], at: datetime, rooms: set[int] | None
    ) -> LockPlan:
        """What the reconciler would do on one lock, from its keypad codes as a list read here at `at`:
        our records and `core.drift`, no Nuki call (whether the lock is online is unknown). A count
        that changed (a code of ours or someone else's came or went) is recorded on the lock."""
        rec = self.reconciler
        # Whether the lock is in a room matters only to a run that may unregister it (not this one).
        plan = LockPlan(smartlock_id, at, in_room=rooms is None or smartlock_id in rooms)
        meta = self.store.get_lock_meta(smartlock_id)
        plan.orphan_attempts = {str(k): int(v) for k, v in (meta.get("orphanDeletes") or {}).items()}
        plan.auths = [a for a in auths if a.type in KINDS]
        s = self.settings
        plan = drift.classify(plan, rec.facts(plan), s.max_codes_per_lock, s.reconcile_stall_seconds)
        counts = {"codeCount": plan.code_count or 0, "ourCodes": plan.ours, "foreignCodes": plan.foreign}
        if not acts(plan) and any(meta.get(key) != value for key, value in counts.items()):
            fields = {**counts, "codesCountedAt": iso_utc(at)}
            self.store.update_lock_state(smartlock_id, fields, lambda old: rec.lock_events(smartlock_id, old, fields))
        return plan

    # ------------------------------------------------------------------ the daily sweep

    def sweep(self, remaining: Callable[[], float] | None = None) -> dict[str, Any]:
        """Every lock, at the sweep's rate: the account's list when that is cheaper than a read per
        lock (classified here; only drift goes on the queue), else every lock on the queue."""
        rooms = self.reconciler.room_locks()
        registered = set(self.store.registered_locks())
        self.store.register_locks(sorted(rooms - registered))
        locks = sorted(rooms | registered)
        codes = self.store.watch_state().codes
        out: dict[str, Any] = {"locks": len(locks), "clean": 0, "queued": 0}
        try:
            if codes is None and len(locks) > 1:
                # How big is the account? The first page says.
                codes = self.nuki.list_auths_page(0, self.watch.page_size, types=KINDS).pagination.total_items
            if choose_reader(len(locks), codes, self.watch.page_size, self.watch.unpaged_max) == "per-lock":
                return self._enqueue_all(locks, out)
            listing = self.read(locks, codes)
        except nuki_errors.NukiError as exc:
            logger.warning("the sweep could not read the account's codes", error=type(exc).__name__)
            return self._enqueue_all(locks, out)
        out |= {"reader": listing.reader, "nukiCalls": listing.calls}
        self.store.update_watch_state(codes=listing.codes, locks=len(locks))
        self.capacity(listing)
        watches = {w.smartlock_id: w for w in self.store.lock_watches()}
        for n, lock_id in enumerate(locks):
            if remaining is not None and remaining() < RESERVE_SECONDS:
                self.queue.send([LockJob(smartlockId=i, reason="scheduled") for i in locks[n:]])
                out["queued"] += len(locks) - n
                break
            if lock_id in listing.failed:
                self.queue.send([LockJob(smartlockId=lock_id, reason="scheduled")])
                out["queued"] += 1
                continue
            out[self.check(lock_id, listing, "sweep", rooms, watches.get(lock_id))] += 1
        logger.info("sweep done", **out)
        self.metric("ReconcileLocksQueued", out["queued"])
        return out

    def _enqueue_all(self, locks: list[int], out: dict[str, Any]) -> dict[str, Any]:
        self.queue.send([LockJob(smartlockId=lock_id, reason="scheduled") for lock_id in locks])
        out |= {"reader": "per-lock", "queued": len(locks)}
        logger.info("sweep queued every lock", locks=len(locks))
        self.metric("ReconcileLocksQueued", len(locks))
        return out


__all__ = ["Listing", "LockChecks"]
