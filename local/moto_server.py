"""The local stack's moto server: ``python -m moto.server`` with the changes that let it hold a
season (``python -m local.moto_server -H 127.0.0.1 -p 5000``, started by `local.aws.MotoServer`),
with `local.moto_streams` applied too (DynamoDB Streams as the event outbox needs them).

Measured with 20 rooms sharing an entrance: after 150 bookings the stock server held 360,000
DynamoDB ``Item`` objects (1 GB) for some 3,000 items, a full garbage collection took 2.5 s, and
every request slowed down with the heap; and a query took longer with every item stored. Three
things in moto 5.2 make that, and all three are changed here, in this process only (nothing of
moto's behaviour that StayKey relies on changes; the answers are the same):

1. **Every model instance is kept for the dashboard.** ``moto.core.common_models.BaseModel``
   appends each instance it ever makes to ``instances_tracked`` (for ``/moto-api/data.json``), so
   nothing moto copies or replaces is ever freed. Here instances are not tracked: the dashboard's
   model view is empty, and nothing in the local stack reads it (the runtime hears of emails and
   schedules from the calls themselves, `local.observe`).
2. **Each DynamoDB transaction deep-copies every table it names**, items and all, to roll back on
   failure: O(table) per ``TransactWriteItems``, so loading bookings one after another is
   quadratic. Here the rollback copy is of the items the transaction names (the only ones it can
   change) instead, and a failed transaction puts exactly those back.
3. **A query on the table reads every item of the table** to find those of one partition key,
   though moto keeps them by partition, and deep-copies every result. Here a table query (not an
   index's) reads only its partition, and its results are not copied when no projection asks for
   a changed copy (they are only serialised into the answer).
4. **A query on a global secondary index sorts every item of the table** (``Table.all_items``
   sorts the whole table by its keys, every key a ``DynamoType`` comparison) and then looks at
   each for the index's partition key, and deep-copies every result: 60-90 ms per index query
   with 1,000 bookings (some 6,000 items), so a console page of a dozen index queries took
   seconds. Here an index query with one partition key gets only the items that hold that key
   (one pass over the items, comparing one attribute, no sort), which moto then sorts, filters
   and pages as before; its results are not copied either.
5. **The items of an answer, already in DynamoDB's JSON form, are walked through moto's
   model-driven serialiser** (0.4 ms an item: 120 ms for the 300 codes held on a shared entrance,
   150 ms for a BatchGetItem of 100 bookings' guest data). Here the items of Query, GetItem and
   BatchGetItem answers are written as JSON; the rest of the answer is moto's own.

Three more per-request costs are cut in `local.moto_shortcuts` (request routing worked out once,
plain projections, comparisons of strings without casts).
"""

from __future__ import annotations

import copy
import sys
import threading
import types
from typing import Any

_rollback = threading.local()


def untrack_model_instances() -> None:
    from moto.core import common_models

    base = common_models.BaseModel

    def untracked_new(cls: type, *args: Any, **kwargs: Any) -> Any:
        return super(base, cls).__new__(cls)  # type: ignore[misc]  # BaseModel.__new__ without tracking

    base.__new__ = staticmethod(untracked_new)  # type: ignore[method-assign]


def cheap_transaction_rollback() -> None:
    from moto.dynamodb import models
    from moto.dynamodb.exceptions import MockValidationException, TransactionCanceledException
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    real_deepcopy = copy.deepcopy

    def deepcopy(value: Any, memo: Any = None) -> Any:
        # Inside our transact_write_items, moto's whole-table backup is the table itself: the
        # items it may change are saved and restored below.
        if isinstance(value, Table) and getattr(_rollback, "active", False):
            return value
        return real_deepcopy(value, memo)

    shim = types.ModuleType("copy")
    shim.__dict__.update({k: v for k, v in vars(copy).items() if not k.startswith("__")})
    shim.deepcopy = deepcopy  # type: ignore[attr-defined]
    models.copy = shim  # type: ignore[attr-defined]

    backend = models.DynamoDBBackend
    original = backend.transact_write_items

    def keys_of(table: Table, op: dict[str, Any]) -> tuple[DynamoType, DynamoType | None] | None:
        key = op.get("Key") or op.get("Item") or {}
        if table.hash_key_attr not in key:
            return None
        range_key = None
        if table.range_key_attr is not None:
            if table.range_key_attr not in key:
                return None
            range_key = DynamoType(key[table.range_key_attr])
        return DynamoType(key[table.hash_key_attr]), range_key

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved: list[tuple[Table, DynamoType, DynamoType | None, Any]] = []
        for entry in transact_items:
            if not isinstance(entry, dict) or not entry:
                continue
            _, op = next(iter(entry.items()))
            table = self.tables.get((op or {}).get("TableName")) if isinstance(op, dict) else None
            keys = keys_of(table, op) if table is not None else None
            if table is None or keys is None:
                continue
            current = table.get_item(*keys)
            saved.append((table, keys[0], keys[1], real_deepcopy(current) if current is not None else None))
        _rollback.active = True
        try:
            original(self, transact_items)
        except (TransactionCanceledException, MockValidationException):
            for table, hash_key, range_key, item in reversed(saved):
                if item is None:
                    table.delete_item(hash_key, range_key)
                elif range_key is not None:
                    table.items[hash_key][range_key] = item
                else:
                    table.items[hash_key] = item
            raise
        finally:
            _rollback.active = False

    backend.transact_write_items = transact_write_items  # type: ignore[method-assign]


