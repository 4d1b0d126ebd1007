"""The local runtime (`local.runtime`) with a probe: what each function invocation costs.

``python -m bench.probe_runtime <local.runtime's arguments>``, with ``BENCH_PROBE_FILE`` naming a
file. It runs `local.runtime.main` unchanged, after wrapping two things:

* ``local.lambdas.Function.invoke``: one JSON line per invocation with the function, its wall and
  CPU time (the handler's thread; moto and the sandbox run in other processes), the bytes it wrote
  to stdout (its log lines and EMF metrics, what CloudWatch Logs ingests), its AWS calls by
  operation, the DynamoDB request units they consume and its Nuki calls;
* botocore's ``_make_api_call``: AWS calls outside any invocation are the event-source mappings'
  (the dispatcher receiving and deleting SQS messages): non-empty receives and deletes are written
  as lines of their own (what Lambda's SQS poller would do per message).

DynamoDB request units are computed as DynamoDB bills them (item sizes from the requests and the
answers: attribute names plus values; reads per 4 KB, halved when eventually consistent; writes per
1 KB, doubled in transactions; one more write per KB for an item that lands in the gsi1 index). An
update or delete is billed on the item's size, which is taken from the last time the probe saw that
item (1 KB if never seen).
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
from typing import Any

_local = threading.local()
_lock = threading.Lock()
_sizes: dict[tuple[str, str], int] = {}  # (pk, sk) -> last seen item size in bytes
_out: Any = None


def _value_size(value: dict[str, Any]) -> int:
    ((kind, v),) = value.items()
    if kind == "S":
        return len(str(v).encode())
    if kind == "N":
        digits = str(v).lstrip("-").replace(".", "").lstrip("0") or "0"
        return math.ceil(len(digits) / 2) + 1
    if kind == "B":
        return len(v) if isinstance(v, bytes) else len(str(v)) * 3 // 4
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + _value_size(x) for x in v)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _value_size(x) for k, x in v.items())
    if kind in ("SS", "NS", "BS"):
        return sum(_value_size({kind[0]: x}) for x in v)
    return 1


def item_size(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _key(item: dict[str, Any]) -> tuple[str, str]:
    return (str(item.get("pk", {}).get("S", "")), str(item.get("sk", {}).get("S", "")))


def _seen(item: dict[str, Any]) -> int:
    size = item_size(item)
    with _lock:
        _sizes[_key(item)] = size
    return size


def _known(key: dict[str, Any]) -> int:
    with _lock:
        return _sizes.get(_key(key), 1024)


def _write_units(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def _put_units(item: dict[str, Any], factor: int = 1) -> float:
    units = factor * _write_units(_seen(item))
    if "gsi1pk" in item:
        units += _write_units(item_size(item))  # the index's copy (ProjectionType ALL)
    return units


def dynamodb_units(operation: str, params: dict[str, Any], answer: dict[str, Any]) -> tuple[float, float]:
    """(read units, write units) of one DynamoDB call."""
    if operation == "GetItem":
        size = _seen(answer["Item"]) if "Item" in answer else 0
        return max(1, math.ceil(size / 4096)) * (1.0 if params.get("ConsistentRead") else 0.5), 0.0
    if operation == "Query":
        size = sum(_seen(item) for item in answer.get("Items", []))
        consistent = bool(params.get("ConsistentRead")) and "IndexName" not in params
        return max(1, math.ceil(size / 4096)) * (1.0 if consistent else 0.5), 0.0
    if operation == "BatchGetItem":
        units = 0.0
        for table, request in params.get("RequestItems", {}).items():
            factor = 1.0 if request.get("ConsistentRead") else 0.5
            for item in answer.get("Responses", {}).get(table, []):
                units += max(1, math.ceil(_seen(item) / 4096)) * factor
        return units, 0.0
    if operation == "PutItem":
        return 0.0, _put_units(params["Item"])
    if operation in ("UpdateItem", "DeleteItem"):
        return 0.0, _write_units(_known(params["Key"]))
    if operation == "BatchWriteItem":
        units = 0.0
        for requests in params.get("RequestItems", {}).values():
            for request in requests:
                if "PutRequest" in request:
                    units += _put_units(request["PutRequest"]["Item"])
                else:
                    units += _write_units(_known(request["DeleteRequest"]["Key"]))
        return 0.0, units
    if operation == "TransactWriteItems":
        units = 0.0
        for entry in params.get("TransactItems", []):
            if "Put" in entry:
                units += _put_units(entry["Put"]["Item"], factor=2)
            else:
                part = entry.get("Delete") or entry.get("Update") or entry.get("ConditionCheck") or {}
                units += 2 * _write_units(_known(part.get("Key", {})))
        return 0.0, units
    return 0.0, 0.0


def _write(line: dict[str, Any]) -> None:
    text = json.dumps(line, separators=(",", ":")) + "\n"
    with _lock:
        _out.write(text)
        _out.flush()


class _CountingStdout:
    """sys.stdout that counts the bytes each invocation writes (its logs and EMF metrics)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def write(self, text: str) -> int:
        current = getattr(_local, "record", None)
        if current is not None:
            current["log_bytes"] += len(text.encode())
        return int(self._inner.write(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def install() -> None:
    global _out
    from botocore.client import BaseClient

    from local import lambdas

    _out = open(os.environ["BENCH_PROBE_FILE"], "a", encoding="utf-8")  # noqa: SIM115 - open for the process's life
    sys.stdout = _CountingStdout(sys.stdout)
    make_api_call = BaseClient._make_api_call
    invoke = lambdas.Function.invoke
    import requests

    request = requests.Session.request

    def probed_request(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        current = getattr(_local, "record", None)
        if current is not None:  # in the functions, only the Nuki client uses requests
            current["nuki"] += 1
        return request(self, method, url, *args, **kwargs)

    def probed_api_call(self: Any, operation: str, params: dict[str, Any]) -> Any:
        service = self.meta.service_model.service_name
        answer = make_api_call(self, operation, params)
        current = getattr(_local, "record", None)
        name = f"{service}.{operation}"
        rru = wru = 0.0
        if service == "dynamodb":
            rru, wru = dynamodb_units(operation, params, answer)
        if current is not None:
            current["aws"][name] = current["aws"].get(name, 0) + 1
            current["rru"] += rru
            current["wru"] += wru
        elif service == "sqs" and (operation != "ReceiveMessage" or answer.get("Messages")):
            # The event-source mapping's own requests, per batch (empty polls are left out).
            messages = len(answer.get("Messages", [])) or len(params.get("Entries", []))
            _write({"kind": "poller", "op": name, "messages": messages})
        return answer

    def probed_invoke(self: Any, event: Any, request_id: str | None = None) -> Any:
        record: dict[str, Any] = {"kind": "invoke", "fn": self.logical_id, "memory": self.memory}
        record.update({"aws": {}, "rru": 0.0, "wru": 0.0, "log_bytes": 0, "nuki": 0, "error": None})
        if isinstance(event, dict) and "Records" in event:
            record["records"] = len(event["Records"])
        _local.record = record
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return invoke(self, event, request_id)
        except Exception as exc:
            record["error"] = type(exc).__name__
            raise
        finally:
            record["wall_ms"] = round((time.perf_counter() - wall) * 1000, 2)
            record["cpu_ms"] = round((time.thread_time() - cpu) * 1000, 2)
            record["at"] = time.time()
            _local.record = None
            _write(record)

    BaseClient._make_api_call = probed_api_call  # type: ignore[method-assign]
    lambdas.Function.invoke = probed_invoke  # type: ignore[method-assign]
    requests.Session.request = probed_request  # type: ignore[method-assign]


def main() -> int:
    install()
    from local import runtime

    return runtime.main(sys.argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
