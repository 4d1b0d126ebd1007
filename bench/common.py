"""What every benchmark shares: the environment, statistics, the machine, result files.

Each measurement is a module with ``run(quick: bool) -> dict`` and a ``main`` that writes its
result as JSON (``python -m bench.<module> --out result.json``), so `bench.run` can run each one in
a fresh process: mock_aws, environment variables and imported handlers never leak between them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LAYER = ROOT / "layers" / "common"
for _path in (str(LAYER), str(ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

# What the in-process benchmarks run with (as tests/conftest.py): fake credentials, one region,
# tracing off (the Tracer is disabled outside Lambda anyway).
IN_PROCESS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "eu-central-1",
    "AWS_REGION": "eu-central-1",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_SERVICE_NAME": "staykey",
    "POWERTOOLS_METRICS_NAMESPACE": "StayKey",
    "POWERTOOLS_LOG_LEVEL": "INFO",  # as the template sets it: log lines are part of the work
    "TABLE_NAME": "staykey-bench",
    "SCHEDULE_GROUP_NAME": "staykey-bench",
    "SENDER_EMAIL": "stays@example.com",
    "NUKI_TOKEN_SECRET_NAME": "staykey-bench/nuki-api-token",
    "NUKI_WEBHOOK_SECRET_NAME": "staykey-bench/nuki-webhook-secret",
}


def in_process_environment() -> None:
    """Set IN_PROCESS_ENV before anything imports boto3 or Powertools."""
    os.environ.update(IN_PROCESS_ENV)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        os.environ.pop(name, None)


# ------------------------------------------------------------------------------------ statistics


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return float(ordered[rank - 1])


def timed(fn: Callable[[], Any], n: int, warmup: int = 3) -> list[float]:
    """Wall times of `n` calls of `fn`, in milliseconds, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


# ------------------------------------------------------------------------------------ the machine


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "arch": platform.machine(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_at_start": round(os.getloadavg()[0], 2),
    }


# ------------------------------------------------------------------------------------ running


def silence_stdout() -> None:
    """The service's JSON log lines and EMF metrics go to stdout (in Lambda, to CloudWatch): send
    them to /dev/null at the file-descriptor level, so they are still written, cheaply."""
    sys.stdout.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)


def main(run: Callable[[bool], dict[str, Any]]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, help="write the result as JSON here (else print it)")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    args = parser.parse_args()
    if args.out:
        silence_stdout()
    started = time.monotonic()
    result = run(args.quick)
    result["seconds"] = round(time.monotonic() - started, 1)
    text = json.dumps(result, indent=2, default=str)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        print(text)
