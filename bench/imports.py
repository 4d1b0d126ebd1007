"""4. Cold import of each function's module in a fresh process, next to a bare ``import boto3``.

Every sample is a new interpreter that imports one module and reports how long the import took
(interpreter start-up excluded); the figure is the median of `RUNS` samples. Two settings:

* ``local``: as tests, the local stack and this bench run it (outside Lambda the Powertools Tracer
  is disabled);
* ``lambda``: what Lambda's init does with ``Tracing: Active`` (``LAMBDA_TASK_ROOT`` set, tracing
  on), so functions that trace load the X-Ray SDK and patch boto3 and requests at import.

Every function needs boto3 on its first invocation anyway, so the floor to compare with is
``import boto3``; pydantic and Powertools' Logger come on top for every function.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from bench.common import LAYER, ROOT, main, median

RUNS = 5

_PROBE = """
import sys, time
sys.path[:0] = [{layer!r}, {root!r}]
started = time.perf_counter()
import {module}
print((time.perf_counter() - started) * 1000)
"""

BASE_ENV = {
    "AWS_DEFAULT_REGION": "eu-central-1",
    "AWS_REGION": "eu-central-1",
    "POWERTOOLS_SERVICE_NAME": "staykey",
    "POWERTOOLS_METRICS_NAMESPACE": "StayKey",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "TABLE_NAME": "staykey",
}
SETTINGS = {
    "local": {"POWERTOOLS_TRACE_DISABLED": "true"},
    "lambda": {
        "LAMBDA_TASK_ROOT": str(ROOT),
        "AWS_LAMBDA_FUNCTION_NAME": "staykey-bench",
        "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
    },
}


def import_ms(module: str, setting: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "LAMBDA_", "AWS_LAMBDA", "_X_AMZN"))}
    env.update(BASE_ENV)
    env.update(SETTINGS[setting])
    env["PYTHONDONTWRITEBYTECODE"] = "0"
    code = _PROBE.format(layer=str(LAYER), root=str(ROOT), module=module)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=str(ROOT), capture_output=True, text=True, timeout=60, check=True
    )
    return float(done.stdout.strip().splitlines()[-1])


def modules() -> list[tuple[str, str]]:
    from local import cfn

    return sorted((fn.module.split(".")[1], fn.module) for fn in cfn.functions().values())


def run(quick: bool) -> dict[str, Any]:
    runs = 3 if quick else RUNS
    targets = [("import boto3", "boto3"), *modules()]
    # One untimed import of each first: bytecode caches written, files in the page cache.
    for _, module in targets:
        import_ms(module, "local")
    out: dict[str, Any] = {"runs": runs, "settings": {}}
    for setting in SETTINGS:
        samples: dict[str, list[float]] = {name: [] for name, _ in targets}
        for _ in range(runs):  # interleaved, so a noisy moment hits every module alike
            for name, module in targets:
                samples[name].append(import_ms(module, setting))
        out["settings"][setting] = {
            name: {"median_ms": round(median(v), 1), "samples_ms": [round(x, 1) for x in v]}
            for name, v in samples.items()
        }
    return out


if __name__ == "__main__":
    main(run)
