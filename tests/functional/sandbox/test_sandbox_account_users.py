"""Account users and app authorizations (type 0) in the sandbox: every route answers what the
(overlaid) spec declares (NukiApi.call asserts it), and the rules of local/nuki_sandbox/accounts.py."""

from __future__ import annotations

import pytest

from local.nuki_spec import find_operation, validate_definition
from tests.functional.sandbox.helpers import LOCK_B, NukiApi, Sim, eventually

ACCOUNT_ROUTES = {
    ("get", "/account/user"),
    ("put", "/account/user"),
    ("get", "/account/user/{accountUserId}"),
    ("post", "/account/user/{accountUserId}"),
    ("delete", "/account/user/{accountUserId}"),
}


def app_body(account_user_id: int | None, name: str = "SK B-1001") -> dict[str, object]:
    body: dict[str, object] = {
        "name": name,
        "type": 0,
        "remoteAllowed": False,
        "allowedFromDate": "2020-01-01T00:00:00.000Z",
        "allowedUntilDate": "2099-01-01T00:00:00.000Z",
        "allowedWeekDays": 127,
        "allowedFromTime": 0,
        "allowedUntilTime": 0,
    }
    if account_user_id is not None:
        body["accountUserId"] = account_user_id
    return body


def test_every_account_user_route_conforms_to_the_spec(nuki: NukiApi, lock_a: int) -> None:
    created = nuki.put("/account/user", json={"email": "ada@example.org", "name": "Ada Lovelace", "language": "de"})
    assert created.status_code == 200
    user = created.json()
    assert validate_definition("AccountUser", user) == []
    assert (user["email"], user["language"]) == ("ada@example.org", "de")
    uid = user["accountUserId"]
    # The same email again is refused (the only refusal the spec declares), without echoing it
    again = nuki.put("/account/user", json={"email": "ADA@example.org", "name": "Ada"})
    assert again.status_code == 400
    assert "ada@" not in again.text.lower()
    assert nuki.put("/account/user", json={"email": "grace@example.org"}).status_code == 400  # no name
    assert nuki.put("/account/user", json={"email": "g@example.org", "name": "G", "language": "pt"}).status_code == 400
    # Found by email (without case), paged, read, changed
    assert [u["accountUserId"] for u in nuki.get("/account/user", params={"email": "ADA@EXAMPLE.ORG"}).json()] == [uid]
    assert nuki.get("/account/user", params={"email": "nobody@example.org"}).json() == []
    assert len(nuki.get("/account/user", params={"offset": 0, "limit": 1}).json()) == 1
    assert nuki.get("/account/user", params={"offset": 1}).json() == []
    assert nuki.get(f"/account/user/{uid}").json()["name"] == "Ada Lovelace"
    assert nuki.get("/account/user/42").status_code == 401  # an id the account does not have
    assert nuki.post(f"/account/user/{uid}", json={"name": "Ada King"}).json()["name"] == "Ada King"
    other = nuki.put("/account/user", json={"email": "grace@example.org", "name": "Grace"}).json()
    assert nuki.post(f"/account/user/{other['accountUserId']}", json={"email": "ada@example.org"}).status_code == 409
    # An app authorization needs an account user the account has
    assert nuki.put(f"/smartlock/{lock_a}/auth", json=app_body(None)).status_code == 400
    assert nuki.put(f"/smartlock/{lock_a}/auth", json=app_body(999)).status_code == 400
    assert nuki.put(f"/smartlock/{lock_a}/auth", json=app_body(uid)).status_code == 204
    app = eventually(lambda: nuki.auths(lock_a, types="0"))
    assert (app[0]["type"], app[0]["accountUserId"], app[0]["name"]) == (0, uid, "SK B-1001")
    assert "code" not in app[0]
    assert validate_definition("SmartlockAuth", app[0]) == []
    assert nuki.auths(lock_a, types="13") == []
    # Deleting is asynchronous: operationId while pending, a second delete is 423, then gone
    assert nuki.delete(f"/account/user/{uid}").status_code == 204
    assert nuki.get(f"/account/user/{uid}").json()["operationId"]
    assert nuki.delete(f"/account/user/{uid}").status_code == 423
    eventually(lambda: nuki.get(f"/account/user/{uid}").status_code == 401)
    assert nuki.delete(f"/account/user/{uid}").status_code == 204  # nothing to delete
    assert nuki.auths(lock_a, types="0")  # its authorization stays until someone removes it
    seen = {(op.method, op.template) for m, p, _ in nuki.seen if (op := find_operation(m, p.split("?")[0]))}
    assert seen >= ACCOUNT_ROUTES


def test_the_guest_opens_with_the_app_only_inside_the_window(nuki: NukiApi, sim: Sim, lock_a: int) -> None:
    sim.add_lock(LOCK_B, keypad=False, online=False)
    uid = nuki.put("/account/user", json={"email": "ada@example.org", "name": "Ada"}).json()["accountUserId"]
    body = {
        **app_body(uid),
        "allowedFromDate": "2026-12-01T14:00:00.000Z",
        "allowedUntilDate": "2026-12-03T10:00:00.000Z",
    }
    assert nuki.put(f"/smartlock/{LOCK_B}/auth", json=body).status_code == 204
    sim.patch_lock(LOCK_B, online=True)
    auth = eventually(lambda: nuki.auths(LOCK_B, types="0"))[0]
    sim.patch_lock(LOCK_B, online=False)  # Bluetooth: the app works on an offline lock too
    inside = sim.call(
        "POST",
        f"/_sim/smartlocks/{LOCK_B}/app",
        expect=200,
        json={"accountUserId": uid, "date": "2026-12-02T09:00:00Z"},
    ).json()
    outside = sim.call(
        "POST",
        f"/_sim/smartlocks/{LOCK_B}/app",
        expect=200,
        json={"accountUserId": uid, "date": "2026-12-04T09:00:00Z"},
    ).json()
    assert (inside["success"], outside["success"]) == (True, False)
    logs = nuki.get(f"/smartlock/{LOCK_B}/log").json()
    by_id = {e["id"]: e for e in logs}
    ok = by_id[inside["logId"]]
    assert (ok["action"], ok["trigger"], ok["state"], ok["authId"], ok["accountUserId"]) == (1, 5, 0, auth["id"], uid)
    assert ok["name"] == "SK B-1001"
    refused = by_id[outside["logId"]]
    assert (refused["state"], refused["accountUserId"]) == (9, uid)
    assert "authId" not in refused
    for entry in logs:
        assert validate_definition("SmartlockLog", entry) == []


@pytest.mark.parametrize(
    "body", [{}, {"email": "a@example.org"}, {"email": "a@example.org", "name": "A", "language": "pt"}]
)
def test_control_account_users_refuse_bad_bodies(sim: Sim, body: dict[str, str]) -> None:
    assert sim.call("POST", "/_sim/account-users", json=body).status_code == 400


def test_control_lists_account_users(sim: Sim) -> None:
    sim.call("POST", "/_sim/account-users", expect=201, json={"email": "cleaner@example.org", "name": "Cleaner"})
    users = sim.call("GET", "/_sim/account-users", expect=200).json()
    assert [u["email"] for u in users] == ["cleaner@example.org"]
