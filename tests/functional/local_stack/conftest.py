"""A moto server for the local stack's own pieces (resources, gateway, dispatcher), with fake
handlers in place of the template's: each test gets its own resources under its own stack name."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from local.aws import LocalResources, MotoServer, create_resources
from local.lambdas import Functions

_stacks = itertools.count(1)


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    server = MotoServer(port=0).start()
    yield server
    server.stop()


@pytest.fixture
def resources(moto: MotoServer) -> LocalResources:
    return create_resources(moto.endpoint, nuki_token="t0ken", stack_name=f"sk{next(_stacks)}")


@pytest.fixture
def functions(resources: LocalResources) -> Functions:
    return Functions(resources)
