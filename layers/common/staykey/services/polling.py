"""Polling the locks' activity logs: `GET /smartlock/{id}/log` from a cursor kept per lock, on a
schedule (the log poller), for accounts without webhooks (Nuki's Advanced API) and to fill in what
a lost webhook missed.

Every entry read is recorded by `Activity.record`, the way `DEVICE_LOGS` webhooks are, so a
booking's activity is the same with webhooks on or off, and an entry seen both ways is stored once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from staykey.core.timeutil import iso_utc, parse_iso
from staykey.nuki import LOG_PAGE_MAX, NukiError, SmartlockLog
from staykey.observability import count, logger

if TYPE_CHECKING:
    from staykey.nuki import NukiClient
    from staykey.services.activity import Activity

# Polling reads again this far behind its cursor: Nuki's log can lag behind the lock, and an
# entry that shows up late with an older date must still be seen. Re-reading costs one GetItem
# per entry (already stored: skipped).
POLL_OVERLAP = timedelta(minutes=15)
# A lock polled for the first time: how far back to read.
FIRST_POLL_LOOKBACK = timedelta(days=1)
# At most this many pages (50 entries each) per lock and run; a longer backlog is cut (logged).
POLL_MAX_PAGES = 40
# The cursor is saved after this many entries and at the end (a crash re-reads at most these).
POLL_CURSOR_EVERY = 25
# Stop starting new work when less than this is left of the invocation's time.
POLL_RESERVE_SECONDS = 20.0


@dataclass
class PollReport:
    """What one polling run did, for the log line and the function's answer."""

    locks: int = 0
    read: int = 0
    stored: int = 0
    failed: list[int] = field(default_factory=list)
    unfinished: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "locks": self.locks,
            "read": self.read,
            "stored": self.stored,
            "failed": self.failed,
            "unfinished": self.unfinished,
        }


class LogPoller:
    """Reads the locks' logs and records what it reads through `activity` (its store and clock too)."""

    def __init__(self, activity: Activity, nuki: Callable[[], NukiClient]) -> None:
        self.activity = activity
        self.store = activity.store
        self.clock = activity.clock
        self._nuki = nuki

    def poll_all(self, remaining: Callable[[], float] | None = None) -> PollReport:
        """Read the logs of every lock we look after (every room's, and those a room had: a booking
        keeps the lock it was given when the room's locks are replaced) from their cursors; the
        least recently polled first, so a run cut short by `remaining` (seconds left) never starves
        the same locks."""
        lock_ids = {lock_id for room in self.store.list_rooms() for lock_id in room.smartlockIds}
        lock_ids |= set(self.store.registered_locks())
        metas = {lock_id: self.store.get_lock_meta(lock_id) for lock_id in lock_ids}
        order = sorted(lock_ids, key=lambda lock_id: (str(metas[lock_id].get("logPolledAt", "")), lock_id))
        report = PollReport()
        for lock_id in order:
            if remaining is not None and remaining() < POLL_RESERVE_SECONDS:
                report.unfinished.append(lock_id)
                continue
            report.locks += 1
            try:
                read, stored, finished = self.poll_lock(lock_id, metas[lock_id], remaining)
            except NukiError as exc:
                count("LogPollFailed")
                logger.warning("log poll failed", smartlock_id=lock_id, error=type(exc).__name__, status=exc.status)
                report.failed.append(lock_id)
                continue
            report.read += read
            report.stored += stored
            if not finished:
                report.unfinished.append(lock_id)
        return report

    def poll_lock(
        self, smartlock_id: int, meta: dict[str, Any] | None = None, remaining: Callable[[], float] | None = None
    ) -> tuple[int, int, bool]:
        """Read one lock's log since its cursor and record it oldest first; (read, stored, finished).

        The cursor (`logCursorAt`/`logCursorId` in LOCK#/META) moves to each entry once it is
        recorded, so a run that stops early resumes where it stopped.
        """
        meta = self.store.get_lock_meta(smartlock_id) if meta is None else meta
        now = self.clock.now()
        cursor_at = parse_iso(meta.get("logCursorAt"))
        since = cursor_at - POLL_OVERLAP if cursor_at else now - FIRST_POLL_LOOKBACK
        fetched: list[SmartlockLog] = []
        reached_since = False
        pages = 0
        last_page_size = 0
        for page in self._nuki().iter_log_pages(smartlock_id, from_date=since, max_pages=POLL_MAX_PAGES):
            pages += 1
            last_page_size = len(page)
            for log in page:  # newest first
                if log.date < since:
                    reached_since = True
                    break
                fetched.append(log)
            if reached_since:
                break
        if not reached_since and pages >= POLL_MAX_PAGES and last_page_size >= LOG_PAGE_MAX:
            count("LogBacklogCut")
            logger.warning(
                "log backlog longer than one run reads; older entries skipped",
                smartlock_id=smartlock_id,
                since=iso_utc(since),
                read=len(fetched),
            )
        stored = 0
        finished = True
        done: SmartlockLog | None = None
        for n, log in enumerate(sorted(fetched, key=lambda entry: (entry.date, entry.id)), start=1):
            if remaining is not None and remaining() < POLL_RESERVE_SECONDS:
                finished = False
                break
            if self.activity.record(log, via="poll"):
                stored += 1
            done = log
            if n % POLL_CURSOR_EVERY == 0:
                self._advance_cursor(smartlock_id, done)
        if done is not None:
            self._advance_cursor(smartlock_id, done)
        self.store.update_lock_meta(smartlock_id, logPolledAt=iso_utc(now))
        return len(fetched), stored, finished

    def _advance_cursor(self, smartlock_id: int, log: SmartlockLog) -> None:
        self.store.update_lock_meta_if_newer(smartlock_id, "logCursorAt", log.date, logCursorId=log.id)


__all__ = ["FIRST_POLL_LOOKBACK", "POLL_OVERLAP", "LogPoller", "PollReport"]
