"""The watcher's function run by the shared look's schedule (events/shared_looks_schedule.json): after
a stay, the removals nobody waits for are confirmed by one read of the account's codes, with no
read-back of the booking's own."""

from __future__ import annotations

from datetime import timedelta

import pytest

from local.kit.apigw import Context
from staykey import wiring
from staykey.core.models import BookingStatus
from staykey.services.shared import SharedLooks
from tests.conftest import World, load_event
from tests.functional.activity.conftest import Pipeline, handler, make_watcher, stay


@pytest.fixture
def shared(pipeline: Pipeline, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    checks = make_watcher(world).checks
    looks = SharedLooks(world.store, checks, lambda: world.sync, world.clock)
    monkeypatch.setattr(wiring, "shared_looks", lambda: looks)


def test_a_removal_after_the_stay_is_confirmed_by_the_shared_look(shared: None, world: World) -> None:
    booking = stay(world)
    world.store.update_watch_state(codes=2)  # the watcher's last count of the account's codes
    world.clock.set(booking.validUntil)
    world.bookings.expire(booking.bookingId)
    assert world.bookings.get(booking.bookingId).status == BookingStatus.REVOKING
    world.nuki.apply()  # Nuki applies the deletes (no follow-up of the booking's own runs here)
    event = load_event("shared_looks_schedule.json")
    # Before its look is due, a run reads nothing
    before = len(world.nuki.calls)
    assert handler("log_poller")(event, Context())["told"] == 0
    assert world.nuki.calls[before:] == []
    # A minute after the deletes, one read of the account's codes confirms both locks
    world.clock.advance(seconds=61)
    report = handler("log_poller")(event, Context())
    assert report["told"] == 2
    assert report["nukiCalls"] == 1
    assert [name for name, _ in world.nuki.calls[before:]] == ["list_account_auths"]
    assert world.bookings.get(booking.bookingId).status == BookingStatus.REVOKED
    # and nothing is left to look at
    world.clock.advance(seconds=60)
    assert handler("log_poller")(event, Context())["due"] == 0
    assert world.store.awaited_looks() == []
    assert timedelta(0) < world.clock.now() - booking.validUntil < timedelta(minutes=15)
