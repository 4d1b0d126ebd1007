"""The local stack's moto server (local.moto_server) answers as stock moto does: the same
operations against it and against an untouched moto (mock_aws, in this process) give the same
answers, for queries (partitions, prefixes, order, pages, an index: key ranges, pages both ways,
filters, and writes between index queries), for GetItem and BatchGetItem, and for transactions
that succeed or fail (a failed one leaves every item as it was)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.aws import LOCAL_CREDENTIALS, MotoServer

TABLE = {
    "TableName": "t",
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    "AttributeDefinitions": [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
        {"AttributeName": "g", "AttributeType": "S"},
    ],
    "GlobalSecondaryIndexes": [
        {
            "IndexName": "gsi1",
            "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"},
        }
    ],
    "BillingMode": "PAY_PER_REQUEST",
}


def _item(pk: str, sk: str, **extra: Any) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}, "n": {"N": "1"}, "l": {"L": [{"S": "a"}]}, **extra}


def scenario(ddb: Any) -> list[Any]:
    """What StayKey's store does, and the answers."""
    out: list[Any] = []
    ddb.create_table(**TABLE)
    for lock in ("LOCK#1", "LOCK#2"):
        for i in range(30):
            ddb.put_item(TableName="t", Item=_item(lock, f"CODE#{i:06d}", g={"S": f"G#{i % 2}"}))
        ddb.put_item(TableName="t", Item=_item(lock, "META"))

    def query(**kw: Any) -> dict[str, Any]:
        answer = dict(ddb.query(TableName="t", **kw))
        answer.pop("ResponseMetadata", None)
        return answer

    prefix = {
        "KeyConditionExpression": "pk = :p AND begins_with(sk, :s)",
        "ExpressionAttributeValues": {":p": {"S": "LOCK#1"}, ":s": {"S": "CODE#"}},
    }
    out.append(query(**prefix, ConsistentRead=True))
    page = query(**prefix, Limit=7, ScanIndexForward=False)
    out.append(page)
    out.append(query(**prefix, Limit=7, ScanIndexForward=False, ExclusiveStartKey=page["LastEvaluatedKey"]))
    out.append(query(KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "LOCK#2"}}))
    out.append(query(KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "LOCK#9"}}))
    out.append(
        query(
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "LOCK#1"}},
            ProjectionExpression="sk",
        )
    )
    out.append(query(IndexName="gsi1", KeyConditionExpression="g = :g", ExpressionAttributeValues={":g": {"S": "G#1"}}))

    # Index queries: a key range, pages both ways, a filter; then writes between index queries
    # (an item changed in place, one deleted, one added): each query sees the table as it is.
    def on_index(g: str, **kw: Any) -> dict[str, Any]:
        condition = kw.pop("condition", "g = :g")
        values = {":g": {"S": g}, **kw.pop("values", {})}
        return query(IndexName="gsi1", KeyConditionExpression=condition, ExpressionAttributeValues=values, **kw)

    between = {":a": {"S": "CODE#000004"}, ":b": {"S": "CODE#000020"}}
    out.append(on_index("G#0", condition="g = :g AND sk BETWEEN :a AND :b", values=between))
    prefix_g = {"condition": "g = :g AND begins_with(sk, :s)", "values": {":s": {"S": "CODE#00001"}}}
    page = on_index("G#1", **prefix_g, Limit=3, ScanIndexForward=False)
    out.append(page)
    out.append(on_index("G#1", **prefix_g, Limit=3, ScanIndexForward=False, ExclusiveStartKey=page["LastEvaluatedKey"]))
    out.append(on_index("G#0", FilterExpression="sk < :c", values={":c": {"S": "CODE#000010"}}))
    out.append(on_index("G#9"))
    key = {"pk": {"S": "LOCK#1"}, "sk": {"S": "CODE#000003"}}
    ddb.update_item(
        TableName="t", Key=key, UpdateExpression="SET g = :g", ExpressionAttributeValues={":g": {"S": "G#0"}}
    )
    out.append(on_index("G#0", condition="g = :g AND sk BETWEEN :a AND :b", values=between))
    out.append(on_index("G#1", Limit=5))
    ddb.delete_item(TableName="t", Key={"pk": {"S": "LOCK#2"}, "sk": {"S": "CODE#000004"}})
    ddb.put_item(TableName="t", Item=_item("LOCK#3", "CODE#000005", g={"S": "G#0"}))
    out.append(on_index("G#0", condition="g = :g AND sk BETWEEN :a AND :b", values=between))
    got = dict(ddb.get_item(TableName="t", Key=key, ConsistentRead=True))
    got.pop("ResponseMetadata", None)
    out.append(got)
    keys = [key, {"pk": {"S": "LOCK#3"}, "sk": {"S": "CODE#000005"}}, {"pk": {"S": "LOCK#9"}, "sk": {"S": "META"}}]
    batch = ddb.batch_get_item(RequestItems={"t": {"Keys": keys}})
    out.append(sorted(batch["Responses"]["t"], key=lambda i: (i["pk"]["S"], i["sk"]["S"])))
    # Projections: top-level names (one missing, one a key), and a path into a list
    names = {
        "ProjectionExpression": "#a, #b, #c, #d",
        "ExpressionAttributeNames": {"#a": "sk", "#b": "l", "#c": "no", "#d": "n"},
    }
    batch = ddb.batch_get_item(RequestItems={"t": {"Keys": keys, **names}})
    out.append(sorted(batch["Responses"]["t"], key=lambda i: i["sk"]["S"]))
    got = dict(ddb.get_item(TableName="t", Key=key, ProjectionExpression="l[0], n"))
    got.pop("ResponseMetadata", None)
    out.append(got)

    # A transaction that succeeds, and one that fails after a write it made
    claim = {"ConditionExpression": "attribute_not_exists(pk)"}
    ddb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": "t", "Item": _item("BOOKING#1", "BOOKING"), **claim}},
            {"Put": {"TableName": "t", "Item": _item("LOCK#1", "CODE#999999"), **claim}},
        ]
    )
    failed = None
    try:
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "t", "Item": _item("BOOKING#2", "BOOKING"), **claim}},
                {"Delete": {"TableName": "t", "Key": {"pk": {"S": "LOCK#2"}, "sk": {"S": "META"}}}},
                {
                    "Update": {
                        "TableName": "t",
                        "Key": {"pk": {"S": "LOCK#2"}, "sk": {"S": "CODE#000001"}},
                        "UpdateExpression": "SET n = :n",
                        "ExpressionAttributeValues": {":n": {"N": "7"}},
                    }
                },
                {"Put": {"TableName": "t", "Item": _item("LOCK#1", "CODE#999999"), **claim}},
            ]
        )
    except ddb.exceptions.TransactionCanceledException as exc:
        failed = [r.get("Code") for r in exc.response["CancellationReasons"]]
    out.append(failed)
    everything = ddb.scan(TableName="t")["Items"]
    out.append(sorted(everything, key=lambda i: (i["pk"]["S"], i["sk"]["S"])))
    return out


@pytest.fixture
def local_ddb(moto: MotoServer) -> Iterator[Any]:
    session = boto3.session.Session(
        aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name="eu-west-1",  # a region of its own on the module's server
    )
    ddb = session.client("dynamodb", endpoint_url=moto.endpoint)
    yield ddb
    ddb.delete_table(TableName="t")


def _stock(run: Callable[[Any], list[Any]]) -> list[Any]:
    with mock_aws():
        return run(boto3.client("dynamodb", region_name="eu-west-1"))


def test_the_local_moto_server_answers_as_stock_moto(local_ddb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {**LOCAL_CREDENTIALS, "AWS_DEFAULT_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    ours, stock = scenario(local_ddb), _stock(scenario)
    assert ours == stock
    assert ours[-2] == ["None", "None", "None", "ConditionalCheckFailed"]  # the failed transaction
    assert len(ours[0]["Items"]) == 30
