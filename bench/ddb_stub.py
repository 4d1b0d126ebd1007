"""An in-memory DynamoDB behind a real boto3 client, for the reconcile-at-scale benchmark.

moto 5.2 serialises a 150-item Query answer in ~300 ms and scans the whole table for every query,
so with moto the benchmark would measure moto. This stands in at botocore's ``before-send`` hook:
boto3 serialises every request and parses every answer exactly as with DynamoDB (that CPU work is
the code under test's), and the table is a dict of partitions. It serves what the reconciler's
steady state calls: GetItem, BatchGetItem, Query (partition, optional ``begins_with`` on the sort key, order,
Limit), UpdateItem (``SET`` only, no condition), PutItem and DeleteItem without conditions,
BatchWriteItem, and TransactWriteItems of those with the conditions the store writes there (a
lock's state: ``#a = :a``, ``attribute_not_exists(#a)``, ``(attribute_not_exists(#a) OR #a <= :a)``
joined by AND; an outbox event: ``attribute_not_exists(pk)``). Anything else answers an error, so an
unexpected path fails loudly.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Iterator
from typing import Any


class _Raw(io.BytesIO):
    def stream(self, **_kwargs: Any) -> Iterator[bytes]:
        data = self.read()
        while data:
            yield data
            data = self.read()


class _Cancelled(Exception):
    def __init__(self, reasons: list[dict[str, str]]) -> None:
        self.reasons = reasons


def _scalar(value: dict[str, Any]) -> Any:
    ((kind, inner),) = value.items()
    if kind == "N":
        return float(inner)
    if kind == "S":
        return inner
    raise NotImplementedError(f"comparing {kind} values")


def _holds(condition: str | None, item: dict[str, Any] | None, op: dict[str, Any]) -> bool:
    """Whether `condition` (one of the forms the module docstring names) holds for `item`."""
    if not condition:
        return True
    names, values = op.get("ExpressionAttributeNames", {}), op.get("ExpressionAttributeValues", {})
    attrs = item or {}
    for part in condition.split(" AND "):
        part = part.strip()
        if m := re.fullmatch(r"attribute_not_exists\((#?\w+)\)", part):
            ok = names.get(m[1], m[1]) not in attrs
        elif m := re.fullmatch(r"(#\w+) = (:\w+)", part):
            ok = attrs.get(names[m[1]]) == values[m[2]]
        elif m := re.fullmatch(r"\(attribute_not_exists\((#\w+)\) OR (#\w+) <= (:\w+)\)", part):
            held = attrs.get(names[m[1]])
            ok = held is None or _scalar(held) <= _scalar(values[m[3]])
        else:
            raise NotImplementedError(f"condition {part!r}")
        if not ok:
            return False
    return True


class InMemoryDynamoDB:
    def __init__(self) -> None:
        self.partitions: dict[str, dict[str, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    # -- filling it --------------------------------------------------------------------------

    def put(self, item: dict[str, Any]) -> None:
        """An item in DynamoDB JSON."""
        with self._lock:
            self.partitions.setdefault(item["pk"]["S"], {})[item["sk"]["S"]] = item

    def count(self) -> int:
        return sum(len(p) for p in self.partitions.values())

    # -- the botocore hook -------------------------------------------------------------------

    def attach(self, client: Any) -> Any:
        client.meta.events.register("before-send.dynamodb", self._send)
        return client

    def _send(self, request: Any, **_kwargs: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        target = request.headers.get("X-Amz-Target", b"")
        operation = (target.decode() if isinstance(target, bytes) else str(target)).split(".")[-1]
        body = json.loads(request.body or b"{}")
        try:
            status, answer = 200, getattr(self, f"_{operation}")(body)
        except AttributeError:
            status, answer = 400, {"__type": "UnknownOperationException", "message": f"{operation} is not served here"}
        except NotImplementedError as exc:
            status, answer = 400, {"__type": "ValidationException", "message": str(exc)}
        except _Cancelled as exc:
            status, answer = (
                400,
                {
                    "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                    "message": "Transaction cancelled",
                    "CancellationReasons": exc.reasons,
                },
            )
        data = json.dumps(answer).encode()
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "bench"}
        return AWSResponse(request.url, status, headers, _Raw(data))

    # -- operations ----------------------------------------------------------------------------

    @staticmethod
    def _key(key: dict[str, Any]) -> tuple[str, str]:
        return key["pk"]["S"], key["sk"]["S"]

    def _GetItem(self, body: dict[str, Any]) -> dict[str, Any]:
        pk, sk = self._key(body["Key"])
        with self._lock:
            item = self.partitions.get(pk, {}).get(sk)
        return {"Item": item} if item is not None else {}

    def _Query(self, body: dict[str, Any]) -> dict[str, Any]:
        if "IndexName" in body or "FilterExpression" in body:
            raise NotImplementedError("index queries and filters are not served here")
        names, values = body.get("ExpressionAttributeNames", {}), body.get("ExpressionAttributeValues", {})
        condition = body["KeyConditionExpression"]
        m = re.fullmatch(r"(#\w+) = (:\w+)(?: AND begins_with\((#\w+), (:\w+)\))?", condition)
        if m is None or names.get(m.group(1)) != "pk":
            raise NotImplementedError(f"key condition {condition!r}")
        pk = values[m.group(2)]["S"]
        prefix = values[m.group(4)]["S"] if m.group(4) else ""
        with self._lock:
            part = self.partitions.get(pk, {})
            keys = sorted(sk for sk in part if sk.startswith(prefix))
            if not body.get("ScanIndexForward", True):
                keys.reverse()
            start = body.get("ExclusiveStartKey")
            if start is not None:
                keys = keys[keys.index(start["sk"]["S"]) + 1 :]
            limit = body.get("Limit")
            page = keys[:limit] if limit else keys
            items = [part[sk] for sk in page]
        answer: dict[str, Any] = {"Items": items, "Count": len(items), "ScannedCount": len(items)}
        if limit and len(keys) > limit:
            answer["LastEvaluatedKey"] = {"pk": {"S": pk}, "sk": {"S": page[-1]}}
        return answer

    def _PutItem(self, body: dict[str, Any]) -> dict[str, Any]:
        if "ConditionExpression" in body:
            raise NotImplementedError("conditional puts are not served here")
        self.put(body["Item"])
        return {}

    def _DeleteItem(self, body: dict[str, Any]) -> dict[str, Any]:
        if "ConditionExpression" in body:
            raise NotImplementedError("conditional deletes are not served here")
        pk, sk = self._key(body["Key"])
        with self._lock:
            self.partitions.get(pk, {}).pop(sk, None)
        return {}

    def _UpdateItem(self, body: dict[str, Any]) -> dict[str, Any]:
        if "ConditionExpression" in body:
            raise NotImplementedError("conditional updates are not served here")
        with self._lock:
            self._set(body)
        return {}

    def _TransactWriteItems(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            reasons = []
            for entry in body["TransactItems"]:
                ((kind, op),) = entry.items()
                key = op["Item"] if kind == "Put" else op["Key"]
                current = self.partitions.get(key["pk"]["S"], {}).get(key["sk"]["S"])
                ok = _holds(op.get("ConditionExpression"), current, op)
                reasons.append({"Code": "None"} if ok else {"Code": "ConditionalCheckFailed"})
            if any(r["Code"] != "None" for r in reasons):
                raise _Cancelled(reasons)
            for entry in body["TransactItems"]:
                ((kind, op),) = entry.items()
                plain = {k: v for k, v in op.items() if k != "ConditionExpression"}
                if kind == "Put":
                    self.partitions.setdefault(op["Item"]["pk"]["S"], {})[op["Item"]["sk"]["S"]] = op["Item"]
                elif kind == "Delete":
                    pk, sk = self._key(op["Key"])
                    self.partitions.get(pk, {}).pop(sk, None)
                elif kind == "Update":
                    self._set(plain)
                else:
                    raise NotImplementedError(f"{kind} in a transaction")
        return {}

    def _set(self, body: dict[str, Any]) -> None:
        expression = body["UpdateExpression"]
        if not expression.startswith("SET "):
            raise NotImplementedError(f"update {expression!r}")
        names, values = body.get("ExpressionAttributeNames", {}), body.get("ExpressionAttributeValues", {})
        pk, sk = self._key(body["Key"])
        item = self.partitions.setdefault(pk, {}).setdefault(sk, dict(body["Key"]))
        for part in expression[4:].split(","):
            name, value = (x.strip() for x in part.split("="))
            item[names.get(name, name)] = values[value]

    def _BatchGetItem(self, body: dict[str, Any]) -> dict[str, Any]:
        responses: dict[str, list[dict[str, Any]]] = {}
        with self._lock:
            for table, request in body["RequestItems"].items():
                found = [self.partitions.get(k["pk"]["S"], {}).get(k["sk"]["S"]) for k in request["Keys"]]
                responses[table] = [item for item in found if item is not None]
        return {"Responses": responses, "UnprocessedKeys": {}}

    def _BatchWriteItem(self, body: dict[str, Any]) -> dict[str, Any]:
        for requests in body["RequestItems"].values():
            for request in requests:
                if "PutRequest" in request:
                    self.put(request["PutRequest"]["Item"])
                else:
                    pk, sk = self._key(request["DeleteRequest"]["Key"])
                    with self._lock:
                        self.partitions.get(pk, {}).pop(sk, None)
        return {"UnprocessedItems": {}}
