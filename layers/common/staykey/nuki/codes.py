"""Nuki's own rules for keypad codes (nuki-web-api.md section 4).

Only what Nuki enforces lives here: 6 digits, 1-9 only (no 0), not starting with "12". Rules of
our own (no trivial codes, uniqueness on a lock) belong to the domain.
"""

from __future__ import annotations

import re

_KEYPAD_CODE = re.compile(r"(?!12)[1-9]{6}")


def is_valid_keypad_code(code: int | str) -> bool:
    """True if Nuki accepts `code` as a keypad code: exactly 6 digits 1-9, not starting with "12"."""
    if isinstance(code, bool):
        return False
    text = str(code) if isinstance(code, int) else code
    # fullmatch with an ASCII class: no surrounding whitespace, no sign, no Unicode digits.
    return _KEYPAD_CODE.fullmatch(text) is not None


__all__ = ["is_valid_keypad_code"]
