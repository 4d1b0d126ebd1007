"""An in-memory DynamoDB client for the simulator: the calls `staykey.store.Store` makes, with
DynamoDB's semantics for them, at dictionary speed.

moto answers each call in milliseconds (it scans the table, deep-copies it for every transaction);
a simulated season makes hundreds of thousands of calls. This object stands where the boto3 client
stands (`Store(table, client=InMemoryDynamoDB())`): the same method names and keyword arguments,
items in DynamoDB JSON as boto3 sends them, the same two exceptions on `client.exceptions`, and
conditions evaluated as DynamoDB evaluates them (conditional put/delete/update, transactions that
are all-or-nothing with a cancellation reason per item, `if_not_exists`, `begins_with`, `IN`,
`BETWEEN`, `ReturnValues`).

What it serves: GetItem, Query (a partition key, optional `begins_with`, `BETWEEN` or a comparison on
the sort key, either index order, Limit, ExclusiveStartKey; the table or a GSI declared with `add_index`),
PutItem, DeleteItem, UpdateItem (SET with `if_not_exists` and `+`/`-`, REMOVE), TransactWriteItems
(Put, Delete, Update, ConditionCheck), BatchGetItem, BatchWriteItem, Scan. Anything else raises
NotImplementedError, so a new access pattern fails loudly here instead of passing unchecked.
`tests/sim/test_dynamo_fake.py` runs the same store operations against moto and this object.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any

Item = dict[str, dict[str, Any]]


class ConditionalCheckFailedException(Exception):
    def __init__(self, message: str = "The conditional request failed") -> None:
        super().__init__(message)
        self.response = {"Error": {"Code": "ConditionalCheckFailedException", "Message": message}}


class TransactionCanceledException(Exception):
    def __init__(self, reasons: list[dict[str, str]]) -> None:
        super().__init__("Transaction cancelled, please refer cancellation reasons for specific reasons")
        self.response = {
            "Error": {"Code": "TransactionCanceledException", "Message": str(self)},
            "CancellationReasons": reasons,
        }


class _Exceptions:
    ConditionalCheckFailedException = ConditionalCheckFailedException
    TransactionCanceledException = TransactionCanceledException


# --- values ---------------------------------------------------------------------------------------


def _py(value: dict[str, Any]) -> Any:
    """A DynamoDB-typed value as something Python compares the way DynamoDB does."""
    ((kind, raw),) = value.items()
    if kind == "S":
        return raw
    if kind == "N":
        return Decimal(raw)
    if kind == "BOOL":
        return bool(raw)
    if kind == "NULL":
        return None
    if kind == "B":
        return raw
    return ("complex", kind, repr(raw))  # maps, lists, sets: equality only


def _num(value: Decimal) -> dict[str, str]:
    return {"N": str(value)}


# --- expressions ------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<op><>|<=|>=|=|<|>|\(|\)|,|\+|-)|(?P<name>#[A-Za-z0-9_]+)|(?P<value>:[A-Za-z0-9_]+)"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_.]*))"
)


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise NotImplementedError(f"cannot read expression {text!r} at {pos}")
        out.append(m.group(m.lastgroup or "op"))
        pos = m.end()
    return out


@dataclass
class _Ctx:
    names: dict[str, str]
    values: dict[str, dict[str, Any]]
    item: Item | None

    def attr(self, token: str) -> str:
        if token.startswith("#"):
            if token not in self.names:
                raise NotImplementedError(f"undeclared attribute name {token}")
            return self.names[token]
        return token

    def value(self, token: str) -> dict[str, Any]:
        if token not in self.values:
            raise NotImplementedError(f"undeclared attribute value {token}")
        return self.values[token]


# An expression is read once (`_condition`, `_update_plan`, `_key_condition` keep what they read by
# its text) into functions of a `_Ctx`: the names, values and item of one request. Names and values
# are looked up when the function runs, so an undeclared one fails as DynamoDB's validation would.
_Cond = Callable[[_Ctx], bool]
_Operand = Callable[[_Ctx], Any]
_Rhs = Callable[[_Ctx], dict[str, Any]]


class _Parser:
    """Recursive descent over DynamoDB's condition grammar (the part used here)."""

    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token.upper() != expected.upper()):
            raise NotImplementedError(f"expected {expected!r}, got {token!r}")
        self.pos += 1
        return token

    def done(self) -> bool:
        return self.pos == len(self.tokens)

    # Both sides of AND and OR are evaluated (all([...]), any([...])): an undeclared name on either
    # side fails whatever the other side says.

    # condition := disjunction
    def condition(self) -> _Cond:
        terms = [self.conjunction()]
        while (self.peek() or "").upper() == "OR":
            self.take()
            terms.append(self.conjunction())
        if len(terms) == 1:
            return terms[0]
        return lambda ctx: any(_each(terms, ctx))

    def conjunction(self) -> _Cond:
        terms = [self.negation()]
        while (self.peek() or "").upper() == "AND":
            self.take()
            terms.append(self.negation())
        if len(terms) == 1:
            return terms[0]
        return lambda ctx: all(_each(terms, ctx))

    def negation(self) -> _Cond:
        if (self.peek() or "").upper() == "NOT":
            self.take()
            inner = self.negation()
            return lambda ctx: not inner(ctx)
        return self.comparison()

    def comparison(self) -> _Cond:
        token = self.peek()
        if token == "(":  # noqa: S105 - a token of the expression, not a password
            self.take("(")
            inner = self.condition()
            self.take(")")
            return inner
        if token is not None and token.lower() in {"attribute_exists", "attribute_not_exists", "begins_with"}:
            fn = self.take().lower()
            self.take("(")
            if fn == "begins_with":
                left = self.operand()
                self.take(",")
                right = self.operand()
                self.take(")")

                def begins_with(ctx: _Ctx) -> bool:
                    a, b = left(ctx), right(ctx)
                    return isinstance(a, str) and isinstance(b, str) and a.startswith(b)

                return begins_with
            name = self.take()
            self.take(")")
            exists = fn == "attribute_exists"

            def presence(ctx: _Ctx) -> bool:
                attr = ctx.attr(name)
                present = ctx.item is not None and attr in ctx.item
                return present if exists else not present

            return presence
        left = self.operand()
        op = self.take()
        if op.upper() == "IN":
            self.take("(")
            options = [self.operand()]
            while self.peek() == ",":
                self.take(",")
                options.append(self.operand())
            self.take(")")

            def one_of(ctx: _Ctx) -> bool:
                value = left(ctx)
                return any(_compare(value, "=", option(ctx)) for option in options)

            return one_of
        if op.upper() == "BETWEEN":
            low = self.operand()
            self.take("AND")
            high = self.operand()

            def between(ctx: _Ctx) -> bool:
                value = left(ctx)
                return _compare(value, ">=", low(ctx)) and _compare(value, "<=", high(ctx))

            return between
        right = self.operand()
        return lambda ctx: _compare(left(ctx), op, right(ctx))

    def operand(self) -> _Operand:
        token = self.take()
        if token.startswith(":"):
            return lambda ctx: _py(ctx.value(token))

        def attribute(ctx: _Ctx) -> Any:
            name = ctx.attr(token)
            if ctx.item is None or name not in ctx.item:
                return _MISSING
            return _py(ctx.item[name])

        return attribute


