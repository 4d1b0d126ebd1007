"""Polling the activity log of every lock at once: `GET /smartlock/log` from one cursor for the whole
account, paged with Nuki's `id` cursor (one call per 50 entries, however many locks), for accounts
without webhooks (Nuki's Advanced API) and to fill in what lost webhooks missed. When it runs is the
watcher's decision (`core.watch`: often while a stay runs, rarely otherwise, and with webhooks only to
fill their gaps).

Every entry of one of our locks is recorded by `Activity.record`, the way `DEVICE_LOGS` webhooks are,
so a booking's activity is the same with webhooks on or off, and an entry seen both ways is stored
once. An entry the poll stores that is older than `LATE_AFTER` is one a webhook should have brought:
with webhooks registered, deliveries have lapsed (the watcher polls more often for a while).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from staykey.core.timeutil import iso_utc
from staykey.nuki import LOG_PAGE_MAX, NukiError, SmartlockLog
from staykey.observability import count, logger

if TYPE_CHECKING:
    from staykey.nuki import NukiClient
    from staykey.services.activity import Activity

# Polling reads again this far behind its cursor: Nuki's log can lag behind the lock, and an
# entry that shows up late with an older date must still be seen. Re-reading costs one GetItem
# per entry (already stored: skipped).
POLL_OVERLAP = timedelta(minutes=15)
# The first poll of an account: how far back to read.
FIRST_POLL_LOOKBACK = timedelta(days=1)
# At most this many pages (50 entries each) per run; a longer backlog is cut (logged).
POLL_MAX_PAGES = 400
# The cursor is saved after this many entries and at the end (a crash re-reads at most these).
POLL_CURSOR_EVERY = 50
# Stop starting new work when less than this is left of the invocation's time.
POLL_RESERVE_SECONDS = 20.0
# An entry this old when the poll first stores it was not delivered by a webhook.
LATE_AFTER = timedelta(minutes=2)


@dataclass
class PollReport:
    """What one polling run did, for the log line and the function's answer."""

    read: int = 0
    stored: int = 0
    late: int = 0  # stored by this poll, older than LATE_AFTER: webhooks did not bring them
    pages: int = 0
    failed: bool = False
    unfinished: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "stored": self.stored,
            "late": self.late,
            "pages": self.pages,
            "failed": self.failed,
            "unfinished": self.unfinished,
        }


class LogPoller:
    """Reads the account's log and records what it reads through `activity` (its store and clock too)."""

    def __init__(self, activity: Activity, nuki: Callable[[], NukiClient]) -> None:
        self.activity = activity
        self.store = activity.store
        self.clock = activity.clock
        self._nuki = nuki
        self._ours: dict[int, bool] = {}

    def ours(self, smartlock_id: int) -> bool:
        """Whether the lock is one we look after (registered: every lock a room has or had; a booking
        keeps the lock it was given), asked once per lock and container: the account may hold locks
        of no room of ours, whose entries are none of StayKey's business."""
        if smartlock_id not in self._ours:
            self._ours[smartlock_id] = self.store.is_registered(smartlock_id)
        return self._ours[smartlock_id]

    def poll(self, remaining: Callable[[], float] | None = None) -> PollReport:
        """Read the account's log since the cursor (minus the overlap), newest first, and record our
        locks' entries oldest first; the cursor moves to each entry once it is handled, so a run that
        stops early resumes where it stopped."""
        report = PollReport()
        now = self.clock.now()
        cursor_at, _ = self.store.log_cursor()
        since = cursor_at - POLL_OVERLAP if cursor_at else now - FIRST_POLL_LOOKBACK
        fetched: list[SmartlockLog] = []
        reached = False
        last_page = 0
        try:
            for page in self._nuki().iter_account_log_pages(from_date=since, max_pages=POLL_MAX_PAGES):
                report.pages += 1
                last_page = len(page)
                for log in page:  # newest first
                    if log.date < since:
                        reached = True
                        break
                    fetched.append(log)
                if reached or (remaining is not None and remaining() < POLL_RESERVE_SECONDS):
                    break
        except NukiError as exc:
            count("LogPollFailed")
            logger.warning("log poll failed", error=type(exc).__name__, status=exc.status)
            report.failed = True
            return report
        if not reached and report.pages >= POLL_MAX_PAGES and last_page >= LOG_PAGE_MAX:
            count("LogBacklogCut")
            logger.warning(
                "log backlog longer than one run reads; older entries skipped", since=iso_utc(since), read=len(fetched)
            )
        done: SmartlockLog | None = None
        for n, log in enumerate(sorted(fetched, key=lambda entry: (entry.date, entry.id)), start=1):
            if remaining is not None and remaining() < POLL_RESERVE_SECONDS:
                report.unfinished = True
                break
            report.read += 1
            if self.ours(log.smartlock_id) and self.activity.record(log, via="poll"):
                report.stored += 1
                report.late += log.date <= now - LATE_AFTER
            done = log
            if n % POLL_CURSOR_EVERY == 0:
                self.store.advance_log_cursor(done.date, done.id)
        if done is not None:
            self.store.advance_log_cursor(done.date, done.id)
        if report.late:
            count("EntriesPolledLate", report.late)
        return report


__all__ = ["FIRST_POLL_LOOKBACK", "LATE_AFTER", "POLL_OVERLAP", "LogPoller", "PollReport"]
