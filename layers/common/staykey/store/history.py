"""A booking's history: its events, kept (HISTORY#BOOKING#{id} / {at}#{eventId}).

The outbox item of an event (`Table.event_item`) lives only until the dispatcher has sent it, and
the feed (`GET /events`) keeps events `EventRetentionDays` in one partition for every booking. The
console's timeline needs a booking's own events for as long as the booking is kept, so every
booking event (`booking.<status>`, `booking.changed`) is also written here, in the same
transaction as the change and its outbox item: the history holds an event iff its change was
saved. `at` is the booking's own clock at the change (its `updatedAt`), the instant the timeline
shows; the item keeps the event's JSON as it was sent (no PIN, no guest data).

The history is not on the table's stream's way to the dispatcher (its FilterCriteria takes only
`EVENT#` items), and not in the booking's partition, so reading a booking stays one small query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from staykey.core.models import Booking
from staykey.core.timeutil import parse_iso
from staykey.events import model as ev
from staykey.store import keys as indexes
from staykey.store.table import Table

HISTORY_LIMIT = 500


@dataclass(frozen=True)
class HistoryEntry:
    """One kept event of a booking: its type, when it happened, and its data."""

    at: datetime
    type: str
    data: dict[str, Any]
    event_id: str


def history_sort_key(at: datetime, event_id: str) -> str:
    return f"{indexes.iso_ms(at)}#{event_id}"


class HistoryItems(Table):
    def _tx_history(self, booking: Booking, events: Sequence[ev.Event]) -> list[dict[str, Any]]:
        """The history items of `booking`'s events (for the transaction that saves it)."""
        at = booking.updatedAt
        return [
            self._tx_put(
                {
                    "pk": indexes.booking_history_pk(booking.bookingId),
                    "sk": history_sort_key(at, e.id),
                    "eventId": e.id,
                    "eventType": e.type,
                    "at": indexes.iso_ms(at),
                    "body": e.body(),
                }
            )
            for e in events
            if e.type.startswith("booking.") and e.data.get("bookingId") == booking.bookingId
        ]

    def booking_history(self, booking_id: str, limit: int = HISTORY_LIMIT) -> list[HistoryEntry]:
        """A booking's kept events, oldest first."""
        out = []
        for item in self._query(indexes.booking_history_pk(booking_id), limit=limit):
            at = parse_iso(str(item["at"]))
            body = ev.parse_body(str(item["body"]))
            if at is not None:
                out.append(HistoryEntry(at, str(item["eventType"]), dict(body.get("data") or {}), str(item["eventId"])))
        return out
