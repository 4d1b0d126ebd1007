"""9. Fleet seasons on the simulator's virtual clock (issue 17): what a fleet of 1,000 or 10,000 locks
costs Nuki and AWS, with and without webhooks, for this tree and for the design before it.

The simulator (`local.sim`) runs StayKey's real services and real Nuki client against the in-process
Nuki sandbox on a virtual clock: a day of a fleet takes minutes, not a day. The same driver runs the
design before issue 17 from its commit (`TODAY_REF`: main before issue 17 was merged, with every fix
since the issue was filed; unpacked with `git archive` into a temporary directory, this file copied
there), so both designs meet the same fleet, the same bookings and the same guests.

The fleet: `LOCKS` locks in Europe/Berlin; 2 % of them are entrances shared by 8 rooms each, every
other lock is a room's door. Each lock applies writes after its own sync delay (0.5 s for 30 %, 2 s
for 50 %, 10 s for 20 %) and holds 0-3 codes someone else added (cleaners, owners). Each room has a
calendar of stays (1-7 nights, a gap of 0-5 nights between them: about 65 % occupancy), booked 3 h
to 30 days ahead (and up to 12 hours more: a shop's bookings come in through the day) as dates
(check-in 15:00, check-out 11:00: the times every stay shares), 5 %
checked out early and 4 % cancelled; a guest types the PIN at the door once a night. Nuki answers
each call after 50-150 ms. The invariant checker's periodic sweeps are off here (the seeded
seasons check the invariants; this measures).

Measured, after a warm-up day (bookings already running, codes on locks):

* Nuki calls per idle lock per day: a fleet with rooms and codes of others but no stay, for a day;
* Nuki calls per booking: every call an invocation of one booking made (its shop requests,
  schedules and follow-ups) over its whole life, for bookings that started and ended in the run,
  plus the webhook processor's calls shared among them; the readiness checks (48 h and 4 h before a
  stay, `GET /smartlock/{id}` per lock, in both designs) are reported beside it;
* `POST /bookings` → `active` for stays booked within the lead (the code goes on at once), by the
  sync delay of the room's slowest lock: median, 90th percentile, and the share within
  1.3 x delay + 0.5 s;
* peak Nuki calls per second for the whole account: the most calls in any one second, and in any
  ten seconds (divided by ten);
* DynamoDB traffic by partition key (request units, from the sizes of the items read and written,
  the indexes' partitions included): the largest share of any one key;
* AWS cost of background work (the watcher / log poller, the sweep / reconciler, reconcile-lock)
  per 1,000 locks and month: Lambda requests and duration (the invocation's virtual time, Nuki's
  latency and pacing included, plus 5 ms per DynamoDB call), DynamoDB request units, SQS requests
  and EventBridge Scheduler invocations, at `bench.cost`'s prices.

The design before issue 17 polls every lock's log every 5 minutes and reconciles every lock every
15 minutes: its background work is the same every hour and for every lock, so it is measured over
shorter windows (`WINDOWS`, `IDLE_HOURS`) scaled to a day, and on a smaller fleet (the run behind
RESULTS.md: 200 locks, as the simulator runs its per-lock polling slowly); its per-booking and
time-to-active figures come from the bookings of that window. Its peak at 10,000 locks is not
measured (the issue sets no goal for it).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _path in (str(ROOT / "layers" / "common"), str(ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

TODAY_REF = "8c09edc"  # the design before issue 17: main when issue 17 was merged into it
START = datetime(2026, 9, 7, 3, 0, tzinfo=UTC)  # a Monday night, no daylight-saving change near
HOUR, DAY = 3600.0, 86400.0
FIRST_LOCK = 30_000_001
DELAYS = ((0.5, 0.3), (2.0, 0.5), (10.0, 0.2))
NIGHTS = (1, 2, 2, 3, 3, 4, 5, 7)
GAPS = (0, 0, 1, 1, 2, 3, 5)
LEADS_DAYS = (0.125, 1, 1, 3, 5, 7, 14, 14, 30)
LATENCY = (0.05, 0.15)
ARRIVAL_SPREAD = 12 * 3600.0  # seconds before its lead within which a booking comes in
BOOKING_PREFIXES = ("shop", "provision", "expire", "lifecycle", "shared-look")
BACKGROUND_PREFIXES = ("log-poller", "reconciler", "reconcile")
PRICES = {  # bench.cost.PRICES (eu-central-1, on-demand, 2025), repeated so the old tree needs no import
    "lambda_request": 0.20 / 1e6,
    "lambda_gb_s_arm64": 0.0000133334,
    "dynamodb_wru": 0.7625 / 1e6,
    "dynamodb_rru": 0.1525 / 1e6,
    "sqs_request": 0.40 / 1e6,
    "scheduler_invocation": 1.00 / 1e6,
}


# ------------------------------------------------------------------------------------ measuring


def _size(value: Any) -> int:
    """Roughly DynamoDB's size of an item or value (names and values, in bytes)."""
    if isinstance(value, dict):
        if len(value) == 1:
            ((kind, raw),) = value.items()
            if kind in ("S", "N", "B"):
                return len(raw) if isinstance(raw, str | bytes) else 8
            if kind in ("BOOL", "NULL"):
                return 1
            if kind == "M":
                return 3 + sum(len(k) + _size(v) for k, v in raw.items())
            if kind == "L":
                return 3 + sum(_size(v) for v in raw)
            if kind in ("SS", "NS"):
                return sum(len(x) for x in raw)
        return sum(len(k) + _size(v) for k, v in value.items())
    return 8


