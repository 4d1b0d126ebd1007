"""Locks: a lock's last known state and log cursor (LOCK#{id} / META) and the registry of locks we
look after (LOCKS / LOCK#{id})."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from staykey.core.timeutil import iso_utc
from staykey.errors import ConcurrentModification
from staykey.events import model as ev
from staykey.store.table import Table


class LockItems(Table):
    def update_lock_meta_if_newer(self, smartlock_id: int, stamp: str, at: datetime, **fields: Any) -> bool:
        """Set `fields` and `stamp` = `at` on LOCK#/META unless it holds a newer `stamp` already
        (out-of-order webhooks, overlapping polls). None values are left out."""
        fields = {key: value for key, value in fields.items() if value is not None}
        fields[stamp] = iso_utc(at)
        names = {f"#{i}": key for i, key in enumerate(fields)}
        values = {f":{i}": value for i, value in enumerate(fields.values())}
        stamp_ref = f"#{len(fields) - 1}"
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=self._codec.dump({"pk": f"LOCK#{smartlock_id}", "sk": "META"}),
                UpdateExpression="SET " + ", ".join(f"#{i} = :{i}" for i in range(len(fields))),
                ConditionExpression=f"attribute_not_exists({stamp_ref}) OR {stamp_ref} <= :{len(fields) - 1}",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=self._codec.dump(values),
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    # -- lock state ------------------------------------------------------------------------

    def get_lock_meta(self, smartlock_id: int) -> dict[str, Any]:
        return self._get(f"LOCK#{smartlock_id}", "META") or {}

    def get_lock_metas(self, smartlock_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """Several locks' META items in one BatchGetItem per 100 (locks never reported on: absent)."""
        items = self.batch_get([(f"LOCK#{i}", "META") for i in smartlock_ids])
        return {int(pk.removeprefix("LOCK#")): item for (pk, _), item in items.items()}

    def update_lock_meta(self, smartlock_id: int, **fields: Any) -> None:
        names = {f"#{i}": key for i, key in enumerate(fields)}
        values = {f":{i}": value for i, value in enumerate(fields.values())}
        self.client.update_item(
            TableName=self.table_name,
            Key=self._codec.dump({"pk": f"LOCK#{smartlock_id}", "sk": "META"}),
            UpdateExpression="SET " + ", ".join(f"#{i} = :{i}" for i in range(len(fields))),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=self._codec.dump(values),
        )

    def update_lock_state(
        self,
        smartlock_id: int,
        fields: dict[str, Any],
        events: Callable[[dict[str, Any]], list[ev.Event]],
        *,
        stamp: tuple[str, datetime] | None = None,
        watch: Sequence[str] = ev.LOCK_WATCH,
        attempts: int = 5,
    ) -> bool:
        """Set `fields` on LOCK#/META with the events of the change (`events(old_meta)`), in one
        transaction conditional on the `watch`ed attributes being what `events` saw: two writers
        never both report one transition, and none is lost. With `stamp` (attribute, instant) the
        write is skipped (False) when META holds a newer instant there (out-of-order webhooks).
        None values in `fields` are left out."""
        fields = {key: value for key, value in fields.items() if value is not None}
        if stamp is not None:
            fields[stamp[0]] = iso_utc(stamp[1])
        for _ in range(attempts):
            old = self.get_lock_meta(smartlock_id)
            if stamp is not None and old.get(stamp[0]) is not None and str(old[stamp[0]]) > fields[stamp[0]]:
                return False
            names = {f"#f{i}": key for i, key in enumerate(fields)}
            values: dict[str, Any] = {f":f{i}": value for i, value in enumerate(fields.values())}
            conditions = []
            for i, key in enumerate(watch):
                names[f"#w{i}"] = key
                if old.get(key) is not None:
                    values[f":w{i}"] = old[key]
                    conditions.append(f"#w{i} = :w{i}")
                elif key not in old:
                    conditions.append(f"attribute_not_exists(#w{i})")
                else:
                    del names[f"#w{i}"]  # a stored null: nothing to compare with
            if stamp is not None:
                names["#s"] = stamp[0]
                values[":s"] = fields[stamp[0]]
                conditions.append("(attribute_not_exists(#s) OR #s <= :s)")
            update = self._tx_update(
                f"LOCK#{smartlock_id}",
                "META",
                "SET " + ", ".join(f"#f{i} = :f{i}" for i in range(len(fields))),
                " AND ".join(conditions),
                names,
                values,
            )
            found = events(old)
            codes = self._transact([update, *self._tx_events(found)])
            if not codes:
                return True
            if codes[0] != "ConditionalCheckFailed":
                raise ConcurrentModification(f"lock {smartlock_id}: its state could not be written; try again")
        raise ConcurrentModification(f"lock {smartlock_id}: its state keeps changing; try again")

    def code_count(self, smartlock_id: int) -> int | None:
        """Keypad codes on the lock at its last count (META `codeCount`: every code Nuki listed, ours
        and others'); None if it was never counted."""
        value = self.get_lock_meta(smartlock_id).get("codeCount")
        return None if value is None else int(value)

    def register_locks(self, smartlock_ids: Iterable[int]) -> None:
        """Remember locks for the reconciler, so a lock taken out of every room is still looked
        after while it holds codes of ours."""
        items = [{"pk": "LOCKS", "sk": f"LOCK#{i}", "smartlockId": int(i)} for i in smartlock_ids]
        for start in range(0, len(items), 25):
            requests = [{"PutRequest": {"Item": self._codec.dump(item)}} for item in items[start : start + 25]]
            for _ in range(5):
                res = self.client.batch_write_item(RequestItems={self.table_name: requests})
                requests = res.get("UnprocessedItems", {}).get(self.table_name, [])
                if not requests:
                    break

    def is_registered(self, smartlock_id: int) -> bool:
        return self._get("LOCKS", f"LOCK#{smartlock_id}", consistent=False) is not None

    def registered_locks(self) -> list[int]:
        return [int(item["smartlockId"]) for item in self._query("LOCKS", "LOCK#")]

    def mark_pooled(self, smartlock_id: int, at: datetime) -> None:
        """Remember a lock that has (or is about to have) backup codes (`services.backup`), so that the
        pools' run reads the pools of these locks, not of every lock of the account."""
        self._put({"pk": "POOLS", "sk": f"LOCK#{smartlock_id}", "smartlockId": int(smartlock_id), "at": iso_utc(at)})

    def pooled_locks(self) -> list[int]:
        return [int(item["smartlockId"]) for item in self._query("POOLS", "LOCK#")]

    def unmark_pooled(self, smartlock_id: int, before: datetime) -> bool:
        """Forget a lock whose pool is empty, unless it was marked since `before` (a code being made)."""
        return self._delete(
            "POOLS", f"LOCK#{smartlock_id}", "#at < :before", {":before": iso_utc(before)}, {"#at": "at"}
        )

    def unregister_lock(self, smartlock_id: int) -> None:
        self._delete("LOCKS", f"LOCK#{smartlock_id}")
