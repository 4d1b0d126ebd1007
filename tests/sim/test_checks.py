"""Checks added to the simulator after issue 11's nine defects, and what they found.

* visible: a write Nuki refuses with 403 (a lapsed subscription, a token without the permission)
  emits `NukiForbidden` when it first happens. The simulator's 403 spell found that a refused
  removal was taken for a code already gone (Nuki answers 403 for unknown ids too): retried every
  minute or two, never counted, never alarmed, for as long as the spell lasted.
* foreign: a PIN StayKey chooses is never the code of a foreign code it knows on that lock.
* told means true, PIN rotation (seeds 39, 72): between the switch to the rotated PIN and the email
  with it, the old PIN must keep opening the doors; the check also demanded that it open them before
  the stay, when a booking is active from its lead time on and no code of it opens yet (the codes
  carry the stay's window): it is judged by its window only while the stay is on.
* converges, PIN rotation (seed 40): a rotation asked for seconds before the run's final check was
  called one that never took effect; it has CONFIRM_MIN like any new code.
* converges: a booking whose removals Nuki keeps refusing (seeds 22 and 91: 423, 403) took 122
  follow-ups in an hour. Each retry of a write started its read-backs from the backoff's first
  second again (1, 3, 6 s: while the client was still retrying the write itself), and the
  booking's codes on one lock (its own and a PIN rotation's old one) retried each on its own
  clock, out of phase: two wakes, each with its read-backs, every two minutes.
* gone means gone: seed 95 (found while checking the above): a rotation's old code, kept until the
  guest is told the new PIN, stayed 48 minutes on a lock the booking had moved away from (its new
  room's codes were refused in a 403 spell, so no email came); it is kept only on the room's locks.
"""

from __future__ import annotations

import pytest

from staykey.services import bookings as bookings_module
from tests.sim.conftest import DOOR_1, DOOR_2, ENTRANCE, book_now, codes_on, make_world, status, violations
from tests.sim.test_stateful import StayKeyMachine


def test_a_removal_nuki_refuses_with_403_alarms_at_once_and_goes_once_nuki_takes_it() -> None:
    world = make_world(webhooks=True)
    book_now(world, "B-LAPSED", hours=24)
    world.run_for(300)
    assert status(world, "B-LAPSED") == "active"
    pin = int(world.booking_item("B-LAPSED")["pin"])  # type: ignore[index]
    world.set_outage("403")  # the Smart Hosting subscription lapses: every write refused
    world.end("B-LAPSED", "checkout")
    world.run_for(90)
    assert world.forbidden_at, "the removal was refused"
    assert world.metric_counts["NukiForbidden"] >= 1, "a refused removal is the operator's to fix: alarmed now"
    assert codes_on(world, DOOR_1).get(pin) == "SK B-LAPSED", "refused: still on the lock"
    world.run_for(2 * 3600)
    world.set_outage(None)  # renewed
    world.run_for(15 * 60)
    assert pin not in codes_on(world, DOOR_1)
    assert pin not in codes_on(world, ENTRANCE)
    world.checker.sweep()
    assert not violations(world)


def test_a_create_nuki_refuses_with_403_alarms_and_the_booking_fails_with_its_reason() -> None:
    world = make_world(webhooks=True)
    world.set_outage("403")
    book_now(world, "B-NOSUB")
    world.run_for(120)
    assert status(world, "B-NOSUB") == "failed"
    assert world.metric_counts["NukiForbidden"] >= 1
    world.set_outage(None)
    world.run_for(2 * 3600)  # tried again hourly
    assert status(world, "B-NOSUB") == "active"
    world.checker.sweep()
    world.checker.alarms()
    assert not violations(world)


def test_the_checker_catches_a_pin_chosen_on_a_known_foreign_code(monkeypatch: pytest.MonkeyPatch) -> None:
    world = make_world(webhooks=True)
    world.add_foreign(DOOR_1, 734159, "Neighbour")
    world.reconcile_now()
    world.run_for(60)
    assert world.known_foreign[DOOR_1], "the reconciler listed the neighbour's code"
    proposals = ["734159", "493827"]  # what the PIN generator would draw, in order
    monkeypatch.setattr(bookings_module, "generate_pin", lambda avoid, *_: next(p for p in proposals if p not in avoid))
    # StayKey remembers it (the lock's code claim): it chooses another PIN, and the check agrees
    book_now(world, "B-1")
    world.run_for(60)
    assert world.booking_item("B-1")["pin"] == "493827"  # type: ignore[index]
    assert not violations(world, "foreign")
    # A StayKey that forgot it (the claim lost) would choose it: the check says so
    world.ddb.discard("staykey-sim", f"LOCK#{DOOR_1}", "CODE#734159")
    proposals[:] = ["734159"]
    book_now(world, "B-2")
    world.run_for(1)
    assert [v for v in violations(world, "foreign") if "B-2 chose PIN 734159 on lock 17000001" in v]


