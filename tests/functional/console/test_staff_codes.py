"""The console's staff codes (issue 16) over the lifecycle world: the list and a staff code's page
for a signed-in operator (the sign-in page for anyone else), its actions (rotate PIN, retry, remove,
reveal PIN) confirmed, CSRF-checked, same-origin, carried out by `StaffCodes` and audited, the form
that creates one (its errors beside its fields, nothing created), and its schedule in words.

The clock: 2026-11-26 09:00 UTC; Room 12 (Europe/Berlin) has a door and an entrance."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest

from staykey.console import i18n, staff
from staykey.console.staffform import schedule_text
from staykey.core.models import BookingStatus
from staykey.core.parts import Schedule
from staykey.core.staff import StaffCodeIn
from staykey.nuki import errors as nuki_errors
from tests.functional.activity.helpers import keypad_entry
from tests.functional.console.conftest import ConsoleWorld
from tests.functional.console.conftest import follow as _follow
from tests.functional.console.conftest import page_text as _text

DOOR, ENTRANCE = 17000001, 17000099
D = "\u2013"  # the en dash of ranges ("Mon-Fri 08:00-12:00")
CLEANER = {
    "staffCodeId": "cleaner-1",
    "name": "Maria (cleaning)",
    "roomIds": ["room-12"],
    "allowedWeekDays": 64 + 32 + 16 + 8 + 4,
    "allowedFromTime": 8 * 60,
    "allowedUntilTime": 12 * 60,
}


def _cleaner(console: ConsoleWorld, **changes: Any) -> Any:
    console.world.add_room("room-12", locks=(DOOR, ENTRANCE), name="Room 12")
    code, created = console.staff.create(StaffCodeIn.model_validate({**CLEANER, **changes}))
    assert created
    console.world.settle()
    return console.staff.get(code.staff.staffCodeId)


def _audit(console: ConsoleWorld, staff_code_id: str = "cleaner-1") -> list[tuple[str, str, str]]:
    """The audit entries about a staff code (in any order: the test clock stands still)."""
    entries = console.services.audit.for_booking(f"staff~{staff_code_id}")
    return sorted((e.action, e.outcome, e.actor) for e in entries)


# ------------------------------------------------------------------ pages


def test_the_list_and_a_staff_codes_page_for_an_operator_and_no_pin(console: ConsoleWorld) -> None:
    code = _cleaner(console)
    assert code.status == BookingStatus.ACTIVE
    status, today = console.get("/console/today")
    assert status == 200
    assert 'href="/console/staff-codes"' in today  # in the navigation

    status, html = console.get("/console/staff-codes")
    assert status == 200, html[-800:]
    text = _text(html)
    assert "Maria (cleaning)" in text
    assert 'href="/console/staff-codes/cleaner-1"' in html
    assert f"Mon{D}Fri 08:00{D}12:00" in text
    assert f">{DOOR}</a>: active" in html
    assert f">{ENTRANCE}</a>: active" in html
    assert "Room 12" in text
    assert "until it is removed" in text
    assert 'aria-current="page"' in html

    status, html = console.get("/console/staff-codes/cleaner-1")
    assert status == 200, html[-800:]
    text = _text(html)
    assert "Staff code Maria (cleaning)" in text
    assert f"Mon{D}Fri 08:00{D}12:00 (Europe/Berlin)" in text
    for action in ("Rotate PIN", "Remove", "Reveal PIN"):
        assert action in text
    assert "/confirm/retry" not in html  # only a failed one is retried
    for action in ("rotate-pin", "remove", "reveal-pin", "retry"):
        status, page = console.get(f"/console/staff-codes/cleaner-1/confirm/{action}")
        assert status == 200, action
        assert "Are you sure?" in page
        assert code.pin not in page
    for path in ("/console/staff-codes", "/console/staff-codes/cleaner-1", "/console/audit", "/console/activity"):
        assert code.pin not in console.get(path)[1], path
    status, lock = console.get(f"/console/locks/{DOOR}")
    assert status == 200
    assert 'href="/console/staff-codes/cleaner-1">Staff code cleaner-1</a>' in lock  # its code on the lock
    assert console.get("/console/staff-codes/nobody")[0] == 404
    assert console.get("/console/staff-codes/cleaner-1/confirm/explode")[0] == 404
    assert console.get("/console/staff-codes/bad~id")[0] == 404


def test_a_stay_is_not_a_staff_code_and_a_staff_code_is_no_booking(console: ConsoleWorld) -> None:
    from tests.functional.search.conftest import book

    _cleaner(console)
    book(console.world, "B-1", "2026-11-26", "2026-11-28")
    assert console.get("/console/staff-codes/B-1")[0] == 404
    assert console.get("/console/bookings/staff~cleaner-1")[0] == 404
    assert "cleaner-1" not in console.get("/console/bookings")[1]


@pytest.mark.parametrize(
    "path", ["/console/staff-codes", "/console/staff-codes/cleaner-1", "/console/staff-codes/cleaner-1/confirm/remove"]
)
def test_without_a_session_the_pages_send_to_sign_in_and_the_actions_do_nothing(
    console: ConsoleWorld, path: str
) -> None:
    _cleaner(console)
    answer = console.answer("GET", path, signed_in=False)
    assert answer["statusCode"] == 303
    headers = answer.get("headers") or {k: v[-1] for k, v in answer["multiValueHeaders"].items()}
    assert headers["Location"].startswith("/console/login?next=")
    for post in ("/console/staff-codes/cleaner-1/remove", "/console/staff-codes"):
        answer = console.answer("POST", post, body="csrf=x&name=x&staffCodeId=x", signed_in=False)
        assert answer["statusCode"] == 303
    assert console.staff.get("cleaner-1").status == BookingStatus.ACTIVE
    assert _audit(console) == []


def test_the_list_pages_by_id(console: ConsoleWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    console.world.add_room("room-12", locks=(DOOR, ENTRANCE), name="Room 12")
    ids = [f"staff-{n:02d}" for n in range(5)]
    for staff_code_id in ids:
        console.staff.create(StaffCodeIn.model_validate({**CLEANER, "staffCodeId": staff_code_id}))
    monkeypatch.setattr(staff, "PAGE", 2)
    seen: list[str] = []
    query: dict[str, str] = {}
    for _ in range(5):
        status, html = console.get("/console/staff-codes", **query)
        assert status == 200
        seen += re.findall(r'href="/console/staff-codes/(staff-\d\d)"', html)
        cursor = re.search(r'href="/console/staff-codes\?cursor=([^"]+)" rel="next"', html)
        if not cursor:
            break
        query = {"cursor": cursor.group(1)}
    assert seen == ids
    status, html = console.get("/console/staff-codes", cursor="not-a-cursor")
    assert status == 422
    assert "cursor: is not a cursor of this list" in html


# ------------------------------------------------------------------ actions


def test_rotate_pin_needs_the_csrf_token_and_the_same_origin_and_is_audited(
    console: ConsoleWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    old = _cleaner(console)
    path = "/console/staff-codes/cleaner-1/rotate-pin"
    assert console.post(path, csrf="0" * 64)[0] == 403
    assert console.post(path, csrf=None)[0] == 403
    for origin in ("https://127.0.0.1:3000", "http://evil.example"):
        assert console.post(path, Origin=origin)[0] == 403
    assert console.staff.get("cleaner-1").rotation is None
    assert _audit(console) == []

    status, _, headers = console.post(path, Origin="http://127.0.0.1:3000")
    assert status == 303
    assert headers["Location"].startswith("/console/staff-codes/cleaner-1?result=")
    assert console.staff.get("cleaner-1").rotation is not None
    assert _audit(console) == [("rotate_pin", "ok", "ops@example.org")]
    status, html = _follow(console, headers)
    assert status == 200
    text = _text(html)
    assert "Done: rotate_pin" in text
    assert "PIN rotation pending" in text
    console.world.settle()
    rotated = console.staff.get("cleaner-1")
    assert rotated.pin != old.pin
    assert rotated.rotation is None
    for lock in (DOOR, ENTRANCE):
        assert sorted(console.world.nuki.codes(lock)) == [int(rotated.pin)]
    logged = capsys.readouterr().out
    assert old.pin not in logged
    assert rotated.pin not in logged


def test_reveal_pin_shows_it_once_audited_and_never_logged(
    console: ConsoleWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _cleaner(console)
    assert console.post("/console/staff-codes/cleaner-1/reveal-pin", csrf="forged")[0] == 403
    status, html, _ = console.post("/console/staff-codes/cleaner-1/reveal-pin")
    assert status == 200
    assert f'<strong class="pin" aria-label="The staff code&#39;s PIN">{code.pin}</strong>' in html
    assert _audit(console) == [("reveal_pin", "ok", "ops@example.org")]
    assert code.pin not in capsys.readouterr().out
    assert code.pin not in console.get("/console/staff-codes/cleaner-1")[1]
    assert code.pin not in console.get("/console/audit")[1]


def test_retry_only_a_failed_one_and_remove_each_audited(console: ConsoleWorld) -> None:
    world = console.world
    world.add_room("room-12", locks=(DOOR, ENTRANCE), name="Room 12")
    world.nuki.fail("create_keypad_code", nuki_errors.NukiInvalidRequest("bad", status=400))
    console.staff.create(StaffCodeIn.model_validate(CLEANER))
    world.settle()
    failed = console.staff.get("cleaner-1")
    assert failed.status == BookingStatus.FAILED
    status, html = console.get("/console/staff-codes/cleaner-1")
    assert 'href="/console/staff-codes/cleaner-1/confirm/retry"' in html
    assert "bad" in _text(html)  # the lock's error, beside the lock
    assert "failed" in _text(console.get("/console/staff-codes")[1])

    status, _, headers = console.post("/console/staff-codes/cleaner-1/retry")
    assert status == 303
    world.settle()
    assert console.staff.get("cleaner-1").status == BookingStatus.ACTIVE
    # Retried again while active: refused by the service, said on the page, audited as refused.
    status, _, headers = console.post("/console/staff-codes/cleaner-1/retry")
    assert status == 303
    assert "Refused: retry" in _text(_follow(console, headers)[1])

    status, _, headers = console.post("/console/staff-codes/cleaner-1/remove")
    assert status == 303
    assert console.staff.get("cleaner-1").status == BookingStatus.REVOKING
    world.settle()
    removed = console.staff.get("cleaner-1")
    assert removed.status == BookingStatus.REVOKED
    for lock in (DOOR, ENTRANCE):
        assert world.nuki.codes(lock) == {}
    status, html = _follow(console, headers)
    text = _text(html)
    assert "Done: staff_code_remove" in text
    assert "removed" in text
    assert "/confirm/" not in html  # nothing left to do to it
    assert _audit(console) == [
        ("retry", "ok", "ops@example.org"),
        ("retry", "refused", "ops@example.org"),
        ("staff_code_remove", "ok", "ops@example.org"),
    ]
    audit_log = console.get("/console/audit")[1]
    assert 'href="/console/staff-codes/cleaner-1"' in audit_log
    assert "staff_code_remove" in audit_log


def test_its_activity_is_on_its_page_and_in_the_feed_as_the_staff_codes(console: ConsoleWorld) -> None:
    code = _cleaner(console)
    now = console.world.clock.now()
    log = keypad_entry(console.world.nuki, DOOR, now, code.pin)
    assert console.services.activity.record(log, via="webhook")
    status, html = console.get("/console/staff-codes/cleaner-1")
    assert status == 200
    activity = _text(html.split('id="activity"', 1)[1].split("</table>", 1)[0])
    assert f"{DOOR} (Room 12)" in activity
    assert "No activity." not in activity
    feed = console.get("/console/activity")[1]
    assert 'href="/console/staff-codes/cleaner-1">Staff code cleaner-1</a>' in feed
    assert console.get("/console/staff-codes/cleaner-1", cursor="garbled")[0] == 422


# ------------------------------------------------------------------ the form

GOOD_FORM = [
    ("name", "Jonas (maintenance)"),
    ("staffCodeId", "maint-7"),
    ("roomIds", "room-12"),
    ("roomIds", "room-14"),
    *[("allowedWeekDays", str(bit)) for bit in (64, 16, 4)],
    ("allowedFromTime", "07:30"),
    ("allowedUntilTime", "16:00"),
    ("allowedFromDate", "2026-12-01"),
    ("allowedUntilDate", ""),
]


def test_the_form_creates_a_staff_code_through_the_service_audited(console: ConsoleWorld) -> None:
    world = console.world
    world.add_room("room-12", locks=(DOOR, ENTRANCE), name="Room 12")
    world.add_room("room-14", locks=(17000002, ENTRANCE), name="Room 14")
    status, html = console.get("/console/staff-codes")
    assert 'name="roomIds" multiple' in html
    assert html.count('name="allowedWeekDays"') == 7
    assert console.post("/console/staff-codes", GOOD_FORM, csrf="forged")[0] == 403
    assert console.staff.page(10)[0] == []

    status, body, headers = console.post("/console/staff-codes", GOOD_FORM)
    assert status == 303, _text(body)[-800:]
    assert headers["Location"].startswith("/console/staff-codes/maint-7?result=")
    code = console.staff.get("maint-7")
    assert code.staff is not None
    assert code.staff.roomIds == ["room-12", "room-14"]
    assert code.staff.schedule == Schedule(weekDays=64 + 16 + 4, fromTime=450, untilTime=960)
    assert code.staff.allowedFromDate == "2026-12-01"
    assert sorted(lk.smartlockId for lk in code.locks) == sorted([DOOR, ENTRANCE, 17000002])
    assert _audit(console, "maint-7") == [("staff_code_create", "ok", "ops@example.org")]
    status, html = _follow(console, headers)
    assert status == 200
    text = _text(html)
    assert "Done: staff_code_create" in text
    assert f"Mon, Wed, Fri 07:30{D}16:00" in text
    assert code.pin not in html
    # The same form again is the same staff code (the service's replay), not a second one.
    status, _, _ = console.post("/console/staff-codes", GOOD_FORM)
    assert status == 303
    assert [c.staff.staffCodeId for c in console.staff.page(10)[0] if c.staff] == ["maint-7"]


def _form(**changes: Any) -> list[tuple[str, str]]:
    out = [(k, v) for k, v in GOOD_FORM if k not in changes]
    for key, value in changes.items():
        out += [(key, v) for v in (value if isinstance(value, list) else [value])]
    return out


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        (
            _form(allowedFromTime="12:00", allowedUntilTime="08:00", allowedWeekDays=[]),
            {"allowedUntilTime": "must be after allowedFromTime (12:00)", "allowedWeekDays": "choose at least one day"},
        ),
        (_form(roomIds="room-99"), {"roomIds": "no room 'room-99'"}),
        (_form(roomIds=[]), {"roomIds": "give at least one room"}),
        (_form(staffCodeId="not an id!", name=""), {"staffCodeId": "should match pattern", "name": "at least 1"}),
        (_form(allowedFromTime="8 o'clock"), {"allowedFromTime": "is not a time of day (HH:MM)"}),
        (_form(allowedUntilDate="2026-11-01"), {"allowedUntilDate": "must be after allowedFromDate"}),
        (_form(allowedFromDate="someday"), {"allowedFromDate": "must be a date"}),
        (_form(allowedWeekDays="3"), {"allowedWeekDays": "is not a day of the week"}),
    ],
)
def test_a_bad_form_shows_each_error_beside_its_field_and_creates_nothing(
    console: ConsoleWorld, fields: list[tuple[str, str]], errors: dict[str, str]
) -> None:
    world = console.world
    world.add_room("room-12", locks=(DOOR, ENTRANCE), name="Room 12")
    world.add_room("room-14", locks=(17000002, ENTRANCE), name="Room 14")
    status, html, _ = console.post("/console/staff-codes", fields)
    assert status == 422, _text(html)[-600:]
    assert "The staff code was not created" in html
    for name, message in errors.items():
        shown = re.search(rf'<p class="bad" id="err-{name}">([^<]*)</p>', html)
        assert shown is not None, (name, _text(html)[-1500:])
        assert message in unescape(shown.group(1)), (name, shown.group(1))
        assert f'aria-describedby="err-{name}"' in html
    # What was entered is kept in the form.
    entered = dict(fields)
    if entered.get("name"):
        assert f'value="{entered["name"]}"' in html
    assert console.staff.page(10)[0] == []
    assert world.nuki.count("create_keypad_code") == 0
    entries, _ = console.services.audit.recent(10)
    assert [(e.action, e.outcome) for e in entries] == [("staff_code_create", "refused")]


def test_a_form_with_more_fields_than_it_has_is_refused_not_a_500(console: ConsoleWorld) -> None:
    console.world.add_room("room-12", locks=(DOOR, ENTRANCE), name="Room 12")
    status, _, _ = console.post("/console/staff-codes", _form(roomIds=[f"room-{n}" for n in range(100)]))
    assert status == 413
    assert console.staff.page(10)[0] == []


def test_an_existing_id_with_another_request_is_said_beside_the_id(console: ConsoleWorld) -> None:
    _cleaner(console)
    console.world.add_room("room-14", locks=(17000002, ENTRANCE), name="Room 14")
    status, html, _ = console.post("/console/staff-codes", _form(staffCodeId="cleaner-1"))
    assert status == 422
    assert re.search(r'id="err-staffCodeId">[^<]*exists with a different request', html)
    assert console.staff.get("cleaner-1").staff.name == "Maria (cleaning)"  # type: ignore[union-attr]


# ------------------------------------------------------------------ words


@pytest.mark.parametrize(
    ("schedule", "en", "de"),
    [
        (Schedule(weekDays=124, fromTime=480, untilTime=720), f"Mon{D}Fri 08:00{D}12:00", f"Mo{D}Fr 08:00{D}12:00"),
        (Schedule(weekDays=127), "every day (all day)", "täglich (ganztägig)"),
        (
            Schedule(weekDays=64 + 16 + 4, fromTime=0, untilTime=90),
            f"Mon, Wed, Fri 00:00{D}01:30",
            f"Mo, Mi, Fr 00:00{D}01:30",
        ),
        (Schedule(weekDays=3, fromTime=600, untilTime=1439), f"Sat, Sun 10:00{D}23:59", f"Sa, So 10:00{D}23:59"),
        (Schedule(weekDays=64 + 32 + 16 + 2), f"Mon{D}Wed, Sat (all day)", f"Mo{D}Mi, Sa (ganztägig)"),
    ],
)
def test_a_schedule_in_words(schedule: Schedule, en: str, de: str) -> None:
    assert schedule_text(schedule, "en") == en
    assert schedule_text(schedule, "de") == de


def test_every_word_of_the_staff_pages_has_a_german_translation(console: ConsoleWorld) -> None:
    used = {"Staff codes"} | {text for pair in staff.ACTIONS.values() for text in pair}
    assert sorted(text for text in used if text not in i18n.DE) == []
    _cleaner(console)
    status, html = console.get("/console/staff-codes", lang="de")
    assert status == 200
    assert "Personal-Codes" in html
    assert f"Mo{D}Fr 08:00{D}12:00" in html
