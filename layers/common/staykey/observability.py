"""One Logger, Tracer and Metrics for the whole service (POWERTOOLS_* settings come from the template).

Never log a PIN, a token, a secret or a raw webhook body: log booking ids, lock ids and outcomes.

The tracer is built only where tracing is on (see `LazyTracer`): building Powertools' Tracer loads
the X-Ray SDK and patches botocore and requests, about 200 ms of every cold start (`make bench`),
even where nothing is traced.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.shared import constants
from aws_lambda_powertools.shared.functions import resolve_truthy_env_var_choice

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

F = TypeVar("F", bound=Callable[..., Any])

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "staykey")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "StayKey")


class LazyTracer:
    """Powertools' Tracer where tracing is on; nothing at all where it is off.

    Tracing is on in Lambda with ``Tracing: Active`` unless ``POWERTOOLS_TRACE_DISABLED`` says
    otherwise (Powertools' own rule: off outside Lambda, under SAM local and Chalice). There the
    decorators build the Tracer when they are applied, at import, as a plain Tracer would be, so the
    X-Ray SDK is loaded and patched during init and every call is traced as before. Where it is off
    (tests, the local stack, this benchmark, an operator who disabled it) they return the function
    unchanged and the SDK is never imported.
    """

    def __init__(self, service: str) -> None:
        self.service = service
        self._tracer: Tracer | None = None

    @staticmethod
    def enabled() -> bool:
        if resolve_truthy_env_var_choice(env=os.getenv(constants.TRACER_DISABLED_ENV, "false")):
            return False
        in_lambda = bool(os.getenv(constants.LAMBDA_TASK_ROOT_ENV))
        return in_lambda and not (os.getenv(constants.SAM_LOCAL_ENV) or os.getenv(constants.CHALICE_LOCAL_ENV))

    @property
    def tracer(self) -> Tracer:
        """The Powertools Tracer (built on first use)."""
        if self._tracer is None:
            from aws_lambda_powertools import Tracer

            self._tracer = Tracer(service=self.service)
        return self._tracer

    def capture_lambda_handler(self, capture_response: bool | None = None) -> Callable[[F], F]:
        if not self.enabled():
            return _unchanged
        decorator: Callable[[F], F] = self.tracer.capture_lambda_handler(capture_response=capture_response)
        return decorator

    def capture_method(self, capture_response: bool | None = None) -> Callable[[F], F]:
        if not self.enabled():
            return _unchanged
        decorator: Callable[[F], F] = self.tracer.capture_method(capture_response=capture_response)
        return decorator


def _unchanged(fn: F) -> F:
    return fn


logger = Logger(service=SERVICE)
tracer = LazyTracer(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


MetricSink = Callable[[str, float, Mapping[str, str]], None]
_sink: MetricSink | None = None


def set_metric_sink(sink: MetricSink | None) -> None:
    """Send metrics to `sink` instead of CloudWatch EMF (the simulator counts them; None: EMF again)."""
    global _sink
    _sink = sink


def count(name: str, value: float = 1, dimensions: Mapping[str, str] | None = None) -> None:
    """Emit one business metric now (one EMF line), with optional dimensions such as the lock id."""
    if _sink is not None:
        _sink(name, value, dimensions or {})
        return
    with single_metric(name=name, unit=MetricUnit.Count, value=value, namespace=NAMESPACE) as metric:
        metric.add_dimension(name="service", value=SERVICE)
        for key, dim in (dimensions or {}).items():
            metric.add_dimension(name=key, value=dim)


__all__ = ["LazyTracer", "MetricSink", "MetricUnit", "count", "logger", "metrics", "set_metric_sink", "tracer"]