def _each(terms: list[_Cond], ctx: _Ctx) -> list[bool]:
    """Every term's result, all of them evaluated (no short circuit)."""
    return [term(ctx) for term in terms]


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()


def _compare(left: Any, op: str, right: Any) -> bool:
    if left is _MISSING or right is _MISSING:
        return op == "<>" and not (left is _MISSING and right is _MISSING)
    if op == "=":
        return bool(left == right and type(left) is type(right))
    if op == "<>":
        return not (left == right and type(left) is type(right))
    if type(left) is not type(right) or isinstance(left, tuple | bool) or left is None:
        return False  # DynamoDB: comparisons across types are false
    if op == "<":
        return bool(left < right)
    if op == "<=":
        return bool(left <= right)
    if op == ">":
        return bool(left > right)
    if op == ">=":
        return bool(left >= right)
    raise NotImplementedError(f"operator {op!r}")


@cache
def _condition(expression: str) -> _Cond:
    parser = _Parser(expression)
    result = parser.condition()
    if not parser.done():
        raise NotImplementedError(f"trailing tokens in {expression!r}")
    return result


def _check(expression: str | None, names: dict[str, str], values: dict[str, Any], item: Item | None) -> bool:
    if not expression:
        return True
    return _condition(expression)(_Ctx(names, values, item))


