"""Nuki's rules for authorizations: token, code rules, one code per lock, names, 423, unknown ids."""

from __future__ import annotations

import pytest

from tests.functional.sandbox.helpers import LOCK_A, LOCK_B, NukiApi, Sim, eventually, keypad_body

UNAUTHORIZED = {"detailMessage": "Your access token is not authorized", "stackTrace": [], "suppressedExceptions": []}

EVERY_ROUTE = [
    ("GET", "/smartlock"),
    ("GET", f"/smartlock/{LOCK_A}"),
    ("GET", f"/smartlock/{LOCK_A}/auth"),
    ("GET", "/smartlock/auth"),
    ("GET", f"/smartlock/{LOCK_A}/auth/6ab2be33a7fc3019addfa5d1"),
    ("PUT", f"/smartlock/{LOCK_A}/auth"),
    ("PUT", "/smartlock/auth"),
    ("POST", f"/smartlock/{LOCK_A}/auth/6ab2be33a7fc3019addfa5d1"),
    ("DELETE", f"/smartlock/{LOCK_A}/auth/6ab2be33a7fc3019addfa5d1"),
    ("DELETE", "/smartlock/auth"),
    ("GET", f"/smartlock/{LOCK_A}/log"),
    ("GET", "/smartlock/log"),
    ("POST", f"/smartlock/{LOCK_A}/sync"),
    ("GET", "/api/decentralWebhook"),
    ("PUT", "/api/decentralWebhook"),
    ("DELETE", "/api/decentralWebhook/1"),
]


@pytest.mark.parametrize(("method", "path"), EVERY_ROUTE)
def test_every_route_refuses_a_wrong_token_with_nukis_401(nuki: NukiApi, lock_a: int, method: str, path: str) -> None:
    # Given a lock, When any Nuki route is called with a wrong token
    response = nuki.call(method, path, token="wrong", json=keypad_body(483726))
    # Then it answers Nuki's 401 body (and the status is declared by the overlaid spec)
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


def test_missing_authorization_header_is_401(nuki: NukiApi) -> None:
    response = nuki.session.get(nuki.base + "/smartlock", timeout=5)
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


def test_a_created_code_shows_with_both_ids_after_the_sync_delay(nuki: NukiApi, lock_a: int) -> None:
    # When a keypad code is created
    response = nuki.put(f"/smartlock/{lock_a}/auth", json=keypad_body(483726, "SK-B1001"))
    # Then Nuki answers 204 without a body and without an id
    assert response.status_code == 204
    assert response.content == b""
    # And the code is not there yet
    assert nuki.auths(lock_a) == []
    # And then it is, with a 24-hex id, an integer authId and the restrictions sent
    auth = nuki.wait_for_code(lock_a, 483726)
    assert len(auth["id"]) == 24
    assert int(auth["id"], 16) >= 0
    assert isinstance(auth["authId"], int)
    assert auth["type"] == 13
    assert auth["name"] == "SK-B1001"
    assert auth["enabled"] is True
    assert auth["allowedFromDate"] == "2020-01-01T00:00:00.000Z"
    assert auth["allowedUntilDate"] == "2099-01-01T00:00:00.000Z"
    assert auth["allowedWeekDays"] == 127
    assert "operationId" not in auth
    # And it can be read by id
    one = nuki.get(f"/smartlock/{lock_a}/auth/{auth['id']}")
    assert one.status_code == 200
    assert one.json() == auth


@pytest.mark.parametrize(
    "code",
    [12345, 1234567, 483706, 123456, 129999, 100000, 999990],
)
def test_codes_breaking_nukis_rules_answer_400_naming_the_code(nuki: NukiApi, lock_a: int, code: int) -> None:
    response = nuki.put(f"/smartlock/{lock_a}/auth", json=keypad_body(code))
    assert response.status_code == 400
    assert response.json()["detailMessage"] == f"The supplied value '{code}' for parameter 'code' is not valid"


