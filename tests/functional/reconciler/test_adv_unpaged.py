"""Adversarial (327491d): the account's whole list is given up for a day only when its size is the
trouble, not when Nuki refused the token or was out for a moment (each read of the shared look and
the watcher would cost a call per lock or per page for a day after a 401 or a rate limit)."""

from __future__ import annotations

import contextlib

import pytest

from functions.reconciler import app as reconciler_app
from staykey.nuki.errors import NukiAuthError, NukiError, NukiUnavailable
from tests.conftest import load_event
from tests.functional.reconciler.conftest import Rig
from tests.functional.reconciler.test_handlers import RoomyContext, deployed  # noqa: F401 - the fixture


@pytest.mark.parametrize(
    "error",
    [
        NukiAuthError("the token was refused", status=401),
        NukiUnavailable("too many requests", status=429, retry_after=30.0),
    ],
    ids=["401", "429"],
)
def test_an_account_list_refused_for_another_reason_than_its_size_is_not_given_up_for_a_day(
    rig: Rig,
    deployed: str,  # noqa: F811
    error: NukiError,
) -> None:
    rig.book()
    rig.active()
    rig.world.store.update_watch_state(codes=2)
    rig.world.nuki.fail("list_account_auths", error)
    reconciler_app.lambda_handler(load_event("reconciler_schedule.json"), RoomyContext())
    assert rig.world.store.watch_state().unpaged_failed is None


def test_an_account_list_failing_in_an_outage_is_not_given_up_for_a_day(
    rig: Rig,
    deployed: str,  # noqa: F811
) -> None:
    """Nuki out for a moment (local stack: a 100-second 503 spell gave up an account of 10 codes'
    whole list for a day): the read it falls back to fails as well, so the size is not the trouble."""
    rig.book()
    rig.active()
    rig.world.store.update_watch_state(codes=2)
    outage = NukiUnavailable("service unavailable", status=503)
    rig.world.nuki.fail("list_account_auths", outage)
    rig.world.nuki.fail("list_auths_page", outage)
    with contextlib.suppress(NukiError):  # the sweep's own answer to an outage is not the subject
        reconciler_app.lambda_handler(load_event("reconciler_schedule.json"), RoomyContext())
    assert rig.world.nuki.count("list_account_auths") == 1
    assert rig.world.store.watch_state().unpaged_failed is None
