"""The watcher: every `LogPollSchedule` it decides (`core.watch.plan_tick`) what to read now, and reads
it: the account's log when due (`services.polling`), and the keypad codes of the hot locks when their
check is due and of the locks a signal names (`services.checks`); a lock whose codes are not what the
reconciler last found right goes to the reconciler. A run with nothing due costs no Nuki call and a
few reads of the table (the watch items, its own record, whether webhooks are registered).

Signals come from elsewhere (`Store.signal_lock`): a `DEVICE_AUTHS` about a code of ours on a lock its
booking does not use or about our reserved PIN (`services.sync`), a lock back online (`services.activity`),
a write Nuki failed (`services.sync`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from staykey.core import watch as core_watch
from staykey.core.timeutil import Clock
from staykey.core.watch import WatchSettings
from staykey.nuki import errors as nuki_errors
from staykey.observability import count, logger
from staykey.services.checks import LockChecks
from staykey.store import Store

if TYPE_CHECKING:
    from staykey.services.polling import LogPoller
    from staykey.settings import Settings

# Stop reading locks' codes when less than this is left of the invocation's time.
RESERVE_SECONDS = 30.0


@dataclass
class TickReport:
    """What one run of the watcher did, for the log line and the function's answer."""

    hot: int = 0
    log: dict[str, Any] | None = None
    checked: int = 0
    reader: str | None = None
    nukiCalls: int = 0
    clean: int = 0
    queued: int = 0
    lapsed: bool = False
    failed: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Watcher:
    def __init__(
        self,
        settings: WatchSettings,
        store: Store,
        poller: LogPoller,
        checks: LockChecks,
        clock: Clock,
        metric: Callable[..., None] = count,
    ) -> None:
        self.settings = settings
        self.store = store
        self.poller = poller
        self.checks = checks
        self.clock = clock
        self.metric = metric

    def tick(self, remaining: Callable[[], float] | None = None) -> TickReport:
        now = self.clock.now()
        state = self.store.watch_state()
        webhooks = self.store.get_config("WEBHOOK") is not None
        signals = self.store.lock_signals()
        if core_watch.hot_check_due(state, now, self.settings):
            watches = {w.smartlock_id: w for w in self.store.lock_watches()}  # every lock's: which are hot
        else:
            watches = {w.smartlock_id: w for lock_id in signals if (w := self._watch(lock_id)) is not None}
        for lock_id in signals.keys() - watches.keys():
            watches[lock_id] = core_watch.LockWatch(lock_id)
        plan = core_watch.plan_tick(watches.values(), state, now, self.settings, webhooks, signals)
        report = TickReport(hot=plan.hot)
        record: dict[str, Any] = {}
        if plan.hot_check_due:
            record["hot"] = plan.hot
        if plan.poll_log:
            polled = self.poller.poll(remaining)
            report.log = polled.to_dict()
            report.nukiCalls += polled.pages
            if not polled.failed:
                record["log_polled_at"] = now
            if webhooks and (until := core_watch.lapsed(polled.late, now, self.settings)) is not None:
                report.lapsed = True
                record["lapsed_until"] = until
                logger.warning("webhook deliveries lapsed: polling fills in", entries=polled.late)
        if plan.check and not (remaining is not None and remaining() < RESERVE_SECONDS):
            self._check(plan, watches, state, report, record)
        for lock_id, gone in plan.prune.items():
            self.store.unwatch_stays(lock_id, gone)
        if record:
            self.store.update_watch_state(**{_camel(k): v for k, v in record.items()})
        logger.info("watch run", **report.to_dict())
        return report

    def _watch(self, smartlock_id: int) -> core_watch.LockWatch | None:
        return self.store.lock_watch(smartlock_id)

    def _check(
        self,
        plan: core_watch.TickPlan,
        watches: dict[int, core_watch.LockWatch],
        state: core_watch.WatchState,
        report: TickReport,
        record: dict[str, Any],
    ) -> None:
        now = self.clock.now()
        # The signals this look answers, taken first: one written during the look stays for the next.
        taken = {
            lock_id: w.check_at
            for lock_id in plan.check
            if (w := watches.get(lock_id)) is not None and w.check_at is not None and w.signalled(now)
        }
        for lock_id, at in taken.items():
            self.store.take_signal(lock_id, at)
        try:
            listing = self.checks.read(plan.check, state.codes)
        except nuki_errors.NukiError as exc:
            logger.warning("the hot locks' codes could not be read", error=type(exc).__name__)
            return
        report.checked, report.reader, report.failed = len(plan.check), listing.reader, sorted(listing.failed)
        report.nukiCalls += listing.calls
        self.checks.capacity(listing)
        if listing.reader != "per-lock":
            record["codes"] = listing.codes
        # An account-wide read shows every lock: any lock found right before that changed is a suspect too.
        extra = [
            lock_id
            for lock_id, w in watches.items()
            if listing.reader != "per-lock" and lock_id not in plan.check and w.seen is not None
        ]
        looked = [lock_id for lock_id in [*plan.check, *extra] if lock_id not in listing.failed]
        suspects = core_watch.suspects(looked, listing.auths, watches, plan.forced)
        for lock_id in suspects:
            outcome = self.checks.check(lock_id, listing, "check", None, watches.get(lock_id))
            report.clean += outcome == "clean"
            report.queued += outcome == "queued"
        for lock_id, at in taken.items():
            if lock_id not in listing.failed:
                self.store.clear_signal(lock_id, at)
        if plan.hot_check_due:
            record["hot_checked_at"] = now
        self.metric("LocksChecked", len(looked))


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def watch_settings(settings: Settings) -> WatchSettings:
    """The watcher's settings from the service's (the template's parameters)."""
    return WatchSettings(
        hot_check=settings.hot_check_minutes * 60,
        log_hot=settings.hot_log_poll_minutes * 60,
        gap_fill=settings.gap_fill_minutes * 60,
        hot_after=settings.hot_after_minutes * 60,
        log_polling=settings.log_polling == "ENABLED",
        page_size=settings.nuki_auth_page_size,
        unpaged_max=settings.nuki_unpaged_max_codes,
    )


__all__ = ["TickReport", "Watcher", "watch_settings"]
