"""What the watcher keeps (`core.watch`): one item per lock in one of `WATCH_SHARDS` partitions
(WATCH#{nn} / LOCK#{id}: the lock's stays, the digest of its codes when last found right, a signal),
its own record (WATCHER / STATE), the account log's cursor (LOGPOLL / CURSOR) and the signals (SIGNALS /
LOCK#{id}): items of their own partition keys, not CONFIG's, which every sync round reads. The shared
look's requests (LOOKS#{id % 4} / LOCK#{id}#{bookingId}) are kept here too.

The lock items are spread over partitions so that reading them all, every few minutes, puts no
partition key above the others; each stay is an attribute of its own (`s#{bookingId}`), so a
booking's command sets or removes its stay with one write and no read.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, NamedTuple

from staykey.core.timeutil import iso_utc, parse_iso
from staykey.core.watch import WATCH_SHARDS, LockWatch, WatchState
from staykey.store.table import Table

STAY = "s#"
# signal_lock: tries of its pair of conditional writes while the watcher takes and clears signals
SIGNAL_TRIES = 5


# The shared look's items: in a few partitions of their own (read every minute, nearly always empty),
# kept a day at most if nothing reads them (SHARED_LOOKS disabled after they were written).
LOOK_SHARDS = 4
LOOK_TTL_SECONDS = 86400


class AwaitedLook(NamedTuple):
    smartlock_id: int
    booking_id: str
    at: datetime  # read from then on
    by: datetime  # read by then: a run reads when any is due


def look_partition(smartlock_id: int) -> str:
    return f"LOOKS#{smartlock_id % LOOK_SHARDS}"


def watch_key(smartlock_id: int) -> dict[str, str]:
    return {"pk": f"WATCH#{smartlock_id % WATCH_SHARDS:02d}", "sk": f"LOCK#{smartlock_id}"}


class WatchItems(Table):
    # -- the locks' watch items --------------------------------------------------------------

    def watch_stay(self, smartlock_id: int, booking_id: str, start: datetime, end: datetime) -> None:
        """A booking's stay on a lock: hot from `start` (its code goes on) to `end` (and a while after)."""
        self._update_watch(
            smartlock_id,
            "SET #id = :id, #s = :s",
            {"#id": "smartlockId", "#s": STAY + booking_id},
            {":id": smartlock_id, ":s": f"{iso_utc(start)}|{iso_utc(end)}"},
        )

    def unwatch_stays(self, smartlock_id: int, booking_ids: Iterable[str]) -> None:
        names = {f"#s{i}": STAY + booking_id for i, booking_id in enumerate(booking_ids)}
        if names:
            self._update_watch(smartlock_id, "REMOVE " + ", ".join(names), names, {})

    def watch_seen(self, smartlock_id: int, digest: str, at: datetime) -> None:
        """The reconciler found the lock's codes right: what they were (a digest), and when."""
        self._update_watch(
            smartlock_id,
            "SET #id = :id, #d = :d, #a = :a",
            {"#id": "smartlockId", "#d": "seen", "#a": "seenAt"},
            {":id": smartlock_id, ":d": digest, ":a": iso_utc(at)},
        )

    def signal_lock(self, smartlock_id: int, at: datetime) -> None:
        """Something says the lock may have drifted: the watcher looks at it from `at` on. An earlier
        signal already waiting stays. While the watcher has one taken (`take_signal`: it is looking
        at the lock now, for what was said before), what is said goes beside it (`nextAt`, the
        earliest): not cleared with the taken one, and not putting off the taken one's time if that
        look fails (it stays due for the next run). Signals have a partition of their own (SIGNALS /
        LOCK#{id}): the watcher reads it every run, and it is nearly always empty."""
        key = self._signal_key(smartlock_id)
        when = iso_utc(at)
        assert when is not None
        values = self._codec.dump({":id": smartlock_id, ":c": when})
        # Two conditional writes; the watcher may take or clear the signal between them (a look
        # ending): then neither applies, and the pair is tried again on what the item is now.
        for _ in range(SIGNAL_TRIES):
            first = "attribute_not_exists(#c) OR (#c > :c AND attribute_not_exists(#t))"
            names = {"#id": "smartlockId", "#c": "checkAt", "#t": "takenAt"}
            if self._updated(key, "SET #id = :id, #c = :c", first, names, values):
                return
            second = "attribute_exists(#t) AND (attribute_not_exists(#n) OR #n > :c)"
            if self._updated(key, "SET #n = :c", second, {"#t": "takenAt", "#n": "nextAt"}, {":c": values[":c"]}):
                return
            item = self.client.get_item(TableName=self.table_name, Key=key, ConsistentRead=True).get("Item")
            held = self._codec.load(item) if item else {}
            waiting = held.get("nextAt") if "takenAt" in held else held.get("checkAt")
            if waiting is not None and str(waiting) <= when:
                return  # an earlier (or the same) signal waits: it stays
        raise RuntimeError(f"the signal for lock {smartlock_id} could not be written")  # the caller retries

    def _signal_key(self, smartlock_id: int) -> Any:
        return self._codec.dump({"pk": "SIGNALS", "sk": f"LOCK#{smartlock_id}"})

    def _updated(self, key: Any, update: str, condition: str, names: dict[str, str], values: Any) -> bool:
        """One conditional update of a signal item; False when its condition did not hold."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=key,
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def lock_signals(self) -> dict[int, datetime]:
        """Every lock a signal names, and from when to look at it."""
        out = {}
        for item in self._query("SIGNALS", "LOCK#"):
            at = parse_iso(item.get("checkAt"))
            if at is not None:
                out[int(item["smartlockId"])] = at
        return out

    def take_signal(self, smartlock_id: int, at: datetime) -> None:
        """The watcher is about to look at the lock for the signal it read (`at`, its checkAt): a
        signal written from now on goes beside it (`signal_lock`) instead of being cleared with it."""
        names = {"#c": "checkAt", "#t": "takenAt"}
        self._updated(
            self._signal_key(smartlock_id), "SET #t = :c", "#c = :c", names, self._codec.dump({":c": iso_utc(at)})
        )

    def clear_signal(self, smartlock_id: int, at: datetime) -> None:
        """The watcher looked at the lock for the signal it took (`at`): it is done, unless a signal
        came meanwhile (`nextAt`: it becomes the signal, for its own time)."""
        key = self._signal_key(smartlock_id)
        names = {"#c": "checkAt", "#t": "takenAt", "#n": "nextAt"}
        values = self._codec.dump({":c": iso_utc(at)})
        try:
            self.client.delete_item(
                TableName=self.table_name,
                Key=key,
                ConditionExpression="#c = :c AND #t = :c AND attribute_not_exists(#n)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
            return
        except self.client.exceptions.ConditionalCheckFailedException:
            pass
        self._updated(key, "SET #c = #n REMOVE #t, #n", "#c = :c AND #t = :c AND attribute_exists(#n)", names, values)

    def lock_watches(self) -> Iterator[LockWatch]:
        """Every lock's watch item, shard by shard (eventually consistent reads: a stay written a
        moment ago is seen at the next run)."""
        for shard in range(WATCH_SHARDS):
            kwargs: dict[str, Any] = {
                "TableName": self.table_name,
                "KeyConditionExpression": "#p = :p",
                "ExpressionAttributeNames": {"#p": "pk"},
                "ExpressionAttributeValues": self._codec.dump({":p": f"WATCH#{shard:02d}"}),
            }
            while True:
                res = self.client.query(**kwargs)
                for raw in res.get("Items", []):
                    yield watch_from(_plain_strings(raw))
                if "LastEvaluatedKey" not in res:
                    break
                kwargs["ExclusiveStartKey"] = res["LastEvaluatedKey"]

    def lock_watch(self, smartlock_id: int) -> LockWatch | None:
        key = watch_key(smartlock_id)
        res = self.client.get_item(TableName=self.table_name, Key=self._codec.dump(key), ConsistentRead=False)
        return watch_from(_plain_strings(res["Item"])) if "Item" in res else None

    def _update_watch(
        self,
        smartlock_id: int,
        expression: str,
        names: dict[str, str],
        values: dict[str, Any],
        condition: str | None = None,
    ) -> None:
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": self._codec.dump(watch_key(smartlock_id)),
            "UpdateExpression": expression,
            "ExpressionAttributeNames": names,
        }
        if values:
            kwargs["ExpressionAttributeValues"] = self._codec.dump(values)
        if condition:
            kwargs["ConditionExpression"] = condition
        self.client.update_item(**kwargs)

    # -- the shared look (services.shared) -----------------------------------------------------

    def await_look(self, smartlock_id: int, booking_id: str, at: datetime, by: datetime) -> None:
        """A booking's write nobody waits for is in flight on the lock: the shared look reads the lock
        from `at` on, by `by` at the latest, and tells the booking (one item per lock and booking; the
        latest round's)."""
        self._put(
            {
                "pk": look_partition(smartlock_id),
                "sk": f"LOCK#{smartlock_id}#{booking_id}",
                "smartlockId": smartlock_id,
                "bookingId": booking_id,
                "at": iso_utc(at),
                "by": iso_utc(by),
                "expiresAt": int(by.timestamp()) + LOOK_TTL_SECONDS,
            }
        )

    def awaited_looks(self) -> list[AwaitedLook]:
        """Every lock and booking waiting for the shared look, from when, and by when."""
        out = []
        for shard in range(LOOK_SHARDS):
            for item in self._query(f"LOOKS#{shard}", "LOCK#"):
                at = parse_iso(item.get("at"))
                if at is not None:
                    by = parse_iso(item.get("by")) or at
                    out.append(AwaitedLook(int(item["smartlockId"]), str(item["bookingId"]), at, by))
        return out

    def drop_look(self, smartlock_id: int, booking_id: str, at: datetime) -> None:
        """The shared look told the booking: done, unless a round asked again meanwhile (another `at`)."""
        self._delete(
            look_partition(smartlock_id),
            f"LOCK#{smartlock_id}#{booking_id}",
            "#a = :a",
            {":a": iso_utc(at)},
            {"#a": "at"},
        )

    # -- the watcher's record and the log cursor ---------------------------------------------

    def watch_state(self) -> WatchState:
        item = self._get("WATCHER", "STATE", consistent=False) or {}
        return WatchState(
            log_polled_at=parse_iso(item.get("logPolledAt")),
            hot_checked_at=parse_iso(item.get("hotCheckedAt")),
            lapsed_until=parse_iso(item.get("lapsedUntil")),
            codes=None if item.get("codes") is None else int(item["codes"]),
            locks=None if item.get("locks") is None else int(item["locks"]),
            hot=None if item.get("hot") is None else int(item["hot"]),
            unpaged_failed=None if item.get("unpagedFailed") is None else int(item["unpagedFailed"]),
            unpaged_failed_at=parse_iso(item.get("unpagedFailedAt")),
        )

    def update_watch_state(self, **fields: datetime | int | None) -> None:
        """Set fields of the watcher's record (datetimes as instants; None removes a field)."""
        names = {f"#f{i}": key for i, key in enumerate(fields)}
        sets = [f"#f{i} = :f{i}" for i, value in enumerate(fields.values()) if value is not None]
        removes = [f"#f{i}" for i, value in enumerate(fields.values()) if value is None]
        values = {
            f":f{i}": iso_utc(value) if isinstance(value, datetime) else value
            for i, value in enumerate(fields.values())
            if value is not None
        }
        parts = (["SET " + ", ".join(sets)] if sets else []) + (["REMOVE " + ", ".join(removes)] if removes else [])
        expression = " ".join(parts)
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": self._codec.dump({"pk": "WATCHER", "sk": "STATE"}),
            "UpdateExpression": expression,
            "ExpressionAttributeNames": names,
        }
        if values:
            kwargs["ExpressionAttributeValues"] = self._codec.dump(values)
        self.client.update_item(**kwargs)

    def log_cursor(self) -> tuple[datetime | None, str | None]:
        """The account log's cursor: the newest entry recorded (its date and Nuki id)."""
        item = self._get("LOGPOLL", "CURSOR") or {}
        return parse_iso(item.get("cursorAt")), item.get("cursorId")

    def advance_log_cursor(self, at: datetime, log_id: str) -> None:
        """Move the cursor to an entry once it is recorded, unless it points to a newer one already."""
        with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
            self.client.update_item(
                TableName=self.table_name,
                Key=self._codec.dump({"pk": "LOGPOLL", "sk": "CURSOR"}),
                UpdateExpression="SET #a = :a, #i = :i",
                ConditionExpression="attribute_not_exists(#a) OR #a <= :a",
                ExpressionAttributeNames={"#a": "cursorAt", "#i": "cursorId"},
                ExpressionAttributeValues=self._codec.dump({":a": iso_utc(at), ":i": log_id}),
            )


def _plain_strings(raw: dict[str, Any]) -> dict[str, Any]:
    """A watch item's attributes (strings and numbers only) straight from DynamoDB's JSON: read for
    every lock every few minutes, so without the general codec."""
    return {name: value.get("S", value.get("N")) for name, value in raw.items()}


def watch_from(item: dict[str, Any]) -> LockWatch:
    stays: dict[str, tuple[datetime, datetime]] = {}
    for name, value in item.items():
        if name.startswith(STAY) and isinstance(value, str) and "|" in value:
            start, end = (parse_iso(part) for part in value.split("|", 1))
            if start is not None and end is not None:
                stays[name.removeprefix(STAY)] = (start, end)
    return LockWatch(
        smartlock_id=int(item.get("smartlockId") or str(item["sk"]).removeprefix("LOCK#")),
        stays=stays,
        seen=item.get("seen"),
        seen_at=parse_iso(item.get("seenAt")),
        check_at=parse_iso(item.get("checkAt")),
    )


__all__ = ["WatchItems", "watch_from", "watch_key"]
