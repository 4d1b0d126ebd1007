"""PUT /rooms asks Nuki about every lock first (services/rooms.py): a lock StayKey cannot use is a
422 naming it (`smartlockIds.N`), Nuki out of reach is a 503; either way nothing is written."""

from __future__ import annotations

import pytest

from staykey.nuki import NukiAuthError, NukiRefused, NukiUnavailable
from tests.conftest import World
from tests.functional.lifecycle.conftest import Call

ROOM = {"name": "Room 12", "smartlockIds": [17000001, 17000099], "timezone": "Europe/Berlin"}


def _fields(body: dict[str, object]) -> dict[str, str]:
    return {e["field"]: e["message"] for e in body["errors"]}  # type: ignore[attr-defined]


def test_a_room_on_locks_nuki_knows_with_keypads_is_created_after_asking_nuki(api: Call, world: World) -> None:
    status, body = api("PUT", "/rooms/room-12", ROOM)
    assert status == 201, body
    assert [args for name, args in world.nuki.calls if name == "get_smartlock"] == [17000001, 17000099]


def test_a_lock_nuki_does_not_know_is_a_422_naming_it_and_nothing_is_written(api: Call) -> None:
    status, body = api("PUT", "/rooms/room-12", {**ROOM, "smartlockIds": [17000001, 17999999]})
    assert status == 422, body
    assert body["code"] == "validation_error"
    assert _fields(body) == {"smartlockIds.1": "lock 17999999 does not exist in the Nuki account (Nuki: 404)"}
    assert api("GET", "/rooms/room-12")[0] == 404


def test_a_lock_without_a_keypad_is_refused(api: Call, world: World) -> None:
    world.nuki.add_lock(17000050, keypad=False)
    status, body = api("PUT", "/rooms/room-12", {**ROOM, "smartlockIds": [17000050]})
    assert status == 422, body
    assert "lock 17000050 has no keypad paired" in _fields(body)["smartlockIds.0"]


@pytest.mark.parametrize("state", ["EXPIRED", "CANCELLED", "INACTIVE", "ON_HOLD", "PENDING"])
def test_a_lock_whose_smart_hosting_subscription_is_not_in_force_is_refused(
    api: Call, world: World, state: str
) -> None:
    world.nuki.locks[17000099].subscription = state
    status, body = api("PUT", "/rooms/room-12", ROOM)
    assert status == 422, body
    assert set(_fields(body)) == {"smartlockIds.1"}
    assert f"Smart Hosting subscription that is {state}, not active" in _fields(body)["smartlockIds.1"]
    assert api("GET", "/rooms/room-12")[0] == 404


@pytest.mark.parametrize("state", ["ACTIVE", "PENDING_CANCEL", None])
def test_a_subscription_in_force_or_none_reported_is_taken(api: Call, world: World, state: str | None) -> None:
    world.nuki.locks[17000099].subscription = state
    assert api("PUT", "/rooms/room-12", ROOM)[0] == 201


def test_a_subscription_past_its_expiration_date_is_refused_whatever_its_state_says(api: Call, world: World) -> None:
    # The rule readiness applies before each arrival (core.readiness.not_in_force), at set-up too.
    world.nuki.locks[17000099].subscription = "ACTIVE"
    world.nuki.locks[17000099].subscription_ends = "2020-01-01T00:00:00.000Z"
    status, body = api("PUT", "/rooms/room-12", ROOM)
    assert status == 422, body
    assert "Smart Hosting subscription (ACTIVE) that expired at 2020-01-01T00:00:00Z" in _fields(body)["smartlockIds.1"]
    assert api("GET", "/rooms/room-12")[0] == 404


def test_every_bad_lock_is_named_at_once(api: Call, world: World) -> None:
    world.nuki.add_lock(17000050, keypad=False)
    world.nuki.locks[17000099].subscription = "EXPIRED"
    status, body = api("PUT", "/rooms/room-12", {**ROOM, "smartlockIds": [17000050, 17000001, 17999999, 17000099]})
    assert status == 422
    assert set(_fields(body)) == {"smartlockIds.0", "smartlockIds.2", "smartlockIds.3"}


def test_a_lock_nuki_refuses_access_to_is_named(api: Call, world: World) -> None:
    world.nuki.fail("get_smartlock", NukiAuthError("Forbidden", status=403, operation="GET /smartlock/{smartlockId}"))
    status, body = api("PUT", "/rooms/room-12", ROOM)
    assert status == 422
    assert "Nuki refuses access to lock 17000001 (403)" in _fields(body)["smartlockIds.0"]


def test_a_refusal_a_retry_will_not_fix_is_named(api: Call, world: World) -> None:
    world.nuki.fail("get_smartlock", NukiRefused("Account not paid", status=402, operation="GET /smartlock/{id}"))
    status, body = api("PUT", "/rooms/room-12", ROOM)
    assert status == 422
    assert "lock 17000001 is refused by Nuki" in _fields(body)["smartlockIds.0"]


@pytest.mark.parametrize(
    "error",
    [
        NukiUnavailable("GET /smartlock/{smartlockId} failed: HTTP 503", status=503),
        NukiUnavailable("GET /smartlock/{smartlockId} failed: timeout", status=None),
        NukiAuthError("Your access token is not authorized", status=401),
        ConnectionError("boom"),
    ],
    ids=["503", "timeout", "token-refused", "unexpected"],
)
def test_nuki_out_of_reach_is_a_503_naming_the_problem_and_nothing_is_written(
    api: Call, world: World, error: Exception
) -> None:
    # Given a room that exists already
    assert api("PUT", "/rooms/room-12", ROOM)[0] == 201
    before = api("GET", "/rooms/room-12")
    # When it is replaced while Nuki cannot be asked
    world.nuki.fail("get_smartlock", error)
    status, body = api("PUT", "/rooms/room-12", {**ROOM, "name": "Room 12 renamed"})
    # Then 503 names the lock and what went wrong, and the room is as it was
    assert status == 503, body
    assert body["code"] == "upstream_unavailable"
    assert "lock 17000001" in body["message"]
    assert "nothing was written" in body["message"]
    assert set(_fields(body)) == {"smartlockIds.0"}
    assert api("GET", "/rooms/room-12") == before
