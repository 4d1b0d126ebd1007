"""Fixtures for the Nuki sandbox tests: a fresh sandbox on a free port per test, clients for its
Nuki and control routes, and a webhook receiver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from local.nuki_sandbox import RunningSandbox, start_sandbox
from tests.functional.sandbox.helpers import LOCK_A, SYNC_DELAY, TOKEN, NukiApi, Receiver, Sim


@pytest.fixture
def running() -> Iterator[RunningSandbox]:
    sandbox = start_sandbox(port=0, token=TOKEN, sync_delay=SYNC_DELAY)
    sandbox.sandbox.configure(webhook_retry_delays=(0.05, 0.1))
    yield sandbox
    sandbox.stop()


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.trust_env = False  # never send loopback calls through a proxy from the environment
        yield s


@pytest.fixture
def nuki(running: RunningSandbox, session: requests.Session) -> NukiApi:
    return NukiApi(running.url, session)


@pytest.fixture
def sim(running: RunningSandbox, session: requests.Session) -> Sim:
    return Sim(running.url, session)


@pytest.fixture
def lock_a(sim: Sim) -> int:
    sim.add_lock(LOCK_A)
    return LOCK_A


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()
