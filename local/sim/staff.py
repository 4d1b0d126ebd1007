"""The shop's staff codes in a simulated world (issue 16): made, changed, rotated and removed
through StayKey's service (`services.staff`), as the shop's HTTP calls would. The shop's intent is
recorded as a `ShopBooking` with `staff` set under the code's booking id, so the checker judges a
staff code by the rules it judges every stay by (told means true, with its schedule; gone means
gone after its removal, its last date, or a move off a lock; foreign; converges; visible;
attributed), and never asks it for an arrival's readiness. Each answer is compared with what the
shop asked for: the schedule and dates it stored are the ones sent (`record`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from staykey.core.staff import StaffCodeIn, StaffCodePatch, booking_id
from staykey.errors import StayKeyError

if TYPE_CHECKING:
    from local.sim.world import World

SCHEDULE_FIELDS = ("allowedWeekDays", "allowedFromTime", "allowedUntilTime", "allowedFromDate", "allowedUntilDate")


def add(
    world: World,
    staff_code_id: str,
    rooms: tuple[str, ...] = (),
    locks: tuple[int, ...] = (),
    **schedule: Any,
) -> str:
    """The shop makes a staff code (`schedule`: Nuki's field names, as the API takes them); its
    booking id."""
    from local.sim.world import ShopBooking

    bid = booking_id(staff_code_id)
    request = {
        "staffCodeId": staff_code_id,
        "name": f"Staff {staff_code_id}",
        "roomIds": list(rooms),
        "smartlockIds": list(locks),
        **schedule,
    }
    held = _locks(world, rooms, locks)
    sb = ShopBooking(bid, rooms[0] if rooms else "", held, request, world.loop.t, staff=True)
    sb.joined = dict.fromkeys(held, world.loop.t)
    world.shop[bid] = sb
    world._shop(bid, f"shop:staff:create:{staff_code_id}", lambda: _create(world, bid))
    return bid


def _locks(world: World, rooms: tuple[str, ...] | list[str], locks: tuple[int, ...] | list[int]) -> tuple[int, ...]:
    return tuple(dict.fromkeys([*(i for r in rooms for i in world.room_locks(r)), *locks]))


def _create(world: World, bid: str) -> bool:
    sb = world.shop[bid]
    request = StaffCodeIn.model_validate(sb.request)
    answer = world.shop_call(bid, "POST /staff-codes", lambda: world.staff.create(request))
    if answer is None:
        return False
    if isinstance(answer, StayKeyError):
        world.note(f"staff code {bid} refused: {answer.status} {answer.message}")
        sb.ended_at = world.loop.t  # nothing of it may be on a lock
        return True
    code, _ = answer
    sb.answered = True
    sb.valid_from, sb.valid_until = code.validFrom, code.validUntil
    record(world, bid, code)
    return True


def change(world: World, staff_code_id: str, **body: Any) -> None:
    """The shop changes a staff code: its schedule, dates, rooms or locks (PATCH /staff-codes)."""
    bid = booking_id(staff_code_id)
    world._shop(bid, f"shop:staff:patch:{staff_code_id}", lambda: _change(world, bid, body))


def _change(world: World, bid: str, body: dict[str, Any]) -> bool:
    sb = world.shop[bid]
    patch = StaffCodePatch.model_validate(body)
    answer = world.shop_call(bid, "PATCH /staff-codes", lambda: world.staff.patch(sb.request["staffCodeId"], patch))
    if answer is None:
        return False
    if isinstance(answer, StayKeyError):
        return True
    now = world.loop.t
    sb.changed_at = now
    if answer.status.value == "provisioning":
        world.checker.provisioning_since[bid] = now
    sb.request.update(body)
    if {"roomIds", "smartlockIds"} & set(body):
        sb.move_to(_locks(world, sb.request["roomIds"], sb.request["smartlockIds"]), now)
    if {"allowedFromDate", "allowedUntilDate"} & set(body):
        sb.dates_changed_at = now
    sb.valid_from, sb.valid_until = answer.validFrom, answer.validUntil
    record(world, bid, answer)
    return True


def remove(world: World, staff_code_id: str) -> None:
    """The shop deletes a staff code: it must be off every lock within 15 minutes."""
    bid = booking_id(staff_code_id)

    def call() -> bool:
        sb = world.shop[bid]
        answer = world.shop_call(bid, "DELETE /staff-codes", lambda: world.staff.remove(staff_code_id))
        if answer is None:
            return False
        if not isinstance(answer, StayKeyError) and sb.ended_at is None:
            sb.ended_at, sb.end_kind = world.loop.t, "cancel"
        return True

    world._shop(bid, f"shop:staff:remove:{staff_code_id}", call)


def record(world: World, bid: str, code: Any) -> None:
    """What StayKey answered is what the shop asked for: the weekly schedule and the dates."""
    world.checker.checks["told_means_true"] += 1
    asked = world.shop[bid].request
    part = code.staff
    held = {
        "allowedWeekDays": part.schedule.weekDays,
        "allowedFromTime": part.schedule.fromTime,
        "allowedUntilTime": part.schedule.untilTime,
        "allowedFromDate": part.allowedFromDate,
        "allowedUntilDate": part.allowedUntilDate,
    }
    wanted = {"allowedWeekDays": 127, "allowedFromTime": 0, "allowedUntilTime": 0, **asked}
    for key in SCHEDULE_FIELDS:
        if key in wanted and wanted.get(key) != held[key]:
            world.checker.violation(
                "told_means_true", f"{bid}: StayKey holds {key} {held[key]!r}, the shop asked for {wanted[key]!r}"
            )


__all__ = ["add", "change", "plan_staff", "record", "remove"]


# ---------------------------------------------------------------------- in a season

KEYPAD_ROOMS = ("r1", "r2", "r3", "r4")


def plan_staff(season: Any, horizon: float) -> None:
    """A season's staff codes, from their own random source: a few made at random times (now and
    then on a room whose door takes no keypad: a 422), each with a random weekly schedule and
    sometimes dates (a last date inside the season: its removal by schedule); the staff at the
    doors, in and out of their hours; changes of schedule and rooms, rotations, removals."""
    from functools import partial

    rng = season.staff_rng
    w = season.world
    for n in range(rng.choice((0, 1, 2, 3))):
        at = rng.uniform(0, horizon * 0.6)
        w.loop.call_at(at, partial(_make, season, n), name="staff-create")


def _schedule(rng: Any, now: Any) -> dict[str, Any]:
    from datetime import timedelta

    out: dict[str, Any] = {"allowedWeekDays": rng.choice((127, 124, 3, rng.randint(1, 127)))}
    if rng.random() < 0.6:
        start = rng.randrange(0, 23 * 60)
        out["allowedFromTime"], out["allowedUntilTime"] = start, rng.randrange(start + 1, 24 * 60)
    if rng.random() < 0.3:
        out["allowedFromDate"] = (now + timedelta(hours=rng.choice((-30, 2, 20)))).isoformat().replace("+00:00", "Z")
    if rng.random() < 0.3:
        out["allowedUntilDate"] = (now + timedelta(hours=rng.choice((3, 30)))).isoformat().replace("+00:00", "Z")
    return out


def _make(season: Any, n: int) -> None:
    from functools import partial

    w, rng = season.world, season.staff_rng
    staff_code_id = f"S{season.seed}-{n}"
    rooms = tuple(rng.sample(KEYPAD_ROOMS, rng.choice((1, 1, 2))))
    if rng.random() < 0.1:
        rooms = (*rooms, rng.choice(("r5", "r6")))  # a door opened with the app only: refused
    locks = (17000098,) if rng.random() < 0.2 else ()
    bid = add(w, staff_code_id, rooms, locks, **_schedule(rng, w.loop.now()))
    hour = 3600.0
    for _ in range(rng.randint(2, 6)):
        w.loop.call_later(rng.uniform(60.0, 2 * 24 * hour), partial(_enter, w, bid), name="staff-enter")
    roll = rng.random()
    when = rng.uniform(60.0, 30 * hour)
    if roll < 0.25:
        w.loop.call_later(when, lambda: change(w, staff_code_id, **_schedule(rng, w.loop.now())), name="staff-patch")
    elif roll < 0.4:
        moved = list(rng.sample(KEYPAD_ROOMS, 1))
        w.loop.call_later(when, lambda: change(w, staff_code_id, roomIds=moved), name="staff-move")
    elif roll < 0.55:
        w.loop.call_later(when, lambda: remove(w, staff_code_id), name="staff-remove")
    if rng.random() < 0.3:
        w.loop.call_later(rng.uniform(60.0, 30 * hour), partial(w.rotate, bid, rng.random() < 0.3), name="staff-rotate")


def _enter(w: World, bid: str) -> None:
    """Someone of the staff types the code at each of its doors (it opens only in their hours)."""
    item = w.booking_item(bid)
    if item is None or item["status"] not in ("active", "provisioning"):
        return
    for lock in item["locks"]:
        lock_id = int(lock["smartlockId"])
        if lock.get("desired") == "present" and w.is_online(lock_id):
            w.guest_types_pin(bid, lock_id)