def _split_top(text: str, sep: str = ",") -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


@cache
def _update_plan(expression: str) -> tuple[tuple[str, _Rhs | None], ...]:
    """SET/REMOVE clauses as (target token, its right-hand side; None: REMOVE)."""
    plan: list[tuple[str, _Rhs | None]] = []
    clauses = re.split(r"\b(SET|REMOVE)\b", expression.strip(), flags=re.IGNORECASE)
    if clauses[0].strip():
        raise NotImplementedError(f"update {expression!r}")
    for keyword, body in zip(clauses[1::2], clauses[2::2], strict=True):
        if keyword.upper() == "REMOVE":
            plan += [(target, None) for target in _split_top(body)]
            continue
        for assignment in _split_top(body):
            target, _, rhs = assignment.partition("=")
            plan.append((target.strip(), _rhs(rhs.strip())))
    return tuple(plan)


def _update(expression: str, names: dict[str, str], values: dict[str, Any], item: Item) -> set[str]:
    """Apply SET/REMOVE clauses to `item` in place; the names of the attributes they target."""
    targets: set[str] = set()
    ctx = _Ctx(names, values, dict(item))  # right-hand sides read the item as it was
    for target, rhs in _update_plan(expression):
        name = ctx.attr(target)
        targets.add(name)
        if rhs is None:
            item.pop(name, None)
        else:
            item[name] = rhs(ctx)
    return targets


def _rhs(text: str) -> _Rhs:
    for op in ("+", "-"):
        parts = _split_top(text, op)
        if len(parts) == 2:
            return _arithmetic(text, _rhs(parts[0]), _rhs(parts[1]), plus=op == "+")
    m = re.fullmatch(r"if_not_exists\s*\(\s*(\S+?)\s*,\s*(\S+?)\s*\)", text)
    if m:
        token, fallback = m.group(1), _rhs(m.group(2))

        def if_not_exists(ctx: _Ctx) -> dict[str, Any]:
            name = ctx.attr(token)
            if ctx.item is not None and name in ctx.item:
                return ctx.item[name]
            return fallback(ctx)

        return if_not_exists
    if text.startswith(":"):
        return lambda ctx: ctx.value(text)

    def attribute(ctx: _Ctx) -> dict[str, Any]:
        name = ctx.attr(text)
        if ctx.item is None or name not in ctx.item:
            raise NotImplementedError(f"{text!r} refers to a missing attribute")
        return ctx.item[name]

    return attribute


def _arithmetic(text: str, left: _Rhs, right: _Rhs, *, plus: bool) -> _Rhs:
    def arithmetic(ctx: _Ctx) -> dict[str, Any]:
        a_value, b_value = left(ctx), right(ctx)
        if "N" not in a_value or "N" not in b_value:
            raise NotImplementedError(f"arithmetic on non-numbers in {text!r}")
        a, b = Decimal(a_value["N"]), Decimal(b_value["N"])
        return _num(a + b if plus else a - b)

    return arithmetic


_PREFIX_TEST = re.compile(
    r"\s*begins_with\s*\(\s*(#[A-Za-z0-9_]+|[A-Za-z_][A-Za-z0-9_.]*)\s*,\s*(:[A-Za-z0-9_]+)\s*\)\s*", re.IGNORECASE
)


@cache
def _prefix_test(expression: str) -> tuple[str, str] | None:
    """A sort-key condition that is `begins_with(name, :value)` alone: (the name's token, the
    value's token); None for any other (the parser reads those)."""
    m = _PREFIX_TEST.fullmatch(expression)
    return (m.group(1), m.group(2)) if m else None


def _begins(value: dict[str, Any] | None, prefix: Any) -> bool:
    """`begins_with` of the parsed condition for one item's typed value (None: the item has no such
    attribute): both sides strings, and the one starting with the other."""
    if value is None or not isinstance(prefix, str):
        return False
    text = _py(value)
    return isinstance(text, str) and text.startswith(prefix)


