"""Polling GET /smartlock/log (every lock's log from one cursor): the same activity as webhooks give,
without them; and the watcher's function, which polls when it is due."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from staykey import wiring
from staykey.nuki import NukiUnavailable
from staykey.services.polling import POLL_OVERLAP
from tests.conftest import World
from tests.functional.activity.conftest import LOCK_A, LOCK_B, STAY_START, Pipeline, stay
from tests.functional.activity.helpers import app_unlock, keypad_entry, logs_body


def guest_journey(world: World) -> list[Any]:
    """A booking, then: a wrong code, the guest's entries on both locks, the cleaner, the host's app."""
    booking = stay(world)
    world.nuki.add_foreign(LOCK_A, 734926, name="Cleaner")
    at = STAY_START
    return [
        keypad_entry(world.nuki, LOCK_A, at + timedelta(minutes=1), "987651", log_id="675000000000000000000a01"),
        keypad_entry(world.nuki, LOCK_B, at + timedelta(minutes=2), booking.pin, log_id="675000000000000000000a02"),
        keypad_entry(world.nuki, LOCK_A, at + timedelta(minutes=3), booking.pin, log_id="675000000000000000000a03"),
        keypad_entry(world.nuki, LOCK_A, at + timedelta(hours=3), "734926", log_id="675000000000000000000a04"),
        app_unlock(world.nuki, LOCK_B, at + timedelta(hours=4), log_id="675000000000000000000a05"),
        keypad_entry(
            world.nuki, LOCK_A, at + timedelta(hours=9), booking.pin, ref="authId", log_id="675000000000000000000a06"
        ),
    ]


def seen(pipeline: Pipeline, world: World) -> dict[str, Any]:
    """Everything a shop or an operator can read about it."""
    return {
        "booking": pipeline.booking_activity(),
        "lockA": pipeline.lock_activity(LOCK_A),
        "lockB": pipeline.lock_activity(LOCK_B),
        "firstEntryAt": world.bookings.get("B-1001").to_api()["firstEntryAt"],
    }


def test_polling_attributes_and_stores_like_webhooks(pipeline: Pipeline, world: World) -> None:
    entries = guest_journey(world)
    world.clock.set(STAY_START + timedelta(hours=10))
    # When the poller runs (no webhooks at all)
    summary = pipeline.poll()
    # Then one call read every lock's log; every entry is stored once, the guest's under the
    # booking, the rest under the locks (all of them older than a webhook would have been)
    assert summary == {"read": 6, "stored": 6, "late": 6, "pages": 1, "failed": False, "unfinished": False}
    assert world.nuki.count("iter_account_log_pages") == 1
    assert world.nuki.count("iter_log_pages") == 0
    view = seen(pipeline, world)
    assert [item["id"] for item in view["booking"]] == [entries[5].id, entries[2].id, entries[1].id]
    assert [item["id"] for item in view["lockA"]] == [entries[3].id, entries[0].id]
    assert [item["id"] for item in view["lockB"]] == [entries[4].id]
    assert view["firstEntryAt"] == "2026-11-27T14:02:00Z"
    # And the account's cursor is the newest entry
    assert world.store.log_cursor()[1] == entries[5].id


def test_a_second_poll_reads_from_the_cursor_and_stores_only_whats_new(pipeline: Pipeline, world: World) -> None:
    entries = guest_journey(world)
    world.clock.set(STAY_START + timedelta(hours=10))
    pipeline.poll()
    # Given an entry that shows up late in Nuki's log, dated a little before the cursor
    late = app_unlock(world.nuki, LOCK_A, entries[5].date - POLL_OVERLAP + timedelta(minutes=1))
    # And one dated well before the overlap (it would have been read by the first poll)
    too_old = app_unlock(world.nuki, LOCK_A, entries[5].date - POLL_OVERLAP - timedelta(hours=1))
    fresh = keypad_entry(world.nuki, LOCK_A, STAY_START + timedelta(hours=11), world.bookings.get("B-1001").pin)
    world.clock.set(STAY_START + timedelta(hours=12))
    # When the poller runs again
    summary = pipeline.poll()
    # Then only the entries after the cursor (minus the overlap) are read, new ones are stored
    assert summary["stored"] == 2
    ids = {item["id"] for item in pipeline.log_items()}
    assert {late.id, fresh.id} <= ids
    assert too_old.id not in ids


def test_an_entry_seen_by_webhook_and_by_polling_is_stored_once(pipeline: Pipeline, world: World) -> None:
    booking = stay(world)
    entry = keypad_entry(world.nuki, LOCK_A, STAY_START, booking.pin)
    pipeline.deliver(logs_body(entry))
    world.clock.set(STAY_START + timedelta(hours=1))
    summary = pipeline.poll()
    assert summary["read"] == 1
    assert summary["stored"] == 0
    assert len(pipeline.log_items()) == 1
    # And the other way round: polled first, then the webhook
    later = keypad_entry(world.nuki, LOCK_B, STAY_START + timedelta(minutes=30), booking.pin)
    world.clock.set(STAY_START + timedelta(hours=2))
    assert pipeline.poll()["stored"] == 1
    pipeline.deliver(logs_body(later))
    assert len(pipeline.log_items()) == 2
    assert len(pipeline.booking_activity()) == 2


@contextmanager
def fresh_world(monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    """A whole new test world (its own moto AWS), wired into the functions."""
    from moto import mock_aws

    from local.kit.fakes import ListJobQueue, ListMailer
    from local.kit.services import engine
    from staykey.adapters.schedules import Scheduler
    from staykey.core.timeutil import FixedClock
    from staykey.services.rooms import Rooms
    from staykey.settings import load_settings
    from staykey.store import Store
    from tests.conftest import create_local_aws
    from tests.fakes import FakeNuki
    from tests.functional.activity.conftest import make_activity

    with mock_aws(), monkeypatch.context() as patch:
        urls = create_local_aws("staykey-test", "staykey-test", "stays@example.com")
        patch.setenv("WEBHOOK_QUEUE_URL", urls["webhooks"])
        wiring.reset()
        clock = FixedClock(datetime(2026, 11, 26, 9, 0, tzinfo=UTC))
        nuki = FakeNuki(clock=clock.now)
        for lock_id in (LOCK_A, LOCK_B):
            nuki.add_lock(lock_id)
        settings = load_settings()
        store = Store(settings.table_name)
        jobs, mail = ListJobQueue(), ListMailer()
        bookings, sync = engine(settings, store, lambda: nuki, Scheduler(settings), jobs, mail, clock)  # type: ignore[arg-type, return-value]
        world = World(bookings, sync, store, nuki, clock, jobs, mail, Rooms(store, clock, nuki=lambda: nuki))  # type: ignore[arg-type, return-value]
        service = make_activity(world)
        patch.setattr(wiring, "activity", lambda: service)
        patch.setattr(wiring, "bookings", lambda: bookings)
        patch.setattr(wiring, "sync", lambda: sync)
        patch.setattr(wiring, "store", lambda: store)
        patch.setattr(wiring, "nuki", lambda: nuki)
        patch.setattr(wiring, "background_nuki", lambda: nuki)
        yield Pipeline(world, service, urls["webhooks"])
    wiring.reset()


def test_with_webhooks_off_polling_gives_the_same_activity_as_with_them_on(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the same guest journey in two deployments
    with fresh_world(monkeypatch) as on:
        # With webhooks on: every entry arrives as DEVICE_LOGS
        entries = guest_journey(on.world)
        on.deliver(*(logs_body(entry) for entry in entries))
        with_webhooks = seen(on, on.world)
    with fresh_world(monkeypatch) as off:
        # With webhooks off: only the poller reads the logs
        guest_journey(off.world)
        off.world.clock.set(STAY_START + timedelta(hours=10))
        off.poll()
        polled = seen(off, off.world)
    # Then the shop and the operator see exactly the same
    assert polled == with_webhooks
    assert len(with_webhooks["booking"]) == 3
    assert with_webhooks["firstEntryAt"] == "2026-11-27T14:02:00Z"


def test_a_poll_nuki_does_not_answer_leaves_the_cursor_for_the_next(pipeline: Pipeline, world: World) -> None:
    booking = stay(world)
    keypad_entry(world.nuki, LOCK_A, STAY_START, booking.pin)
    keypad_entry(world.nuki, LOCK_B, STAY_START, booking.pin)
    world.clock.set(STAY_START + timedelta(hours=1))
    world.nuki.fail("iter_account_log_pages", NukiUnavailable("Nuki is down", status=503))
    summary = pipeline.poll()
    # Nothing was read; the next poll reads both entries
    assert summary["failed"] is True
    assert summary["stored"] == 0
    assert pipeline.poll()["stored"] == 2
    assert len(pipeline.booking_activity()) == 2


def test_entries_of_locks_that_are_not_ours_are_not_stored(pipeline: Pipeline, world: World) -> None:
    booking = stay(world)
    world.nuki.add_lock(17000500)  # a lock of the account in no room of ours
    keypad_entry(world.nuki, 17000500, STAY_START, "987651")
    keypad_entry(world.nuki, LOCK_A, STAY_START, booking.pin)
    world.clock.set(STAY_START + timedelta(hours=1))
    summary = pipeline.poll()
    assert (summary["read"], summary["stored"]) == (2, 1)


def test_a_run_that_runs_out_of_time_resumes_where_it_stopped(pipeline: Pipeline, world: World) -> None:
    booking = stay(world, locks=(LOCK_A,))
    for minute in range(5):
        keypad_entry(world.nuki, LOCK_A, STAY_START + timedelta(minutes=minute), booking.pin)
    world.clock.set(STAY_START + timedelta(hours=1))
    calls = 0

    def remaining() -> float:
        nonlocal calls
        calls += 1  # plenty for reading and two entries, then the invocation is nearly over
        return 60.0 if calls <= 3 else 5.0

    # When the first run is cut short after two entries
    first = wiring.log_poller().poll(remaining)
    assert first.unfinished
    assert first.stored == 2
    # Then the next run stores the rest, from the cursor, oldest first
    second = pipeline.poll()
    assert not second["unfinished"]
    assert second["stored"] == 3
    assert len(pipeline.booking_activity()) == 5
    assert pipeline.booking_activity()[-1]["at"] == "2026-11-27T14:00:00Z"
    assert world.bookings.get("B-1001").to_api()["firstEntryAt"] == "2026-11-27T14:00:00Z"


def test_the_watcher_polls_when_due_and_not_again_until_it_is(pipeline: Pipeline, world: World) -> None:
    booking = stay(world)
    keypad_entry(world.nuki, LOCK_A, STAY_START, booking.pin)
    world.clock.set(STAY_START + timedelta(hours=1))
    # When its schedule fires: a stay runs on the locks and no webhook is registered
    first = pipeline.watch()
    # Then it read the log and checked the hot locks' codes
    assert first["log"]["stored"] == 1
    assert first["hot"] == 2
    assert first["checked"] == 2
    # Two minutes later nothing is due: no Nuki call at all
    before = len(world.nuki.calls)
    world.clock.advance(minutes=2)
    second = pipeline.watch()
    assert (second["log"], second["checked"], second["nukiCalls"]) == (None, 0, 0)
    assert len(world.nuki.calls) == before
    # Five minutes after the first, the log is due again; the codes only after fifteen
    world.clock.advance(minutes=3)
    third = pipeline.watch()
    assert third["log"] is not None
    assert third["checked"] == 0
