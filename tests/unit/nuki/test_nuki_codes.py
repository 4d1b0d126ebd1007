"""Nuki's keypad code rules: 6 digits 1-9, not starting with 12."""

from __future__ import annotations

import pytest

from staykey.nuki import is_valid_keypad_code


@pytest.mark.parametrize(
    "code",
    [483726, "483726", 111111, 999999, 211111, 132456, 312456, 912345, "131313"],
)
def test_codes_nuki_accepts(code: int | str) -> None:
    assert is_valid_keypad_code(code) is True


@pytest.mark.parametrize(
    "code",
    [
        123456,  # starts with 12: Nuki refuses it (keeps people from using 123456)
        129999,
        "121212",
        483706,  # contains a 0
        "012345",  # leading zero
        100000,
        48372,  # five digits
        4837261,  # seven digits
        "",
        " 483726",
        "483726 ",
        "48372a",
        "+48372",
        "-483726",
        -483726,
        "\uff14\uff18\uff13\uff17\uff12\uff16",  # full-width digits
        "\u0664\u0668\u0663\u0667\u0662\u0666",  # Arabic-Indic digits
        True,
    ],
)
def test_codes_nuki_refuses(code: int | str) -> None:
    assert is_valid_keypad_code(code) is False
