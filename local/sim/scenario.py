"""Seeded random seasons: a property (rooms and locks), a shop taking bookings and changing them,
guests at the doors, an operator, and faults, all drawn from one seed.

`run_seed(seed)` builds a world, plays its season, lets it go quiet (faults stop, locks online,
full locks emptied), checks that everything converged, and returns a `Result`. The same seed gives
the same season and the same result.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from local.sim.staff import plan_staff
from local.sim.world import SimConfig, World

HOUR = 3600.0
DAY = 24 * HOUR
QUIET = 3 * HOUR
# How long before the stay the shop books (negative: the stay began already).
LEADS = (-2 * HOUR, 60.0, 10 * 60.0, 30 * 60.0, 2 * HOUR, 6 * HOUR, 20 * HOUR, 71.9 * HOUR, 74 * HOUR)

# Seasons start near daylight-saving changes as often as not (Europe/Berlin 2026-03-29 and
# 2026-10-25, America/New_York 2026-03-08 and 2026-11-01), so stays cross them.
STARTS = (
    datetime(2026, 3, 27, 9, 0, tzinfo=UTC),
    datetime(2026, 10, 23, 13, 30, tzinfo=UTC),
    datetime(2026, 3, 6, 18, 0, tzinfo=UTC),
    datetime(2026, 10, 30, 22, 15, tzinfo=UTC),
    datetime(2026, 7, 14, 6, 45, tzinfo=UTC),
    datetime(2026, 12, 30, 20, 0, tzinfo=UTC),
)
ZONES = ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "Europe/London", "Australia/Lord_Howe")
ENTRANCE, SIDE_ENTRANCE = 17000099, 17000098
APP_DOORS = (17000005, 17000006)  # no keypad: their guests open them with the Nuki app


@dataclass
class Result:
    seed: int
    stays: int
    violations: list[str]
    checks: dict[str, int]
    simulated_seconds: float
    wall_seconds: float
    cpu_seconds: float
    events: int
    invocations: int
    nuki_calls: int
    errors: dict[str, int]
    profile: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


def _profile(rng: random.Random, hostile: bool) -> SimConfig:
    webhooks = rng.random() < 0.7
    # A quarter of the seasons keep no guest data after the stay: the account users StayKey
    # created are deleted at Nuki within the season.
    retention = "0" if rng.random() < 0.25 else "30"
    return SimConfig(
        env={"GUEST_DATA_RETENTION_DAYS": retention},
        webhooks=webhooks,
        log_polling=(not webhooks) or rng.random() < 0.5,
        # The sweep's period (ReconcileSchedule, daily by default): shorter in some seasons, so that
        # what only the sweep repairs is repaired within the season and checked.
        reconcile_every=rng.choice((6 * HOUR, 12 * HOUR, DAY)),
        sync_delay=rng.choice((0.0, 0.5, 2.0, 5.0)),
        webhook_loss=rng.choice((0.0, 0.05, 0.2)) if hostile else 0.0,
        webhook_duplicate=rng.choice((0.0, 0.1, 0.3)) if hostile else 0.0,
        webhook_late=rng.choice((0.0, 0.05, 0.2)) if hostile else 0.0,
        kill_after_write=rng.choice((0.0, 0.02, 0.05)) if hostile else 0.0,
        lean_auth_webhooks=hostile and rng.random() < 0.3,
    )


def _code(rng: random.Random) -> int:
    while True:
        digits = "".join(rng.choice("123456789") for _ in range(6))
        if not digits.startswith("12"):
            return int(digits)


class Season:
    def __init__(
        self,
        seed: int,
        stays: int = 30,
        hostile: bool | None = None,
        days: float = 2.0,
        validate: float = 1.0,
        rotations: bool = True,
        staff: bool = True,
    ) -> None:
        self.seed = seed
        self.rng = random.Random(seed * 7919 + 1)
        # PIN rotations draw from their own source: without them (`rotations=False`) a season is
        # the season it was before rotations existed, event for event (local.sim.digest).
        self.rotations = rotations
        self.rotation_rng = random.Random(seed * 7919 + 5)
        # Staff codes too (issue 16): without them (`staff=False`) a season is the one before them.
        self.staff = staff
        self.staff_rng = random.Random(seed * 7919 + 11)
        self.hostile = self.rng.random() < 0.75 if hostile is None else hostile
        self.config = _profile(self.rng, self.hostile)
        self.config.validate_spec = validate
        self.start = self.rng.choice(STARTS)
        self.world = World(seed, self.start, self.config)
        self.stays = stays
        self.days = days
        self.rooms: dict[str, tuple[int, ...]] = {}
        self.spare_lock = 17000050
        self.fillers: dict[int, list[str]] = {}

    # ------------------------------------------------------------------ the property

    def build(self) -> None:
        w, rng = self.world, self.rng
        locks = [*range(17000001, 17000007), ENTRANCE, SIDE_ENTRANCE]
        for lock_id in locks:
            w.add_lock(
                lock_id, keypad=lock_id not in APP_DOORS, sync_delay=rng.choice((None, 0.0, 1.0, 5.0, 20.0, 60.0))
            )
        zone = rng.choice(ZONES)
        times = {"checkInTime": rng.choice(("15:00", "02:30", "00:00")), "checkOutTime": rng.choice(("11:00", "01:30"))}
        layout = {
            "r1": (17000001, ENTRANCE),
            "r2": (17000002, ENTRANCE),
            "r3": (17000003, ENTRANCE),
            "r4": (17000004, ENTRANCE, SIDE_ENTRANCE),
            "r5": (17000005,),
            "r6": (17000006, SIDE_ENTRANCE),
        }
        # r5: app access only; r6: app on the room door, keypad at the side entrance; r2: keypad codes
        # linked to the guest's Nuki account user.
        extra: dict[str, dict[str, Any]] = {
            "r2": {"linkKeypadCodes": True},
            "r5": {"access": {"17000005": "app"}},
            "r6": {"access": {"17000006": "app", str(SIDE_ENTRANCE): "keypad"}},
        }
        if self.staff:  # backup codes (issue 16) in some rooms, drawn from the staff codes' source
            for room_id in ("r1", "r3", "r4", "r6"):
                if self.staff_rng.random() < 0.5:
                    extra.setdefault(room_id, {})["backupCodes"] = True
                    if self.staff_rng.random() < 0.3:
                        extra[room_id]["backupPoolSize"] = self.staff_rng.choice((1, 2))
        for room_id, room_locks in layout.items():
            w.put_room(room_id, room_locks, timezone=zone, **times, **extra.get(room_id, {}))
            self.rooms[room_id] = room_locks
        w.start()

    # ------------------------------------------------------------------ the season

    def plan(self) -> None:
        w, rng = self.world, self.rng
        horizon = self.days * DAY
        for n in range(self.stays):
            at = rng.uniform(0, horizon * 0.8)
            w.loop.call_at(at, partial(self._book, n), name=f"plan-book-{n}")
        if self.hostile:
            self._plan_faults(horizon)
        if self.staff:
            plan_staff(self, horizon)

    def _book(self, n: int) -> None:
        w, rng = self.world, self.rng
        booking_id = f"B{self.seed}-{n}"
        room_id = rng.choice(sorted(self.rooms))
        lead = rng.choice(
            (-2 * HOUR, 60.0, 10 * 60.0, 30 * 60.0, 2 * HOUR, 6 * HOUR, 20 * HOUR, 71.9 * HOUR, 74 * HOUR)
        )
        length = rng.choice((HOUR, 3 * HOUR, 20 * HOUR, 2 * DAY))
        check_in = w.loop.now() + timedelta(seconds=lead)
        check_out = check_in + timedelta(seconds=length)
        if rng.random() < 0.3:  # dates: the room's times apply
            w.book(
                booking_id, room_id, check_in.date(), (check_out + timedelta(days=1)).date(), notify=rng.random() < 0.9
            )
        else:
            w.book(booking_id, room_id, check_in, check_out, notify=rng.random() < 0.9)
        self._plan_booking(booking_id, room_id, lead, length)

    def _plan_booking(self, booking_id: str, room_id: str, lead: float, length: float) -> None:
        w, rng = self.world, self.rng
        start = max(0.0, lead)
        # guests at the doors during the stay
        for _ in range(rng.randint(0, 3)):
            at = start + rng.uniform(0, max(60.0, length))
            w.loop.call_later(at, lambda: self._enter(booking_id), name="guest")
        roll = rng.random()
        when = rng.uniform(0, max(60.0, start + length * 0.9))
        if roll < 0.12:
            w.loop.call_later(when, lambda: w.end(booking_id, "cancel"), name="cancel")
        elif roll < 0.24:
            w.loop.call_later(start + rng.uniform(0, length), lambda: w.end(booking_id, "checkout"), name="checkout")
        elif roll < 0.40:
            extra = rng.choice((DAY, 2 * HOUR, -length / 2))
            w.loop.call_later(when, lambda: self._change_dates(booking_id, extra), name="extend")
        elif roll < 0.52:
            w.loop.call_later(when, lambda: self._move(booking_id), name="move")
        elif roll < 0.57:
            w.loop.call_later(
                when,
                lambda: w.patch(booking_id, guest={"name": "Grace Hopper", "email": "grace@example.org"}),
                name="guest-change",
            )
        if rng.random() < 0.1:  # the shop sends the same POST again later
            replay = partial(w._shop, booking_id, "shop:replay", partial(w._create, booking_id))
            w.loop.call_later(rng.uniform(0, 3 * HOUR), replay)
        if self.rotations:
            self._plan_rotations(booking_id, start, length)

    def _plan_rotations(self, booking_id: str, start: float, length: float) -> None:
        """New PINs at any point of the booking (scheduled, provisioning, active, after its end:
        then a 409), asked for by the shop (sometimes twice in a row) or an operator."""
        w, rng = self.world, self.rotation_rng
        for _ in range(rng.choice((0, 0, 0, 1, 1, 2))):
            at = rng.uniform(0, start + length * 1.1 + 60.0)
            operator = rng.random() < 0.3
            w.loop.call_later(at, partial(w.rotate, booking_id, operator), name="rotate")
            if rng.random() < 0.15:  # asked again at once: joins the rotation in progress
                w.loop.call_later(at + rng.uniform(0, 30.0), partial(w.rotate, booking_id, not operator), name="rotate")

    def _enter(self, booking_id: str) -> None:
        item = self.world.booking_item(booking_id)
        if item is None or item["status"] not in ("active", "provisioning"):
            return
        for lock in item["locks"]:
            lock_id = int(lock["smartlockId"])
            if lock.get("desired") != "present" or not self.world.is_online(lock_id):
                continue
            if lock.get("access") == "app":
                self.world.guest_opens_app(booking_id, lock_id)
            elif self.world.sandbox._locks[lock_id].has_keypad:
                self.world.guest_types_pin(booking_id, lock_id)

    def _change_dates(self, booking_id: str, extra: float) -> None:
        sb = self.world.shop[booking_id]
        if sb.valid_until is None or sb.valid_from is None:
            return
        room_after = 0  # the room's buffers are 0 here
        new_end = sb.valid_until + timedelta(seconds=extra + room_after)
        if new_end <= sb.valid_from + timedelta(minutes=5):
            return
        self.world.patch(booking_id, checkOut=new_end)

    def _move(self, booking_id: str) -> None:
        sb = self.world.shop[booking_id]
        options = [r for r in sorted(self.rooms) if r != sb.room_id]
        if options:
            self.world.patch(booking_id, roomId=self.rng.choice(options))

    # ------------------------------------------------------------------ faults

    def _plan_faults(self, horizon: float) -> None:
        w, rng = self.world, self.rng
        for _ in range(rng.randint(0, 3)):
            kind = rng.choice(("5xx", "429", "401", "5xx", "403"))
            at, length = rng.uniform(0, horizon), rng.choice((60.0, 600.0, 1800.0, 2 * HOUR))
            w.loop.call_at(at, partial(w.set_outage, kind), name=f"outage-{kind}")
            w.loop.call_at(at + length, lambda: w.set_outage(None), name="outage-over")
        for lock_id in sorted(w.sandbox._locks):
            for _ in range(rng.randint(0, 2) if rng.random() < 0.4 else 0):
                at, length = rng.uniform(0, horizon), rng.choice((120.0, 1200.0, 3 * HOUR, 9 * HOUR))
                w.loop.call_at(at, partial(w.set_online, lock_id, False), name="offline")
                w.loop.call_at(at + length, partial(w.set_online, lock_id, True), name="online")
            if rng.random() < 0.2:
                at = rng.uniform(0, horizon)
                delay = rng.choice((0.0, 10.0, 30.0, 60.0))
                w.loop.call_at(at, partial(w.sandbox.update_smartlock, lock_id, sync_delay=delay), name="sync")
        for _ in range(rng.randint(0, 2)):
            w.loop.call_at(
                rng.uniform(0, horizon), lambda: w.sandbox.set_faults(ghost_deletes=rng.randint(1, 3)), name="ghosts"
            )
        self._plan_health(horizon)
        if rng.random() < 0.3:
            lock_id = rng.choice(sorted(i for i in w.sandbox._locks if w.sandbox._locks[i].has_keypad))
            at = rng.uniform(0, horizon * 0.7)
            w.loop.call_at(at, lambda: self._fill(lock_id), name="fill")
            w.loop.call_at(at + rng.choice((HOUR, 6 * HOUR)), lambda: self._empty(lock_id), name="empty")
        for _ in range(rng.randint(0, 3)):
            w.loop.call_at(rng.uniform(0, horizon), self._tamper, name="tamper")
        for _ in range(rng.randint(0, 3)):
            w.loop.call_at(rng.uniform(0, horizon), self._foreign_on_pin, name="foreign-on-pin")
        for _ in range(rng.randint(0, 6)):
            w.loop.call_at(rng.uniform(0, horizon), lambda: w.replay_webhook(), name="replay")
        if rng.random() < 0.15:
            w.loop.call_at(rng.uniform(0, horizon), lambda: w.mailer.__setattr__("fail_next", 3), name="ses")
        if rng.random() < 0.2:
            w.loop.call_at(rng.uniform(0, horizon * 0.6), self._replace_lock, name="replace-lock")
        for _ in range(rng.randint(0, 2)):
            w.loop.call_at(rng.uniform(horizon * 0.2, horizon), self._drift_idle, name="drift-idle")
        for n in range(rng.randint(0, 2)):
            w.loop.call_at(rng.uniform(0, horizon), partial(self._bad_request, n), name="bad-input")

    def _plan_health(self, horizon: float) -> None:
        """Readiness findings: batteries going critical (and changed hours later), a keypad's battery,
        a lapsed Smart Hosting subscription (renewed later); someone else's app user on a door."""
        w, rng = self.world, self.rng
        for lock_id in sorted(w.sandbox._locks):
            if rng.random() < 0.25:
                at, length = rng.uniform(0, horizon), rng.choice((1800.0, 3 * HOUR, 10 * HOUR, DAY))
                what = rng.choice(("batteryCritical", "keypadBatteryCritical", "subscription"))
                if what == "subscription":
                    w.loop.call_at(at, partial(w.set_subscription, lock_id, "EXPIRED"), name="lapse")
                    w.loop.call_at(at + length, partial(w.set_subscription, lock_id, "ACTIVE"), name="renew")
                else:
                    w.loop.call_at(at, partial(w.set_health, lock_id, **{what: True}), name="battery")
                    w.loop.call_at(at + length, partial(w.set_health, lock_id, **{what: False}), name="changed")
        for n in range(rng.randint(0, 2)):
            lock_id = rng.choice(sorted(w.sandbox._locks))
            w.loop.call_at(
                rng.uniform(0, horizon), partial(w.add_foreign_app_user, lock_id, f"Cleaner {n}"), "app-user"
            )

    def _bad_request(self, n: int) -> None:
        """Dates at the calendar's edges and other nonsense: a 4xx, never a 5xx, nothing stored."""
        rng = self.rng
        check_in, check_out = rng.choice(
            (
                ("0001-01-01", "0001-01-03"),
                ("9999-12-30", "9999-12-31"),
                ("2026-12-01", "9999-12-31"),
                ("0001-01-01T01:00:00+03:00", "2026-12-01"),
                ("2026-12-01T10:00:00Z", "9999-12-31T23:00:00-05:00"),
                ("2026-13-01", "2026-12-03"),
            )
        )
        request = {
            "bookingId": f"X{self.seed}-{n}",
            "roomId": rng.choice(sorted(self.rooms)),
            "guest": {"name": "Edge Case", "email": "edge@example.org"},
            "checkIn": check_in,
            "checkOut": check_out,
        }
        self.world.send_bad(f"{check_in}..{check_out}", request)

    def _fill(self, lock_id: int) -> None:
        w, rng = self.world, self.rng
        have = sum(1 for a in w.auths_on(lock_id) if a.type == 13 and a.error is None)
        made: list[str] = []
        while have + len(made) < 200:
            auth_id = w.add_foreign(lock_id, _code(rng), f"Filler {len(made)}")
            if auth_id is not None:
                made.append(auth_id)
        self.fillers.setdefault(lock_id, []).extend(made)

    def _empty(self, lock_id: int) -> None:
        for auth_id in self.fillers.pop(lock_id, []):
            if any(a.id == auth_id for a in self.world.auths_on(lock_id)):
                self.world.sandbox.delete_auth_elsewhere(lock_id, auth_id)

    def _active_codes(self) -> list[tuple[int, Any]]:
        w = self.world
        names = set(w.checker.names)
        return [(lock_id, a) for lock_id in w.sandbox._locks for a in w.auths_on(lock_id) if a.name in names]

    def _tamper(self) -> None:
        w, rng = self.world, self.rng
        codes = self._active_codes()
        if not codes:
            return
        lock_id, auth = rng.choice(codes)
        what = rng.choice(("code", "until", "disable", "delete"))
        if auth.type == 0 and what == "code":
            what = "disable"  # an app authorization has no code
        if what == "delete":
            w.tampered[lock_id] = w.loop.t
            w.sandbox.delete_auth_elsewhere(lock_id, auth.id)
        elif what == "code":
            from local.nuki_sandbox.model import NukiError

            try:
                w.edit_in_nuki_web(lock_id, auth, code=_code(rng))
            except NukiError:
                return
        elif what == "until":
            w.edit_in_nuki_web(lock_id, auth, until=w.loop.now() + timedelta(hours=1))
        else:
            w.edit_in_nuki_web(lock_id, auth, enabled=False)
        w.note(f"tampered ({what}) with {auth.name} on lock {lock_id}")

    def _foreign_on_pin(self) -> None:
        w, rng = self.world, self.rng
        waiting = [
            item
            for item in (w.booking_item(b) for b in w.shop)
            if item is not None and item["status"] in ("scheduled", "provisioning")
        ]
        if not waiting:
            return
        item = rng.choice(waiting)
        lock_id = int(rng.choice(item["locks"])["smartlockId"])
        if w.add_foreign(lock_id, int(item["pin"]), "Cleaner") is not None:
            w.note(f"a foreign code took the PIN of {item['bookingId']} on lock {lock_id}")

    def _drift_idle(self) -> None:
        """A code of ours shows up on a lock no stay is near (a write that waited somewhere and landed
        long after its stay, a lock restored from a backup): it must go, by a signal or the sweep."""
        from local.nuki_sandbox.model import NukiError
        from local.nuki_sandbox.state import AuthDraft, Window

        w, rng = self.world, self.rng
        lead = w.settings.provision_lead_hours * HOUR
        busy: set[int] = set()
        for sb in w.shop.values():
            if sb.valid_from is None or sb.valid_until is None:
                continue
            if w.loop.at_time(sb.valid_from) - lead - 2 * HOUR <= w.loop.t <= w.loop.at_time(sb.valid_until) + 2 * HOUR:
                busy |= set(sb.locks) | set(sb.left_locks)
        idle = [lock_id for lock_id in sorted(w.sandbox._locks) if lock_id not in busy and w.is_online(lock_id)]
        items = [w.booking_item(b) for b in sorted(w.shop)]
        past = [item for item in items if item is not None and item["status"] in ("revoked", "cancelled")]
        if not idle or not past:
            return
        lock_id = rng.choice(idle)
        # Only where the booking had a code to put (a code of ours under our name on a door we never
        # wrote to is someone's copy, and foreign: core.drift, an adversarial run's finding).
        past = [item for item in past if lock_id in _locks_had(item)]
        if not past:
            return
        item = rng.choice(past)
        window = Window(from_date=w.loop.now() - timedelta(days=2), until_date=w.loop.now() - timedelta(days=1))
        draft = AuthDraft(name=item["authName"], type=13, remote_allowed=False, window=window, code=int(item["pin"]))
        try:
            auth = w.sandbox.add_foreign_auth(lock_id, draft)  # not someone else's: ours, long after its stay
        except NukiError:
            return
        w.idle_drift[str(auth["id"])] = w.loop.t
        w.note(f"a code of {item['bookingId']} appeared on idle lock {lock_id}")

    def _replace_lock(self) -> None:
        """The operator replaces a room's door lock; existing bookings keep the old one."""
        w, rng = self.world, self.rng
        room_id = rng.choice(sorted(self.rooms))
        old = self.rooms[room_id]
        new_lock = self.spare_lock
        self.spare_lock += 1
        w.add_lock(new_lock)
        self._put_replacement(room_id, (new_lock, *old[1:]))

    def _put_replacement(self, room_id: str, new: tuple[int, ...]) -> None:
        """The operator's PUT of the room; while Nuki cannot be asked about the new lock (503),
        they try again ten minutes later."""
        from staykey.errors import StayKeyError

        w = self.world
        try:
            w.put_room(room_id, new, timezone=w.store.get_room(room_id).timezone)  # type: ignore[union-attr]
        except StayKeyError as exc:
            w.note(f"replacing the lock of {room_id} refused: {exc.status}; trying again later")
            w.loop.call_later(600.0, partial(self._put_replacement, room_id, new), name="replace-lock")
            return
        self.rooms[room_id] = new

    # ------------------------------------------------------------------ the end

    def quiet(self) -> None:
        """Faults stop: Nuki answers, locks come online, full locks are emptied, webhooks arrive."""
        w = self.world
        w.set_outage(None)
        for lock_id in sorted(w.sandbox._locks):
            if not w.is_online(lock_id):
                w.set_online(lock_id, True)
        for lock_id in list(self.fillers):
            self._empty(lock_id)
        for lock_id in sorted(w.sandbox._locks):
            w.set_health(lock_id, batteryCritical=False, keypadBatteryCritical=False)
            w.set_subscription(lock_id, "ACTIVE")
        w.sandbox.set_faults()
        w.mailer.fail_next = 0
        cfg = w.config
        cfg.webhook_loss = cfg.webhook_duplicate = cfg.webhook_late = cfg.kill_after_write = 0.0

    def run(self) -> Result:
        began, cpu = time.perf_counter(), time.process_time()
        w = self.world
        self.build()
        self.plan()
        w.run_for(self.days * DAY)
        self.quiet()
        # Long enough for two reconcile runs and the slowest backoff (15 minutes).
        w.run_for(QUIET)
        w.checker.final()
        return Result(
            seed=self.seed,
            stays=len(w.shop),
            violations=[str(v) for v in w.checker.violations],
            checks=dict(w.checker.checks),
            simulated_seconds=w.loop.t,
            wall_seconds=time.perf_counter() - began,
            cpu_seconds=time.process_time() - cpu,
            events=w.loop.events_run,
            invocations=w.invocations,
            nuki_calls=len(w.link.calls),
            errors=dict(w.errors),
            profile={"hostile": self.hostile, "webhooks": self.config.webhooks, "polling": self.config.log_polling},
            notes=w.notes[-30:],
        )


def run_seed(
    seed: int,
    stays: int = 30,
    hostile: bool | None = None,
    days: float = 2.0,
    validate: float = 1.0,
    rotations: bool = True,
    staff: bool = True,
) -> Result:
    season = Season(seed, stays=stays, hostile=hostile, days=days, validate=validate, rotations=rotations, staff=staff)
    return season.run()


__all__ = ["Result", "Season", "run_seed"]


def _locks_had(item: dict[str, Any]) -> set[int]:
    """The locks a stored booking has, or had before it moved away (`formerLocks`)."""
    slots = [*item.get("locks", []), *item.get("rotationCodes", [])]
    return {int(lk["smartlockId"]) for lk in slots} | {int(lock_id) for lock_id in item.get("formerLocks", [])}
