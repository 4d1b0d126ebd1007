"""The PIN-in-logs search (tools/pin_scan.py) that the end-to-end suite runs over every log line at
its end (tests/e2e/conftest.py no_pin_in_any_log): it finds a PIN however a log line carries it,
and does not mistake digits inside ids or numbers for one."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.pins import PinLedger, pins_in
from tools.pin_scan import pins_in_logs

PIN = "483726"


def test_a_pin_in_any_form_a_log_line_could_carry_it_is_found(tmp_path: Path) -> None:
    lines = [
        '{"level":"INFO","message":"code sent","pin":"483726"}',
        '{"level":"INFO","message":"code sent","code":483726}',
        "Your code: 483 726",
        "PUT /smartlock/18000001/auth body={'code': 483726, 'name': 'SK B-1'}",
    ]
    for n, line in enumerate(lines):
        (tmp_path / f"f{n}.log").write_text(f"harmless line\n{line}\n", encoding="utf-8")
    found = pins_in_logs({PIN}, [tmp_path])
    assert len(found) == len(lines)
    assert all(":2: " in f for f in found)


def test_digits_inside_ids_and_longer_numbers_are_not_a_pin(tmp_path: Path) -> None:
    (tmp_path / "functions.log").write_text(
        "\n".join(
            [
                '{"function_request_id":"a483726f-1111-2222-3333-444455556666"}',
                '{"timestamp":1483726000123,"smartlockId":94837261}',
                '{"authId":"64a483726b"}',
            ]
        ),
        encoding="utf-8",
    )
    assert pins_in_logs({PIN}, [tmp_path]) == []


def test_the_ledger_keeps_the_pin_of_every_booking_in_an_answer() -> None:
    answer = {"bookingId": "B-1", "pin": PIN, "nested": [{"pin": "918273"}], "code": 123456}
    assert pins_in(answer) == {PIN, "918273"}
    ledger = PinLedger()

    class Response:
        headers = {"Content-Type": "application/json"}
        text = '{"pin": "483726"}'

        @staticmethod
        def json() -> dict[str, str]:
            return {"pin": PIN}

    ledger.record_response(Response())
    assert ledger.pins == {PIN}
