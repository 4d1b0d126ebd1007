"""The one table: the codec between items and DynamoDB JSON, and the low-level operations (get,
query, index ranges, batch reads, conditional put/delete, transactions, the outbox's event items)
every item family builds on."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any, cast

from staykey.adapters.aws import LazyClient
from staykey.events import model as ev
from staykey.store import fanout

BOOKING_SK = "BOOKING"
GUEST_SK = "GUEST"
# Bounds of the sort keys of the indexes (all ASCII, starting with a digit).
KEY_MIN = " "
KEY_MAX = "~"


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [_plain(v) for v in value]
    return value


def _number(text: str) -> int | float:
    """A DynamoDB number as `_plain(Decimal(text))` reads it: an int when integral, else a float."""
    if text.isdigit() or (text[:1] == "-" and text[1:].isdigit()):
        return int(text)
    number = Decimal(text)
    return int(number) if number == number.to_integral_value() else float(number)


# The largest int DynamoDB's 38 digits hold exactly (boto3 refuses larger ones, as the fallback does)
_INT_LIMIT = 10**38


class Codec:
    """Items to DynamoDB JSON and back, as boto3's TypeSerializer and TypeDeserializer do (then
    numbers as int or float, sets as lists): the common shapes (strings, numbers, booleans, null,
    maps, lists) directly, every other value through boto3's own. The same answers, measured
    equal by tests/unit/store/test_codec.py; boto3's are generic and were a quarter of the
    simulator's time, and much of a console page's."""

    def __init__(self) -> None:
        from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

        self._ser = TypeSerializer()
        self._de = TypeDeserializer()

    def dump(self, item: dict[str, Any]) -> dict[str, Any]:
        # A string is written here, without a call (`_dump_value` makes the same), as in maps and lists.
        return {k: {"S": v} if type(v) is str else self._dump_value(v) for k, v in item.items() if v is not None}

    def load(self, item: dict[str, Any]) -> dict[str, Any]:
        # A string is read here, without a call (`_load` would answer the same, {"S": None} included).
        return {k: v["S"] if "S" in v and len(v) == 1 else _load(v, self) for k, v in item.items()}

    def _dump_value(self, value: Any) -> dict[str, Any]:
        kind = type(value)
        if kind is str:
            return {"S": value}
        if kind is bool:
            return {"BOOL": value}
        if kind is int and -_INT_LIMIT < value < _INT_LIMIT:
            return {"N": str(value)}
        if value is None:
            return {"NULL": True}
        if kind is dict:
            return {"M": {k: {"S": v} if type(v) is str else self._dump_value(v) for k, v in value.items()}}
        if kind is list or kind is tuple:
            return {"L": [{"S": v} if type(v) is str else self._dump_value(v) for v in value]}
        return dict(self._ser.serialize(value))

    def _load_value(self, value: dict[str, Any]) -> Any:
        return _load(value, self)

    def _load_other(self, value: dict[str, Any]) -> Any:
        return _plain(self._de.deserialize(cast(Any, value)))  # a value of any other type: boto3 reads it


# The members of DynamoDB answers that hold items: GetItem's Item, Query's and Scan's Items, the
# Responses of BatchGetItem (by table) and TransactGetItems.
_ITEM_MEMBERS = ("Item", "Items", "Responses")


def items_as_json(client: Any) -> None:
    """Make `client` (a boto3 DynamoDB client) take the items of its answers as their JSON reads.

    botocore parses an answer by walking its output model: every attribute value of every item is a
    structure of ten possible members, looked up one by one, so a Query of 100 bookings (2.6 KB,
    some 100 values each) cost ~20 ms of CPU in the parser alone, more than the rest of the read.
    In DynamoDB's JSON protocol an item's JSON already is what the parser returns (type letters,
    numbers as strings, maps and lists as such), except binary values (B, BS: base64 in JSON, bytes
    once parsed): an answer with any of them, an error and anything that is not a JSON object are
    parsed by botocore as before. Everything else of the answer (LastEvaluatedKey, UnprocessedKeys,
    counts, consumed capacity) is still botocore's. tests/unit/test_store_codec.py compares both."""
    client.meta.events.register("before-parse.dynamodb", _take_items)


