"""`make bench`'s reconcile-at-scale benchmark runs (its quick form, 100 locks): it broke unseen
when a lock's state came to be written in a transaction with its outbox events, which its
in-memory DynamoDB (bench/ddb_stub.py) did not serve. Nothing here asserts a time. It runs in a
process of its own, as `make bench` runs it (the benchmark sets its own environment and hooks)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_the_reconcile_benchmark_runs_and_reconciles_every_lock(tmp_path: Path) -> None:
    out = tmp_path / "reconcile.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench.reconcile_scale", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["locks_reconciled"] == result["locks"] == 100
    assert result["actions"] == {"foreign/none": 14000, "ok/none": 1000}
    assert result["dynamodb_calls_by_operation"]["TransactWriteItems"] == 100
