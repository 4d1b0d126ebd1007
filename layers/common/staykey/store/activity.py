"""Activity: one item per Nuki log entry (LOG#{logId}), its index entries, and a booking's
firstEntryAt."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from staykey.core.timeutil import iso_utc
from staykey.errors import ConcurrentModification
from staykey.events import model as ev
from staykey.store import keys as indexes
from staykey.store.table import BOOKING_SK, IndexPage, Table


class ActivityItems(Table):
    # -- activity (Nuki log entries) --------------------------------------------------------

    @staticmethod
    def activity_owner_key(booking_id: str | None, smartlock_id: int) -> str:
        """gsi1pk of an entry: its booking's, or its lock's when it is not a guest's."""
        return f"ACT#BOOKING#{booking_id}" if booking_id else f"ACT#LOCK#{smartlock_id}"

    def activity_exists(self, log_id: str) -> bool:
        return self._get(f"LOG#{log_id}", "LOG") is not None

    def put_activity(self, entry: dict[str, Any], expires_at: datetime, events: Sequence[ev.Event] = ()) -> bool:
        """Store one Nuki log entry once (keyed on Nuki's log id); False if it was stored before.
        `events` are written with it, and only with it (a duplicate delivery writes none).

        `entry` holds `id`, `at` (datetime), `smartlockId`, optional `bookingId` and plain fields;
        never guest data or a PIN.
        """
        at = iso_utc(entry["at"])
        item = {
            **entry,
            "pk": f"LOG#{entry['id']}",
            "sk": "LOG",
            "at": at,
            "gsi1pk": self.activity_owner_key(entry.get("bookingId"), int(entry["smartlockId"])),
            "gsi1sk": f"{at}#{entry['id']}",
            # The feed across every lock and booking (the console's Activity page), by day.
            "gsi2pk": indexes.activity_day_pk(entry["at"]),
            "gsi2sk": f"{at}#{entry['id']}",
            "expiresAt": int(expires_at.timestamp()),
        }
        if not events:
            return self._put(item, "attribute_not_exists(pk)")
        codes = self._transact([self._tx_put(item, "attribute_not_exists(pk)"), *self._tx_events(events)])
        if codes and codes[0] == "ConditionalCheckFailed":
            return False
        if codes:
            raise ConcurrentModification(f"activity entry {entry['id']} could not be written; try again")
        return True

    def list_activity(self, owner_key: str, limit: int) -> list[dict[str, Any]]:
        """Entries under `owner_key` (see activity_owner_key), newest first."""
        return list(self._query(owner_key, index="gsi1", forward=False, limit=limit))

    def activity_page(self, owner_key: str, limit: int, before: str | None = None) -> IndexPage:
        """Entries under `owner_key`, newest first, older than the sort key `before`."""
        return self.index_range("gsi1", owner_key, forward=False, after=before, want=limit, budget=limit + 1)

    def record_first_entry(
        self, booking_id: str, at: datetime, now: datetime, checked_in: ev.Event | None = None
    ) -> tuple[bool, bool]:
        """Set the booking's firstEntryAt to `at` unless an entry at or before `at` is recorded.

        (changed, first): `first` is True when there was no firstEntryAt before (the check-in).
        One conditional UpdateItem that also bumps `version`, so a booking save based on an
        older read fails its optimistic-locking condition and re-reads instead of overwriting.
        Instants are stored to the second in one format (iso_utc), so string order is time order.
        `checked_in` (the guest.checked_in event) is written with the first one only, in its
        transaction; an earlier entry arriving later moves firstEntryAt back without an event.
        """
        names = {"#f": "firstEntryAt", "#u": "updatedAt", "#v": "version"}
        if checked_in is not None:
            first = self._tx_update(
                f"BOOKING#{booking_id}",
                BOOKING_SK,
                "SET #f = :at, #u = :now, #v = if_not_exists(#v, :zero) + :one",
                "attribute_exists(pk) AND attribute_not_exists(#f)",
                names,
                {":at": iso_utc(at), ":now": iso_utc(now), ":zero": 0, ":one": 1},
            )
            codes = self._transact([first, *self._tx_events([checked_in])])
            if not codes:
                return True, True
            if codes[0] != "ConditionalCheckFailed":
                raise ConcurrentModification(f"booking {booking_id}: check-in could not be written; try again")
        try:
            res = self.client.update_item(
                TableName=self.table_name,
                Key=self._codec.dump({"pk": f"BOOKING#{booking_id}", "sk": BOOKING_SK}),
                UpdateExpression=(
                    "SET #f = :at, #u = :now, #v = if_not_exists(#v, :zero) + :one, #up = :up, #us = :us"
                ),
                ConditionExpression="attribute_exists(pk) AND (attribute_not_exists(#f) OR #f > :at)",
                ExpressionAttributeNames={
                    "#f": "firstEntryAt",
                    "#u": "updatedAt",
                    "#v": "version",
                    "#up": "gsi3pk",
                    "#us": "gsi3sk",
                },
                ExpressionAttributeValues=self._codec.dump(
                    {
                        ":at": iso_utc(at),
                        ":now": iso_utc(now),
                        ":zero": 0,
                        ":one": 1,
                        ":up": indexes.updated_partition(now, booking_id),
                        ":us": indexes.updated_sort_key(now, booking_id),
                    }
                ),
                ReturnValues="UPDATED_OLD",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False, False
        return True, "firstEntryAt" not in res.get("Attributes", {})
