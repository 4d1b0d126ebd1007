"""The shared look (the watcher function's `SharedLooks` schedule, every minute): the writes nobody
waits for (`core.looks.shared`: a removal whose code's window has closed, a code the provisioning
schedule put on hours before its stay) are confirmed by one read of all the locks they are in
flight on, told to every booking waiting on them, instead of one read-back per booking and lock.

A round that sends such a write asks for the look (`Store.await_look`: the lock, the booking, from
when: the write's own first read-back point; by when: a minute after a removal's send, five after a
create's, `core.looks.SHARED_FIRST`). A run reads when any look is due by then, the locks of every
look that may be read, so the writes of that minute or five share it; with a read
whose answer is one moment of each lock, so that a code missing from it is gone: the account's whole
list in one answer (`GET /smartlock/auth`) while the account holds at most NUKI_UNPAGED_MAX_CODES
codes and more than one lock is due, else each lock's own list. Pages are never used: a page can
shift under a concurrent delete, and a removal confirmed by a code that slid to an earlier page
would be a lie. If the account's list fails, the run reads the due locks one by one (and the
account's list is not asked for at that size for a day: `core.watch.unpaged_cap`).

Each waiting booking gets its locks' lists as complete looks, in one round (`Sync.process`; its look
items are dropped first, and the round asks again for a write still in flight), stamped with when they
were read: a write sent after that is not judged by it (`core.observe.apply_look`), and the look
teaches nothing of the lock's sync delay. The booking's own read-backs still come, no sooner than
SHARED_WAIT after the lock's last look: a run that does not come (or fails) delays a confirmation by
that, never loses it. A run with nothing due makes no Nuki call and reads four small partitions.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from staykey.core.round import Look
from staykey.core.timeutil import Clock
from staykey.observability import count, logger
from staykey.services.checks import Listing, LockChecks
from staykey.store import Store

if TYPE_CHECKING:
    from staykey.services.sync import Sync

# Stop telling bookings when less than this is left of the invocation's time: the rest stay due.
RESERVE_SECONDS = 10.0


class SharedLooks:
    def __init__(
        self,
        store: Store,
        checks: LockChecks,
        sync: Callable[[], Sync],
        clock: Clock,
        metric: Callable[..., None] = count,
    ) -> None:
        self.store = store
        self.checks = checks
        self._sync = sync
        self.clock = clock
        self.metric = metric

    def run(self, remaining: Callable[[], float] | None = None) -> dict[str, Any]:
        now = self.clock.now()
        awaited = self.store.awaited_looks()
        # A run reads when a write's look is due (its `by`), and then for every write that may be read.
        due = [(a.smartlock_id, a.booking_id, a.at) for a in awaited if a.at <= now]
        report: dict[str, Any] = {"due": len(due), "locks": 0, "told": 0, "nukiCalls": 0}
        if not any(a.by <= now for a in awaited):
            return report
        # A write confirmed meanwhile (its webhook, its own read-back) needs no look: no call for it.
        waiting = [(lock_id, booking_id, at) for lock_id, booking_id, at in due if self._in_flight(lock_id, booking_id)]
        for lock_id, booking_id, at in set(due) - set(waiting):
            self.store.drop_look(lock_id, booking_id, at)
        due = waiting
        if not due:
            return report
        locks = sorted({lock_id for lock_id, _, _ in due})
        listing = self._read(locks)
        report |= {"locks": len(locks), "reader": listing.reader, "nukiCalls": listing.calls}
        by_booking: dict[str, list[tuple[int, datetime]]] = {}
        for lock_id, booking_id, at in due:
            if lock_id not in listing.failed:  # else it stays due: the next run reads it again
                by_booking.setdefault(booking_id, []).append((lock_id, at))
        for booking_id, looked in by_booking.items():
            if remaining is not None and remaining() < RESERVE_SECONDS:
                break
            # Done before the booking is told: its round asks again (another `at`) for a write still in flight.
            for lock_id, at in looked:
                self.store.drop_look(lock_id, booking_id, at)
            observed = {
                lock_id: Look(auths=listing.of(lock_id), complete=True, stamp=listing.at, timed=False)
                for lock_id, _ in looked
            }
            try:
                self._sync().process(booking_id, read_back=False, observed=observed)
                report["told"] += len(observed)
            except KeyError:
                pass  # the booking is gone: nothing waits
            except Exception as exc:  # its own read-backs still come (SHARED_WAIT)
                logger.warning("a shared look not told", booking_id=booking_id, error=type(exc).__name__)
        logger.info("shared look", **report)
        self.metric("SharedLookLocks", len(locks))
        return report

    def _in_flight(self, smartlock_id: int, booking_id: str) -> bool:
        booking = self.store.get_booking(booking_id, self.clock.now())
        return booking is not None and any(
            slot.op in ("create", "update", "delete") for slot in booking.slots_on(smartlock_id)
        )

    def _read(self, locks: list[int]) -> Listing:
        # The account's whole list that fails is read lock by lock (`LockChecks.read`).
        listing = self.checks.read(locks, self.store.watch_state().codes, paged=False)
        if listing.reader == "account":
            self.store.update_watch_state(codes=listing.codes)
        return listing


__all__ = ["SharedLooks"]
