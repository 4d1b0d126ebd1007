"""What the store's families take and raise: code claims, the extra writes of a booking's
transaction, the refusals of a transaction, a code item."""

from __future__ import annotations

from dataclasses import dataclass, field

from staykey.core.round import CodeClaim as CodeClaim  # the store writes what a round claims
from staykey.core.round import CodeItem as CodeItem  # and reads back the claims on a lock
from staykey.events import model as ev


@dataclass
class TxExtras:
    """Additional writes that must happen atomically with a booking update."""

    claims: list[CodeClaim] = field(default_factory=list)
    releases: list[CodeClaim] = field(default_factory=list)
    # Events beyond those the store derives from the booking's change (staykey.events.model).
    events: list[ev.Event] = field(default_factory=list)


class PinTaken(Exception):
    def __init__(self, smartlock_ids: list[int]) -> None:
        super().__init__(f"code taken on {smartlock_ids}")
        self.smartlock_ids = smartlock_ids


class BookingExists(Exception):
    pass


class NameTaken(Exception):
    pass
