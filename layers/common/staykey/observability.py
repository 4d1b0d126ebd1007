"""One Logger, Tracer and Metrics for the whole service (POWERTOOLS_* settings come from the template).

Never log a PIN, a token, a secret or a raw webhook body: log booking ids, lock ids and outcomes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "staykey")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "StayKey")

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


def count(name: str, value: float = 1, dimensions: Mapping[str, str] | None = None) -> None:
    """Emit one business metric now (one EMF line), with optional dimensions such as the lock id."""
    with single_metric(name=name, unit=MetricUnit.Count, value=value, namespace=NAMESPACE) as metric:
        metric.add_dimension(name="service", value=SERVICE)
        for key, dim in (dimensions or {}).items():
            metric.add_dimension(name=key, value=dim)


__all__ = ["MetricUnit", "count", "logger", "metrics", "tracer"]