def test_a_rotation_ahead_of_the_stay_keeps_the_told_pin_on_the_doors_until_the_guest_is_told() -> None:
    world = make_world(webhooks=True)
    book_now(world, "B-EARLY", hours=3, lead=3600)  # active from its lead time, an hour before the stay
    world.run_for(300)
    assert status(world, "B-EARLY") == "active"
    old = world.booking_item("B-EARLY")["pin"]  # type: ignore[index]
    sent = len(world.mailer.sent)
    world.mailer.fail_next = 7  # SES throttles: the new PIN's email goes out on its 8th try, two hours on
    world.rotate("B-EARLY")
    world.run_for(600)
    item = world.booking_item("B-EARLY")
    assert item is not None
    assert item["pin"] != old, "switched to the rotated PIN"
    for lock_id in (DOOR_1, ENTRANCE):
        assert codes_on(world, lock_id).get(int(old)) == "SK B-EARLY", "the old code stays until the guest is told"
    world.checker.sweep()
    assert not violations(world, "told_means_true"), "before the stay no code opens: nothing was promised"
    world.run_for(3600)  # into the stay, the guest still not told: the old PIN opens (and is checked)
    assert len(world.mailer.sent) == sent
    world.checker.sweep()
    assert not violations(world, "told_means_true")
    world.run_for(2 * 3600)
    assert len(world.mailer.sent) == sent + 1, "told at last"
    assert int(old) not in codes_on(world, DOOR_1), "then the old code goes"
    world.checker.sweep()
    assert not violations(world)


def test_removals_nuki_keeps_refusing_retry_together_and_are_not_read_back_while_sent() -> None:
    world = make_world(webhooks=False)  # read-backs from the first second (no DEVICE_AUTHS)
    book_now(world, "B-ROT", hours=24)
    world.run_for(300)
    assert status(world, "B-ROT") == "active"
    old = world.booking_item("B-ROT")["pin"]  # type: ignore[index]
    world.rotate("B-ROT")
    for _ in range(60):
        world.run_for(2)
        if world.booking_item("B-ROT")["pin"] != old:  # type: ignore[index]
            break
    assert world.booking_item("B-ROT")["pin"] != old, "the rotation switched"  # type: ignore[index]
    world.set_outage("403")  # the old codes' removals are refused, retried every two minutes
    world.run_for(600)
    world.end("B-ROT", "checkout")  # the booking's own codes' removals start on another clock
    world.run_for(2 * 3600)
    now = world.loop.t
    last_hour = [t for t in world.follow_ups["B-ROT"] if t > now - 3600]
    # One wake every two minutes for all of the booking's retries, and the follow-up queued before
    # the write: about 60 (it was 159).
    assert len(last_hour) <= 70, f"{len(last_hour)} follow-ups in the last hour"
    world.set_outage(None)
    world.run_for(15 * 60)
    assert int(old) not in codes_on(world, DOOR_1)
    assert status(world, "B-ROT") == "revoked"
    world.checker.sweep()
    assert not violations(world)


def test_a_rotation_asked_for_just_before_the_end_has_its_time_but_one_stuck_is_caught() -> None:
    world = make_world(webhooks=True)
    book_now(world, "B-LATE", hours=24)
    book_now(world, "B-STUCK", "r2", hours=24)
    world.run_for(300)
    world.set_online(DOOR_2, False)  # B-STUCK's new code cannot land
    world.rotate("B-STUCK")
    world.run_for(3600)
    world.set_online(DOOR_1, False)  # B-LATE's new code takes its time too: asked for at the very end
    world.rotate("B-LATE")
    world.run_for(5)
    assert world.booking_item("B-LATE")["rotation"], "still in progress"  # type: ignore[index]
    world.checker.final()
    found = violations(world, "converges")
    assert not [v for v in found if "B-LATE" in v]
    assert [v for v in found if "B-STUCK's PIN rotation never took effect" in v]


