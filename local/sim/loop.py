"""The simulator's clock and its one seeded discrete-event loop.

Time is virtual: `now()` starts at a chosen instant and moves only when the loop takes the next
event. Every event runs in a fiber (a greenlet), so code under test may "wait" (a Nuki call's
latency, the Nuki client's backoff sleep) without a real sleep: the fiber yields to the loop, which
runs whatever else is due meanwhile (another invocation on the same booking, a webhook landing),
and resumes it when its time comes. One fiber runs at a time, events due at the same instant run
in the order they were scheduled, and every random choice comes from the loop's seeded RNG, so the
same seed gives the same run, event for event.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import greenlet
from pydantic_core import TzInfo

# The types of tzinfo whose offset is one for every instant (datetime.UTC is a timezone).
_FIXED_OFFSETS = (timezone, TzInfo)

# The virtual monotonic clock starts here (a real monotonic clock never starts at 0 either).
MONOTONIC_ORIGIN = 1_000_000.0


class Killed(BaseException):
    """Raised inside a fiber to end its invocation abruptly (a Lambda timeout or crash).

    A BaseException, so `except Exception` in the code under test does not swallow it, as nothing
    in a real function survives its process dying.
    """


# An event on the heap: (time, sequence number, what to run). Tuples, because the heap compares
# them millions of times a season; the sequence number keeps events of one instant in the order
# they were scheduled, and makes every comparison end before `run`.
_Event = tuple[float, int, Callable[[], None]]


class Loop:
    def __init__(self, start: datetime, seed: int) -> None:
        self.origin = start
        self.t = 0.0
        self.seed = seed
        self.rng = random.Random(seed)
        self._heap: list[_Event] = []
        self._seq = 0
        self._main = greenlet.getcurrent()
        self.events_run = 0
        self.current: str = ""
        self.after_event: list[Callable[[], None]] = []
        self._seconds_at: dict[datetime, float] = {}
        self._now: tuple[datetime, float, datetime] | None = None  # (origin, t, now) of the last `now`

    # -- time

    def now(self) -> datetime:
        """The virtual time; the same datetime (immutable) while the time stands still: the
        services and the checker ask for it many times in one instant."""
        known = self._now
        if known is not None and known[1] == self.t and known[0] is self.origin:
            return known[2]
        now = self.origin + timedelta(seconds=self.t)
        self._now = (self.origin, self.t, now)
        return now

    def monotonic(self) -> float:
        return MONOTONIC_ORIGIN + self.t

    def at_time(self, when: datetime) -> float:
        """Seconds from the start to `when`. The answer for an instant with a fixed offset (UTC, or
        an offset as parsed) is remembered (the checker asks for the same few thousand instants
        after every minute of a season): two such datetimes are equal only when they are the same
        instant, so they are the same distance from the start. Others (a zone with daylight
        saving, where an equal wall time may be another instant) are computed each time."""
        if type(when.tzinfo) in _FIXED_OFFSETS:
            seconds = self._seconds_at.get(when)
            if seconds is None:
                seconds = self._seconds_at[when] = (when - self.origin).total_seconds()
            return seconds
        return (when - self.origin).total_seconds()

    # -- scheduling

    def call_at(self, t: float, fn: Callable[[], Any], name: str = "") -> None:
        """Run `fn` in a fiber of its own at virtual time `t` (never before now)."""
        self._seq += 1
        heapq.heappush(self._heap, (max(t, self.t), self._seq, self._fiber(fn, name)))

    def call_later(self, delay: float, fn: Callable[[], Any], name: str = "") -> None:
        self.call_at(self.t + max(0.0, delay), fn, name)

    def _fiber(self, fn: Callable[[], Any], name: str) -> Callable[[], None]:
        def start() -> None:
            fiber = greenlet.greenlet(lambda: self._body(fn, name), parent=self._main)
            fiber.switch()

        return start

    def _body(self, fn: Callable[[], Any], name: str) -> None:
        self.current = name
        fn()

    def in_fiber(self) -> bool:
        return greenlet.getcurrent() is not self._main

    def sleep(self, seconds: float) -> None:
        """Inside a fiber: let virtual time pass; the loop runs what falls due meanwhile. Outside
        one (the set-up before a run, as an operator preparing the world) waiting takes no time."""
        if not self.in_fiber():
            return
        me = greenlet.getcurrent()
        name = self.current
        self._seq += 1

        def resume() -> None:
            self.current = name
            me.switch()

        heapq.heappush(self._heap, (self.t + max(0.0, seconds), self._seq, resume))
        self._main.switch()

    # -- running

    def next_time(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def step(self) -> bool:
        """Run the next event; False when none is left."""
        if not self._heap:
            return False
        at, _, run = heapq.heappop(self._heap)
        self.t = max(self.t, at)
        self.events_run += 1
        run()
        for hook in self.after_event:
            hook()
        return True

    def run_until(self, t_end: float) -> None:
        while self._heap and self._heap[0][0] <= t_end:
            self.step()
        self.t = max(self.t, t_end)

    def pending(self) -> int:
        return len(self._heap)


__all__ = ["MONOTONIC_ORIGIN", "Killed", "Loop"]
