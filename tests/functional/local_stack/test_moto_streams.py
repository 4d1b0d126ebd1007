"""local.moto_streams: the table's stream holds a record iff its write was kept, and iterators
handed out before a failed transaction keep reading (see the module docstring for why)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local import moto_streams


@pytest.fixture
def table() -> Iterator[tuple[Any, Any, str]]:
    moto_streams.apply()
    with mock_aws():
        ddb = boto3.client("dynamodb")
        desc = ddb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
        )["TableDescription"]
        yield ddb, boto3.client("dynamodbstreams"), desc["LatestStreamArn"]


def _put(pk: str, condition: str | None = None) -> dict[str, Any]:
    put: dict[str, Any] = {"TableName": "t", "Item": {"pk": {"S": pk}, "sk": {"S": "x"}}}
    if condition:
        put["ConditionExpression"] = condition
    return {"Put": put}


def _records(streams: Any, iterator: str) -> tuple[list[str], str]:
    res = streams.get_records(ShardIterator=iterator)
    return [r["dynamodb"]["Keys"]["pk"]["S"] for r in res["Records"]], res["NextShardIterator"]


def test_a_failed_transaction_leaves_no_stream_record_and_iterators_keep_reading(
    table: tuple[Any, Any, str],
) -> None:
    ddb, streams, arn = table
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")[
        "ShardIterator"
    ]
    ddb.transact_write_items(TransactItems=[_put("a"), _put("b")])
    seen, iterator = _records(streams, iterator)
    assert seen == ["a", "b"]

    # "c" is written before "a" fails its condition: the transaction is undone, "c" included.
    with pytest.raises(ddb.exceptions.TransactionCanceledException):
        ddb.transact_write_items(TransactItems=[_put("c"), _put("a", "attribute_not_exists(pk)")])
    assert "Item" not in ddb.get_item(TableName="t", Key={"pk": {"S": "c"}, "sk": {"S": "x"}})

    ddb.put_item(TableName="t", Item={"pk": {"S": "d"}, "sk": {"S": "x"}})
    seen, iterator = _records(streams, iterator)
    assert seen == ["d"]  # nothing of the failed transaction, and the old iterator still reads


def test_iterators_expire_after_fifteen_minutes(table: tuple[Any, Any, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.dynamodbstreams.models import dynamodbstreams_backends

    _ddb, streams, arn = table
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")["ShardIterator"]
    for _ in range(20):
        _, iterator = _records(streams, iterator)
    backend = dynamodbstreams_backends["123456789012"]["eu-central-1"]
    assert len(backend.shard_iterators) > 20
    now = moto_streams.time.monotonic()
    monkeypatch.setattr(moto_streams.time, "monotonic", lambda: now + moto_streams.ITERATOR_LIFETIME_SECONDS + 1)
    _, iterator = _records(streams, iterator)
    assert len(backend.shard_iterators) == 2  # the one just used and the one it handed out


def test_writers_racing_on_threads_lose_nothing() -> None:
    """DynamoDB applies a conditional write or a transaction as one step: of writers racing on one
    version, exactly one wins. moto serves requests on threads (its server one per request) and
    checks a condition, then writes; a failed transaction puts back what it saw first. Without the
    module's lock, writers here won 213 times and the version rose by 165 (the same with stock
    moto): updates lost, as an adversarial run found on the local stack (a cancel racing a PATCH
    and a PIN rotation answered 200, sent booking.cancelled, and the booking was active again)."""
    import sys
    import threading

    moto_streams.apply()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch often: the race shows within a few hundred writes
    try:
        with mock_aws():
            setup = boto3.client("dynamodb")
            setup.create_table(
                TableName="race",
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            key = {"pk": {"S": "B"}}
            setup.put_item(TableName="race", Item={**key, "v": {"N": "0"}})
            wins: list[int] = []

            def writer(n: int) -> None:
                ddb = boto3.client("dynamodb")
                for i in range(60):
                    v = int(ddb.get_item(TableName="race", Key=key)["Item"]["v"]["N"])
                    put = {
                        "TableName": "race",
                        "Item": {**key, "v": {"N": str(v + 1)}},
                        "ConditionExpression": "v = :v",
                        "ExpressionAttributeValues": {":v": {"N": str(v)}},
                    }
                    try:
                        if i % 2:
                            ddb.put_item(**put)
                        else:  # as the store saves: the item and an event item beside it, in one transaction
                            event = {"TableName": "race", "Item": {"pk": {"S": f"EVENT#{n}-{i}"}}}
                            ddb.transact_write_items(TransactItems=[{"Put": put}, {"Put": event}])
                        wins.append(n)
                    except (
                        ddb.exceptions.ConditionalCheckFailedException,
                        ddb.exceptions.TransactionCanceledException,
                    ):
                        pass

            threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            final = int(setup.get_item(TableName="race", Key=key)["Item"]["v"]["N"])
    finally:
        sys.setswitchinterval(interval)
    assert final == len(wins), f"writes won their condition {len(wins)} times, the version rose by {final}"