def test_a_rotated_pin_whose_email_is_given_up_on_leaves_the_told_pin_working() -> None:
    """Found while checking seeds 39 and 72: SES refusing the new PIN's email for good made the
    email count as handled, so the old codes came off while the guest knew only the old PIN: locked
    out mid-stay. An email given up on tells no one: the told PIN keeps opening every door until an
    operator's re-send reaches the guest (then the old codes go)."""
    world = make_world(webhooks=True)
    book_now(world, "B-MUTE")  # a stay from a minute on
    world.run_for(300)
    assert status(world, "B-MUTE") == "active"
    old = world.booking_item("B-MUTE")["pin"]  # type: ignore[index]
    sent = len(world.mailer.sent)
    world.mailer.fail_next = 100  # every try fails: the email is given up on after its last
    world.rotate("B-MUTE")
    world.run_for(4 * 3600)
    item = world.booking_item("B-MUTE")
    assert item is not None
    assert item["pin"] != old, "switched to the rotated PIN"
    assert item.get("emailError"), "the email was given up on, and says so"
    assert len(world.mailer.sent) == sent
    for lock_id in (DOOR_1, ENTRANCE):
        assert codes_on(world, lock_id).get(int(old)) == "SK B-MUTE", "the told PIN still opens"
    world.checker.sweep()
    assert not violations(world, "told_means_true")
    world.mailer.fail_next = 0
    world.bookings.resend_email("B-MUTE")  # the operator re-sends once SES takes mail again
    world.run_for(600)
    assert len(world.mailer.sent) == sent + 1
    assert int(old) not in codes_on(world, DOOR_1), "told now: the old code goes"
    world.checker.sweep()
    assert not violations(world)


def test_an_old_code_on_a_lock_the_booking_moved_away_from_goes_without_waiting_for_the_email() -> None:
    world = make_world(webhooks=True)
    book_now(world, "B-MV", hours=24)
    world.run_for(300)
    old = world.booking_item("B-MV")["pin"]  # type: ignore[index]
    world.rotate("B-MV")
    for _ in range(60):
        world.run_for(2)
        if world.booking_item("B-MV")["pin"] != old:  # type: ignore[index]
            break
    assert world.booking_item("B-MV")["pin"] != old, "the rotation switched"  # type: ignore[index]
    world.set_outage("403")  # the old code's removal is refused until the guest is told the new PIN
    world.run_for(600)
    world.patch("B-MV", roomId="r2")  # away from door 1; its new codes refused: failed, no email yet
    world.run_for(1200)
    world.set_outage(None)
    world.run_for(15 * 60)
    assert int(old) not in codes_on(world, DOOR_1), "the old code stayed on a lock the booking left"
    world.checker.sweep()
    assert not violations(world, "gone_means_gone")


# An adversarial review of the first fix for a Hypothesis example (seed 181: our create landed,
# someone changed its PIN in Nuki Web before a read-back recorded its id) found that fix adopting,
# rewriting and deleting codes StayKey did not create. A code under our name with a PIN the
# booking never had carries nothing of our records: it is someone else's (the simulator's
# `edit_in_nuki_web` counts such an edit as handing the code over).


def _machine() -> StayKeyMachine:
    m = StayKeyMachine()
    m.start(seed=1, lean=False, sync_delay=0.0, webhooks=False)
    return m


def test_an_operators_code_under_our_name_during_a_slow_create_is_untouched() -> None:
    m = _machine()
    w = m.w
    m.sync_delay(DOOR_1, 60.0)
    booking_id = m.book("r1", -30, 5)
    w.run_for(1)
    item = w.booking_item(booking_id)
    theirs = w.add_foreign(DOOR_1, 357913, item["authName"])  # a companion's code, typed by the host
    w.run_for(180)
    assert violations(w) == []
    assert theirs in {a.id for a in w.auths_on(DOOR_1)}
    assert w.booking_item(booking_id)["status"] == "active"


def test_an_operators_code_under_our_name_is_untouched_when_the_booking_ends_during_its_create() -> None:
    m = _machine()
    w = m.w
    m.lock_online(DOOR_1, False)
    booking_id = m.book("r1", -30, 5)
    w.run_for(30)
    m.end(booking_id, "cancel")
    w.run_for(60)
    theirs = w.add_foreign(DOOR_1, 357913, w.booking_item(booking_id)["authName"])
    w.run_for(60)
    m.lock_online(DOOR_1, True)
    w.run_for(1800)
    assert violations(w) == []
    assert theirs in {a.id for a in w.auths_on(DOOR_1)}


def test_a_copy_of_our_code_on_a_door_a_booking_left_before_its_code_was_sent_is_untouched() -> None:
    """The same review: a scheduled booking moved to another room before anything was sent
    remembered the door it left (`formerLocks`), so a host's copy of the guest's code there (our
    name, the booking's PIN) was deleted as ours. Only a door something was sent to is remembered."""
    m = _machine()
    w = m.w
    booking_id = m.book("r1", 75 * 60, 5)
    w.run_for(60)
    m.move(booking_id, "r2")
    w.run_for(120)
    item = w.booking_item(booking_id)
    assert item.get("formerLocks", []) == []
    copy = w.add_foreign(DOOR_1, int(item["pin"]), item["authName"])
    w.run_for(26 * 3600)
    assert violations(w) == []
    assert copy in {a.id for a in w.auths_on(DOOR_1)}


