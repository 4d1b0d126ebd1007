"""The store's codec answers as boto3's TypeSerializer and TypeDeserializer (then `_plain`: numbers
as int or float, sets as lists) do, for any value an item can hold: its direct paths for the common
shapes must not change a single item."""

from __future__ import annotations

import decimal
from decimal import Decimal
from typing import Any

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