_partition = threading.local()


# Index queries find their items through a map per table and attribute (string value -> the items
# holding it), built in one pass over the table and used until the next write: every operation of
# the DynamoDB backend that is not a read moves `_writes` on, before and after it runs, and a map
# is used only while `_writes` is what it was when the map was built (so a write that ran while it
# was built, or runs now, makes the next query build it again). moto changes items in place
# (UpdateItem), so nothing short of "no write since" would do.
_writes = [0]
_maps: dict[int, tuple[int, Any, dict[str, dict[str, list[Any]]]]] = {}
_maps_lock = threading.Lock()
_READS = frozenset({"get_item", "query", "scan", "batch_get_item", "transact_get_items", "export_table"})


def _holding(table: Any, attr: str, value: Any) -> list[Any]:
    """The items of `table` whose attribute `attr` equals `value` (a DynamoType), in no order."""

    def items() -> Any:
        for part in table.items.values():
            yield from part.values() if table.range_key_attr else [part]

    if value.type != "S":  # keys of other types compare as moto compares them
        return [item for item in items() if (held := item.attrs.get(attr)) is not None and held == value]
    seen = _writes[0]
    with _maps_lock:
        cached = _maps.get(id(table))
        by_attr = cached[2] if cached is not None and cached[0] == seen and cached[1] is table else None
    if by_attr is None or attr not in by_attr:
        built: dict[str, list[Any]] = {}
        for item in list(items()):
            held = item.attrs.get(attr)
            if held is not None and held.type == "S":
                built.setdefault(held.value, []).append(item)
        with _maps_lock:
            if _writes[0] == seen:  # no write began or ended while it was built
                cached = _maps.get(id(table))
                kept = cached[2] if cached is not None and cached[0] == seen and cached[1] is table else {}
                _maps[id(table)] = (seen, table, {**kept, attr: built})
        return list(built.get(value.value, ()))
    return list(by_attr[attr].get(value.value, ()))


_sizes: dict[int, tuple[int, Any, int]] = {}


def cached_item_sizes() -> None:
    """moto measures every item a query returns, and every item in its key range, attribute by
    attribute (``Item.size``: 0.3 ms for a booking) for the 1 MB page limit: here an item's size is
    kept until the next write (as the index maps are)."""
    from moto.dynamodb.models.dynamo_type import Item

    real_size = Item.size

    def size(self: Any) -> int:
        seen = _writes[0]
        cached = _sizes.get(id(self))
        if cached is not None and cached[0] == seen and cached[1] is self:
            return cached[2]
        measured: int = real_size(self)
        if len(_sizes) > 100_000:
            _sizes.clear()
        _sizes[id(self)] = (seen, self, measured)
        return measured

    Item.size = size  # type: ignore[method-assign]


_json_forms: dict[int, tuple[int, Any, Any]] = {}


