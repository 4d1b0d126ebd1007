"""One run of the shared look (staykey.services.shared.SharedLooks.run), with stand-ins for the store,
Nuki's reads and the sync engine: when it reads, what it reads, whom it tells."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from staykey.core.timeutil import FixedClock
from staykey.core.watch import WatchState
from staykey.services.checks import Listing
from staykey.services.shared import SharedLooks
from staykey.store.watch import AwaitedLook

NOW = datetime(2026, 12, 7, 11, 0, tzinfo=UTC)


class Store:
    def __init__(self, looks: list[AwaitedLook]) -> None:
        self.looks = looks
        self.dropped: list[tuple[int, str, datetime]] = []
        self.state: dict[str, Any] = {}

    def awaited_looks(self) -> list[AwaitedLook]:
        return list(self.looks)

    def watch_state(self) -> WatchState:
        return WatchState(codes=40)

    def update_watch_state(self, **fields: Any) -> None:
        self.state |= fields

    def drop_look(self, smartlock_id: int, booking_id: str, at: datetime) -> None:
        self.dropped.append((smartlock_id, booking_id, at))

    def get_booking(self, booking_id: str, now: datetime) -> Any:
        if booking_id == "B-GONE":
            return None
        op = None if booking_id == "B-DONE" else "delete"
        return SimpleNamespace(slots_on=lambda lock_id: [SimpleNamespace(smartlockId=lock_id, op=op)])


class Checks:
    def __init__(self, failed: frozenset[int] = frozenset()) -> None:
        self.reads: list[tuple[list[int], bool]] = []
        self.failed = failed

    def read(self, locks: list[int], codes: int | None, paged: bool = True) -> Listing:
        self.reads.append((locks, paged))
        listing = Listing(at=NOW, reader="account" if len(locks) > 1 else "per-lock", codes=40, calls=1)
        listing.failed = set(self.failed)
        return listing


class Sync:
    def __init__(self) -> None:
        self.told: list[tuple[str, int, Any]] = []

    def process(self, booking_id: str, *, read_back: bool, observed: dict[int, Any]) -> None:
        assert not read_back
        for lock_id, look in observed.items():
            self.told.append((booking_id, lock_id, look))


def run(looks: list[AwaitedLook], checks: Checks | None = None) -> tuple[dict[str, Any], Store, Checks, Sync]:
    store, checks, sync = Store(looks), checks or Checks(), Sync()
    report = SharedLooks(store, checks, lambda: sync, FixedClock(NOW), metric=lambda *a, **k: None).run()  # type: ignore[arg-type]
    return report, store, checks, sync


def look(lock: int, booking: str, ready: float, due: float) -> AwaitedLook:
    return AwaitedLook(lock, booking, NOW + timedelta(seconds=ready), NOW + timedelta(seconds=due))


def test_a_run_with_nothing_due_by_now_reads_nothing() -> None:
    # ready to be read, but none must be yet: they wait for the others of their minute or five
    report, store, checks, sync = run([look(1, "B-1", -30, 30), look(2, "B-2", -200, 100)])
    assert checks.reads == []
    assert sync.told == []
    assert store.dropped == []
    assert report["due"] == 2


def test_one_look_due_reads_every_lock_that_may_be_read_in_one_read_never_pages() -> None:
    report, store, checks, sync = run(
        [look(1, "B-1", -70, -10), look(2, "B-2", -30, 30), look(2, "B-3", -5, 200), look(3, "B-4", 5, 60)]
    )
    # B-4's write may not be read yet (its own first point is 5 s away): not read, not told
    assert checks.reads == [([1, 2], False)]
    assert sorted((b, lock) for b, lock, _ in sync.told) == [("B-1", 1), ("B-2", 2), ("B-3", 2)]
    assert all(lk.complete and not lk.timed and lk.stamp == NOW for _, _, lk in sync.told)
    assert sorted(b for _, b, _ in store.dropped) == ["B-1", "B-2", "B-3"]
    assert report["told"] == 3
    assert report["locks"] == 2


def test_a_lock_whose_read_failed_stays_waiting() -> None:
    report, store, _, sync = run([look(1, "B-1", -70, -10), look(2, "B-2", -70, -10)], Checks(frozenset({1})))
    assert [(b, lock) for b, lock, _ in sync.told] == [("B-2", 2)]
    assert [b for _, b, _ in store.dropped] == ["B-2"]
    assert report["told"] == 1


def test_a_write_confirmed_meanwhile_or_a_booking_gone_costs_no_call() -> None:
    report, store, checks, sync = run([look(1, "B-DONE", -70, -10), look(2, "B-GONE", -70, -10)])
    assert checks.reads == []
    assert sync.told == []
    assert sorted(b for _, b, _ in store.dropped) == ["B-DONE", "B-GONE"]
    assert report["told"] == 0
