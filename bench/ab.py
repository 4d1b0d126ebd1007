"""Before → after, side by side in one run: the optimisations' figures for the code at `BEFORE_REF`
(a temporary git worktree) and for this tree, interleaved so that a busy moment hits both alike.

    python -m bench.ab [--ref <commit>]     # about 4 minutes; writes bench/ab.json

* cold imports (`bench.imports`' probe, both settings, `RUNS` rounds, each round every module of
  both trees);
* reconcile at scale, `bench.reconcile_scale --quick` (100 locks) in each tree, twice each: CPU per
  lock, DynamoDB calls, wall time.

`make bench` does not run this (it would double its time); `bench.run` shows the last ab.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import ROOT, machine, median
from bench.imports import BASE_ENV, SETTINGS

BEFORE_REF = "641078f"  # the benchmarks' first commit, before the optimisations
RUNS = 5
OUT = Path(__file__).resolve().parent / "ab.json"

_PROBE = """
import sys, time
sys.path[:0] = [{layer!r}, {root!r}]
started = time.perf_counter()
import {module}
print((time.perf_counter() - started) * 1000)
"""


def import_ms(tree: Path, module: str, setting: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "LAMBDA_", "AWS_LAMBDA", "_X_AMZN"))}
    env.update(BASE_ENV)
    env.update(SETTINGS[setting])
    if setting == "lambda":
        env["LAMBDA_TASK_ROOT"] = str(tree)
    code = _PROBE.format(layer=str(tree / "layers" / "common"), root=str(tree), module=module)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=str(tree), capture_output=True, text=True, timeout=60, check=True
    )
    return float(done.stdout.strip().splitlines()[-1])


def reconcile(tree: Path) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run(
            [sys.executable, "-m", "bench.reconcile_scale", "--quick", "--out", out.name],
            cwd=str(tree),
            env={**os.environ, "PYTHONPATH": str(tree)},
            check=True,
        )
        return dict(json.loads(Path(out.name).read_text(encoding="utf-8")))


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab")
    parser.add_argument("--ref", default=BEFORE_REF)
    args = parser.parse_args()
    from local import cfn

    modules = [
        ("import boto3", "boto3"),
        *sorted((fn.module.split(".")[1], fn.module) for fn in cfn.functions().values()),
    ]
    result: dict[str, Any] = {"machine": machine(), "before_ref": args.ref, "runs": RUNS}
    with tempfile.TemporaryDirectory(prefix="staykey-ab-") as tmp:
        before = Path(tmp) / "before"
        subprocess.run(["git", "worktree", "add", "--detach", str(before), args.ref], cwd=ROOT, check=True)
        try:
            trees = {"before": before, "after": ROOT}
            for tree in trees.values():  # bytecode caches written, files in the page cache
                for _, module in modules:
                    import_ms(tree, module, "local")
            samples: dict[str, Any] = {s: {t: {name: [] for name, _ in modules} for t in trees} for s in SETTINGS}
            for _ in range(RUNS):
                for setting in SETTINGS:
                    for name, module in modules:
                        for label, tree in trees.items():
                            samples[setting][label][name].append(import_ms(tree, module, setting))
            result["imports"] = {
                s: {t: {n: round(median(v), 1) for n, v in by_name.items()} for t, by_name in by_tree.items()}
                for s, by_tree in samples.items()
            }
            runs: dict[str, list[dict[str, Any]]] = {label: [] for label in trees}
            for _ in range(2):
                for label, tree in trees.items():
                    runs[label].append(reconcile(tree))
            keys = ("wall_s", "cpu_ms_per_lock", "dynamodb_calls", "lambda_model_s_per_lock")
            result["reconcile_100_locks"] = {
                label: {k: round(median([r[k] for r in rs]), 3) for k in keys} for label, rs in runs.items()
            }
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=ROOT, check=False)
    OUT.write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