def test_a_missing_code_is_400_null(nuki: NukiApi, lock_a: int) -> None:
    body = keypad_body(483726)
    del body["code"]
    response = nuki.put(f"/smartlock/{lock_a}/auth", json=body)
    assert response.status_code == 400
    assert response.json()["detailMessage"] == "The supplied value 'null' for parameter 'code' is not valid"


def test_valid_codes_pass(nuki: NukiApi, lock_a: int) -> None:
    for code in (111111, 211111, 999999, 131313):
        assert nuki.put(f"/smartlock/{lock_a}/auth", json=keypad_body(code, f"SK-{code}")).status_code == 204


def test_type_13_on_a_lock_without_keypad_is_400(nuki: NukiApi, sim: Sim) -> None:
    sim.add_lock(LOCK_B, keypad=False)
    response = nuki.put(f"/smartlock/{LOCK_B}/auth", json=keypad_body(483726))
    assert response.status_code == 400
    assert response.json()["detailMessage"] == "The supplied value '13' for parameter 'type' is not valid"


def test_keypad_2_counts_as_a_keypad(nuki: NukiApi, sim: Sim) -> None:
    sim.add_lock(LOCK_B, keypad=False, keypad2=True)
    assert nuki.put(f"/smartlock/{LOCK_B}/auth", json=keypad_body(483726)).status_code == 204


@pytest.mark.parametrize(
    ("change", "parameter"),
    [
        ({"remoteAllowed": None}, "remoteAllowed"),
        ({"name": None}, "name"),
        ({"code": "483726"}, "code"),
        ({"allowedWeekDays": 128}, "allowedWeekDays"),
        ({"allowedFromDate": "1788213600"}, "allowedFromDate"),
        ({"type": "13"}, "type"),
    ],
)
def test_body_schema_violations_are_400(nuki: NukiApi, lock_a: int, change: dict[str, object], parameter: str) -> None:
    # Given a body with a required field missing (None drops it) or a field of the wrong type
    body = {k: v for k, v in {**keypad_body(483726), **change}.items() if v is not None}
    # When it is sent
    response = nuki.put(f"/smartlock/{lock_a}/auth", json=body)
    # Then Nuki's 400 names the parameter
    assert response.status_code == 400
    assert f"for parameter '{parameter}'" in response.json()["detailMessage"]


