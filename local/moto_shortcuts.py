"""Per-request costs of stock moto that the local stack's moto server (`local.moto_server`) cuts,
applied by its `main` (``apply``); nothing of moto's answers changes
(tests/functional/local_stack/test_moto_server.py compares them with stock moto's):

1. **Every request lists moto's package directory** (a listdir and some 50 stats, twice, to find
   the service its host names) and inspects its response class's methods. Here both are worked
   out once (`cached_request_routing`).
2. **A projection of top-level attributes converts the whole item once per attribute**
   (``Item.project``: ``to_regular_json`` deep-copies and deserialises every value of the item for
   each name, then serialises the result again: 30 ms for a BatchGetItem of 16 bookings' status,
   PIN and locks, the lock page's). Here names without a path or index take those attributes as
   they are (`plain_projections`); other projections are moto's.
3. **Every comparison of two values casts both** (``DynamoType.__eq__``, ``__lt__``, ``__hash__``
   go through ``cast_value``, a chain of type checks, even for strings): sorting a query's 500
   candidates (moto sorts them by tuples of key values even when they come in order) and matching
   their partition keys made ~12,000 casts for one Bookings page. Here two strings compare as the
   strings they are, which is what the cast gives (`string_comparisons`); any other pair as moto.
"""

from __future__ import annotations

from typing import Any, cast


def apply() -> None:
    cached_request_routing()
    plain_projections()
    string_comparisons()


def cached_request_routing() -> None:
    """Two things stock moto works out again for every request, worked out once: which service a
    request's host names (``get_backend_for_host`` lists moto's package directory, a listdir and
    some 50 stats, twice a request) and the methods of a response class (``inspect.getmembers``
    of the class, for each request's action). Neither changes while the server runs; together they
    were about a third of moto's own time for a small request (1.4 -> 0.9 ms in-process)."""
    import functools

    from moto import backends
    from moto.core import responses, utils

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules  # werkzeug_app calls it through the module
    # responses.py calls the name it imported from moto.core.utils: replaced there
    setattr(responses, "method_names_from_class", functools.lru_cache(maxsize=None)(utils.method_names_from_class))  # noqa: B010


def plain_projections() -> None:
    """Item.project for projections of top-level names only: the item's own values of those names
    (shared: a projected item is only written into the answer), no conversion round trip."""
    from moto.dynamodb.models.dynamo_type import Item, LimitedSizeDict

    real_project = Item.project

    def project(self: Item, projection_expressions: list[list[str]]) -> Item:
        if not all(len(path) == 1 and "[" not in path[0] for path in projection_expressions):
            return real_project(self, projection_expressions)
        projected: Any = Item.__new__(Item)
        projected.hash_key, projected.range_key = self.hash_key, self.range_key
        projected.attrs = LimitedSizeDict()
        for (name,) in projection_expressions:
            if name in self.attrs:
                projected.attrs[name] = self.attrs[name]
        return cast(Item, projected)

    Item.project = project  # type: ignore[method-assign]


def string_comparisons() -> None:
    """DynamoType's comparisons and hash for two strings (type S) without ``cast_value``: the cast
    of a string is the string, so the answers are moto's."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    real_eq, real_ne, real_lt, real_hash = DynamoType.__eq__, DynamoType.__ne__, DynamoType.__lt__, DynamoType.__hash__

    def both_strings(a: Any, b: Any) -> bool:
        return a.type == "S" and type(b) is DynamoType and b.type == "S"

    def eq(self: DynamoType, other: Any) -> bool:
        return bool(self.value == other.value) if both_strings(self, other) else real_eq(self, other)

    def ne(self: DynamoType, other: Any) -> bool:
        return bool(self.value != other.value) if both_strings(self, other) else real_ne(self, other)

    def lt(self: DynamoType, other: Any) -> bool:
        return bool(self.value < other.value) if both_strings(self, other) else real_lt(self, other)

    def hash_(self: DynamoType) -> int:
        return hash(("S", self.value)) if self.type == "S" else real_hash(self)

    DynamoType.__eq__ = eq  # type: ignore[method-assign]
    DynamoType.__ne__ = ne  # type: ignore[method-assign]
    DynamoType.__lt__ = lt  # type: ignore[method-assign]
    DynamoType.__hash__ = hash_  # type: ignore[method-assign]
