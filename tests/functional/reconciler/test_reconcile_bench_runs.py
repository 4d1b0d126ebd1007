"""`make bench`'s reconcile-at-scale benchmark runs (its quick form, 100 locks): it broke unseen
when a lock's state came to be written in a transaction with its outbox events, which its
in-memory DynamoDB (bench/ddb_stub.py) did not serve. Nothing here asserts a time."""

from __future__ import annotations

from bench import reconcile_scale


def test_the_reconcile_benchmark_runs_and_reconciles_every_lock() -> None:
    result = reconcile_scale.run(quick=True)
    assert result["locks_reconciled"] == result["locks"] == 100
    assert result["actions"] == {"foreign/none": 14000, "ok/none": 1000}
    assert result["dynamodb_calls_by_operation"]["TransactWriteItems"] == 100
