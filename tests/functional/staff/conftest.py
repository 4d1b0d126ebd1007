"""The simulator's world quiets the service's logger and counts metrics itself (process-wide):
each test here gives both back, so tests that read logs or metrics after these see them as usual."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from staykey import observability


@pytest.fixture(autouse=True)
def _logger_and_metrics_as_they_were() -> Iterator[None]:
    level = observability.logger.log_level
    yield
    observability.set_metric_sink(None)
    observability.logger.setLevel(level)