@cache
def _key_condition(expression: str) -> tuple[str, str, str | None]:
    """A query's key condition: the partition key's name token, its value token, and the sort key's
    condition (or None)."""
    # maxsplit=1: the sort key's condition may be a BETWEEN :a AND :b
    parts = re.split(r"\s+AND\s+", expression.strip(), maxsplit=1, flags=re.IGNORECASE)
    m = re.fullmatch(r"(\S+)\s*=\s*(:\w+)", parts[0])
    if m is None:
        raise NotImplementedError(f"key condition {expression!r}")
    return m.group(1), m.group(2), parts[1] if len(parts) > 1 else None


# --- the client -------------------------------------------------------------------------------------


@dataclass
class _Index:
    pk: str
    sk: str


class InMemoryDynamoDB:
    """One table per name, each a dict of partitions of items (DynamoDB JSON)."""

    exceptions = _Exceptions

    def __init__(self, key: tuple[str, str] = ("pk", "sk")) -> None:
        self.key = key
        self.tables: dict[str, dict[str, dict[str, Item]]] = {}
        self.indexes: dict[str, _Index] = {"gsi1": _Index("gsi1pk", "gsi1sk")}
        self.calls: dict[str, int] = {}
        self.on_call: Callable[[str, dict[str, Any]], None] | None = None
        # (table, pk, sk, before, after) after every write; after is None for a delete.
        self.on_write: Callable[[str, str, str, Item | None, Item | None], None] | None = None
        # The items of a GSI by its partition key: (table, index) -> partition -> (pk, sk) -> item.
        # Built from the table when the index is first queried, then kept by every write (`_set`,
        # `_remove`), so a query reads its partition instead of every item of the table.
        self._partitions: dict[tuple[str, str], dict[str, dict[tuple[str, str], Item]]] = {}

    def add_index(self, name: str, pk: str, sk: str) -> None:
        self.indexes[name] = _Index(pk, sk)
        for table, index in [k for k in self._partitions if k[1] == name]:
            del self._partitions[(table, index)]

    # -- helpers

    def _count(self, operation: str, kwargs: dict[str, Any]) -> None:
        self.calls[operation] = self.calls.get(operation, 0) + 1
        if self.on_call is not None:
            self.on_call(operation, kwargs)

    def _table(self, name: str) -> dict[str, dict[str, Item]]:
        return self.tables.setdefault(name, {})

    def _keys(self, key: Item) -> tuple[str, str]:
        pk, sk = self.key
        return key[pk]["S"], key[sk]["S"]

    def _get(self, table: str, key: Item) -> Item | None:
        pk, sk = self._keys(key)
        return self._table(table).get(pk, {}).get(sk)

    def _set(self, table: str, item: Item) -> None:
        pk, sk = self._keys(item)
        part = self._table(table).setdefault(pk, {})
        before = part.get(sk)
        part[sk] = item
        self._reindex(table, pk, sk, before, item)
        if self.on_write is not None:
            self.on_write(table, pk, sk, before, item)

    def _remove(self, table: str, key: Item) -> None:
        pk, sk = self._keys(key)
        part = self._table(table).get(pk)
        if part is not None:
            before = part.pop(sk, None)
            if not part:
                del self._table(table)[pk]
            self._reindex(table, pk, sk, before, None)
            if before is not None and self.on_write is not None:
                self.on_write(table, pk, sk, before, None)

    def _index_partitions(self, table: str, index: str) -> dict[str, dict[tuple[str, str], Item]]:
        partitions = self._partitions.get((table, index))
        if partitions is None:
            partitions = self._partitions[(table, index)] = {}
            for pk, part in self._table(table).items():
                for sk, item in part.items():
                    _add_to_index(partitions, self.indexes[index], pk, sk, item)
        return partitions

    def _reindex(self, table: str, pk: str, sk: str, before: Item | None, after: Item | None) -> None:
        for (indexed, index), partitions in self._partitions.items():
            if indexed != table:
                continue
            spec = self.indexes[index]
            if before is not None:
                gsi_pk = _index_pk(spec, before)
                if gsi_pk is not None:
                    entries = partitions[gsi_pk]
                    del entries[(pk, sk)]
                    if not entries:
                        del partitions[gsi_pk]
            if after is not None:
                _add_to_index(partitions, spec, pk, sk, after)

    @staticmethod
    def _copy(item: Item | None) -> Item | None:
        return None if item is None else _read_copy(item)

    # -- single items

    def get_item(self, *, TableName: str, Key: Item, ConsistentRead: bool = False, **rest: Any) -> dict[str, Any]:
        self._count("GetItem", {"TableName": TableName, "Key": Key})
        _unsupported(rest, "ProjectionExpression", "ExpressionAttributeNames")
        item = self._get(TableName, Key)
        return {"Item": self._copy(item)} if item is not None else {}

    def put_item(
        self,
        *,
        TableName: str,
        Item: Item,
        ConditionExpression: str | None = None,
        ExpressionAttributeNames: dict[str, str] | None = None,
        ExpressionAttributeValues: dict[str, Any] | None = None,
        **rest: Any,
    ) -> dict[str, Any]:
        self._count("PutItem", {"TableName": TableName, "Item": Item})
        _unsupported(rest)
        current = self._get(TableName, Item)
        if not _check(ConditionExpression, ExpressionAttributeNames or {}, ExpressionAttributeValues or {}, current):
            raise ConditionalCheckFailedException()
        self._set(TableName, _copy_item(Item))
        return {}

    def delete_item(
        self,
        *,
        TableName: str,
        Key: Item,
        ConditionExpression: str | None = None,
        ExpressionAttributeNames: dict[str, str] | None = None,
        ExpressionAttributeValues: dict[str, Any] | None = None,
        **rest: Any,
    ) -> dict[str, Any]:
        self._count("DeleteItem", {"TableName": TableName, "Key": Key})
        _unsupported(rest)
        current = self._get(TableName, Key)
        if not _check(ConditionExpression, ExpressionAttributeNames or {}, ExpressionAttributeValues or {}, current):
            raise ConditionalCheckFailedException()
        self._remove(TableName, Key)
        return {}

    def update_item(
        self,
        *,
        TableName: str,
        Key: Item,
        UpdateExpression: str,
        ConditionExpression: str | None = None,
        ExpressionAttributeNames: dict[str, str] | None = None,
        ExpressionAttributeValues: dict[str, Any] | None = None,
        ReturnValues: str = "NONE",
        **rest: Any,
    ) -> dict[str, Any]:
        self._count("UpdateItem", {"TableName": TableName, "Key": Key})
        _unsupported(rest)
        names, values = ExpressionAttributeNames or {}, ExpressionAttributeValues or {}
        current = self._get(TableName, Key)
        if not _check(ConditionExpression, names, values, current):
            raise ConditionalCheckFailedException()
        # The stored item is never changed in place (the update writes a new one, which shares the
        # values it does not replace: an update only sets or removes whole attributes), so it is
        # what the item was before, as it stands.
        before = current
        item: Item = dict(current) if current is not None else _copy_item(Key)
        targets = _update(UpdateExpression, names, values, item)
        self._set(TableName, item)
        return _returned(ReturnValues, before, item, targets)

    # -- transactions and batches

    def transact_write_items(self, *, TransactItems: list[dict[str, Any]], **rest: Any) -> dict[str, Any]:
        self._count("TransactWriteItems", {"TransactItems": TransactItems})
        _unsupported(rest, "ClientRequestToken")
        if len(TransactItems) > 100:
            raise NotImplementedError("a transaction holds at most 100 items")
        seen: set[tuple[str, str, str]] = set()
        reasons: list[dict[str, str]] = []
        failed = False
        for entry in TransactItems:
            ((kind, spec),) = entry.items()
            key = spec.get("Item") if kind == "Put" else spec["Key"]
            ident = (spec["TableName"], *self._keys(key))
            if ident in seen:
                raise NotImplementedError("a transaction must not touch one item twice (ValidationException)")
            seen.add(ident)
            current = self._get(spec["TableName"], key)
            ok = _check(
                spec.get("ConditionExpression"),
                spec.get("ExpressionAttributeNames") or {},
                spec.get("ExpressionAttributeValues") or {},
                current,
            )
            reasons.append({"Code": "None"} if ok else {"Code": "ConditionalCheckFailed"})
            failed = failed or not ok
        if failed:
            raise TransactionCanceledException(reasons)
        for entry in TransactItems:
            ((kind, spec),) = entry.items()
            table = spec["TableName"]
            if kind == "Put":
                self._set(table, _copy_item(spec["Item"]))
            elif kind == "Delete":
                self._remove(table, spec["Key"])
            elif kind == "Update":
                current = self._get(table, spec["Key"])
                item = dict(current) if current is not None else _copy_item(spec["Key"])  # as in update_item
                _update(
                    spec["UpdateExpression"],
                    spec.get("ExpressionAttributeNames") or {},
                    spec.get("ExpressionAttributeValues") or {},
                    item,
                )
                self._set(table, item)
            elif kind != "ConditionCheck":
                raise NotImplementedError(f"transaction item {kind}")
        return {}

    def batch_get_item(self, *, RequestItems: dict[str, Any], **rest: Any) -> dict[str, Any]:
        self._count("BatchGetItem", {"RequestItems": RequestItems})
        _unsupported(rest)
        responses: dict[str, list[Item]] = {}
        for table, request in RequestItems.items():
            if len(request["Keys"]) > 100:
                raise NotImplementedError("BatchGetItem takes at most 100 keys")
            found = [self._get(table, key) for key in request["Keys"]]
            responses[table] = [_read_copy(item) for item in found if item is not None]
        return {"Responses": responses, "UnprocessedKeys": {}}

    def batch_write_item(self, *, RequestItems: dict[str, Any], **rest: Any) -> dict[str, Any]:
        self._count("BatchWriteItem", {"RequestItems": RequestItems})
        _unsupported(rest)
        for table, requests in RequestItems.items():
            if len(requests) > 25:
                raise NotImplementedError("BatchWriteItem takes at most 25 requests")
            for request in requests:
                if "PutRequest" in request:
                    self._set(table, _copy_item(request["PutRequest"]["Item"]))
                else:
                    self._remove(table, request["DeleteRequest"]["Key"])
        return {"UnprocessedItems": {}}

    # -- reads of many items

    def query(
        self,
        *,
        TableName: str,
        KeyConditionExpression: str,
        ExpressionAttributeNames: dict[str, str] | None = None,
        ExpressionAttributeValues: dict[str, Any] | None = None,
        ScanIndexForward: bool = True,
        IndexName: str | None = None,
        ConsistentRead: bool = False,
        Limit: int | None = None,
        ExclusiveStartKey: Item | None = None,
        FilterExpression: str | None = None,
        **rest: Any,
    ) -> dict[str, Any]:
        self._count("Query", {"TableName": TableName, "IndexName": IndexName})
        _unsupported(rest, "Select", "ProjectionExpression")
        names, values = ExpressionAttributeNames or {}, ExpressionAttributeValues or {}
        pk_attr, sk_attr = (self.indexes[IndexName].pk, self.indexes[IndexName].sk) if IndexName else self.key
        pk_token, pk_value_token, sk_test = _key_condition(KeyConditionExpression)
        ctx = _Ctx(names, values, None)
        if ctx.attr(pk_token) != pk_attr:
            raise NotImplementedError(f"key condition {KeyConditionExpression!r}")
        pk_value = values[pk_value_token]["S"]
        if IndexName:
            # The items with the index's keys whose partition key is the string `pk_value`, in the
            # order they were indexed: the sort below gives every item its place whatever the order
            # (its sort key, then its table keys: no two items are equal).
            pool = list(self._index_partitions(TableName, IndexName).get(pk_value, {}).values())
        else:
            pool = list(self._table(TableName).get(pk_value, {}).values())
        if sk_test is not None and pool:
            prefix_test = _prefix_test(sk_test)
            if prefix_test is not None:
                # begins_with on the sort key, read directly: what the parsed condition answers for
                # each item (the name and the value looked up first, as it does), without a call
                # of its closures per item of the partition.
                attr, prefix = ctx.attr(prefix_test[0]), _py(ctx.value(prefix_test[1]))
                pool = [it for it in pool if _begins(it.get(attr), prefix)]
            else:
                test = _condition(sk_test)
                pool = [it for it in pool if _matches(test, ctx, it)]
        pool.sort(key=lambda it: _sort_key(it, sk_attr, self.key), reverse=not ScanIndexForward)
        if ExclusiveStartKey is not None:
            start = _sort_key(ExclusiveStartKey, sk_attr, self.key)
            pool = [
                it
                for it in pool
                if (_sort_key(it, sk_attr, self.key) > start) == ScanIndexForward
                and _sort_key(it, sk_attr, self.key) != start
            ]
        page = pool[:Limit] if Limit else pool
        more = bool(Limit) and len(pool) > len(page)
        if FilterExpression:
            keep = _condition(FilterExpression)
            page_out = [it for it in page if _matches(keep, ctx, it)]
        else:
            page_out = page
        answer: dict[str, Any] = {
            "Items": [_read_copy(it) for it in page_out],
            "Count": len(page_out),
            "ScannedCount": len(page),
        }
        if more and page:
            last = page[-1]
            answer["LastEvaluatedKey"] = {k: last[k] for k in {*self.key, pk_attr, sk_attr} if k in last}
        return answer

    def scan(self, *, TableName: str, **rest: Any) -> dict[str, Any]:
        self._count("Scan", {"TableName": TableName})
        _unsupported(rest)
        items = [_read_copy(it) for part in self._table(TableName).values() for it in part.values()]
        return {"Items": items, "Count": len(items), "ScannedCount": len(items)}

    # -- for the simulator's own checks (not DynamoDB API)

    def items(self, table: str) -> Iterator[Item]:
        for part in self._table(table).values():
            yield from part.values()

    def partition(self, table: str, pk: str) -> dict[str, Item]:
        return self._table(table).get(pk, {})

    def discard(self, table: str, pk: str, sk: str) -> None:
        """Remove an item as another party would (the outbox's dispatcher): no call is counted."""
        self._remove(table, {self.key[0]: {"S": pk}, self.key[1]: {"S": sk}})


