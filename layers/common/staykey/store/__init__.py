"""The DynamoDB store: one table, access patterns first, keys second.

Access patterns and their keys (pk / sk):

| pattern                                         | item                                  |
|-------------------------------------------------|---------------------------------------|
| room by id; all rooms                           | ROOMS / ROOM#{roomId}                 |
| booking by id                                   | BOOKING#{id} / BOOKING                |
| the booking's guest data (expires, see privacy) | BOOKING#{id} / GUEST                  |
| booking by its Nuki auth name (attribution)     | NAME#{authName} / NAME                |
| codes held or reserved on a lock, ours and not  | LOCK#{smartlockId} / CODE#{pin}       |
| booking by a lock's auth ids (attribution)      | LOCK#{id} / AUTH#{nukiId}, AUTHID#{authId} |
| a lock's last known state, log cursor           | LOCK#{smartlockId} / META             |
| locks the reconciler looks after (beyond rooms) | LOCKS / LOCK#{smartlockId}            |
| a lock's stays, last right digest, signal (watch) | WATCH#{id % 16:02d} / LOCK#{smartlockId} |
| the watcher's record; the account log's cursor  | WATCHER / STATE; LOGPOLL / CURSOR     |
| a write waiting for the shared look            | LOOKS#{id % 4} / LOCK#{smartlockId}#{bookingId} |
| one Nuki log entry (dedup on Nuki's log id)     | LOG#{logId} / LOG; gsi1: ACT#... / {at}#{logId} |
| activity across every lock, newest first        | gsi2: ACTDAY#{yyyy-mm-dd} / {at}#{logId} |
| bookings of a room by stay (GET /bookings?roomId) | gsi1: ROOMSTAY#{roomId} / {validFrom}#{id} |
| bookings whose stay overlaps a range            | gsi2: STAY#{yyyy}[#LONG] / {validFrom}#{id} |
| bookings changed since (GET /bookings?updatedSince) | gsi3: UPD#{yyyy} / {updatedAt}#{id}  |
| live guest data by name or email (console)      | gsi3: GUESTS / {expiresAt}#{id}, filter on `search` |
| failed bookings by stay (console, ?status=failed) | gsi4: FAILED / {validFrom}#{id} (sparse) |
| operator actions (audit), newest first          | AUDIT#{yyyy-mm} / {at}#{id}; gsi1: AUD#BOOKING#{id} |
| webhook registration                            | CONFIG / WEBHOOK                      |
| an event waiting for the dispatcher (the outbox) | BOOKING#{id} or LOCK#{id} / EVENT#{eventId} |
| a booking's events, kept (its console timeline)  | HISTORY#BOOKING#{id} / {at}#{eventId}  |
| the event feed (GET /events), its counter       | FEED / SEQ#{seq:020d}, FEED / COUNTER |
| the shop's webhook endpoints                    | WEBHOOKS / ENDPOINT#{endpointId}      |
| bookings on a lock they open with the Nuki app  | LOCK#{smartlockId} / CODEAPP#{bookingId}  |
| a guest's Nuki account user (store/accounts.py) | ACCOUNTUSER#{id} / ACCOUNTUSER; gsi2: AUPURGE / {purgeAt}#{id} |

Events (staykey.events.model) are written in the same transaction as the change they describe: a save of
a booking derives them from what it read (`Booking._stored`) and what it writes, so an event exists
iff its change was saved. The table's stream carries them to the event dispatcher, which deletes the
outbox item; a booking's events are also kept in its history (staykey.store.history), written in
the same transaction, for the console's timeline.

The index keys are built in one place, `staykey.store.keys`. Searches (`services/search.py`) read
key ranges, never the whole table:

* A stay overlaps [from, to) when validFrom < to and validUntil > from. The stay index sorts by
  validFrom in year partitions, so a range query reads the years from (from - longest stay) to
  `to`. Stays of more than 31 days live in their year's `#LONG` partition: a query looks back 31
  days in the short partitions and 366 days (the longest stay allowed) only in the long ones,
  which hold few bookings. `validUntil > from` is a filter on what the key range reads.
* Pages are keyset pages: the cursor holds the last sort key returned, and the next page reads
  strictly after it (partitions of one year are merged in sort-key order). A page reads at most a
  bounded number of items, so a selective filter may give a short page with a cursor to go on.
* Guest data expires (GUEST_DATA_RETENTION_DAYS after the stay) and so does its index entry;
  the guest search reads the GUESTS partition (live guest data only: upcoming, current and
  recent stays) with a substring filter on a case- and accent-folded copy of name and email.
* Every write of a booking rewrites its index keys (a changed room, stay or time moves it);
  DynamoDB keeps the indexes eventually consistent, so a list may lag a write by a moment.

What is due lives in EventBridge Scheduler (one-time schedules) and the lifecycle queue (delayed
read-backs), not in a table scan.

PIN allocation is race-free: the booking item and one CODE item per lock are written in one
transaction, each conditional on not existing, so two bookings can never hold one code on a shared
lock, whatever the timing. Codes that others put on a lock get CODE items too (owner "foreign").
"""

from __future__ import annotations

from staykey.store.accounts import AccountUserItems
from staykey.store.activity import ActivityItems
from staykey.store.audit import AuditItems
from staykey.store.bookings import BookingItems
from staykey.store.codes import CodeItems
from staykey.store.config import ConfigItems
from staykey.store.history import HistoryEntry, HistoryItems
from staykey.store.locks import LockItems
from staykey.store.rooms import RoomItems
from staykey.store.table import BOOKING_SK, GUEST_SK, KEY_MAX, KEY_MIN, Codec, IndexPage, Table
from staykey.store.types import BookingExists, CodeClaim, CodeItem, NameTaken, PinTaken, TxExtras
from staykey.store.watch import WatchItems


class Store(
    RoomItems,
    BookingItems,
    CodeItems,
    ActivityItems,
    LockItems,
    AuditItems,
    ConfigItems,
    AccountUserItems,
    WatchItems,
    Table,
):
    """The table, one family of items per module (store/rooms.py, bookings.py, ...), each a small
    class over the same low-level operations (store/table.py); services take a `Store`."""


__all__ = [
    "BOOKING_SK",
    "GUEST_SK",
    "KEY_MAX",
    "KEY_MIN",
    "BookingExists",
    "CodeClaim",
    "CodeItem",
    "Codec",
    "HistoryEntry",
    "HistoryItems",
    "IndexPage",
    "NameTaken",
    "PinTaken",
    "Store",
    "Table",
    "TxExtras",
]
