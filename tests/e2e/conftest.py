"""One local stack for the whole end-to-end session, on free ports, with short timings.

The tests talk to it over HTTP only: the shop API (with its key), the Nuki sandbox's routes, and
the stack's outbox (every email SES accepted) for the guest's email. When a test fails, the end of
the runtime's log (the gateway's and dispatcher's lines) is added to its report.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest
import requests

from local.stack import LocalStack, StackConfig
from tests.e2e.helpers import Shop, Sim
from tests.e2e.pins import LEDGER
from tools.pin_scan import pins_in_logs

SYNC_DELAY = 0.4

# Settings for the functions that the template leaves to their defaults: short Nuki timeouts and
# read-back gaps keep a faulty run within seconds. The LOCAL_* ones are the runtime's.
FUNCTION_ENV = {
    "NUKI_TIMEOUT_SECONDS": "1",
    "NUKI_MAX_TOTAL_SECONDS": "4",
    "CONFIRM_BACKOFF_SECONDS": "1,1,2",
    "CONFIRM_BACKOFF_WITH_WEBHOOKS_SECONDS": "1,2,3",
    "LOCAL_SQS_RETRY_VISIBILITY_SECONDS": "1",
    "LOCAL_ASYNC_RETRY_DELAYS": "0.5,1",
    "LOCAL_GATEWAY_MAX_BODY_BYTES": str(256 * 1024),
}

_running: LocalStack | None = None


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    global _running
    config = StackConfig.from_env(
        environ={},  # the developer's LOCAL_* ports must not matter: free ports, contract defaults
        gateway_port=0,
        nuki_port=0,
        aws_port=0,
        sync_delay=SYNC_DELAY,
        env=dict(FUNCTION_ENV),
    )
    with LocalStack(config) as running:
        _running = running
        try:
            yield running
        finally:
            _running = None


@pytest.fixture(scope="session")
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.trust_env = False  # loopback only; never through a proxy from the environment
        s.hooks["response"].append(LEDGER.record_response)  # every PIN any answer carries
        yield s


@pytest.fixture(scope="session", autouse=True)
def no_pin_in_any_log(stack: LocalStack) -> Iterator[None]:
    """After the last end-to-end test, whatever ran and in whatever order: no PIN the suite was
    given appears in any log line of any local stack (functions, runtime, moto)."""
    yield
    LEDGER.add_logs(stack.log_dir)
    leaks = pins_in_logs(LEDGER.pins, LEDGER.log_sources)
    assert not leaks, f"{len(leaks)} log lines carry a PIN:\n" + "\n".join(leaks[:20])


@pytest.fixture
def shop(stack: LocalStack, session: requests.Session) -> Shop:
    return Shop(stack, session)


@pytest.fixture
def sim(stack: LocalStack, session: requests.Session) -> Iterator[Sim]:
    sim = Sim(stack, session)
    yield sim
    sim.clear_faults()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and _running is not None and "e2e" in item.keywords:
        report.sections.append(("local stack: runtime log (tail)", _running.runtime_log_tail(60)))
    return report