class Meter:
    """Counts what the world does: Nuki calls (with the invocation that made each), DynamoDB request
    units per partition key and per invocation, invocations and their virtual durations."""

    INDEX_KEYS = (("gsi1", "gsi1pk"), ("gsi2", "gsi2pk"), ("gsi3", "gsi3pk"))

    def __init__(self, world: Any) -> None:
        self.w = world
        self.on = False
        self.calls: list[tuple[float, str, str, str]] = []  # (t, method, path, invocation)
        self.units: Counter[str] = Counter()  # partition -> request units
        self.units_by: Counter[str] = Counter()  # invocation kind -> request units
        self.ddb_calls_by: Counter[str] = Counter()
        self.rru_by: Counter[str] = Counter()
        self.wru_by: Counter[str] = Counter()
        self.invocations: Counter[str] = Counter()
        self.seconds_by: Counter[str] = Counter()
        link = world.link
        previous = link.after_call

        def after_call(call: Any) -> None:
            # Every call from the start (a booking's life began before the window); the window's
            # figures filter by time.
            self.calls.append((world.loop.t, call.method, call.path, world.loop.current))
            if previous is not None:
                previous(call)

        link.after_call = after_call
        self._wrap_ddb(world.ddb)
        invoke = world.invoke

        def timed_invoke(label: str, fn: Callable[[], Any]) -> bool:
            started = world.loop.t
            try:
                return bool(invoke(label, fn))
            finally:
                if self.on:
                    kind = kind_of(label)
                    self.invocations[kind] += 1
                    self.seconds_by[kind] += world.loop.t - started

        world.invoke = timed_invoke

    def _add(self, partition: str, units: float, write: bool) -> None:
        if not self.on:
            return
        kind = kind_of(self.w.loop.current)
        self.units[partition] += units
        self.units_by[kind] += units
        (self.wru_by if write else self.rru_by)[kind] += units

    def _wrap_ddb(self, ddb: Any) -> None:
        meter = self

        def read_units(items: list[Any], consistent: bool) -> float:
            return math.ceil(sum(_size(i) for i in items) / 4096 or 1) * (1.0 if consistent else 0.5)

        def write_item(item: Any, factor: float = 1.0) -> None:
            if item is None:
                return
            wru = math.ceil(max(1, _size(item)) / 1024) * factor
            meter._add(f"table:{item.get('pk', {}).get('S')}", wru, True)
            for index, key in Meter.INDEX_KEYS:
                if key in item:
                    meter._add(f"{index}:{item[key].get('S')}", wru, True)

        get_item, query, batch_get = ddb.get_item, ddb.query, ddb.batch_get_item
        put_item, update_item, delete_item = ddb.put_item, ddb.update_item, ddb.delete_item
        transact, batch_write = ddb.transact_write_items, ddb.batch_write_item

        def counted(fn: Callable[..., Any]) -> Callable[..., Any]:
            def call(*a: Any, **kw: Any) -> Any:
                if meter.on:
                    meter.ddb_calls_by[kind_of(meter.w.loop.current)] += 1
                return fn(*a, **kw)

            return call

        def g(**kw: Any) -> Any:
            out = get_item(**kw)
            units = read_units([out.get("Item", {})], kw.get("ConsistentRead", False))
            meter._add(f"table:{kw['Key']['pk']['S']}", units, False)
            return out

        def q(**kw: Any) -> Any:
            out = query(**kw)
            pk = next(v["S"] for k, v in kw["ExpressionAttributeValues"].items() if "S" in v)
            index = kw.get("IndexName") or "table"
            meter._add(f"{index}:{pk}", read_units(out.get("Items", []), kw.get("ConsistentRead", False)), False)
            return out

        def bg(**kw: Any) -> Any:
            out = batch_get(**kw)
            for items in out.get("Responses", {}).values():
                for item in items:
                    meter._add(f"table:{item['pk']['S']}", read_units([item], False), False)
            return out

        def p(**kw: Any) -> Any:
            out = put_item(**kw)
            write_item(kw["Item"])
            return out

        def u(**kw: Any) -> Any:
            out = update_item(**kw)
            write_item(ddb.tables.get(kw["TableName"], {}).get(kw["Key"]["pk"]["S"], {}).get(kw["Key"]["sk"]["S"]))
            return out

        def d(**kw: Any) -> Any:
            before = ddb.tables.get(kw["TableName"], {}).get(kw["Key"]["pk"]["S"], {}).get(kw["Key"]["sk"]["S"])
            out = delete_item(**kw)
            write_item(before)
            return out

        def t(**kw: Any) -> Any:
            out = transact(**kw)
            for entry in kw["TransactItems"]:
                ((op, spec),) = entry.items()
                key = spec.get("Item") if op == "Put" else spec["Key"]
                item = ddb.tables.get(spec["TableName"], {}).get(key["pk"]["S"], {}).get(key["sk"]["S"]) or key
                write_item(item, 2.0)
            return out

        def bw(**kw: Any) -> Any:
            out = batch_write(**kw)
            for requests in kw["RequestItems"].values():
                for request in requests:
                    write_item(request.get("PutRequest", {}).get("Item") or request["DeleteRequest"]["Key"])
            return out

        ddb.get_item, ddb.query, ddb.batch_get_item = counted(g), counted(q), counted(bg)
        ddb.put_item, ddb.update_item, ddb.delete_item = counted(p), counted(u), counted(d)
        ddb.transact_write_items, ddb.batch_write_item = counted(t), counted(bw)


