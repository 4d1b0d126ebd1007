"""Backup codes (issue 16) on the console's booking page, over the lifecycle world: "Give backup
code" (confirmed, CSRF-checked, same-origin) asks `BackupPools.assign` for one on each keypad lock
the guest's code is not confirmed on, audited with its outcome (refused when no code is ready);
the booking's backup codes listed per lock, their codes hidden until "Reveal PIN".

The clock: 2026-11-26 09:00 UTC; Room 12 (Europe/Berlin, backup codes on) has a door and an
entrance; the guest is in their stay, the door offline since before the booking."""

from __future__ import annotations

import pytest

from tests.functional.console.conftest import ConsoleWorld
from tests.functional.console.conftest import follow as _follow
from tests.functional.console.conftest import page_text as _text
from tests.functional.search.conftest import book

DOOR, ENTRANCE = 17000001, 17000099
PAGE = "/console/bookings/B-1"
ACTION = "/console/bookings/B-1/give-backup-code"


def _audit(console: ConsoleWorld) -> list[tuple[str, str]]:
    return sorted((e.action, e.outcome) for e in console.services.audit.for_booking("B-1"))


def _door_offline_for_a_guest(console: ConsoleWorld, *, fill: bool = True) -> None:
    world = console.world
    world.add_room("room-12", locks=(DOOR, ENTRANCE), name="Room 12", backupCodes=True)
    if fill:
        console.pools.run()
        world.settle()
    world.nuki.set_online(DOOR, False)
    book(world, "B-1", "2026-11-25", "2026-11-28")
    world.settle()


def test_an_operator_gives_a_backup_code_confirmed_csrf_checked_and_audited(
    console: ConsoleWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    _door_offline_for_a_guest(console)
    status, html = console.get(PAGE)
    assert status == 200
    assert f'href="{ACTION.replace("/give", "/confirm/give")}"' in html
    assert "Backup codes" not in html  # none given yet
    status, html = console.get("/console/bookings/B-1/confirm/give-backup-code")
    assert status == 200
    assert f'action="{ACTION}"' in html

    # Without the session's token, or from another origin: refused, nothing given, nothing audited
    assert console.post(ACTION, csrf=None)[0] == 403
    assert console.post(ACTION, csrf="0" * 64)[0] == 403
    assert console.post(ACTION, Origin="http://evil.example")[0] == 403
    assert console.world.bookings.get("B-1").backups == []
    assert _audit(console) == []

    status, _, headers = console.post(ACTION, Origin="http://127.0.0.1:3000")
    assert status == 303
    assert headers["Location"].startswith("/console/bookings/B-1?result=")
    (given,) = console.world.bookings.get("B-1").backups
    assert given.smartlockId == DOOR
    assert _audit(console) == [("give_backup_code", "ok")]

    # The section: the lock, when, why, whether it holds; the code hidden
    status, html = _follow(console, headers)
    assert status == 200
    text = _text(html)
    assert "Done: give_backup_code" in text
    assert "Backup codes" in text
    assert f'<a href="/console/locks/{DOOR}">{DOOR}</a> (Room 12)' in html
    assert "an operator asked for it" in text
    assert "holds" in text
    assert given.pin not in html
    assert "/confirm/give-backup-code" not in html  # the door has one now; the entrance is confirmed

    # Revealed with the guest's PIN (audited), never logged, never on the page otherwise
    status, html, _ = console.post("/console/bookings/B-1/reveal-pin")
    assert status == 200
    assert f'<strong class="pin" aria-label="The backup code">{given.pin}</strong>' in html
    assert _audit(console) == [("give_backup_code", "ok"), ("reveal_pin", "ok")]
    assert given.pin not in capsys.readouterr().out
    assert given.pin not in console.get(PAGE)[1]
    assert given.pin not in console.get("/console/audit")[1]

    status, html = console.get(PAGE, lang="de")
    assert status == 200
    assert "Ersatz-Codes" in html
    assert "auf Wunsch einer Bedienperson" in html


def test_no_backup_code_ready_is_the_action_s_refusal_audited(console: ConsoleWorld) -> None:
    _door_offline_for_a_guest(console, fill=False)  # backup codes on, the pool never filled
    status, _, headers = console.post(ACTION)
    assert status == 303
    status, html = _follow(console, headers)
    text = _text(html)
    assert "Refused: give_backup_code" in text
    assert f"no backup code is ready on lock(s) [{DOOR}]" in text
    assert console.world.bookings.get("B-1").backups == []
    assert _audit(console) == [("give_backup_code", "refused")]


def test_offered_only_where_the_room_has_backup_codes(console: ConsoleWorld) -> None:
    world = console.world
    world.add_room("room-12", locks=(DOOR, ENTRANCE), name="Room 12")
    world.nuki.set_online(DOOR, False)
    book(world, "B-1", "2026-11-25", "2026-11-28")
    world.settle()
    assert "give-backup-code" not in console.get(PAGE)[1]
    console.services.backup_pools = None  # a console without backup codes: no such action
    assert console.post(ACTION)[0] == 404