def _index_pk(spec: _Index, item: Item) -> str | None:
    """The partition of a GSI that holds `item` (None: it has not both of the index's keys, or its
    partition key is not a string, so no query of the index finds it)."""
    if spec.pk not in item or spec.sk not in item:
        return None
    value = item[spec.pk].get("S")
    return value if isinstance(value, str) else None


def _add_to_index(
    partitions: dict[str, dict[tuple[str, str], Item]], spec: _Index, pk: str, sk: str, item: Item
) -> None:
    gsi_pk = _index_pk(spec, item)
    if gsi_pk is not None:
        partitions.setdefault(gsi_pk, {})[(pk, sk)] = item


def _matches(condition: _Cond, ctx: _Ctx, item: Item) -> bool:
    ctx.item = item
    return condition(ctx)


def _copy_value(value: dict[str, Any]) -> dict[str, Any]:
    if "M" in value:
        return {"M": {k: _copy_value(v) for k, v in value["M"].items()}}
    if "L" in value:
        return {"L": [_copy_value(v) for v in value["L"]]}
    return dict(value)  # scalars and sets: the strings inside are immutable


def _copy_item(item: Item) -> Item:
    """A copy that shares no mutable part with `item`: what a write stores."""
    return {k: _copy_value(v) for k, v in item.items()}