def test_a_body_that_is_not_json_is_400(nuki: NukiApi, lock_a: int) -> None:
    response = nuki.put(f"/smartlock/{lock_a}/auth", data=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400


def test_app_auth_needs_an_account_user(nuki: NukiApi, lock_a: int) -> None:
    response = nuki.put(f"/smartlock/{lock_a}/auth", json={"name": "Guest app", "remoteAllowed": True})
    assert response.status_code == 400
    assert "parameter 'accountUserId'" in response.json()["detailMessage"]
    # an account user the account does not have is refused too
    unknown = nuki.put(
        f"/smartlock/{lock_a}/auth", json={"name": "Guest app", "remoteAllowed": True, "accountUserId": 7}
    )
    assert unknown.status_code == 400
    uid = nuki.put("/account/user", json={"email": "guest@example.org", "name": "Guest"}).json()["accountUserId"]
    ok = nuki.put(f"/smartlock/{lock_a}/auth", json={"name": "Guest app", "remoteAllowed": True, "accountUserId": uid})
    assert ok.status_code == 204
    auth = eventually(lambda: nuki.auths(lock_a))[0]
    assert auth["type"] == 0
    assert auth["accountUserId"] == uid
    assert "code" not in auth


def test_keypad_name_over_20_characters_is_422_with_restlets_body(nuki: NukiApi, lock_a: int) -> None:
    response = nuki.put(f"/smartlock/{lock_a}/auth", json=keypad_body(483726, "x" * 21))
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == 422
    assert body["reasonPhrase"] == "Unprocessable Entity"
    assert body["description"]
    # 20 characters are fine
    assert nuki.put(f"/smartlock/{lock_a}/auth", json=keypad_body(483726, "x" * 20)).status_code == 204


def test_a_code_exists_once_per_lock_counting_pending_writes(nuki: NukiApi, lock_a: int, sim: Sim) -> None:
    # Given a create that is still pending
    sim.config(syncDelaySeconds=0.5)
    assert nuki.put(f"/smartlock/{lock_a}/auth", json=keypad_body(483726, "SK-1")).status_code == 204
    # When the same code is created again before it shows
    again = nuki.put(f"/smartlock/{lock_a}/auth", json=keypad_body(483726, "SK-2"))
    # Then 409
    assert again.status_code == 409
    # And also once it shows
    nuki.wait_for_code(lock_a, 483726)
    assert nuki.put(f"/smartlock/{lock_a}/auth", json=keypad_body(483726, "SK-3")).status_code == 409
    # And only one code is there
    assert len(nuki.auths(lock_a)) == 1


def test_the_same_code_on_another_lock_is_fine(nuki: NukiApi, lock_a: int, sim: Sim) -> None:
    sim.add_lock(LOCK_B)
    nuki.create_code(lock_a, 483726)
    assert nuki.put(f"/smartlock/{LOCK_B}/auth", json=keypad_body(483726)).status_code == 204


def test_a_foreign_code_blocks_the_same_code(nuki: NukiApi, lock_a: int, sim: Sim) -> None:
    # Given a code someone added in the Nuki app (visible at once)
    foreign = sim.foreign_code(lock_a, 555555, "Cleaner")
    assert nuki.auth_with_code(lock_a, 555555) == foreign
    # When we try to create the same code, Then 409
    assert nuki.put(f"/smartlock/{lock_a}/auth", json=keypad_body(555555)).status_code == 409
    # And the control route itself refuses a second one with the same code
    assert sim.call("POST", f"/_sim/smartlocks/{lock_a}/auths", json={"name": "x", "code": 555555}).status_code == 409


def test_multi_lock_create_puts_one_auth_on_each_lock(nuki: NukiApi, lock_a: int, sim: Sim) -> None:
    sim.add_lock(LOCK_B)
    body = {**keypad_body(483726), "smartlockIds": [lock_a, LOCK_B]}
    assert nuki.put("/smartlock/auth", json=body).status_code == 204
    on_a = nuki.wait_for_code(lock_a, 483726)
    on_b = nuki.wait_for_code(LOCK_B, 483726)
    assert on_a["id"] != on_b["id"]
    assert {a["smartlockId"] for a in nuki.get("/smartlock/auth").json()} == {lock_a, LOCK_B}


def test_multi_lock_create_is_all_or_nothing(nuki: NukiApi, lock_a: int, sim: Sim) -> None:
    # Given the code is taken on lock B only
    sim.add_lock(LOCK_B)
    sim.foreign_code(LOCK_B, 483726)
    # When it is created on A and B together
    response = nuki.put("/smartlock/auth", json={**keypad_body(483726), "smartlockIds": [lock_a, LOCK_B]})
    # Then 409 and nothing is pending on A either
    assert response.status_code == 409
    assert sim.state(lock_a)["pending"] == []
    # And a 400 on one lock (no keypad) refuses all of it too
    sim.add_lock(17000003, keypad=False)
    response = nuki.put("/smartlock/auth", json={**keypad_body(634781), "smartlockIds": [lock_a, 17000003]})
    assert response.status_code == 400
    assert sim.state(lock_a)["pending"] == []
    # And a missing or unknown lock list is 400
    assert nuki.put("/smartlock/auth", json=keypad_body(634781)).status_code == 400
    assert nuki.put("/smartlock/auth", json={**keypad_body(634781), "smartlockIds": [99]}).status_code == 400


def test_update_replaces_restrictions_and_keeps_the_rest(nuki: NukiApi, lock_a: int) -> None:
    auth = nuki.create_code(lock_a, 483726)
    # When the update sends a new window and code but no weekday/time fields
    update = {
        "name": "SK-B1001",
        "code": 634781,
        "allowedFromDate": "2026-12-01T14:00:00Z",
        "allowedUntilDate": "2026-12-03T10:00:00+00:00",
    }
    assert nuki.post(f"/smartlock/{lock_a}/auth/{auth['id']}", json=update).status_code == 204
    # Then, after the delay, the new values are there and the omitted restrictions are gone
    updated = nuki.wait_for_code(lock_a, 634781)
    assert updated["id"] == auth["id"]
    assert updated["authId"] == auth["authId"]
    assert updated["allowedFromDate"] == "2026-12-01T14:00:00.000Z"
    assert updated["allowedUntilDate"] == "2026-12-03T10:00:00.000Z"
    assert "allowedWeekDays" not in updated
    assert "allowedFromTime" not in updated
    assert updated["enabled"] is True
    assert updated["remoteAllowed"] is False


def test_update_rules(nuki: NukiApi, lock_a: int, sim: Sim) -> None:
    auth = nuki.create_code(lock_a, 483726)
    sim.foreign_code(lock_a, 555555)
    path = f"/smartlock/{lock_a}/auth/{auth['id']}"
    assert nuki.post(path, json={"code": 634781}).status_code == 400  # name is required
    assert nuki.post(path, json={"name": "SK", "code": 120000}).status_code == 400
    assert nuki.post(path, json={"name": "x" * 21}).status_code == 422
    assert nuki.post(path, json={"name": "SK", "code": 555555}).status_code == 409
    # Keeping its own code is no conflict
    assert nuki.post(path, json={"name": "SK", "code": 483726, "enabled": False}).status_code == 204
    assert eventually(lambda: nuki.auth_with_code(lock_a, 483726)["enabled"] is False)  # type: ignore[index]


def test_a_second_write_while_one_is_pending_is_423(nuki: NukiApi, lock_a: int, sim: Sim) -> None:
    auth = nuki.create_code(lock_a, 483726)
    sim.config(syncDelaySeconds=1.0)  # time enough to try everything while the update is pending
    path = f"/smartlock/{lock_a}/auth/{auth['id']}"
    # Given an update that is pending
    assert nuki.post(path, json={"name": "SK-1", "code": 483726}).status_code == 204
    # Then the auth shows an operationId
    listed = nuki.auth_with_code(lock_a, 483726)
    assert listed is not None
    assert len(listed["operationId"]) == 24
    # And another update or a delete is 423 with Nuki's body
    second = nuki.post(path, json={"name": "SK-2", "code": 483726})
    assert second.status_code == 423
    assert second.json() == {"stackTrace": [], "suppressedExceptions": []}
    assert nuki.delete(path).status_code == 423
    assert nuki.call("DELETE", "/smartlock/auth", json=[auth["id"]]).status_code == 423
    # And once applied, the lock is released
    eventually(lambda: "operationId" not in (nuki.auth_with_code(lock_a, 483726) or {"operationId": 1}))
    assert nuki.auth_with_code(lock_a, 483726)["name"] == "SK-1"  # type: ignore[index]
    assert nuki.delete(path).status_code == 204


def test_delete_is_asynchronous(nuki: NukiApi, lock_a: int) -> None:
    auth = nuki.create_code(lock_a, 483726)
    assert nuki.delete(f"/smartlock/{lock_a}/auth/{auth['id']}").status_code == 204
    assert nuki.auth_with_code(lock_a, 483726) is not None  # still there
    eventually(lambda: nuki.auth_with_code(lock_a, 483726) is None)
    # And the code is free again
    assert nuki.put(f"/smartlock/{lock_a}/auth", json=keypad_body(483726)).status_code == 204


def test_bulk_delete_takes_ids_across_locks(nuki: NukiApi, lock_a: int, sim: Sim) -> None:
    sim.add_lock(LOCK_B)
    first = nuki.create_code(lock_a, 483726)
    second = nuki.create_code(LOCK_B, 634781)
    assert nuki.call("DELETE", "/smartlock/auth", json=[first["id"], second["id"]]).status_code == 204
    eventually(lambda: nuki.get("/smartlock/auth").json() == [])


def test_bulk_delete_with_an_unknown_id_deletes_nothing(nuki: NukiApi, lock_a: int) -> None:
    auth = nuki.create_code(lock_a, 483726)
    response = nuki.call("DELETE", "/smartlock/auth", json=[auth["id"], "0" * 24])
    assert response.status_code == 403
    assert nuki.call("DELETE", "/smartlock/auth", json={"ids": [auth["id"]]}).status_code == 400
    assert nuki.call("DELETE", "/smartlock/auth", json=[]).status_code == 400
    assert nuki.get(f"/smartlock/{lock_a}/auth/{auth['id']}").status_code == 200


def test_unknown_locks_and_auths_answer_what_the_spec_declares(nuki: NukiApi, lock_a: int) -> None:
    unknown_auth = "6ab2be33a7fc3019addfa5d1"
    assert nuki.get("/smartlock/99").status_code == 404
    assert nuki.get("/smartlock/99/auth").status_code == 403
    assert nuki.get(f"/smartlock/{lock_a}/auth/{unknown_auth}").status_code == 403
    assert nuki.post(f"/smartlock/{lock_a}/auth/{unknown_auth}", json={"name": "x"}).status_code == 403
    assert nuki.delete(f"/smartlock/{lock_a}/auth/{unknown_auth}").status_code == 403
    assert nuki.put("/smartlock/99/auth", json=keypad_body(483726)).status_code == 400
    assert nuki.post("/smartlock/99/sync").status_code == 400
    assert nuki.get("/smartlock/99/log").json() == []
    # An auth of lock A is not reachable through lock B
    auth = nuki.create_code(lock_a, 483726)
    assert nuki.get(f"/smartlock/99/auth/{auth['id']}").status_code == 403


def test_smartlocks_are_listed_with_their_keypad_and_server_state(nuki: NukiApi, sim: Sim) -> None:
    sim.add_lock(LOCK_A, name="Room 12")
    sim.add_lock(LOCK_B, keypad=False, online=False)
    locks = {lock["smartlockId"]: lock for lock in nuki.get("/smartlock").json()}
    assert locks[LOCK_A]["name"] == "Room 12"
    assert locks[LOCK_A]["config"]["keypadPaired"] is True
    assert locks[LOCK_A]["serverState"] == 0
    assert locks[LOCK_B]["config"]["keypadPaired"] is False
    assert locks[LOCK_B]["serverState"] == 4
    assert nuki.get(f"/smartlock/{LOCK_A}").json() == locks[LOCK_A]
    assert [lock["smartlockId"] for lock in nuki.get("/smartlock", params={"type": 4}).json()] == [LOCK_A, LOCK_B]
    assert nuki.get("/smartlock", params={"type": 2}).json() == []


def test_types_and_account_user_filters(nuki: NukiApi, lock_a: int, sim: Sim) -> None:
    sim.foreign_code(lock_a, 555555)
    owner = nuki.put("/account/user", json={"email": "owner@example.org", "name": "Owner"}).json()["accountUserId"]
    sim.call(
        "POST",
        f"/_sim/smartlocks/{lock_a}/auths",
        expect=201,
        json={"name": "Owner", "type": 0, "accountUserId": owner},
    )
    assert [a["type"] for a in nuki.auths(lock_a, types="13")] == [13]
    assert sorted(a["type"] for a in nuki.auths(lock_a, types="0,13")) == [0, 13]
    assert nuki.get(f"/smartlock/{lock_a}/auth", params={"types": "x"}).json() == []  # no 400 declared
    assert [a["name"] for a in nuki.get("/smartlock/auth", params={"accountUserId": owner}).json()] == ["Owner"]
    assert [a["name"] for a in nuki.get("/smartlock/auth", params={"accountUserId": -1}).json()] == ["Cleaner"]
