"""The shop's text fields: names (any script, NFC) and guests' email addresses. Neither may carry
a control or invisible formatting character: in a name it breaks a line or hides text; in an
address it makes one that looks like another guest's (a zero width space, a bidi override) and
reaches Nuki (the guest's account user) and SES as it is. Re-exported by `core.models`."""

from __future__ import annotations

import re
import string
import unicodedata

# Cc controls, Cf invisible formatting, Cs lone surrogates, Co private use; Zl, Zp: the line and
# paragraph separators (U+2028, U+2029) break a line as a newline does.
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})

_EMAIL = re.compile(
    r"^[^@\s\"<>(),;:\\\[\]]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)


# Only ASCII letters' case is ignored when two addresses are compared (what mail providers do):
# Python's lower() or casefold() would also merge other mailboxes (ß with ss, the Kelvin sign with k).
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def email_key(email: str) -> str:
    """What two addresses share when they are the same guest's: the address, ASCII case ignored."""
    return email.strip().translate(_ASCII_LOWER)


def visible(value: str) -> str:
    if any(unicodedata.category(ch) in HIDDEN_CATEGORIES for ch in value):
        raise ValueError("must not contain control or invisible formatting characters")
    return value


def clean_text(value: str) -> str:
    value = visible(unicodedata.normalize("NFC", value).strip())
    if not value:
        raise ValueError("must not be empty")
    return value


def email_address(value: str) -> str:
    value = visible(value.strip())
    if len(value) > 254 or not _EMAIL.match(value):
        raise ValueError("is not an email address like ada@example.org")
    return value


__all__ = ["HIDDEN_CATEGORIES", "clean_text", "email_address", "email_key", "visible"]
