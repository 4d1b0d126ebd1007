"""Hypothesis drives the simulator: each example is a short sequence of shop actions, faults and
waits on one seeded world; the invariants are checked after every step and once the world is quiet.
A failure shrinks to the shortest sequence Hypothesis finds, and prints it with the world's seed."""

from __future__ import annotations

import contextlib
import os
from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from local.sim import staff
from local.sim.world import SimConfig, World
from tests.sim.conftest import DOOR_1, DOOR_2, ENTRANCE, START

LOCKS = (DOOR_1, DOOR_2, ENTRANCE)
ROOMS = ("r1", "r2")


class StayKeyMachine(RuleBasedStateMachine):
    bookings = Bundle("bookings")
    staff_codes = Bundle("staff_codes")

    def __init__(self) -> None:
        super().__init__()
        self.world: World | None = None
        self.n = 0
        self.fillers: list[tuple[int, int]] = []

    @initialize(
        seed=st.integers(0, 2**31),
        webhooks=st.booleans(),
        lean=st.booleans(),
        sync_delay=st.sampled_from((0.0, 2.0, 30.0, 60.0)),
    )
    def start(self, seed: int, webhooks: bool, lean: bool, sync_delay: float) -> None:
        config = SimConfig(
            webhooks=webhooks,
            log_polling=not webhooks,
            sync_delay=sync_delay,
            lean_auth_webhooks=lean and webhooks,
            validate_spec=1.0,
        )
        world = World(seed, START, config)
        for lock_id in LOCKS:
            world.add_lock(lock_id)
        world.put_room("r1", (DOOR_1, ENTRANCE))
        world.put_room("r2", (DOOR_2, ENTRANCE))
        world.start()
        world.run_for(5)
        self.world = world

    @property
    def w(self) -> World:
        assert self.world is not None
        return self.world

    # ------------------------------------------------------------------ the shop

    @rule(
        target=bookings,
        room=st.sampled_from(ROOMS),
        lead_minutes=st.sampled_from((-30, 1, 10, 60, 24 * 60, 75 * 60)),
        hours=st.sampled_from((1, 5, 30)),
    )
    def book(self, room: str, lead_minutes: int, hours: int) -> str:
        self.n += 1
        booking_id = f"H-{self.n}"
        start = self.w.loop.now() + timedelta(minutes=lead_minutes)
        self.w.book(booking_id, room, start, start + timedelta(hours=hours))
        return booking_id

    @rule(booking=bookings, days=st.sampled_from((1, 2)))
    def extend(self, booking: str, days: int) -> None:
        until = self.w.shop[booking].valid_until
        if until is not None:
            self.w.patch(booking, checkOut=until + timedelta(days=days))

    @rule(booking=bookings, room=st.sampled_from(ROOMS))
    def move(self, booking: str, room: str) -> None:
        self.w.patch(booking, roomId=room)

    @rule(booking=bookings, kind=st.sampled_from(("cancel", "checkout")))
    def end(self, booking: str, kind: str) -> None:
        self.w.end(booking, kind)

    @rule(booking=bookings, operator=st.booleans())
    def rotate_pin(self, booking: str, operator: bool) -> None:
        self.w.rotate(booking, operator=operator)

    @rule(booking=bookings)
    def guest_at_the_door(self, booking: str) -> None:
        for lock_id in self.w.shop[booking].locks:
            if self.w.is_online(lock_id):
                self.w.guest_types_pin(booking, lock_id)

    # ------------------------------------------------------------------ staff codes (issue 16)

    @rule(
        target=staff_codes,
        rooms=st.sampled_from((("r1",), ("r2",), ("r1", "r2"))),
        days=st.sampled_from((127, 124, 3, 1)),
        times=st.sampled_from(((0, 0), (480, 720), (0, 1), (1380, 1439))),
        until_hours=st.sampled_from((None, None, 2, 30)),
    )
    def make_staff_code(
        self, rooms: tuple[str, ...], days: int, times: tuple[int, int], until_hours: int | None
    ) -> str:
        self.n += 1
        schedule: dict[str, object] = {"allowedWeekDays": days, "allowedFromTime": times[0]}
        schedule["allowedUntilTime"] = times[1]
        if until_hours is not None:
            until = self.w.loop.now() + timedelta(hours=until_hours)
            schedule["allowedUntilDate"] = until.isoformat().replace("+00:00", "Z")
        return staff.add(self.w, f"S-{self.n}", rooms, **schedule)

    @rule(code=staff_codes, days=st.sampled_from((127, 62, 65)), room=st.sampled_from((None, "r1", "r2")))
    def change_staff_code(self, code: str, days: int, room: str | None) -> None:
        change = {"allowedWeekDays": days} if room is None else {"roomIds": [room]}
        staff.change(self.w, code.removeprefix("staff~"), **change)

    @rule(code=staff_codes)
    def remove_staff_code(self, code: str) -> None:
        staff.remove(self.w, code.removeprefix("staff~"))

    @rule(code=staff_codes, operator=st.booleans())
    def rotate_staff_pin(self, code: str, operator: bool) -> None:
        self.w.rotate(code, operator=operator)

    @rule(code=staff_codes)
    def staff_at_the_door(self, code: str) -> None:
        self.guest_at_the_door(code)

    @rule(code=staff_codes, what=st.sampled_from(("delete", "code", "disable")))
    def staff_code_edited_in_nuki_web(self, code: str, what: str) -> None:
        self.edit_in_nuki_web(code, what)

    # ------------------------------------------------------------------ backup codes (issue 16)

    @rule(size=st.sampled_from((1, 2)))
    def backup_codes_on(self, size: int) -> None:
        """Room r1 keeps a pool of backup codes on its door and the entrance (r2 shares the
        entrance and keeps none: its guests get none)."""
        from staykey.errors import StayKeyError

        with contextlib.suppress(StayKeyError):  # a full lock cannot hold a pool: 422, nothing written
            self.w.put_room("r1", (DOOR_1, ENTRANCE), backupCodes=True, backupPoolSize=size)

    @rule()
    def readiness_run(self) -> None:
        """The readiness function's run: the checks, then the pools filled and backup codes given."""
        self.w.invoke("readiness", lambda: self.w.readiness.run())
        self.w.invoke("readiness", lambda: self.w.pools.run())

    @rule(booking=bookings)
    def operator_gives_a_backup_code(self, booking: str) -> None:
        from staykey.errors import StayKeyError

        with contextlib.suppress(StayKeyError, KeyError):
            self.w.pools.assign(booking, [DOOR_1])

    # ------------------------------------------------------------------ the world

    @rule(kind=st.sampled_from(("5xx", "429", "401", "403", None)))
    def nuki_trouble(self, kind: str | None) -> None:
        self.w.set_outage(kind)

    @rule(lock_id=st.sampled_from(LOCKS), online=st.booleans())
    def lock_online(self, lock_id: int, online: bool) -> None:
        if self.w.is_online(lock_id) != online:
            self.w.set_online(lock_id, online)

    @rule(lock_id=st.sampled_from(LOCKS), delay=st.sampled_from((0.0, 10.0, 60.0)))
    def sync_delay(self, lock_id: int, delay: float) -> None:
        self.w.sandbox.update_smartlock(lock_id, sync_delay=delay)

    @rule()
    def replay(self) -> None:
        self.w.replay_webhook()

    @rule(booking=bookings, what=st.sampled_from(("delete", "code", "disable")))
    def edit_in_nuki_web(self, booking: str, what: str) -> None:
        item = self.w.booking_item(booking)
        if item is None:
            return
        for lock_id in self.w.shop[booking].locks:
            auth = next((a for a in self.w.auths_on(lock_id) if a.name == item["authName"]), None)
            if auth is None:
                continue
            if what == "delete":
                self.w.tampered[lock_id] = self.w.loop.t
                self.w.sandbox.delete_auth_elsewhere(lock_id, auth.id)
            elif what == "disable":
                self.w.edit_in_nuki_web(lock_id, auth, enabled=False)
            else:
                from local.nuki_sandbox.model import NukiError

                with contextlib.suppress(NukiError):
                    self.w.edit_in_nuki_web(lock_id, auth, code=765432)
            return

    @rule(booking=bookings)
    def foreign_code_on_the_pin(self, booking: str) -> None:
        item = self.w.booking_item(booking)
        if item is not None and item["status"] in ("scheduled", "provisioning"):
            self.w.add_foreign(self.w.shop[booking].locks[0], int(item["pin"]), "Cleaner")

    @rule(lock_id=st.sampled_from(LOCKS))
    def fill_the_lock(self, lock_id: int) -> None:
        """Someone fills the keypad to Nuki's 200 codes; the operator empties it at the end."""
        code = 311111
        while sum(1 for a in self.w.auths_on(lock_id) if a.type == 13 and a.error is None) < 200:
            if self.w.add_foreign(lock_id, code, f"Filler {code}") is not None:
                self.fillers.append((lock_id, code))
            code += 1

    @rule(kill=st.sampled_from((0.0, 0.3)))
    def invocations_die(self, kill: float) -> None:
        self.w.config.kill_after_write = kill

    @rule(seconds=st.sampled_from((1.0, 20.0, 120.0, 900.0, 3 * 3600.0)))
    def wait(self, seconds: float) -> None:
        self.w.run_for(seconds)

    # ------------------------------------------------------------------ the promise

    @invariant()
    def no_violation(self) -> None:
        if self.world is None:
            return
        assert not self.w.checker.violations, "\n".join(map(str, self.w.checker.violations[:5]))

    def teardown(self) -> None:
        if self.world is None:
            return
        w = self.w
        w.set_outage(None)
        for lock_id in LOCKS:
            if not w.is_online(lock_id):
                w.set_online(lock_id, True)
        w.config.kill_after_write = 0.0
        for lock_id, code in self.fillers:
            auth = next((a for a in w.auths_on(lock_id) if a.code == code and a.id in w.foreign_ids), None)
            if auth is not None:
                w.sandbox.delete_auth_elsewhere(lock_id, auth.id)
        w.run_for(4 * 3600)
        w.checker.final()
        assert not w.checker.violations, f"seed {w.seed}:\n" + "\n".join(map(str, w.checker.violations[:5]))


# make test runs a bounded part (30 examples, about 10 s); make simulate runs 300 (SIM_EXAMPLES).
StayKeyMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("SIM_EXAMPLES", "30")),
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    derandomize=os.environ.get("SIM_EXAMPLES") is None,
)
test_stays_keep_every_promise = StayKeyMachine.TestCase