def kind_of(label: str) -> str:
    head = label.split(":", 1)[0]
    if head in ("reconcile", "reconcile-lock"):
        return "reconcile-lock"
    return head or "setup"


class LimitedLockQueue:
    """The reconcile queue and reconcile-lock's event source mapping as the template sets them
    (batches of 5, ReconcileConcurrency invocations at once), for either tree's world."""

    def __init__(self, world: Any, concurrency: int = 5, batch: int = 5) -> None:
        self.world, self.concurrency, self.batch = world, concurrency, batch
        self.backlog: list[Any] = []
        self.running = 0
        self.sent = 0

    def send(self, jobs: Any, delay_seconds: float = 0) -> None:
        for job in jobs:
            self.sent += 1
            delay = float(max(0, min(900, round(delay_seconds))))
            self.world.loop.call_later(delay, lambda job=job: self._visible(job), name=f"reconcile:{job.smartlockId}")

    def _visible(self, job: Any) -> None:
        self.backlog.append(job)
        while self.running < self.concurrency and self.backlog:
            batch, self.backlog = self.backlog[: self.batch], self.backlog[self.batch :]
            self.running += 1
            self.world.loop.call_later(0, lambda batch=batch: self._run(batch), name="reconcile-lock")

    def _run(self, batch: list[Any]) -> None:
        try:
            for job in batch:
                run = lambda job=job: self.world.reconciler.reconcile_lock(job.smartlockId, attempt=job.attempt)  # noqa: E731
                self.world.invoke(f"reconcile:{job.smartlockId}", run)
        finally:
            self.running -= 1
            if self.backlog:
                self._visible_pump()

    def _visible_pump(self) -> None:
        while self.running < self.concurrency and self.backlog:
            batch, self.backlog = self.backlog[: self.batch], self.backlog[self.batch :]
            self.running += 1
            self.world.loop.call_later(0, lambda batch=batch: self._run(batch), name="reconcile-lock")


# ------------------------------------------------------------------------------------ the fleet


