"""A booking's timeline, built from its kept events, its record and its activity: every step at
the time it happened, shown in the room's zone, across the night the clocks go forward.

The stay: Room 12 in Europe/Berlin, 28 to 30 March 2026; the clocks go from 02:00 CET to 03:00
CEST on 29 March (01:00 UTC). Booked on the 27th, confirmed on both locks, the guest emailed;
first entry on the 28th (CET); the shop moves the checkout on the 29th (CEST) and the locks
confirm the new window; another entry; an early checkout; the code removed from both locks.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from staykey.console.timeline import TimelineContext, timeline
from staykey.core.models import BookingPatch, BookingStatus
from staykey.core.timeutil import FixedClock, format_local
from staykey.store import HistoryEntry
from tests.conftest import World
from tests.functional.activity.helpers import keypad_entry
from tests.functional.console.conftest import ConsoleWorld
from tests.functional.search.conftest import book

ZONE = "Europe/Berlin"
DOOR, ENTRANCE = 17000001, 17000099


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 3, 27, 9, 0, tzinfo=UTC))


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _stay(console: ConsoleWorld) -> dict[str, datetime]:
    """The stay's story; the instants each step happened at (UTC)."""
    world: World = console.world
    activity = console.services.activity
    world.add_room("room-12", locks=(DOOR, ENTRANCE), name="Room 12")
    marks = {"created": world.clock.now()}
    book(world, "B-1", "2026-03-28", "2026-03-30")
    world.settle()
    marks["confirmed"] = world.clock.now()

    world.clock.set(_at("2026-03-28T16:00:00"))  # 17:00 CET
    marks["first_entry"] = _at("2026-03-28T15:30:00")
    pin = world.store.get_booking("B-1").pin  # type: ignore[union-attr]
    assert activity.record(keypad_entry(world.nuki, DOOR, marks["first_entry"], pin), via="webhook")

    world.clock.set(_at("2026-03-29T08:00:00"))  # 10:00 CEST, after the clocks went forward
    marks["changed"] = world.clock.now()
    world.bookings.patch("B-1", BookingPatch.model_validate({"checkOut": "2026-03-31"}))
    world.settle()
    marks["reconfirmed"] = world.clock.now()

    world.clock.set(_at("2026-03-29T09:00:00"))
    marks["entry"] = _at("2026-03-29T08:45:00")
    assert activity.record(keypad_entry(world.nuki, ENTRANCE, marks["entry"], pin), via="webhook")

    world.clock.set(_at("2026-03-29T10:00:00"))  # 12:00 CEST
    marks["checkout"] = world.clock.now()
    world.bookings.checkout("B-1")
    world.settle()
    marks["removed"] = world.clock.now()
    return marks


