"""The simulator's world quiets the service's logger and counts metrics itself (process-wide): the
rotation tests' fixture gives both back after each test here too."""

from tests.functional.rotation.conftest import _logger_and_metrics_as_they_were

__all__ = ["_logger_and_metrics_as_they_were"]
