"""GET /locks, GET /locks/{id}, cursors on GET /rooms and the activity routes, and the shop's
actions POST /bookings/{id}/resend-email and /retry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from staykey.core.models import BookingStatus, LockStatus
from staykey.nuki import errors as nuki_errors
from tests.conftest import World
from tests.functional.search.conftest import Call, book, pages


def _reconciled(world: World, lock_id: int, **meta: object) -> None:
    world.store.update_lock_meta(
        lock_id,
        online=True,
        codeCount=meta.get("codeCount", 3),
        ourCodes=meta.get("ourCodes", 1),
        foreignCodes=meta.get("foreignCodes", 2),
        codesCountedAt="2026-11-26T08:45:00Z",
        reconciledAt="2026-11-26T08:45:00Z",
    )


def test_locks_show_state_codes_and_upcoming_bookings_never_a_code(wired: World, call: Call) -> None:
    wired.add_room("room-12", locks=(17000001, 17000099), name="Room 12")
    wired.add_room("room-14", locks=(17000002, 17000099), name="Room 14")
    soon = book(wired, "B-soon", "2026-11-27", "2026-11-29")  # within the lead: on its way to the locks
    later = book(wired, "B-later", "2026-12-10", "2026-12-12", room="room-14")
    wired.settle()
    wired.store.record_foreign_code(17000099, "246813", "Cleaner", "abc", wired.clock.now())
    _reconciled(wired, 17000099, codeCount=190, ourCodes=2, foreignCodes=188)
    wired.store.update_lock_meta_if_newer(
        17000099,
        "statusAt",
        datetime(2026, 11, 26, 8, 50, tzinfo=UTC),
        batteryCritical=False,
        batteryCharge=41,
        keypadBatteryCritical=True,
    )

    status, body = call("GET", "/locks")
    assert status == 200, body
    by_id = {item["smartlockId"]: item for item in body["items"]}
    assert sorted(by_id) == [17000001, 17000002, 17000099]
    entrance = by_id[17000099]
    assert [r["roomId"] for r in entrance["rooms"]] == ["room-12", "room-14"]
    assert entrance["online"] is True
    assert entrance["lastSeenAt"] == "2026-11-26T08:50:00Z"
    assert entrance["battery"]["charge"] == 41
    assert entrance["battery"]["keypadCritical"] is True
    assert entrance["codes"] == {
        "ours": 2,
        "others": 188,
        "total": 190,
        "free": 10,
        "limit": 200,
        "countedAt": "2026-11-26T08:45:00Z",
    }
    assert by_id[17000002]["online"] is None  # never reported on

    status, detail = call("GET", "/locks/17000099")
    assert status == 200, detail
    ours = [c for c in detail["codeList"] if c["owner"] == "ours"]
    assert {c["bookingId"] for c in ours} == {"B-soon", "B-later"}
    assert next(c for c in ours if c["bookingId"] == "B-soon")["onLock"] is True
    assert next(c for c in ours if c["bookingId"] == "B-later")["onLock"] is False  # reserved, not due yet
    assert [c for c in detail["codeList"] if c["owner"] == "others"] == [{"owner": "others", "name": "Cleaner"}]
    assert [b["bookingId"] for b in detail["upcomingBookings"]] == ["B-soon", "B-later"]
    text = str(detail) + str(body)
    for pin in (soon.pin, later.pin, "246813"):
        assert pin not in text


@pytest.mark.parametrize(
    ("target", "status", "field"),
    [
        ("/locks/abc", 404, None),
        ("/locks/0", 404, None),
        ("/locks/99999999", 404, None),
        ("/locks?limit=0", 422, "limit"),
        ("/locks?cursor=xyz", 422, "cursor"),
        ("/locks?colour=red", 422, "colour"),
        ("/rooms?limit=101", 422, "limit"),
        ("/rooms?cursor=%2A", 422, "cursor"),
        ("/locks/17000001/activity?cursor=e30", 422, "cursor"),
        ("/locks/17000001?limit=3", 422, "limit"),
    ],
)
def test_bad_lock_and_room_requests(wired: World, call: Call, target: str, status: int, field: str | None) -> None:
    wired.add_room("room-12", locks=(17000001,))
    got, body = call("GET", target)
    assert got == status, body
    if field:
        assert field in [e["field"] for e in body["errors"]]


def test_rooms_and_locks_page_with_cursors(wired: World, call: Call) -> None:
    for n in range(7):
        wired.nuki.add_lock(17000100 + n)
        wired.add_room(f"room-{n:02d}", locks=(17000100 + n,))
    assert pages(call, "/rooms?limit=3") == [
        ["room-00", "room-01", "room-02"],
        ["room-03", "room-04", "room-05"],
        ["room-06"],
    ]
    locks = pages(call, "/locks?limit=4")
    assert [len(p) for p in locks] == [4, 3]


def test_activity_pages_go_back_to_the_oldest_entry(wired: World, call: Call) -> None:
    from tests.functional.activity.helpers import keypad_entry

    wired.add_room("room-12", locks=(17000001,))
    booking = book(wired, "B-1001", "2026-11-26T10:00:00+01:00", "2026-11-28T10:00:00+01:00")
    wired.settle()
    from staykey.services.activity import Activity
    from staykey.settings import load_settings

    activity = Activity(load_settings(), wired.store, wired.clock)
    start = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
    entries = [keypad_entry(wired.nuki, 17000001, start + timedelta(minutes=m), booking.pin) for m in range(7)]
    for entry in entries:
        activity.record(entry, via="poll")
    got = pages(call, "/bookings/B-1001/activity?limit=3")
    assert got == [[e.id for e in reversed(entries)][i : i + 3] for i in (0, 3, 6)]


def test_resend_email_sends_the_same_notice_again(wired: World, call: Call) -> None:
    wired.add_room("room-12", locks=(17000001,))
    book(wired, "B-1", "2026-11-27", "2026-11-29")
    wired.settle()
    assert len(wired.mail.sent) == 1
    status, body = call("POST", "/bookings/B-1/resend-email")
    assert status == 200, body
    assert body["status"] == "active"
    assert len(wired.mail.sent) == 2
    assert wired.mail.sent[1].pin == wired.mail.sent[0].pin
    assert wired.mail.sent[1].to == "ada@example.org"


def test_resend_email_is_409_while_the_code_is_not_confirmed(wired: World, call: Call) -> None:
    wired.add_room("room-12", locks=(17000001,))
    book(wired, "B-1", "2026-12-20", "2026-12-22")
    status, body = call("POST", "/bookings/B-1/resend-email")
    assert status == 409
    assert "only once the code is confirmed" in body["message"]
    assert wired.mail.sent == []
    assert call("POST", "/bookings/B-404/resend-email")[0] == 404


def test_retry_puts_a_failed_booking_on_its_locks_after_all(wired: World, call: Call) -> None:
    wired.add_room("room-12", locks=(17000001, 17000099))
    wired.nuki.fail("create_keypad_code", nuki_errors.NukiInvalidRequest("bad", status=400))
    book(wired, "B-1", "2026-11-27", "2026-11-29")
    failed = wired.store.get_booking("B-1")
    assert failed is not None
    assert failed.status == BookingStatus.FAILED
    status, body = call("POST", "/bookings/B-1/retry")
    assert status == 200, body
    assert body["status"] == "provisioning"
    wired.settle()
    again = wired.store.get_booking("B-1")
    assert again is not None
    assert again.status == BookingStatus.ACTIVE
    assert all(lock.status == LockStatus.ACTIVE for lock in again.locks)
    status, body = call("POST", "/bookings/B-1/retry")
    assert status == 409
    assert "only a failed booking" in body["message"]