def _take_items(response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any) -> None:
    body = response_dict.get("body")
    if not isinstance(body, bytes) or response_dict.get("status_code", 500) >= 300:
        return
    if b'"B"' in body or b'"BS"' in body:  # binary, or just a "B" somewhere: botocore parses it
        return
    try:
        answer = json.loads(body)
    except ValueError:
        return
    if not isinstance(answer, dict):
        return
    taken = {member: answer.pop(member) for member in _ITEM_MEMBERS if member in answer}
    if taken:
        response_dict["body"] = json.dumps(answer).encode()
        customized_response_dict.update(taken)


# Numbers read, by their text (`_number`'s answer is a function of the text alone, and an int or a
# float never changes): versions, counters, lock ids and expiry times recur in every item read.
_NUMBERS: dict[str, int | float] = {}
_NUMBERS_MAX = 20_000


def _load(value: dict[str, Any], codec: Codec) -> Any:
    """`Codec._load_value`: a function of the module, not a method, because it is the layer's most
    called function (every attribute of every item read); `codec` reads the rare types. A value of
    one type letter is read by looking its letter up, in the order of how common they are in the
    items read (strings, numbers, nulls, booleans, maps, lists; the strings of maps and lists read
    in place, as `Codec.load` does); anything else is boto3's."""
    if len(value) == 1:
        inner = value.get("S")
        if inner is not None:
            return inner
        inner = value.get("N")
        if inner is not None:
            number = _NUMBERS.get(inner)
            if number is None:
                if len(_NUMBERS) >= _NUMBERS_MAX:
                    _NUMBERS.clear()
                number = _NUMBERS[inner] = _number(inner)
            return number
        if value.get("NULL") is True:
            return None
        inner = value.get("BOOL")
        if inner is not None:
            return inner
        inner = value.get("M")
        if inner is not None:
            return {k: v["S"] if "S" in v and len(v) == 1 else _load(v, codec) for k, v in inner.items()}
        inner = value.get("L")
        if inner is not None:
            return [v["S"] if "S" in v and len(v) == 1 else _load(v, codec) for v in inner]
    return codec._load_other(value)


@dataclass
class IndexPage:
    """Items read from one index partition in sort-key order, and how far the read got.

    `last_key` is the sort key of the last item read (a later read continues after it), or None
    when the key range was read to its end."""

    items: list[dict[str, Any]]
    last_key: str | None


