"""The store's codec answers as boto3's TypeSerializer and TypeDeserializer (then `_plain`: numbers
as int or float, sets as lists) do, for any value an item can hold: its direct paths for the common
shapes must not change a single item."""

from __future__ import annotations

import decimal
import json
from decimal import Decimal
from typing import Any
from unittest.mock import patch

import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from hypothesis import given, settings
from hypothesis import strategies as st

from staykey.store.table import Codec, _plain

SER, DE = TypeSerializer(), TypeDeserializer()

numbers = st.one_of(
    st.integers(min_value=-(10**37), max_value=10**37),
    st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-(10**9), max_value=10**9),
)
scalars = st.one_of(st.text(max_size=20), numbers, st.booleans(), st.none())
values = st.recursive(
    scalars | st.sets(st.text(min_size=1, max_size=5), min_size=1, max_size=3),
    lambda inner: (
        st.lists(inner, max_size=4) | st.tuples(inner, inner) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
items = st.dictionaries(st.text(min_size=1, max_size=8), values, max_size=6)


def _old_dump(item: dict[str, Any]) -> dict[str, Any]:
    return {k: SER.serialize(v) for k, v in item.items() if v is not None}


def _old_load(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _plain(DE.deserialize(v)) for k, v in item.items()}


def _same_sets(value: Any) -> Any:
    """Sets come back as lists in set order: compared as sorted lists."""
    if isinstance(value, dict):
        return {k: _same_sets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_same_sets(v) for v in value]
    return value


@settings(max_examples=300, deadline=None)
@given(items)
def test_the_codec_dumps_and_loads_as_boto3_does(item: dict[str, Any]) -> None:
    codec = Codec()
    dumped = codec.dump(item)
    assert dumped == _old_dump(item)
    assert codec.load(dumped) == _old_load(dumped)
    assert list(codec.load(dumped)) == list(_old_load(dumped))  # and in the same key order


def test_numbers_load_as_int_when_integral_else_float() -> None:
    codec = Codec()
    raw = {
        "a": {"N": "12"},
        "b": {"N": "-3"},
        "c": {"N": "1.0"},
        "d": {"N": "1e3"},
        "e": {"N": "2.5"},
        "f": {"N": "-0"},
    }
    assert codec.load(raw) == {"a": 12, "b": -3, "c": 1, "d": 1000, "e": 2.5, "f": 0}
    assert codec.load(raw) == _old_load(raw)
    assert [type(v) for v in codec.load(raw).values()] == [type(v) for v in _old_load(raw).values()]
    assert codec.dump({"n": Decimal("2.50")}) == _old_dump({"n": Decimal("2.50")})
    # More digits than DynamoDB holds: refused alike
    with pytest.raises(decimal.Inexact):
        codec.dump({"i": 10**40 - 1})
    with pytest.raises(decimal.Inexact):
        _old_dump({"i": 10**40 - 1})


def test_items_taken_as_json_are_what_botocore_parses() -> None:
    """`items_as_json`: GetItem, Query, Scan, BatchGetItem and TransactGetItems answer the same
    items as botocore's parser does; binary values, errors and the rest of an answer stay
    botocore's; another client is not changed."""
    import boto3
    from moto import mock_aws

    from staykey.store import table as table_module
    from staykey.store.table import items_as_json

    plain_values = {"s": "Zoë", "n": 12, "f": Decimal("1.5"), "t": True, "z": None, "l": [1, "a", None]}
    items = [
        {"pk": "P", "sk": "1", **plain_values, "m": {"x": {"y": ["B", "BS"]}}, "ss": {"a", "b"}, "ns": {1, 2}},
        {"pk": "P", "sk": "2", "b": b"\x00\xffbinary", "bs": {b"a", b"b"}},
        {"pk": "P", "sk": "3", "B": "named B"},
        {"pk": "P", "sk": "4", **plain_values, "m": {"x": {"y": ["b"]}}, "ss": {"a", "b"}, "ns": {1, 2}},
    ]
    with mock_aws():
        plain = boto3.client("dynamodb", region_name="eu-central-1")
        fast = boto3.client("dynamodb", region_name="eu-central-1")
        items_as_json(fast)
        later = boto3.client("dynamodb", region_name="eu-central-1")
        plain.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in ("pk", "sk")],
            BillingMode="PAY_PER_REQUEST",
        )
        for item in items:
            plain.put_item(TableName="t", Item={k: SER.serialize(v) for k, v in item.items()})
        keys = [{"pk": {"S": "P"}, "sk": {"S": str(n)}} for n in (4, 1, 2, 3, 5)]
        query = {"TableName": "t", "KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "P"}}}
        calls: list[tuple[str, dict[str, Any]]] = [
            *[("get_item", {"TableName": "t", "Key": key}) for key in keys],
            ("query", query),
            ("query", {**query, "Limit": 1}),
            ("query", {**query, "ExclusiveStartKey": keys[3], "Limit": 1}),  # item 4 and LastEvaluatedKey
            ("scan", {"TableName": "t"}),
            ("batch_get_item", {"RequestItems": {"t": {"Keys": keys}}}),
            ("batch_get_item", {"RequestItems": {"t": {"Keys": keys[:1]}}}),
            ("transact_get_items", {"TransactItems": [{"Get": {"TableName": "t", "Key": key}} for key in keys[:1]]}),
        ]
        taken = 0
        for name, kwargs in calls:
            with patch.object(table_module, "json", wraps=json) as spy:
                expected, got = getattr(plain, name)(**kwargs), getattr(fast, name)(**kwargs)
                taken += spy.dumps.call_count
            expected.pop("ResponseMetadata"), got.pop("ResponseMetadata")
            assert got == expected, name
        # Taken as JSON: the answers holding items without a binary value or "B" (item 4 by GetItem, Query,
        # BatchGetItem, TransactGetItems); the others were botocore's.
        assert taken == 4
        with pytest.raises(fast.exceptions.ResourceNotFoundException):
            fast.get_item(TableName="missing", Key=keys[0])
        with patch.object(table_module, "json", wraps=json) as spy:
            later.get_item(TableName="t", Key=keys[0])
            assert not spy.loads.called  # registered on `fast` only
            fast.get_item(TableName="t", Key=keys[0])
            assert spy.loads.called