def test_every_step_at_its_time_in_the_rooms_zone_across_the_clock_change(console: ConsoleWorld) -> None:
    marks = _stay(console)
    page = console.services.views.booking("B-1", console.world.clock.now())
    assert page is not None
    b = page.booking
    assert b.status == BookingStatus.REVOKED
    steps = [(e.kind, e.smartlock_id, e.at) for e in page.events]
    kinds = [kind for kind, _, _ in steps]

    # The order of the stay, each step once (per lock where a lock did it).
    assert kinds[0] == "created"
    for before, after in [
        ("created", "sent"),
        ("sent", "confirmed"),
        ("confirmed", "active"),
        ("active", "first_entry"),
        ("first_entry", "changed"),
        ("checkout", "removed"),
        ("removed", "revoked"),
    ]:
        assert kinds.index(before) < kinds.index(after), (before, after, kinds)
    assert kinds.index("changed") < len(kinds) - 1 - kinds[::-1].index("entry") < kinds.index("checkout")
    assert kinds.count("removed") == 2
    assert kinds[-1] == "revoked"
    assert "status now" not in [e.label for e in page.events]  # the kept events say what happened
    # The change put the new window on the locks (provisioning again), then every lock had it.
    labels = [e.label for e in page.events]
    assert (
        labels.index("changed")
        < labels.index("putting the code on the locks")
        < len(labels) - 1 - labels[::-1].index("code on every lock")
    )

    # Each lock: confirmed when booked (by the read-backs after the write), confirmed again after
    # the change, the code removed after the checkout; each at the moment the lock showed it.
    for lock in (DOOR, ENTRANCE):
        confirmed = [at for kind, lock_id, at in steps if kind == "confirmed" and lock_id == lock]
        assert len(confirmed) == 2
        assert marks["created"] < confirmed[0] <= marks["confirmed"]
        assert marks["changed"] < confirmed[1] <= marks["reconfirmed"]
        removed = [at for kind, lock_id, at in steps if kind == "removed" and lock_id == lock]
        assert len(removed) == 1
        assert marks["checkout"] < removed[0] <= marks["removed"]
    assert b.lock(DOOR).confirmedAt == confirmed[1] or b.lock(ENTRANCE).confirmedAt == confirmed[1]  # type: ignore[union-attr]

    by_kind = {e.kind: e for e in page.events}
    assert by_kind["created"].at == marks["created"]
    assert by_kind["created"].detail == "2026-03-28 - 2026-03-30"  # the stay as booked
    assert by_kind["sent"].at == marks["created"]  # within the lead time: sent at once
    assert (
        marks["changed"] < by_kind["emailed"].at <= marks["reconfirmed"]
    )  # told of the new checkout (the latest notice)
    assert by_kind["first_entry"].at == marks["first_entry"]
    assert by_kind["changed"].at == marks["changed"]
    assert by_kind["changed"].detail == "checkOut 2026-03-30 → 2026-03-31"
    assert by_kind["checkout"].at == marks["checkout"]
    assert by_kind["checkout"].label == "checked out early"
    # The booking's kept events hold their instants to the millisecond; a lock's removal keeps its
    # own (a read-back timed by a learned sync delay comes at a fraction of a second)
    last_removal = max(at for kind, _, at in steps if kind == "removed" and at is not None)
    assert by_kind["revoked"].at == last_removal.replace(microsecond=last_removal.microsecond // 1000 * 1000)
    entries = [e.at for e in page.events if e.kind in ("entry", "first_entry")]
    assert marks["entry"] in entries

    # The page shows every time in the room's zone: CET before the clocks went forward, CEST after.
    status, html = console.get("/console/bookings/B-1")
    assert status == 200, html
    timeline_html = html[html.index('id="timeline"') :]
    assert format_local(marks["created"], ZONE) == "Fri 27 Mar 2026, 10:00 (Europe/Berlin, CET)"
    assert format_local(marks["checkout"], ZONE) == "Sun 29 Mar 2026, 12:00 (Europe/Berlin, CEST)"
    for mark in ("created", "first_entry", "changed", "checkout"):
        assert format_local(marks[mark], ZONE) in timeline_html, mark
    assert format_local(by_kind["revoked"].at, ZONE) in timeline_html  # type: ignore[arg-type]
    assert "Sat 28 Mar 2026, 16:30 (Europe/Berlin, CET)" in timeline_html  # the first entry
    for label in ("sent to Nuki", "code confirmed on lock", "checked out early", "code removed from lock"):
        assert label in timeline_html
    assert b.pin not in html  # a PIN in no page unless revealed


def test_the_timeline_in_german(console: ConsoleWorld) -> None:
    _stay(console)
    status, html = console.get("/console/bookings/B-1", lang="de")
    assert status == 200, html
    text = html[html.index('id="timeline"') :]
    for label in ("angelegt", "an Nuki gesendet", "Code auf Schloss bestätigt", "vorzeitig ausgecheckt"):
        assert label in text
    assert re.search(r"So, 29\. Mär 2026, 12:00 Uhr \(Europe/Berlin, CEST\)", text)


def test_the_history_is_written_with_the_change_and_only_then(console: ConsoleWorld) -> None:
    world = console.world
    world.add_room("room-12", locks=(DOOR, ENTRANCE))
    book(world, "B-1", "2026-04-20", "2026-04-22")  # beyond the lead time: scheduled
    world.bookings.patch("B-1", BookingPatch.model_validate({"checkIn": "2026-04-21"}))
    world.bookings.cancel("B-1")
    history = world.store.booking_history("B-1")
    assert [h.type for h in history] == ["booking.scheduled", "booking.changed", "booking.cancelled"]
    assert all(h.data["bookingId"] == "B-1" for h in history)
    assert history[1].data["changes"] == ["checkIn", "validFrom"]
    assert "pin" not in str(history).lower().replace("pinchoices", "")
    page = console.services.views.booking("B-1", world.clock.now())
    assert page is not None
    kinds = [e.kind for e in page.events]
    assert kinds == ["created", "changed", "cancelled"]  # nothing was sent: nothing to remove
    assert page.events[1].detail == "checkIn 2026-04-20 → 2026-04-21"


def test_a_booking_from_before_its_events_were_kept_still_has_a_timeline(console: ConsoleWorld) -> None:
    """No kept events, no times on its locks (as the bench's season and older bookings are): the
    steps the record still tells, a confirmation without a time, and the status now."""
    world = console.world
    world.add_room("room-12", locks=(DOOR, ENTRANCE))
    book(world, "B-1", "2026-03-28", "2026-03-30")
    world.settle()
    b = world.store.get_booking("B-1")
    assert b is not None
    for lock in b.locks:
        lock.sentAt = lock.firstConfirmedAt = lock.confirmedAt = None
    events = timeline(TimelineContext(b))
    kinds = [e.kind for e in events]
    assert kinds[:4] == ["created", "sent", "confirmed", "confirmed"]
    assert [e.at for e in events if e.kind == "confirmed"] == [None, None]
    assert kinds[-1] == "status"
    assert events[-1].detail == "active"


def test_history_entries_keep_their_order_within_a_second() -> None:
    from staykey.store.history import history_sort_key

    at = datetime(2026, 3, 29, 1, 0, 0, 250_000, tzinfo=UTC)
    assert history_sort_key(at, "evt_A") < history_sort_key(at + timedelta(milliseconds=1), "evt_0")
    assert HistoryEntry(at, "booking.active", {}, "evt_A").at == at
