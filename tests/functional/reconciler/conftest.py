"""Fixtures for the reconciler: the `world` of tests/conftest.py (lifecycle, moto, FakeNuki, clock)
plus a reconciler on it with an in-memory reconcile queue and recorded metrics."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from local.kit.fakes import ListLockQueue
from staykey.core.drift import Action, LockPlan
from staykey.core.models import Booking, BookingIn, BookingStatus
from staykey.services.reconciler import Reconciler
from tests.conftest import World

ROOM_LOCKS = (17000001, 17000099)


@dataclass
class Metrics:
    emitted: list[tuple[str, float, dict[str, str]]] = field(default_factory=list)

    def __call__(self, name: str, value: float = 1, dimensions: Mapping[str, str] | None = None) -> None:
        self.emitted.append((name, value, dict(dimensions or {})))

    def total(self, name: str, **dims: str) -> float:
        return sum(v for n, v, d in self.emitted if n == name and all(d.get(k) == x for k, x in dims.items()))

    def clear(self) -> None:
        self.emitted.clear()


@dataclass
class Rig:
    """The world plus a reconciler; helpers to book stays and to run the reconciler as it runs deployed."""

    world: World
    rec: Reconciler
    queue: ListLockQueue
    metrics: Metrics

    def book(self, booking_id: str = "B-1001", settle: bool = True, **kw: object) -> Booking:
        body = {
            "bookingId": booking_id,
            "roomId": "room-12",
            "guest": {"name": "Ada Lovelace", "email": "ada@example.org", "locale": "en"},
            "checkIn": "2026-11-27",
            "checkOut": "2026-11-29",
            **kw,
        }
        self.world.bookings.create(BookingIn.model_validate(body))
        if settle:
            self.world.settle()
        return self.booking(booking_id)

    def booking(self, booking_id: str = "B-1001") -> Booking:
        return self.world.bookings.get(booking_id)

    def active(self, booking_id: str = "B-1001") -> Booking:
        b = self.booking(booking_id)
        assert b.status == BookingStatus.ACTIVE, (b.status, [lk.error for lk in b.locks])
        return b

    def run(self) -> list[LockPlan]:
        """A scheduled run as deployed: enqueue every lock, then reconcile each message once
        (follow-ups the run queues stay queued; `follow_ups()` runs them)."""
        self.rec.enqueue_all()
        return [self.rec.reconcile_lock(job.smartlockId, attempt=job.attempt) for job in self.queue.drain()]

    def follow_ups(self) -> list[LockPlan]:
        return [self.rec.reconcile_lock(job.smartlockId, attempt=job.attempt) for job in self.queue.drain()]

    def heal_until_quiet(self, rounds: int = 6) -> None:
        """Runs, Nuki applying writes and the lifecycle's follow-ups between them, until a run finds
        nothing to do."""
        for _ in range(rounds):
            plans = self.run()
            self.world.settle()
            self.world.nuki.apply()
            self.follow_ups()
            self.world.settle()
            if not any(a.do != "none" for p in plans for a in p.actions if a.drift not in ("foreign",)):
                return
        raise AssertionError("the reconciler kept finding work")

    def code_on(self, lock_id: int, pin: str) -> str | None:
        """The name of the code `pin` on a lock in FakeNuki, if any."""
        return self.world.nuki.codes(lock_id).get(int(pin))


def actions(plans: list[LockPlan], *, drift: str | None = None, do: str | None = None) -> list[Action]:
    return [
        a
        for p in plans
        for a in p.actions
        if (drift is None or a.drift.value == drift) and (do is None or a.do.value == do)
    ]


@pytest.fixture
def rig(world: World) -> Rig:
    queue = ListLockQueue()
    metrics = Metrics()
    rec = Reconciler(
        settings=world.bookings.settings,
        store=world.store,
        nuki=lambda: world.nuki,  # type: ignore[arg-type, return-value]
        bookings=lambda: world.bookings,
        sync=lambda: world.sync,
        queue=queue,
        clock=world.clock,
        metric=metrics,
    )
    world.add_room(locks=ROOM_LOCKS)
    return Rig(world, rec, queue, metrics)
