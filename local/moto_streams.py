"""DynamoDB Streams in moto 5.2, made faithful enough for the event outbox (see docs/events.md).

moto records a stream record for every write, and `dynamodbstreams` reads them, but three things
differ from DynamoDB in ways the outbox would feel:

1. **A failed transaction is undone by restoring a deep copy of the whole table**, stream included.
   The copy is taken for every transaction, so each one costs time in proportion to every stream
   record ever written (measured: 0.3 s per transaction at 4,000 records, 1 s at 12,000; the
   records are never trimmed). Here the stream shard is shared instead of copied, and a failed
   transaction cuts off exactly the records it appended: the stream holds a record iff its write
   was kept, as in DynamoDB (an outbox event of a failed save must never be dispatched).
2. **Restoring that copy replaces the shard object**, so every shard iterator handed out before a
   failed transaction goes on reading the old shard and never sees another record. Sharing the
   shard keeps iterators valid.
3. **Every ``GetRecords`` stores a new iterator that never expires** (a leak for a poller that
   reads every fraction of a second). Here an iterator expires 15 minutes after it was made, as in
   DynamoDB Streams.
4. **Requests on threads interleave inside one write.** moto's server answers each request on a
   thread, and a conditional write checks its condition and then writes, a transaction applies its
   items one by one and undoes them on a failed condition by putting back what it saw first: two
   writers racing on one version could both pass, and a failed transaction could put back an item
   another request had written meanwhile, or cut off that request's stream records. DynamoDB
   applies each write and each transaction as one step. Here every DynamoDB and DynamoDB Streams
   request holds one lock while moto serves it (moto holds the GIL throughout anyway: nothing
   that ran in parallel is lost). Found by an adversarial run: a cancel racing a PATCH and a PIN
   rotation answered 200 and sent `booking.cancelled`, and the booking was active again.

`apply()` patches the moto in this process (idempotent): the local stack's moto server runs
``python -m local.moto_streams`` (moto's server with the patch), and in-process tests call it
before ``mock_aws``. Records are kept as long as moto runs (DynamoDB keeps them 24 hours).
"""

from __future__ import annotations

import threading
import time
from typing import Any

ITERATOR_LIFETIME_SECONDS = 15 * 60
_applied = False
_state = threading.local()


def apply() -> None:
    global _applied
    if _applied:
        return
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import StreamShard
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend, ShardIterator

    def shard_deepcopy(self: Any, memo: dict[int, Any]) -> Any:
        if getattr(_state, "in_transaction", False):
            return self  # shared, not copied (see 1. and 2.)
        clone = StreamShard.__new__(StreamShard)
        memo[id(self)] = clone
        import copy

        for key, value in self.__dict__.items():
            setattr(clone, key, copy.deepcopy(value, memo))
        return clone

    StreamShard.__deepcopy__ = shard_deepcopy  # type: ignore[attr-defined]
    _serialize_requests()

    original_transact = DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        names = {op.get("TableName") for item in transact_items for op in item.values() if isinstance(op, dict)}
        shards = {
            name: (self.tables[name].stream_shard, len(self.tables[name].stream_shard.items))
            for name in names
            if name in self.tables and self.tables[name].stream_shard is not None
        }
        _state.in_transaction = True
        try:
            original_transact(self, transact_items)
        except BaseException:
            for name, (shard, length) in shards.items():
                del shard.items[length:]
                table = self.tables.get(name)
                if table is not None:
                    table.stream_shard = shard
                    shard.table = table
            raise
        finally:
            _state.in_transaction = False

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]

    original_init = ShardIterator.__init__

    def iterator_init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.made_at = time.monotonic()

    ShardIterator.__init__ = iterator_init  # type: ignore[method-assign]

    original_get_records = DynamoDBStreamsBackend.get_records

    def get_records(self: Any, iterator_arn: str, limit: int) -> dict[str, Any]:
        oldest = time.monotonic() - ITERATOR_LIFETIME_SECONDS
        expired = [a for a, it in self.shard_iterators.items() if getattr(it, "made_at", 0.0) < oldest]
        for arn in (a for a in expired if a != iterator_arn):
            self.shard_iterators.pop(arn, None)
        result: dict[str, Any] = original_get_records(self, iterator_arn, limit)
        return result

    DynamoDBStreamsBackend.get_records = get_records  # type: ignore[method-assign]
    _applied = True


_requests = threading.RLock()


def _serialize_requests() -> None:
    """4.: one DynamoDB or DynamoDB Streams request at a time, whatever thread serves it."""
    from moto.core.responses import BaseResponse
    from moto.dynamodb.responses import DynamoHandler
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    for handler in (DynamoHandler, DynamoDBStreamsHandler):
        served = handler.__dict__.get("call_action", BaseResponse.call_action)

        def call_action(self: Any, _served: Any = served) -> Any:
            with _requests:
                return _served(self)

        handler.call_action = call_action  # type: ignore[method-assign]


def main() -> None:
    """moto's server (same arguments) with the patch applied."""
    apply()
    from moto.server import main as moto_main

    moto_main()


if __name__ == "__main__":
    main()
