"""The hardening tests reuse the functional worlds: the lifecycle's handlers (moto, FakeNuki,
FixedClock) and the activity pipeline (webhook receiver, processor, poller)."""

from __future__ import annotations

from tests.functional.activity.conftest import activity, pipeline  # noqa: F401 - fixtures
from tests.functional.lifecycle.conftest import api, handlers  # noqa: F401 - fixtures