class Table:
    """The one table: its codec and the low-level operations every item family uses."""

    client = LazyClient("dynamodb", prepare=items_as_json)

    def __init__(self, table_name: str, client: Any | None = None) -> None:
        self.table_name = table_name
        self._client = client
        self._codec = Codec()

    # -- low level -------------------------------------------------------------------------

    @property
    def codec(self) -> Codec:
        """The codec between items and DynamoDB JSON (for tools that read or load the table raw)."""
        return self._codec

    def _get(self, pk: str, sk: str, consistent: bool = True) -> dict[str, Any] | None:
        res = self.client.get_item(
            TableName=self.table_name, Key=self._codec.dump({"pk": pk, "sk": sk}), ConsistentRead=consistent
        )
        return self._codec.load(res["Item"]) if "Item" in res else None

    def _query(
        self,
        pk: str,
        sk_prefix: str | None = None,
        *,
        index: str | None = None,
        forward: bool = True,
        limit: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        key_attr, sort_attr = ("gsi1pk", "gsi1sk") if index else ("pk", "sk")
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "#p = :p" + (" AND begins_with(#s, :s)" if sk_prefix else ""),
            "ExpressionAttributeNames": {"#p": key_attr, **({"#s": sort_attr} if sk_prefix else {})},
            "ExpressionAttributeValues": self._codec.dump({":p": pk, **({":s": sk_prefix} if sk_prefix else {})}),
            "ScanIndexForward": forward,
        }
        if index:
            kwargs["IndexName"] = index
        else:
            kwargs["ConsistentRead"] = True
        returned = 0
        while True:
            if limit:
                kwargs["Limit"] = limit - returned
            res = self.client.query(**kwargs)
            for raw in res.get("Items", []):
                returned += 1
                yield self._codec.load(raw)
            if "LastEvaluatedKey" not in res or (limit and returned >= limit):
                return
            kwargs["ExclusiveStartKey"] = res["LastEvaluatedKey"]

    def index_range(
        self,
        index: str,
        pk: str,
        lo: str = KEY_MIN,
        hi: str = KEY_MAX,
        *,
        forward: bool = True,
        after: str | None = None,
        want: int = 100,
        budget: int = 1000,
        filter_expression: str | None = None,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
    ) -> IndexPage:
        """Up to `want` items of `index` with partition key `pk` and a sort key in [lo, hi] (strictly
        after `after` in reading order), that pass `filter_expression`. At most `budget` items are
        read (DynamoDB filters after reading), so a selective filter gives a short page, never an
        unbounded read."""
        key_attr, sort_attr = f"{index}pk", f"{index}sk"
        if after is not None:
            lo, hi = (max(lo, after), hi) if forward else (lo, min(hi, after))
        if lo > hi:
            return IndexPage([], None)
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": index,
            "KeyConditionExpression": "#ip = :ip AND #is BETWEEN :lo AND :hi",
            "ExpressionAttributeNames": {"#ip": key_attr, "#is": sort_attr, **(names or {})},
            "ExpressionAttributeValues": self._codec.dump({":ip": pk, ":lo": lo, ":hi": hi, **(values or {})}),
            "ScanIndexForward": forward,
        }
        if filter_expression:
            kwargs["FilterExpression"] = filter_expression
        matched: list[dict[str, Any]] = []
        read = 0
        while True:
            # Without a filter every item read is returned: read no more than the page wants (and
            # the item at `after`, which the key range includes and the page skips).
            enough = want - len(matched) + (1 if after is not None else 0)
            kwargs["Limit"] = max(1, min(budget - read, 250, 250 if filter_expression else enough))
            res = self.client.query(**kwargs)
            read += int(res.get("ScannedCount", 0))
            raw_items = res.get("Items", [])
            more = "LastEvaluatedKey" in res
            for n, raw in enumerate(raw_items):
                item = self._codec.load(raw)
                if after is not None and item[sort_attr] == after:
                    continue
                matched.append(item)
                if len(matched) >= want:
                    last = n == len(raw_items) - 1 and not more
                    return IndexPage(matched, None if last else str(item[sort_attr]))
            if not more:
                return IndexPage(matched, None)
            if read >= budget:
                return IndexPage(matched, str(self._codec.load(res["LastEvaluatedKey"])[sort_attr]))
            kwargs["ExclusiveStartKey"] = res["LastEvaluatedKey"]

    def batch_get(
        self, keys: Sequence[tuple[str, str]], consistent: bool = False, attributes: Sequence[str] = ()
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """Items by (pk, sk), 100 keys per BatchGetItem (several at once); missing items are left
        out. With `attributes`, only those (and the keys) are read."""
        unique = list(dict.fromkeys(keys))
        chunks = [unique[start : start + 100] for start in range(0, len(unique), 100)]
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for part in fanout.each([partial(self._batch_get, c, consistent, attributes) for c in chunks]):
            found.update(part)
        return found

    def _batch_get(
        self, keys: Sequence[tuple[str, str]], consistent: bool, attributes: Sequence[str]
    ) -> dict[tuple[str, str], dict[str, Any]]:
        found: dict[tuple[str, str], dict[str, Any]] = {}
        request: dict[str, Any] = {
            self.table_name: {
                "Keys": [self._codec.dump({"pk": pk, "sk": sk}) for pk, sk in keys],
                "ConsistentRead": consistent,
            }
        }
        if attributes:
            names = {f"#a{i}": name for i, name in enumerate(dict.fromkeys(["pk", "sk", *attributes]))}
            request[self.table_name]["ProjectionExpression"] = ", ".join(names)
            request[self.table_name]["ExpressionAttributeNames"] = names
        for _ in range(6):
            res = self.client.batch_get_item(RequestItems=request)
            for raw in res.get("Responses", {}).get(self.table_name, []):
                item = self._codec.load(raw)
                found[(str(item["pk"]), str(item["sk"]))] = item
            request = res.get("UnprocessedKeys") or {}
            if not request:
                break
        for key in (request.get(self.table_name) or {}).get("Keys", []):  # throttled all along
            loaded = self._codec.load(key)
            single = self._get(str(loaded["pk"]), str(loaded["sk"]), consistent=consistent)
            if single is not None:
                found[(str(single["pk"]), str(single["sk"]))] = single
        return found

    def _put(
        self,
        item: dict[str, Any],
        condition: str | None = None,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
    ) -> bool:
        kwargs: dict[str, Any] = {"TableName": self.table_name, "Item": self._codec.dump(item)}
        if condition:
            kwargs["ConditionExpression"] = condition
        if names:
            kwargs["ExpressionAttributeNames"] = names
        if values:
            kwargs["ExpressionAttributeValues"] = self._codec.dump(values)
        return self._put_request(kwargs)

    def _put_request(self, kwargs: dict[str, Any]) -> bool:
        """PutItem with these arguments (DynamoDB JSON); False when its condition failed."""
        try:
            self.client.put_item(**kwargs)
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _delete(
        self,
        pk: str,
        sk: str,
        condition: str | None = None,
        values: dict[str, Any] | None = None,
        names: dict[str, str] | None = None,
    ) -> bool:
        kwargs: dict[str, Any] = {"TableName": self.table_name, "Key": self._codec.dump({"pk": pk, "sk": sk})}
        if condition:
            kwargs["ConditionExpression"] = condition
            kwargs["ExpressionAttributeValues"] = self._codec.dump(values or {})
        if names:
            kwargs["ExpressionAttributeNames"] = names
        try:
            self.client.delete_item(**kwargs)
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _transact(self, items: list[dict[str, Any]]) -> list[str | None]:
        """Run a transaction; on cancellation return the failure code per item, else []."""
        try:
            self.client.transact_write_items(TransactItems=items)
        except self.client.exceptions.TransactionCanceledException as exc:
            reasons = exc.response.get("CancellationReasons", [])
            codes = [r.get("Code") if r.get("Code") not in (None, "None") else None for r in reasons]
            if not any(codes):
                raise
            return codes
        return []

    def _tx_put(
        self, item: dict[str, Any], condition: str | None = None, values: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        put: dict[str, Any] = {"TableName": self.table_name, "Item": self._codec.dump(item)}
        if condition:
            put["ConditionExpression"] = condition
        if values:
            put["ExpressionAttributeValues"] = self._codec.dump(values)
        return {"Put": put}

    def _tx_delete(
        self, pk: str, sk: str, condition: str | None = None, values: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        delete: dict[str, Any] = {"TableName": self.table_name, "Key": self._codec.dump({"pk": pk, "sk": sk})}
        if condition:
            delete["ConditionExpression"] = condition
        if values:
            delete["ExpressionAttributeValues"] = self._codec.dump(values)
        return {"Delete": delete}

    def _tx_update(
        self,
        pk: str,
        sk: str,
        update: str,
        condition: str,
        names: dict[str, str],
        values: dict[str, Any],
    ) -> dict[str, Any]:
        op: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": self._codec.dump({"pk": pk, "sk": sk}),
            "UpdateExpression": update,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
        }
        if values:
            op["ExpressionAttributeValues"] = self._codec.dump(values)
        return {"Update": op}

    # -- events (the outbox) ---------------------------------------------------------------

    @staticmethod
    def event_item(event: ev.Event) -> dict[str, Any]:
        """The outbox item of an event: under its booking's (or lock's) partition, so DynamoDB
        Streams delivers one booking's events in order; removed by the dispatcher once handled."""
        return {
            "pk": event.partition(),
            "sk": f"EVENT#{event.id}",
            "eventId": event.id,
            "eventType": event.type,
            "body": event.body(),
            "expiresAt": int((event.timestamp + ev.OUTBOX_TTL).timestamp()),
        }

    def _tx_events(self, events: Sequence[ev.Event]) -> list[dict[str, Any]]:
        return [self._tx_put(self.event_item(e), "attribute_not_exists(pk)") for e in events]