def test_a_fleets_spread_removals_still_go_within_15_minutes_through_ghost_deletes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 17: a large fleet's stay-end removals wait a share of EXPIRY_SPREAD_MINUTES (default 10)
    so its check-outs do not reach Nuki in one second. Forced in full on a small season (seed 22,
    hostile, no webhooks: ghost deletes Nuki takes and never applies), every code is still gone
    within 15 minutes of its stay. When a ghost delete was sent again only every two minutes, a
    10-minute spread left a ghost-deleted code 16 minutes (the default was 5 then); it is sent again
    within seconds on a lock whose sync delay is learned now (`core.observe.resend_after`)."""
    from local.sim.scenario import Season

    monkeypatch.setattr(bookings_module, "EXPIRY_SPREAD_FULL_AT", 1)
    result = Season(22, stays=80, days=1.0, validate=0.1).run()
    assert [str(v) for v in result.violations] == []


def test_a_waiting_removal_whose_wake_up_was_lost_is_healed_at_the_next_hot_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found by an adversarial review of the spread: the end's invocation died after writing the
    booking `revoking` (its removals waiting) and before queueing the follow-up; the watcher's look
    after the end fell within the wait and found the code rightly pending, and nothing looked again:
    the codes stayed for hours. The stay's end for the watcher is now when its removal is due, so
    the first hot check after it finds the removal overdue and heals it (a crash of this kind was
    healed at the first hot check after the end before the spread: 15 minutes at most; now at
    most 15 after the removal was due)."""
    from local.sim.loop import Killed
    from staykey.core.timeutil import parse_iso

    monkeypatch.setattr(bookings_module, "EXPIRY_SPREAD_FULL_AT", 1)
    m = _machine()
    w = m.w
    w.watch_now()
    w.run_for(5)
    m.n = 9  # this booking's share of the spread: 4.65 minutes
    booking_id = m.book("r1", -30, 1)
    w.run_for(600)
    end = w.loop.at_time(parse_iso(w.booking_item(booking_id)["validUntil"]))
    w.run_for(end - w.loop.t - 2)
    process = w.bookings.sync.process
    died: list[float] = []

    def dies_once(target: str, *a: object, **kw: object) -> object:
        if target == booking_id and not died:
            died.append(w.loop.t)
            raise Killed()
        return process(target, *a, **kw)

    monkeypatch.setattr(w.bookings.sync, "process", dies_once)
    w.run_for(20 * 60 + 60)
    assert died
    assert w.booking_item(booking_id)["status"] == "revoked"
    assert [
        a for lock in (DOOR_1, ENTRANCE) for a in w.auths_on(lock) if a.type == 13 and a.name.endswith("H-10")
    ] == []


def test_a_create_sent_again_whose_first_lands_late_is_ours_and_goes_when_its_lock_is_left() -> None:
    """Found by Hypothesis (seed 13518, with staff codes): a staff code's create waited on an offline
    door and was written off at its deadline; sent again once the door was back, Nuki answered 409
    (the first one, still pending, held its PIN) and StayKey took the holder for someone else's:
    it forgot its own create, which then landed. The staff code moved to another room and its code
    stayed on the door it left for hours (gone means gone). A create sent again with the same PIN
    now takes a holder nobody can see for the first one, and goes on reading back."""
    state = StayKeyMachine()
    state.start(seed=13518, webhooks=False, lean=False, sync_delay=30.0)
    state.lock_online(lock_id=17000099, online=False)
    state.wait(seconds=1.0)
    state.lock_online(lock_id=17000001, online=False)
    state.wait(seconds=1.0)
    code = state.make_staff_code(days=1, rooms=("r1",), times=(480, 720), until_hours=None)
    state.wait(seconds=900.0)
    state.lock_online(lock_id=17000001, online=True)
    state.wait(seconds=120.0)
    state.change_staff_code(code=code, days=127, room="r2")
    state.wait(seconds=900.0)
    state.no_violation()
    state.teardown()


def test_a_write_waiting_for_room_on_a_lock_no_stay_keeps_hot_has_the_lock_counted_again() -> None:
    """Found by Hypothesis (seed 0, with staff codes): a staff code's create waited for room on a
    full door; the codes that filled it were removed, but nothing counted the lock again but the
    daily sweep (no stay kept it hot), and the staff code stayed failed for hours. A write that
    waits for room now has its lock counted by the watcher before it retries."""
    state = StayKeyMachine()
    state.start(seed=0, webhooks=False, lean=False, sync_delay=0.0)
    state.replay()
    state.fill_the_lock(lock_id=17000001)
    state.make_staff_code(days=127, rooms=("r1",), times=(0, 0), until_hours=None)
    state.wait(seconds=10800.0)
    state.teardown()