class Fleet:
    def __init__(self, locks: int, webhooks: bool, seed: int = 17) -> None:
        from local.sim.world import SimConfig, World

        self.rng = random.Random(seed)
        config = SimConfig(webhooks=webhooks, log_polling=True, validate_spec=0.0, nuki_latency=LATENCY)
        self.world = World(seed, START, config)
        w = self.world
        w.loop.after_event[:] = [w._nuki_clock]  # no invariant sweeps: this run measures
        queue = LimitedLockQueue(w)
        w.lock_queue = queue
        w.reconciler.queue = queue
        if hasattr(w, "checks"):
            w.checks.queue = queue
        self.meter = Meter(w)
        self.delays: dict[int, float] = {}
        self.rooms: dict[str, tuple[int, ...]] = {}
        entrances = max(1, round(locks * 0.02))
        ids = list(range(FIRST_LOCK, FIRST_LOCK + locks))
        entrance_ids, doors = ids[:entrances], ids[entrances:]
        for lock_id in ids:
            delay = self.rng.choices([d for d, _ in DELAYS], [p for _, p in DELAYS])[0]
            self.delays[lock_id] = delay
            w.add_lock(lock_id, sync_delay=delay)
            for n in range(self.rng.choice((0, 0, 1, 1, 2, 3))):
                w.add_foreign(lock_id, _code(self.rng), f"Cleaner {n}")
        times = {"checkInTime": "15:00", "checkOutTime": "11:00"}
        for n, door in enumerate(doors):
            shared = entrance_ids[n // 8] if n < 8 * entrances else None
            room_locks = (door, shared) if shared is not None else (door,)
            room_id = f"r{door}"
            w.put_room(room_id, room_locks, timezone="Europe/Berlin", **times)
            self.rooms[room_id] = room_locks
        self.created: dict[str, float] = {}  # booking -> when the shop sent POST /bookings
        self.within_lead: set[str] = set()
        self.learned: set[str] = set()  # bookings of `within_lead` whose locks' sync delays were learned
        self.active_at: dict[str, float] = {}
        self.revoked_at: dict[str, float] = {}
        self.booking_locks: dict[str, tuple[int, ...]] = {}
        previous = w.ddb.on_write

        def on_write(table: str, pk: str, sk: str, before: Any, after: Any) -> None:
            if previous is not None:
                previous(table, pk, sk, before, after)
            if sk != "BOOKING" or after is None:
                return
            status = after.get("status", {}).get("S")
            booking_id = pk.removeprefix("BOOKING#")
            if status == "active":
                self.active_at.setdefault(booking_id, w.loop.t)
            elif status in ("revoked", "cancelled"):
                self.revoked_at.setdefault(booking_id, w.loop.t)

        w.ddb.on_write = on_write

    def calendar(self, until_day: float) -> None:
        """Every room's stays from four days before the start to `until_day`, each booked at its lead."""
        w, rng = self.world, self.rng
        first = (START - timedelta(days=4)).date()
        n = 0
        for room_id, room_locks in sorted(self.rooms.items()):
            day = first + timedelta(days=rng.randint(0, 6))
            while (day - START.date()).days < until_day:
                nights = rng.choice(NIGHTS)
                booking_id = f"F{n}"
                n += 1
                check_in = datetime(day.year, day.month, day.day, 13, 0, tzinfo=UTC)  # 15:00 CEST
                lead = timedelta(days=rng.choice(LEADS_DAYS))
                at = max(0.0, (check_in - lead - START).total_seconds())
                if check_in + timedelta(days=nights) > START + timedelta(hours=1):
                    self.booking_locks[booking_id] = room_locks
                    # A shop's bookings come in through the day: each within the 12 hours before its
                    # lead (the same minute for a whole fleet, as before, is a burst no shop sends,
                    # and the API's throttle, 50 requests a second, would refuse at 10,000 locks).
                    at = max(0.0, at - rng.uniform(0, ARRIVAL_SPREAD))
                    w.loop.call_at(at, self._book(booking_id, room_id, day, nights), "book")
                day += timedelta(days=nights + rng.choice(GAPS))

    def _book(self, booking_id: str, room_id: str, day: date, nights: int) -> Callable[[], None]:
        def book() -> None:
            w, rng = self.world, self.rng
            self.created[booking_id] = w.loop.t
            check_in = datetime(day.year, day.month, day.day, 13, 0, tzinfo=UTC)
            if (check_in - timedelta(hours=72)) <= w.loop.now():
                self.within_lead.add(booking_id)
                if all(w.store.get_lock_meta(lock).get("syncDelay") is not None for lock in self.rooms[room_id]):
                    self.learned.add(booking_id)  # every lock of the room has written and been read before
            w.book(booking_id, room_id, day, day + timedelta(days=nights), notify=True)
            start = max(0.0, (check_in - w.loop.now()).total_seconds())
            roll = rng.random()
            if roll < 0.04:
                w.loop.call_later(rng.uniform(60, max(120.0, start)), lambda: w.end(booking_id, "cancel"), "cancel")
            elif roll < 0.09:
                at = start + rng.uniform(HOUR, nights * DAY - 2 * HOUR)
                w.loop.call_later(at, lambda: w.end(booking_id, "checkout"), "checkout")
            for night in range(nights):
                at = start + night * DAY + rng.uniform(HOUR, 8 * HOUR)
                w.loop.call_later(at, lambda: self._enter(booking_id), "guest")

        return book

    def _enter(self, booking_id: str) -> None:
        if booking_id in self.active_at and booking_id not in self.revoked_at:
            self.world.guest_types_pin(booking_id, self.booking_locks[booking_id][0])

    def run(self, warm: float, measure: float) -> None:
        w = self.world
        w.start()
        w.run_for(warm)
        self.meter.on = True
        self.window = (w.loop.t, w.loop.t + measure)
        w.run_for(measure)
        self.meter.on = False


def _code(rng: random.Random) -> int:
    while True:
        digits = "".join(rng.choice("123456789") for _ in range(6))
        if not digits.startswith("12") and len(set(digits)) > 2:
            return int(digits)


# ------------------------------------------------------------------------------------ figures


def _busiest(times: list[float], width: float) -> tuple[int, int]:
    """The most of the sorted `times` within any `width` seconds, and the index of the last of them."""
    best, at, k = 0, 0, 0
    for i, t in enumerate(times):
        while times[k] <= t - width:
            k += 1
        if i - k + 1 > best:
            best, at = i - k + 1, i
    return best, at


def peaks(times: list[float]) -> dict[str, float]:
    times = sorted(times)
    return {"max_in_1s": _busiest(times, 1.0)[0], "max_per_s_over_10s": round(_busiest(times, 10.0)[0] / 10, 1)}


def busiest(calls: list[Any]) -> dict[str, Any]:
    """What the busiest ten seconds of the account were made of: by invocation kind and by route."""
    calls = sorted(calls, key=lambda c: c[0])
    _, at = _busiest([c[0] for c in calls], 10.0)
    window = [c for c in calls if calls[at][0] - 10.0 < c[0] <= calls[at][0]] if calls else []
    when = (START + timedelta(seconds=calls[at][0])).isoformat(timespec="seconds") if calls else None
    return {
        "ends_at": when,
        "calls": len(window),
        "by_kind": dict(Counter(kind_of(by) for *_, by in window).most_common(6)),
        "by_route": dict(Counter(f"{m} {_route(p)}" for _, m, p, _ in window).most_common(6)),
    }


def background_cost(meter: Meter, days: float, locks: int) -> dict[str, float]:
    """Dollars per 1,000 locks and month of the background work measured over `days`."""
    kinds = [k for k in meter.invocations if k in ("log-poller", "reconciler", "reconcile-lock")]
    invocations = sum(meter.invocations[k] for k in kinds)
    seconds = sum(meter.seconds_by[k] + 0.005 * meter.ddb_calls_by[k] + 0.02 for k in kinds)
    rru = sum(meter.rru_by[k] for k in kinds)
    wru = sum(meter.wru_by[k] for k in kinds)
    reconcile_messages = meter.invocations["reconcile-lock"]
    scheduled = meter.invocations["log-poller"] + meter.invocations["reconciler"]
    month = 30 / days * 1000 / locks
    lines = {
        "Lambda requests": invocations * PRICES["lambda_request"],
        "Lambda duration (256 MB arm64)": seconds * 0.25 * PRICES["lambda_gb_s_arm64"],
        "DynamoDB reads": rru * PRICES["dynamodb_rru"],
        "DynamoDB writes": wru * PRICES["dynamodb_wru"],
        "SQS (send, receive, delete)": reconcile_messages * 3 * PRICES["sqs_request"],
        "EventBridge Scheduler": scheduled * PRICES["scheduler_invocation"],
    }
    out = {k: round(v * month, 4) for k, v in lines.items()}
    out["total"] = round(sum(lines.values()) * month, 3)
    return out


def season_figures(fleet: Fleet, days: float) -> dict[str, Any]:
    meter = fleet.meter
    start, end = fleet.window
    calls = [c for c in meter.calls if start <= c[0] < end]
    background: Counter[str] = Counter()
    for _, _, _, by in calls:
        if by.partition(":")[0] not in (*BOOKING_PREFIXES, "webhooks", "readiness"):
            background[kind_of(by)] += 1
    # Per booking: the calls of the bookings' own invocations and the webhook processor's in the
    # window, per code put on and taken off in it (a booking puts its code on once and takes it off
    # once), so the figure needs no booking's whole life in a short window.
    booking_calls = sum(1 for *_, by in calls if by.partition(":")[0] in (*BOOKING_PREFIXES, "webhooks"))
    readiness_calls = sum(1 for *_, by in calls if by.partition(":")[0] == "readiness")
    put_on = sum(1 for t in fleet.active_at.values() if start <= t < end)
    taken_off = sum(1 for t in fleet.revoked_at.values() if start <= t < end)
    bookings = max(1.0, (put_on + taken_off) / 2)
    per_booking = booking_calls / bookings
    to_active: dict[str, list[tuple[float, bool]]] = defaultdict(list)
    for b in fleet.within_lead:
        if b in fleet.active_at and start <= fleet.created[b] <= end:
            delay = max(fleet.delays[lock] for lock in fleet.booking_locks[b])
            to_active[f"{delay:g}"].append((fleet.active_at[b] - fleet.created[b], b in fleet.learned))
    tta = {}
    for delay, pairs in sorted(to_active.items(), key=lambda kv: float(kv[0])):
        goal = 1.3 * float(delay) + 0.5
        samples = sorted(t for t, _ in pairs)
        learned = [t for t, known in pairs if known]
        tta[delay] = {
            "n": len(samples),
            "median_s": round(statistics.median(samples), 2),
            "p90_s": round(samples[int(0.9 * (len(samples) - 1))], 2),
            "within_goal": round(sum(s <= goal for s in samples) / len(samples), 3),
            "goal_s": goal,
            # Bookings whose locks had a learned sync delay (their first write is read back on the
            # configured backoff: a lock's first write ever, or since the fleet started)
            "n_learned": len(learned),
            "within_goal_learned": round(sum(s <= goal for s in learned) / len(learned), 3) if learned else None,
        }
    total_units = sum(meter.units.values())
    top = meter.units.most_common(5)
    return {
        "locks": len(fleet.delays),
        "rooms": len(fleet.rooms),
        "days": days,
        "nuki_calls": len(calls),
        "nuki_calls_per_day": round(len(calls) / days),
        "calls_by_kind": dict(Counter(kind_of(by) for *_, by in calls)),
        "calls_by_route": dict(Counter(f"{m} {_route(p)}" for _, m, p, _ in calls)),
        "calls_by_kind_and_route": dict(
            Counter(f"{kind_of(by)}: {m} {_route(p)}" for _, m, p, by in calls).most_common()
        ),
        "background_calls_per_lock_day": round(sum(background.values()) / days / len(fleet.delays), 3),
        "codes_put_on": put_on,
        "codes_taken_off": taken_off,
        "nuki_calls_per_booking": round(per_booking, 2),
        "readiness_calls_per_booking": round(readiness_calls / bookings, 2),
        "time_to_active": tta,
        "peak": peaks([t for t, *_ in calls]),
        "peak_window": busiest(calls),
        "dynamodb_units": round(total_units),
        "dynamodb_top_partitions": [(k, round(v / total_units, 4)) for k, v in top],
        "dynamodb_largest_share": round(top[0][1] / total_units, 4) if top else 0.0,
        "background_cost_per_1000_locks_month": background_cost(meter, days, len(fleet.delays)),
        "invocations": dict(meter.invocations),
    }


def idle(locks: int, webhooks: bool, hours: float) -> dict[str, Any]:
    fleet = Fleet(locks, webhooks)
    fleet.run(warm=HOUR, measure=hours * HOUR)
    days = hours / 24
    start, end = fleet.window
    calls = [c for c in fleet.meter.calls if start <= c[0] < end]
    return {
        "locks": locks,
        "hours": hours,
        "nuki_calls": len(calls),
        "calls_per_lock_day": round(len(calls) / days / locks, 4),
        "calls_by_route": dict(Counter(f"{m} {_route(p)}" for _, m, p, _ in calls)),
        "background_cost_per_1000_locks_month": background_cost(fleet.meter, days, locks),
    }


def season(locks: int, webhooks: bool, days: float, warm: float = 1.0) -> dict[str, Any]:
    started = time.process_time()
    fleet = Fleet(locks, webhooks)
    fleet.calendar(until_day=warm + days + 8)
    fleet.run(warm=warm * DAY, measure=days * DAY)
    out = season_figures(fleet, days)
    out["cpu_s"] = round(time.process_time() - started, 1)
    return out


def _route(path: str) -> str:
    import re

    return re.sub(r"/[0-9a-f]{24}", "/{id}", re.sub(r"/\d{8}", "/{smartlockId}", path))


# ------------------------------------------------------------------------------------ running

# (warm-up, measured) in simulated days, per design and fleet size. This tree's figures settle over
# days (locks learn their sync delays); the design before issue 17 does the same every hour, so a
# few hours of it, scaled to a day, say the same as a day.
WINDOWS = {
    ("new", 1000): (1.0, 1.0),
    ("new", 10000): (0.25, 0.25),
    ("today", 1000): (1 / 24, 1 / 12),
    ("today", 10000): (1 / 24, 1 / 24),
    ("new", 200): (0.25, 0.25),
    ("today", 200): (0.25, 0.25),
}
IDLE_HOURS = {
    ("new", 1000): 24.0,
    ("new", 10000): 24.0,
    ("today", 200): 1.0,
    ("today", 1000): 1.0,
    ("today", 10000): 0.5,
}


def run_design(
    design: str,
    quick: bool,
    partial: Path | None = None,
    sizes: tuple[int, ...] = (1000, 10000),
    modes: tuple[bool, ...] = (False, True),
) -> dict[str, Any]:
    """Every fleet of one design, in this process (the design is the tree this file runs in); each
    fleet's figures are written to `partial` as soon as they are in (a long run stopped keeps them)."""
    out: dict[str, Any] = {"design": design}
    if design == "new":
        out["account_list"] = account_list(30_000)  # NUKI_UNPAGED_MAX_CODES
    for locks in (200,) if quick else sizes:
        for webhooks in modes:
            key = f"{locks}_{'webhooks' if webhooks else 'polling'}"
            print(f"bench.fleet {design}: idle {key}", file=sys.stderr, flush=True)
            out[f"idle_{key}"] = idle(locks, webhooks, IDLE_HOURS.get((design, locks), 6.0))
            print(f"bench.fleet {design}: season {key}", file=sys.stderr, flush=True)
            warm, days = WINDOWS[(design, locks)]
            out[f"season_{key}"] = season(locks, webhooks, days, warm)
            if partial is not None:
                partial.write_text(json.dumps(out, indent=1), encoding="utf-8")
    return out


def account_list(codes: int) -> dict[str, Any]:
    """The account's whole list (`GET /smartlock/auth`) at `codes` keypad codes, three to a lock, each as
    Nuki's spec and the sandbox write one: its size as JSON and gzipped, and what StayKey's client
    costs to parse it (seconds, and peak memory with tracemalloc on, which slows it)."""
    import gzip
    import time
    import tracemalloc

    from pydantic import TypeAdapter

    from staykey.nuki import SmartlockAuth

    day = "2026-12-01T14:00:00.000Z"
    items = [
        {
            "id": f"{i:024x}",
            "smartlockId": 17000000 + i // 3,
            "authId": i,
            "code": 100000 + i,
            "type": 13,
            "name": f"StayKey B-{i:08d}",
            "enabled": True,
            "remoteAllowed": False,
            "lockCount": 0,
            "allowedFromDate": day,
            "allowedUntilDate": day,
            "allowedWeekDays": 127,
            "allowedFromTime": 0,
            "allowedUntilTime": 0,
            "creationDate": day,
            "updateDate": day,
        }
        for i in range(codes)
    ]
    raw = json.dumps(items).encode()
    auths = TypeAdapter(list[SmartlockAuth])  # as the client reads the answer (staykey.nuki.client)
    started = time.perf_counter()
    parsed = auths.validate_json(raw)
    seconds = time.perf_counter() - started
    tracemalloc.start()
    auths.validate_json(raw)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(parsed) == codes
    return {
        "codes": codes,
        "json_mb": round(len(raw) / 1e6, 1),
        "gzip_kb": round(len(gzip.compress(raw)) / 1e3),
        "parse_s": round(seconds, 2),
        "peak_mb": round(peak / 1e6),
    }


def run_today(quick: bool) -> dict[str, Any]:
    """The design before issue 17: this driver in a copy of TODAY_REF's tree, in a process of its own."""
    import shutil
    import subprocess
    import tarfile
    import tempfile

    with tempfile.TemporaryDirectory(prefix="staykey-fleet-") as tmp:
        tree = Path(tmp) / "today"
        tree.mkdir()
        archive = Path(tmp) / "today.tar"
        subprocess.run(["git", "archive", "--format=tar", "-o", str(archive), TODAY_REF], cwd=ROOT, check=True)
        with tarfile.open(archive) as tar:
            tar.extractall(tree, filter="data")
        shutil.copy(HERE / "fleet.py", tree / "bench" / "fleet.py")
        result = Path(tmp) / "today.json"
        args = [sys.executable, "-m", "bench.fleet", "--design", "today", "--out", str(result)]
        subprocess.run([*args, *(["--quick"] if quick else [])], cwd=str(tree), check=True)
        return dict(json.loads(result.read_text(encoding="utf-8")))


def run(quick: bool) -> dict[str, Any]:
    return {"today_ref": TODAY_REF, "new": run_design("new", quick), "today": run_today(quick)}


# ------------------------------------------------------------------------------------ the table


def _get(r: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if not isinstance(r, dict) or key not in r:
            return None
        r = r[key]
    return r


def _pair(r: dict[str, Any], what: str, locks: int, mode: str, *keys: str) -> tuple[Any, Any]:
    """This tree's figure for the fleet, and the baseline's for the same fleet, else for the largest
    fleet it was measured on (its work per lock and per booking does not depend on the fleet's size)."""
    new = _get(r, "new", f"{what}_{locks}_{mode}", *keys)
    measured = [k for k in r.get("today", {}) if k.startswith(f"{what}_") and k.endswith(f"_{mode}")]
    same = f"{what}_{locks}_{mode}"
    key = same if same in measured else max(measured, key=lambda k: int(k.split("_")[1]), default=same)
    return new, _get(r, "today", key, *keys)


def _today_size(r: dict[str, Any], what: str, locks: int, mode: str) -> str:
    """ ", on N locks" when the baseline was measured on another fleet than `locks`."""
    measured = [int(k.split("_")[1]) for k in r.get("today", {}) if k.startswith(f"{what}_") and k.endswith(f"_{mode}")]
    return "" if not measured or locks in measured else f" (on {max(measured):,} locks)"


def rows(r: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(measurement, StayKey, next to it, goal) for `bench.run`'s table: this tree against TODAY_REF."""
    sizes = sorted({int(k.split("_")[1]) for k in r.get("new", {}) if k.startswith(("idle_", "season_"))})
    if not sizes:
        return []
    big, small = sizes[-1], sizes[0]
    ref = f"before issue 17 ({r.get('today_ref', TODAY_REF)})"
    out: list[tuple[str, str, str, str]] = []

    def idle_row(mode: str, goal: float, label: str) -> None:
        measured = [n for n in sizes if _get(r, "new", f"idle_{n}_{mode}") is not None]
        vals = [_pair(r, "idle", n, mode, "calls_per_lock_day") for n in measured]
        new = " / ".join(f"{v[0]:g}" for v in vals)
        old = " / ".join(sorted({f"{v[1]:g}" for v in vals if v[1] is not None}))
        ok = all(v[0] <= goal for v in vals)
        sized = " / ".join(f"{n:,}" for n in measured)
        out.append(
            (
                f"9. Nuki calls per idle lock per day, {label} ({sized} locks)",
                new,
                f"{ref}: {old}",
                f"≤ {goal:g} {'✓' if ok else '✗'}",
            )
        )

    idle_row("polling", 2.0, "without webhooks")
    idle_row("webhooks", 0.5, "with webhooks")
    for mode in ("polling", "webhooks"):
        new, old = _pair(r, "season", small, mode, "background_calls_per_lock_day")
        if new is not None:
            hooks = "with" if mode == "webhooks" else "without"
            out.append(
                (
                    f"9. … in a season: background Nuki calls per lock and day, every lock (hot ones too), {hooks} "
                    f"webhooks ({small:,} locks)",
                    f"{new:g}",
                    f"{ref}: {old:g}" if old is not None else "",
                    "(the goals are for idle locks)",
                )
            )
    new, old = _pair(r, "season", small, "polling", "nuki_calls_per_booking")
    rn, ro = (x or 0.0 for x in _pair(r, "season", small, "polling", "readiness_calls_per_booking"))
    if new is not None:
        out.append(
            (
                f"9. Nuki calls per booking without webhooks (fleet season, {small:,} locks); readiness checks beside",
                f"{new:g} (+ {rn:g} readiness)",
                f"{ref}: {old:g} (+ {ro:g} readiness)" if old is not None else "",
                f"≤ 3 {'✓' if new <= 3 else '✗'}",
            )
        )
    tta_new, tta_old = _pair(r, "season", small, "polling", "time_to_active")
    for delay, t in sorted((tta_new or {}).items(), key=lambda kv: float(kv[0])):
        o = (tta_old or {}).get(delay)
        before = f"{ref}: median {o['median_s']:g} s, {o['within_goal'] * 100:.0f} % within" if o else ""
        ok = t["within_goal"] >= 0.9
        out.append(
            (
                f"9. POST /bookings → active without webhooks, sync delay {delay} s (fleet, n={t['n']})",
                f"median {t['median_s']:g} s, p90 {t['p90_s']:g} s, {t['within_goal'] * 100:.0f} % within goal"
                + (
                    f" ({t['within_goal_learned'] * 100:.0f} % of the {t['n_learned']} on locks with a learned delay)"
                    if t.get("within_goal_learned") is not None
                    else ""
                ),
                before,
                f"≤ {t['goal_s']:g} s {'✓' if ok else '✗'}",
            )
        )
    for size, mode in [(n, m) for n in sizes for m in ("polling", "webhooks")]:
        new, old = _pair(r, "season", size, mode, "peak")
        hooks = "with" if mode == "webhooks" else "without"
        if new is not None:
            ok = new["max_per_s_over_10s"] <= 10
            out.append(
                (
                    f"9. Peak Nuki calls per second, whole account, {size:,} locks, {hooks} webhooks "
                    "(10 s window / 1 s)",
                    f"{new['max_per_s_over_10s']:g} / {new['max_in_1s']}",
                    f"{ref}{_today_size(r, 'season', size, mode)}: {old['max_per_s_over_10s']:g} / {old['max_in_1s']}"
                    if old
                    else "",
                    f"≤ 10 {'✓' if ok else '✗'}",
                )
            )
    for mode in ("polling", "webhooks"):
        new, old = _pair(r, "season", small, mode, "background_cost_per_1000_locks_month", "total")
        hooks = "with" if mode == "webhooks" else "without"
        if new is not None:
            out.append(
                (
                    f"9. AWS cost of background work per 1,000 locks and month, {hooks} webhooks "
                    f"(fleet season, {small:,} locks)",
                    f"${new:.2f}",
                    f"{ref}: ${old:.2f}" if old is not None else "",
                    f"≤ $1 {'✓' if new <= 1 else '✗'}",
                )
            )
    new, old = _pair(r, "season", big, "polling", "dynamodb_largest_share")
    top = _get(r, "new", f"season_{big}_polling", "dynamodb_top_partitions")
    if new is not None:
        key = top[0][0] if top else "?"
        out.append(
            (
                f"9. Largest share of DynamoDB traffic on one partition key, {big:,} locks",
                f"{new * 100:.1f} % ({key})",
                f"{ref}{_today_size(r, 'season', big, 'polling')}: {old * 100:.1f} %" if old is not None else "",
                f"≤ 5 % {'✓' if new <= 0.05 else '✗'}",
            )
        )
    return out


def details(r: dict[str, Any]) -> str:
    """The figures behind the rows, for RESULTS.md: per design and fleet, the Nuki calls by route and
    the background cost's lines."""
    parts = [
        f"\n### 9. Fleet seasons (issue 17): this tree against {r.get('today_ref', TODAY_REF)}\n",
        "| design | fleet | window (days) | Nuki calls/day | background calls per lock and day | calls per booking "
        "| readiness calls per booking | peak calls/s (10 s / 1 s) | largest DynamoDB key "
        "| background $ per 1,000 locks and month |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for design in ("new", "today"):
        for key, f in sorted((r.get(design) or {}).items()):
            if not key.startswith("season_"):
                continue
            top = f["dynamodb_top_partitions"][0] if f["dynamodb_top_partitions"] else ("?", 0)
            parts.append(
                f"| {design} | {key.removeprefix('season_')} | {f['days']:g} | {f['nuki_calls_per_day']:,} "
                f"| {f['background_calls_per_lock_day']:g} | {f['nuki_calls_per_booking']:g} "
                f"| {f.get('readiness_calls_per_booking', 0):g} "
                f"| {f['peak']['max_per_s_over_10s']:g} / {f['peak']['max_in_1s']} | {top[0]} {top[1] * 100:.1f} % "
                f"| {f['background_cost_per_1000_locks_month']['total']:.2f} |"
            )
    parts.append("\nIdle fleets (no stay at all), Nuki calls per lock and day and by route:\n")
    for design in ("new", "today"):
        for key, f in sorted((r.get(design) or {}).items()):
            if key.startswith("idle_"):
                routes, name = json.dumps(f["calls_by_route"]), key.removeprefix("idle_")
                parts.append(f"- {design} {name} ({f['hours']:g} h): {f['calls_per_lock_day']:g}; `{routes}`")
    if (listed := (r.get("new") or {}).get("account_list")) is not None:
        parts.append(
            f"\nThe account's whole list at {listed['codes']:,} codes (`NUKI_UNPAGED_MAX_CODES`): "
            f"{listed['json_mb']} MB of JSON, {listed['gzip_kb']} kB gzipped (synthetic, so more compressible "
            f"than Nuki's), parsed by StayKey's client in {listed['parse_s']} s, {listed['peak_mb']} MB at its peak."
        )
    parts.append("\nSeasons' Nuki calls by route:\n")
    for design in ("new", "today"):
        for key, f in sorted((r.get(design) or {}).items()):
            if key.startswith("season_"):
                parts.append(f"- {design} {key.removeprefix('season_')}: `{json.dumps(f['calls_by_route'])}`")
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--design", choices=("both", "new", "today"), default="both")
    parser.add_argument("--locks", help="fleet sizes, comma-separated (default 1000,10000)")
    parser.add_argument("--modes", default="polling,webhooks", help="polling, webhooks or both (comma-separated)")
    parser.add_argument("--render", type=Path, help="print the rows and details of a saved result as Markdown")
    args = parser.parse_args()
    if args.render:
        saved = json.loads(args.render.read_text(encoding="utf-8"))
        print("| measurement | StayKey | next to it | goal |\n|---|---|---|---|")
        print("\n".join(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows(saved)))
        print(details(saved))
        return
    if args.out:
        from bench.common import silence_stdout

        silence_stdout()
    started = time.monotonic()
    partial = args.out.with_suffix(".partial.json") if args.out else None
    sizes = tuple(int(n) for n in args.locks.split(",")) if args.locks else (1000, 10000)
    modes = tuple(m == "webhooks" for m in args.modes.split(","))
    one = args.design != "both"
    result = run_design(args.design, args.quick, partial, sizes, modes) if one else run(args.quick)
    result["seconds"] = round(time.monotonic() - started, 1)
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        print(text)


if __name__ == "__main__":
    main()