def cached_item_json() -> None:
    """An answer's items go from moto's model (DynamoType values) to DynamoDB's JSON form value by
    value (``dynamo_to_dict``) for every answer: here an item's JSON form is kept until the next
    write, as its size is (the form of an item moto changed in place is made again)."""
    from moto.core.responses import ActionResult
    from moto.dynamodb.models.utilities import dynamo_to_dict
    from moto.dynamodb.responses import DynamoResult

    def json_form(attrs: Any) -> Any:
        if not isinstance(attrs, dict):
            return dynamo_to_dict(attrs)
        seen = _writes[0]
        cached = _json_forms.get(id(attrs))
        if cached is not None and cached[0] == seen and cached[1] is attrs:
            return cached[2]
        form = dynamo_to_dict(attrs)
        if len(_json_forms) > 100_000:
            _json_forms.clear()
        _json_forms[id(attrs)] = (seen, attrs, form)
        return form

    def convert(key: str, value: Any) -> Any:
        if key == "Items" and isinstance(value, list):
            return [json_form(attrs) for attrs in value]
        if key == "Item" and isinstance(value, dict):
            return json_form(value)
        if key == "Responses" and isinstance(value, dict):
            return {
                table: [json_form(a) for a in items] if isinstance(items, list) else dynamo_to_dict(items)
                for table, items in value.items()
            }
        return dynamo_to_dict(value)

    real_init = DynamoResult.__init__

    def init(self: Any, result: object) -> None:
        if not isinstance(result, dict):
            real_init(self, result)
            return
        ActionResult.__init__(self, {k: convert(k, v) for k, v in result.items()})

    DynamoResult.__init__ = init  # type: ignore[method-assign]


def _wrote() -> None:
    with _maps_lock:
        _writes[0] += 1


def count_writes() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    def counted(method: Any) -> Any:
        def run(self: Any, *args: Any, **kwargs: Any) -> Any:
            _wrote()
            try:
                return method(self, *args, **kwargs)
            finally:
                _wrote()

        return run

    for name, method in list(vars(DynamoDBBackend).items()):
        reads = name in _READS or name.startswith(("get_", "describe_", "list_", "iter_", "default_"))
        if callable(method) and not name.startswith("_") and not reads:
            setattr(DynamoDBBackend, name, counted(method))


_STRING_COMPARISONS: dict[str, Any] = {
    "=": lambda v, b: v == b[0],
    "<": lambda v, b: v < b[0],
    "<=": lambda v, b: v <= b[0],
    ">": lambda v, b: v > b[0],
    ">=": lambda v, b: v >= b[0],
    "BETWEEN": lambda v, b: b[0] <= v <= b[1],
    "BEGINS_WITH": lambda v, b: v.startswith(b[0]),
}
_STRING_COMPARISONS.update({"EQ": _STRING_COMPARISONS["="], "LT": _STRING_COMPARISONS["<"]})
_STRING_COMPARISONS.update({"LE": _STRING_COMPARISONS["<="], "GT": _STRING_COMPARISONS[">"]})
_STRING_COMPARISONS.update({"GE": _STRING_COMPARISONS[">="]})


def _in_range(held: Any, comparison: str, bounds: list[Any]) -> bool:
    """`held.compare(comparison, bounds)`, for strings without moto's casts (code point order is
    UTF-8 byte order, as DynamoDB compares)."""
    compare = _STRING_COMPARISONS.get(comparison)
    if compare is not None and held.type == "S" and all(b.type == "S" for b in bounds):
        return bool(compare(held.value, [b.value for b in bounds]))
    return bool(held.compare(comparison, bounds))


def _presorted(items: list[Any], attrs: list[str]) -> list[Any]:
    """`items` in the order moto sorts a query's results (`attrs`: the index's keys, then the
    table's), when every one of those keys is a string: moto's sort then only confirms the order
    (its comparisons cast every value, and a partition of 500 bookings took 10,000 of them)."""
    keys = []
    for item in items:
        key = []
        for attr in attrs:
            held = item.attrs.get(attr)
            if held is None or held.type != "S":
                return items
            key.append(held.value)
        keys.append(tuple(key))
    return [item for _, item in sorted(zip(keys, items, strict=True), key=lambda pair: pair[0])]


