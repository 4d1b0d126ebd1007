"""PINs and the names under which our codes live on a lock.

A guest PIN satisfies Nuki's keypad rules (6 digits, 1-9 only, not starting with 12) and ours:
drawn from `secrets` (a cryptographic source) and never trivial, where trivial means every digit
the same (555555), a straight run up or down (234567, 987654), or only two distinct digits
(121212, 112211), which are the codes people guess first.

Uniqueness on each lock is not decided here: the store claims a (lock, code) item per lock in the
same transaction as the booking, so two bookings can never hold one code on a shared lock.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
import secrets
from collections.abc import Callable, Iterable

from staykey.nuki.codes import is_valid_keypad_code

DIGITS = "123456789"
AUTH_NAME_PREFIX = "SK "
MAX_AUTH_NAME = 20
_READABLE_ID = re.compile(r"^[A-Za-z0-9._-]+$")


def is_trivial(pin: str) -> bool:
    if len(set(pin)) <= 2:
        return True
    steps = {int(b) - int(a) for a, b in itertools.pairwise(pin)}
    return steps in ({1}, {-1})


def is_acceptable_pin(pin: str) -> bool:
    return is_valid_keypad_code(pin) and not is_trivial(pin)


def generate_pin(
    avoid: Iterable[str] = (), choice: Callable[[str], str] = secrets.choice, max_tries: int = 10_000
) -> str:
    """A fresh acceptable PIN not in `avoid` (codes already known on the room's locks)."""
    taken = set(avoid)
    for _ in range(max_tries):
        pin = "".join(choice(DIGITS) for _ in range(6))
        if pin not in taken and is_acceptable_pin(pin):
            return pin
    raise RuntimeError("no free PIN found")  # 9**6 codes; only reachable with a broken `choice`


def booking_hash(booking_id: str, length: int = 16) -> str:
    """A stable, short, lower-case identifier of a booking for schedule and item names."""
    digest = hashlib.sha256(booking_id.encode()).digest()
    return base64.b32encode(digest).decode().lower().rstrip("=")[:length]


def auth_name(booking_id: str, attempt: int = 0) -> str:
    """The Nuki authorization name of a booking's code: ours, unique, <= 20 chars, no guest data.

    `SK B-1001` when the shop's booking id fits (readable in Nuki Web), otherwise `SK ` plus the
    id's start and a hash of the whole id. `attempt` > 0 derives another name in the unlikely case
    the first is already taken by another booking (the store keeps a name -> booking index).
    """
    room = MAX_AUTH_NAME - len(AUTH_NAME_PREFIX)
    if attempt == 0 and len(booking_id) <= room and _READABLE_ID.match(booking_id):
        return AUTH_NAME_PREFIX + booking_id
    digest = booking_hash(f"{booking_id}#{attempt}", 8).upper()
    head = booking_id[: room - len(digest) - 1]
    return f"{AUTH_NAME_PREFIX}{head}~{digest}"


def looks_like_our_name(name: str) -> bool:
    """Only a hint: ownership is decided from our records, never from this alone."""
    return name.startswith(AUTH_NAME_PREFIX) and len(name) <= MAX_AUTH_NAME