def _read_copy(item: Item) -> Item:
    """What a read hands out: a new item whose typed values are the table's own. A stored item is
    never changed in place (a write stores a new one), and a reader never changes what it read
    (the store's codec builds new objects from it), so the values can be shared: a deep copy of
    every item read was a twentieth of a season's time."""
    return dict(item)


def _sort_key(item: Item, sk_attr: str, key: tuple[str, str]) -> tuple[Any, ...]:
    value = item.get(sk_attr, {"S": ""})
    return (_py(value), item[key[0]]["S"], item[key[1]]["S"]) if sk_attr not in key else (_py(value),)


def _returned(mode: str, before: Item | None, after: Item, targets: set[str]) -> dict[str, Any]:
    if mode == "NONE":
        return {}
    if mode == "ALL_OLD":
        return {"Attributes": before} if before else {}
    if mode == "ALL_NEW":
        return {"Attributes": _copy_item(after)}
    if mode == "UPDATED_OLD":
        old = {k: v for k, v in (before or {}).items() if k in targets}
        return {"Attributes": old} if old else {}
    if mode == "UPDATED_NEW":
        new = {k: _copy_value(v) for k, v in after.items() if k in targets}
        return {"Attributes": new} if new else {}
    raise NotImplementedError(f"ReturnValues={mode}")


def _unsupported(rest: dict[str, Any], *ignored: str) -> None:
    if not rest:
        return
    unknown = set(rest) - set(ignored) - {"ReturnConsumedCapacity", "ReturnItemCollectionMetrics"}
    if unknown:
        raise NotImplementedError(f"parameters not served here: {sorted(unknown)}")


__all__ = ["ConditionalCheckFailedException", "InMemoryDynamoDB", "TransactionCanceledException"]