def partition_queries() -> None:
    from moto.dynamodb.models import table as table_module
    from moto.dynamodb.models.table import Table

    real_all_items = Table.all_items
    real_query = Table.query
    real_deepcopy = copy.deepcopy

    def deepcopy(value: Any, memo: Any = None) -> Any:
        if getattr(_partition, "no_copy", False) and isinstance(value, list):
            return list(value)  # the query's results, only read and serialised afterwards
        return real_deepcopy(value, memo)

    shim = types.ModuleType("copy")
    shim.__dict__.update({k: v for k, v in vars(copy).items() if not k.startswith("__")})
    shim.deepcopy = deepcopy  # type: ignore[attr-defined]
    table_module.copy = shim  # type: ignore[attr-defined]

    def all_items(self: Table) -> list[Any]:
        want = getattr(_partition, "want", None)
        if want is None or want[0] is not self:
            return real_all_items(self)
        _, hash_key, index_key, key_range, order = want
        if hash_key is not None:
            items = self.items.get(hash_key)  # .get: items is a defaultdict, a lookup must not add
            if items is None:
                return []
            found = list(items.values()) if self.range_key_attr else [items]
        else:
            # An index query: only the items holding the index's partition key (moto sorts them).
            attr, value = index_key
            found = _holding(self, attr, value)
        if key_range is not None:
            # Only the items in the sort key's range: moto measures the size of every item it
            # is given (for the 1 MB page limit) before it compares their keys.
            attr, comparison, bounds = key_range
            found = [i for i in found if (v := i.attrs.get(attr)) is not None and _in_range(v, comparison, bounds)]
        return _presorted(found, order)

    def query(self: Table, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        projection = args[5] if len(args) > 5 else kwargs.get("projection_expressions")
        comparison = args[0] if args else kwargs.get("range_comparison")
        bounds = args[1] if len(args) > 1 else kwargs.get("range_objs")
        hash_conditions = kwargs.get("hash_key_conditions") or []
        range_conditions = kwargs.get("range_key_conditions") or []
        if len(range_conditions) > 1 or (index_name and len(hash_conditions) != 1):
            return real_query(self, hash_key, *args, **kwargs)  # multi-attribute keys: as moto has them
        if not index_name and hash_key is None:
            return real_query(self, hash_key, *args, **kwargs)
        key_range = (range_conditions[0][0], comparison, bounds) if comparison and range_conditions else None
        index_key = (hash_conditions[0][0], hash_conditions[0][1]) if index_name else None
        order: list[str | None] = [self.range_key_attr]
        if index_name:
            schema = self.get_index(index_name).schema
            order = [k["AttributeName"] for kind in ("HASH", "RANGE") for k in schema if k["KeyType"] == kind]
            order += [self.hash_key_attr, self.range_key_attr]
        _partition.want = (self, None if index_name else hash_key, index_key, key_range, [a for a in order if a])
        _partition.no_copy = not projection
        try:
            return real_query(self, hash_key, *args, **kwargs)
        finally:
            _partition.want = None
            _partition.no_copy = False

    Table.all_items = all_items  # type: ignore[method-assign]
    Table.query = query  # type: ignore[method-assign]


# Where the items of an answer are, by operation: the key of the answer, and whether it holds a
# list of items, one item, or a list of items per table.
_ITEMS_AT = {"Query": ("Items", "list"), "GetItem": ("Item", "item"), "BatchGetItem": ("Responses", "tables")}


def fast_query_items() -> None:
    import json

    from moto.dynamodb.responses import DynamoResult

    real_execute = DynamoResult.execute_result

    def execute_result(self: DynamoResult, context: Any) -> Any:
        result = self.result
        where = _ITEMS_AT.get(context.operation_model.name)
        if where is None or not isinstance(result, dict) or where[0] not in result:
            return real_execute(self, context)
        key, shape = where
        items = result[key]
        plain = {
            "list": lambda: isinstance(items, list),
            "item": lambda: isinstance(items, dict),
            "tables": lambda: isinstance(items, dict) and all(isinstance(v, list) for v in items.values()),
        }[shape]()
        if not plain:
            return real_execute(self, context)
        rest = DynamoResult.__new__(DynamoResult)
        rest._result = {k: v for k, v in result.items() if k != key}
        status, headers, body = real_execute(rest, context)
        answer = json.loads(body)
        answer[key] = items
        try:
            return status, headers, json.dumps(answer, separators=(",", ":"))
        except (TypeError, ValueError):  # binary values: moto's serialiser encodes them
            return real_execute(self, context)

    DynamoResult.execute_result = execute_result  # type: ignore[method-assign, assignment]


def main(argv: list[str] | None = None) -> None:
    from local import moto_shortcuts

    moto_shortcuts.apply()
    untrack_model_instances()
    cheap_transaction_rollback()
    count_writes()
    cached_item_sizes()
    cached_item_json()
    partition_queries()
    fast_query_items()
    from local import moto_streams

    moto_streams.apply()  # DynamoDB Streams as the event outbox needs them (see there)
    from moto.server import main as moto_main

    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
