"""The tracer is built only where tracing is on: in Lambda with tracing on, handlers are traced as
before; elsewhere the X-Ray SDK is never imported (about 200 ms of every cold start, `make bench`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from staykey.observability import LazyTracer

ROOT = Path(__file__).resolve().parents[2]


def test_off_outside_lambda_and_when_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAMBDA_TASK_ROOT", raising=False)
    monkeypatch.delenv("POWERTOOLS_TRACE_DISABLED", raising=False)
    assert not LazyTracer.enabled()
    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")
    assert LazyTracer.enabled()
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    assert not LazyTracer.enabled()
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "false")
    monkeypatch.setenv("AWS_SAM_LOCAL", "true")
    assert not LazyTracer.enabled()


def test_off_leaves_the_handler_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")

    def handler(event: dict[str, object], context: object) -> str:
        return "ok"

    tracer = LazyTracer("staykey")
    assert tracer.capture_lambda_handler(capture_response=False)(handler) is handler
    assert tracer.capture_method()(handler) is handler
    assert tracer._tracer is None


@pytest.mark.parametrize(
    ("lambda_env", "xray_loaded"),
    [({}, False), ({"LAMBDA_TASK_ROOT": str(ROOT), "AWS_LAMBDA_FUNCTION_NAME": "staykey-test"}, True)],
)
def test_the_xray_sdk_is_loaded_only_where_tracing_is_on(lambda_env: dict[str, str], xray_loaded: bool) -> None:
    code = "import sys; import functions.booking_created.app; print('aws_xray_sdk' in sys.modules)"
    env = {k: v for k, v in os.environ.items() if k not in ("POWERTOOLS_TRACE_DISABLED", "LAMBDA_TASK_ROOT")}
    env.update(lambda_env)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "layers" / "common"), str(ROOT)])
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(xray_loaded)
