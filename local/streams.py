"""DynamoDB Streams as Lambda's event source mapping reads them, for the local dispatcher and tests.

`StreamReader` reads a table's stream (moto's, with `local.moto_streams` applied) from the start
(``TRIM_HORIZON``) and hands out each record once, shaped as Lambda delivers it (``eventID``,
``eventName``, ``eventSource``, ``eventSourceARN``, ``awsRegion``, ``dynamodb`` with
``ApproximateCreationDateTime`` in epoch seconds, ``Keys``, ``NewImage``, ``SequenceNumber``,
``SizeBytes``, ``StreamViewType``). It asks for a fresh iterator after the last record it saw on
every read, so nothing depends on an iterator staying valid.

`matches` applies a mapping's ``FilterCriteria`` patterns (the subset Lambda's filtering offers
that a template may use here: nested keys, lists of values, ``prefix``, ``exists``); a record that
matches no filter is dropped, as Lambda drops it, unbilled.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

_MISSING = object()


def _leaf(pattern: Any, value: Any) -> bool:
    if isinstance(pattern, dict):
        if "prefix" in pattern:
            return isinstance(value, str) and value.startswith(str(pattern["prefix"]))
        if "exists" in pattern:
            return (value is not _MISSING) == bool(pattern["exists"])
        if "anything-but" in pattern:
            excluded = pattern["anything-but"]
            excluded = excluded if isinstance(excluded, list) else [excluded]
            return value is not _MISSING and value not in excluded
        raise ValueError(f"filter pattern {pattern!r} is not supported locally")
    return value is not _MISSING and pattern == value


def _match(pattern: Any, value: Any) -> bool:
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            return False
        return all(_match(sub, value.get(key, _MISSING)) for key, sub in pattern.items())
    if isinstance(pattern, list):
        return any(_leaf(p, value) for p in pattern)
    raise ValueError(f"filter pattern {pattern!r}: values must be in a list")


def matches(filters: Sequence[Mapping[str, Any]], record: Mapping[str, Any]) -> bool:
    """Whether `record` passes a mapping's filters (no filters: every record)."""
    return not filters or any(_match(dict(f), dict(record)) for f in filters)


def parse_filters(filter_criteria: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    out = []
    for entry in (filter_criteria or {}).get("Filters") or []:
        pattern = entry.get("Pattern")
        out.append(json.loads(pattern) if isinstance(pattern, str) else dict(pattern))
    return out


def lambda_record(raw: Mapping[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    ddb = dict(raw.get("dynamodb") or {})
    created = ddb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        ddb["ApproximateCreationDateTime"] = created.timestamp()
    return {
        "eventID": raw.get("eventID"),
        "eventName": raw.get("eventName"),
        "eventVersion": raw.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": ddb,
        "eventSourceARN": stream_arn,
    }


class StreamReader:
    """Every record of one table's stream once, in order (moto keeps one shard per table)."""

    def __init__(self, client: Any, stream_arn: str, region: str) -> None:
        self.client = client
        self.stream_arn = stream_arn
        self.region = region
        self.last: str | None = None
        self._shard: str | None = None

    def read(self, limit: int = 1000) -> list[dict[str, Any]]:
        if self._shard is None:
            shards = self.client.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
            if not shards:
                return []
            self._shard = str(shards[0]["ShardId"])
        kwargs: dict[str, Any] = {"StreamArn": self.stream_arn, "ShardId": self._shard}
        if self.last is None:
            kwargs["ShardIteratorType"] = "TRIM_HORIZON"
        else:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=self.last)
        iterator = self.client.get_shard_iterator(**kwargs)["ShardIterator"]
        records = self.client.get_records(ShardIterator=iterator, Limit=limit).get("Records", [])
        if records:
            self.last = str(records[-1]["dynamodb"]["SequenceNumber"])
        return [lambda_record(r, self.stream_arn, self.region) for r in records]
