"""Writes nobody waits for wait for the shared look (staykey.core.looks.shared), with plain values:
which writes they are, when their own read-backs come, what a shared look may judge and teach."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from staykey.core import commands
from staykey.core import decide as d
from staykey.core.looks import SHARED_FIRST, SHARED_WAIT, look_due, shared
from staykey.core.models import Booking, BookingStatus, LockStatus
from staykey.core.round import Context, Look, Outcome
from staykey.settings import load_settings
from tests.unit.core.test_decide import LOCKS, NOW, booking, on_lock

BACKOFF = [1.0, 2.0, 3.0, 5.0]


def ctx(at: datetime, on: bool = True, delays: dict[int, float | None] | None = None) -> Context:
    return Context(settings=load_settings(), now=at, backoff=BACKOFF, sync_delays=delays or {}, shared_looks=on)


def provisioned() -> Booking:
    """A booking the provisioning schedule started (its stay 5 h away), its creates just sent."""
    b = booking()
    b.status = BookingStatus.SCHEDULED
    commands.start_provisioning(b, NOW)
    d.decide(b, {}, ctx(NOW))
    d.after_outcome(b, Outcome(), ctx(NOW))
    return b


def active() -> Booking:
    b = booking()
    d.decide(b, {}, ctx(NOW))
    d.after_outcome(b, Outcome(), ctx(NOW))
    seen = NOW + timedelta(seconds=2)
    d.decide(b, {lock: Look([on_lock(b, lock)], True, stamp=seen) for lock in LOCKS}, ctx(seen))
    assert b.status == BookingStatus.ACTIVE
    return b


def ended(b: Booking, at: datetime) -> None:
    commands.end(b, BookingStatus.REVOKING, "stay ended", at)
    d.decide(b, {}, ctx(at))
    d.after_outcome(b, Outcome(), ctx(at))
    assert all(lk.op == "delete" for lk in b.locks)


def test_a_code_the_provisioning_schedule_put_on_waits_for_the_shared_look() -> None:
    b = provisioned()
    assert b.nobodyWaits
    assert all(lk.op == "create" and shared(b, lk, ctx(NOW)) for lk in b.locks)
    # switched off: its own read-backs, as always
    assert not any(shared(b, lk, ctx(NOW, on=False)) for lk in b.locks)
    # less than an hour before the stay somebody may be at the door: its own read-backs
    late = b.validFrom - timedelta(minutes=59)
    assert not any(shared(b, lk, ctx(late)) for lk in b.locks)


def test_a_shops_booking_and_any_change_are_waited_for() -> None:
    b = booking()  # made by the shop within its lead: the shop waits for `active`
    d.decide(b, {}, ctx(NOW))
    assert not b.nobodyWaits
    assert not any(shared(b, lk, ctx(NOW)) for lk in b.locks)
    p = provisioned()
    commands.rotate(p, "739164", NOW)
    assert not p.nobodyWaits
    p = provisioned()
    p.status = BookingStatus.FAILED
    commands.retry(p, NOW)
    assert not p.nobodyWaits


def test_a_removal_is_shared_only_once_its_code_opens_nothing() -> None:
    after = NOW + timedelta(days=2, hours=2)  # past validUntil (12-03 10:00)
    b = active()
    ended(b, after)
    assert all(shared(b, lk, ctx(after)) for lk in b.locks)
    # a checkout or a cancellation while the window is open: the code still opens the door
    b = active()
    during = NOW + timedelta(days=1)
    ended(b, during)
    assert not any(shared(b, lk, ctx(during)) for lk in b.locks)
    # a staff code's open-ended window never closes
    b = active()
    ended(b, after)
    for lk in b.locks:
        lk.sentUntil = datetime(2100, 1, 1, tzinfo=after.tzinfo)
    assert not any(shared(b, lk, ctx(after)) for lk in b.locks)


def test_a_shared_write_asks_for_the_look_and_its_own_read_back_waits() -> None:
    b = booking()
    b.status = BookingStatus.SCHEDULED
    commands.start_provisioning(b, NOW)
    d.decide(b, {}, ctx(NOW))
    plan = d.after_outcome(b, Outcome(), ctx(NOW))
    # a code put on hours ahead may be read from its own first point (1 s: the backoff's first) and
    # is read with the others of five minutes at the latest
    first = SHARED_FIRST["create"]
    expected = [(lock, NOW + timedelta(seconds=1), NOW + timedelta(seconds=first)) for lock in sorted(LOCKS)]
    assert sorted(plan.shared_at) == expected
    # its own read-back comes SHARED_WAIT after that, and a follow-up before then does not read it
    assert plan.next_check_delay == pytest.approx(first + SHARED_WAIT)
    soon = NOW + timedelta(seconds=first + 30)
    assert not any(look_due(lk, ctx(soon), b) for lk in b.locks)
    later = NOW + timedelta(seconds=first + SHARED_WAIT)
    assert all(look_due(lk, ctx(later), b) for lk in b.locks)
    # a shared look that came at 5 min 10 s and missed it: the next one at the next point, its own
    # read-back SHARED_WAIT after that look
    looked = NOW + timedelta(seconds=first + 10)
    plan = d.decide(b, {lock: Look([], True, stamp=looked, timed=False) for lock in LOCKS}, ctx(looked))
    assert all(by >= at > looked for _, at, by in plan.shared_at)
    assert plan.next_check_delay == pytest.approx(SHARED_WAIT)
    # without the shared look: its own points
    b = booking()
    b.status = BookingStatus.SCHEDULED
    commands.start_provisioning(b, NOW)
    d.decide(b, {}, ctx(NOW, on=False))
    plan = d.after_outcome(b, Outcome(), ctx(NOW, on=False))
    assert plan.shared_at == []
    assert plan.next_check_delay == pytest.approx(1.0)


def test_a_removal_is_looked_at_with_the_others_of_its_minute() -> None:
    after = NOW + timedelta(days=2, hours=2)
    b = active()
    commands.end(b, BookingStatus.REVOKING, "stay ended", after)
    d.decide(b, {}, ctx(after))
    plan = d.after_outcome(b, Outcome(), ctx(after))
    # from its own first point (15 s on a lock not learned), with the others of its minute at the latest
    by = after + timedelta(seconds=SHARED_FIRST["delete"])
    assert sorted(plan.shared_at) == [(lock, after + timedelta(seconds=15), by) for lock in sorted(LOCKS)]
    assert plan.next_check_delay == pytest.approx(SHARED_FIRST["delete"] + SHARED_WAIT)


def test_the_shared_look_confirms_and_teaches_no_sync_delay() -> None:
    b = provisioned()
    at = NOW + timedelta(seconds=47)
    looks = {lock: Look([on_lock(b, lock)], True, stamp=at, timed=False) for lock in LOCKS}
    plan = d.decide(b, looks, ctx(at, delays=dict.fromkeys(LOCKS, None)))
    assert all(lk.status == LockStatus.ACTIVE and lk.op is None for lk in b.locks)
    assert b.status == BookingStatus.ACTIVE
    assert plan.sync_samples == []


def test_a_removal_seen_gone_by_the_shared_look_is_removed() -> None:
    after = NOW + timedelta(days=2, hours=2)
    b = active()
    ended(b, after)
    at = after + timedelta(seconds=40)
    plan = d.decide(b, {lock: Look([], True, stamp=at, timed=False) for lock in LOCKS}, ctx(at))
    assert all(lk.status == LockStatus.REMOVED for lk in b.locks)
    assert b.status == BookingStatus.REVOKED
    assert plan.sync_samples == []


def test_a_list_read_before_the_write_was_sent_says_nothing_of_it() -> None:
    after = NOW + timedelta(days=2, hours=2)
    b = active()
    ended(b, after)
    # read a second before the delete went out: the code's absence then is no removal
    before = after - timedelta(seconds=1)
    d.decide(b, {lock: Look([], True, stamp=before, timed=False) for lock in LOCKS}, ctx(after))
    assert all(lk.op == "delete" and lk.status != LockStatus.REMOVED for lk in b.locks)
    # and the same list read after the send removes it
    at = after + timedelta(seconds=1)
    d.decide(b, {lock: Look([], True, stamp=at) for lock in LOCKS}, ctx(at))
    assert all(lk.status == LockStatus.REMOVED for lk in b.locks)


def test_a_ghost_delete_one_shared_look_still_sees_is_sent_again_and_then_read_back_on_its_own() -> None:
    after = NOW + timedelta(days=2, hours=2)
    b = active()
    ended(b, after)
    at = after + timedelta(seconds=70)  # a minute and more after the send (a lock not learned)
    looks = {lock: Look([on_lock(b, lock)], True, stamp=at, timed=False) for lock in LOCKS}
    plan = d.decide(b, looks, ctx(at))
    assert sorted(lock for lock, _ in plan.resend_deletes) == sorted(LOCKS)
    # sent again: its own read-backs, seconds apart, from now on
    assert not any(shared(b, lk, ctx(at)) for lk in b.locks)
    # a removal that reads back on its own (shared looks off), seconds apart: one of its read-backs,
    # as soon after the send, is not enough (three are)
    b = active()
    ended(b, after)
    looks = {lock: Look([on_lock(b, lock)], True, stamp=at) for lock in LOCKS}
    assert d.decide(b, looks, ctx(at, on=False)).resend_deletes == []
    # a shared removal's own read-back (no shared look came) comes SHARED_WAIT after the last: one
    # a minute and more after the send is as sure as the shared look (three would take five minutes)
    b = active()
    ended(b, after)
    looks = {lock: Look([on_lock(b, lock)], True, stamp=at) for lock in LOCKS}
    assert sorted(lock for lock, _ in d.decide(b, looks, ctx(at)).resend_deletes) == sorted(LOCKS)
    # ... but not one of its own sooner than a minute after the send (a read asked for otherwise)
    b = active()
    ended(b, after)
    soon = after + timedelta(seconds=30)
    looks = {lock: Look([on_lock(b, lock)], True, stamp=soon) for lock in LOCKS}
    assert d.decide(b, looks, ctx(soon, delays=dict.fromkeys(LOCKS, 2.0))).resend_deletes == []
