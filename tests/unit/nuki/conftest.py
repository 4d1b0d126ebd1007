"""Fixtures for the Nuki client tests (the doubles themselves are in nuki_fakes.py).

Named fake_nuki / fake_clock so they do not shadow the domain-level `nuki` and `clock` fixtures of
tests/conftest.py, which are different fakes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import responses

from staykey.nuki import NukiCall, NukiClient
from tests.unit.nuki.nuki_fakes import BASE_URL, TOKEN, FakeClock, FakeNuki


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake_nuki(fake_clock: FakeClock) -> Iterator[FakeNuki]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        fake = FakeNuki(rsps, fake_clock)
        yield fake
    assert not fake.problems, fake.problems


@pytest.fixture
def calls() -> list[NukiCall]:
    return []


@pytest.fixture
def make_client(
    fake_nuki: FakeNuki, fake_clock: FakeClock, calls: list[NukiCall]
) -> Iterator[Callable[..., NukiClient]]:
    made: list[NukiClient] = []

    def make(**overrides: Any) -> NukiClient:
        options: dict[str, Any] = {
            "sleep": fake_clock.sleep,
            "monotonic": fake_clock.monotonic,
            "on_request": calls.append,
            **overrides,
        }
        client = NukiClient(options.pop("token", TOKEN), BASE_URL, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., NukiClient]) -> NukiClient:
    return make_client()
