"""Every Nuki route answers what the (overlaid) spec declares; the control routes behave."""

from __future__ import annotations

from local.nuki_spec import find_operation, validate_definition
from tests.functional.sandbox.helpers import LOCK_B, NukiApi, Receiver, Sim, keypad_body

ROUTES = {
    ("get", "/smartlock"),
    ("get", "/smartlock/{smartlockId}"),
    ("get", "/smartlock/{smartlockId}/auth"),
    ("get", "/smartlock/auth"),
    ("get", "/smartlock/{smartlockId}/auth/{id}"),
    ("put", "/smartlock/{smartlockId}/auth"),
    ("put", "/smartlock/auth"),
    ("post", "/smartlock/{smartlockId}/auth/{id}"),
    ("delete", "/smartlock/{smartlockId}/auth/{id}"),
    ("delete", "/smartlock/auth"),
    ("get", "/smartlock/{smartlockId}/log"),
    ("get", "/smartlock/log"),
    ("post", "/smartlock/{smartlockId}/sync"),
    ("get", "/api/decentralWebhook"),
    ("put", "/api/decentralWebhook"),
    ("delete", "/api/decentralWebhook/{id}"),
}


def test_a_walk_through_every_route_conforms_to_the_spec(
    nuki: NukiApi, lock_a: int, sim: Sim, receiver: Receiver
) -> None:
    # Every call below goes through NukiApi.call, which asserts validate_response(...) == [].
    sim.add_lock(LOCK_B, online=False, keypad=False)
    hook = nuki.put("/api/decentralWebhook", json={"webhookUrl": receiver.url, "webhookFeatures": ["DEVICE_AUTHS"]})
    nuki.get("/api/decentralWebhook")
    nuki.get("/smartlock")
    nuki.get(f"/smartlock/{lock_a}")
    nuki.get(f"/smartlock/{LOCK_B}")
    nuki.get("/smartlock/1")
    auth = nuki.create_code(lock_a, 483726)
    sim.foreign_code(lock_a, 555555)
    nuki.put(f"/smartlock/{lock_a}/auth", json=keypad_body(555555))  # 409
    nuki.put(f"/smartlock/{lock_a}/auth", json=keypad_body(555555, "x" * 30))  # 422
    nuki.put(f"/smartlock/{LOCK_B}/auth", json=keypad_body(634781))  # 400
    nuki.put("/smartlock/auth", json={**keypad_body(634781), "smartlockIds": [lock_a]})
    nuki.put("/smartlock/auth", json={**keypad_body(634781), "smartlockIds": [lock_a]})  # 409 (pending)
    nuki.get(f"/smartlock/{lock_a}/auth", params={"types": "13"})
    nuki.get("/smartlock/auth")
    nuki.get(f"/smartlock/{lock_a}/auth/{auth['id']}")
    nuki.post(f"/smartlock/{lock_a}/auth/{auth['id']}", json={"name": "SK", "code": 483726})
    nuki.post(f"/smartlock/{lock_a}/auth/{auth['id']}", json={"name": "SK", "code": 483726})  # 423
    listed = nuki.auth_with_code(lock_a, 483726)
    assert listed is not None
    assert validate_definition("SmartlockAuth", listed) == []
    nuki.post(f"/smartlock/{lock_a}/auth/{auth['id']}", json={"name": "x" * 30})  # 423 (still pending)
    nuki.post(f"/smartlock/{lock_a}/sync")
    nuki.post(f"/smartlock/{lock_a}/auth/{auth['id']}", json={"name": "x" * 30})  # 422
    sim.keypad(lock_a, 483726)
    nuki.get(f"/smartlock/{lock_a}/log")
    nuki.get("/smartlock/log", params={"limit": 3})
    nuki.get("/smartlock/log", params={"fromDate": "1788213600"})  # 400
    nuki.delete(f"/smartlock/{lock_a}/auth/{auth['id']}")
    nuki.delete(f"/smartlock/{lock_a}/auth/{auth['id']}")  # 423
    nuki.call("DELETE", "/smartlock/auth", json=[listed["id"]])  # 423
    nuki.post(f"/smartlock/{lock_a}/sync")
    nuki.call("DELETE", "/smartlock/auth", json=[a["id"] for a in nuki.auths(lock_a)])
    nuki.delete(f"/api/decentralWebhook/{hook.json()['id']}")
    nuki.delete(f"/api/decentralWebhook/{hook.json()['id']}")  # 403
    # Then every route of our client was called, with a spread of statuses
    seen = {(op.method, op.template) for m, p, _ in nuki.seen if (op := find_operation(m, p.split("?")[0]))}
    assert seen == ROUTES
    assert {s for _, _, s in nuki.seen} >= {200, 204, 400, 403, 404, 409, 422, 423}


def test_control_route_errors(sim: Sim, lock_a: int) -> None:
    assert sim.call("POST", "/_sim/smartlocks", json={"smartlockId": lock_a}).status_code == 409
    assert sim.call("POST", "/_sim/smartlocks", json={"smartlockId": 5, "timezone": "Mars/Base"}).status_code == 400
    assert sim.call("POST", "/_sim/smartlocks", json={"smartlockId": 5, "colour": "red"}).status_code == 400
    assert sim.call("POST", "/_sim/smartlocks", json={"smartlockId": "5"}).status_code == 400
    assert sim.call("POST", "/_sim/smartlocks", data=b"[1]").status_code == 400
    assert sim.call("PATCH", "/_sim/smartlocks/99", json={"online": False}).status_code == 404
    assert sim.call("PATCH", f"/_sim/smartlocks/{lock_a}", json={"batteryCharge": 101}).status_code == 400
    assert sim.call("PATCH", f"/_sim/smartlocks/{lock_a}", json={"online": "no"}).status_code == 400
    assert sim.call("POST", f"/_sim/smartlocks/{lock_a}/keypad", json={"code": "483726"}).status_code == 400
    assert sim.call("GET", "/_sim/nothing").status_code == 404
    assert sim.call("DELETE", "/_sim/smartlocks").status_code == 405
    assert sim.call("PUT", "/_sim/config", json={"syncDelaySeconds": -1}).status_code == 400
    sim.add_lock(LOCK_B, keypad=False)
    assert sim.call("POST", f"/_sim/smartlocks/{LOCK_B}/keypad", json={"code": 483726}).status_code == 400


def test_locks_get_ids_and_names_by_default(sim: Sim) -> None:
    first = sim.call("POST", "/_sim/smartlocks", expect=201, json={}).json()
    second = sim.call("POST", "/_sim/smartlocks", expect=201).json()
    assert (first["smartlockId"], second["smartlockId"]) == (17000001, 17000002)
    assert first["name"] == "Smart Lock 17000001"
    assert validate_definition("Smartlock", first) == []
    states = sim.call("GET", "/_sim/smartlocks", expect=200).json()
    assert [s["smartlock"]["smartlockId"] for s in states] == [17000001, 17000002]


def test_foreign_auths_default_to_enabled_keypad_codes(sim: Sim, lock_a: int, nuki: NukiApi) -> None:
    auth = sim.foreign_code(lock_a, 555555, "Cleaner")
    assert (auth["type"], auth["enabled"], auth["remoteAllowed"]) == (13, True, False)
    disabled = sim.foreign_code(lock_a, 666666, "Spare", enabled=False)
    assert disabled["enabled"] is False
    assert sim.call("POST", f"/_sim/smartlocks/{lock_a}/auths", json={"name": "x", "code": 120000}).status_code == 400
    state = sim.state(lock_a)
    assert state["keypadCodes"] == 2
    assert state["keypadCapacity"] == 200
    assert [a["code"] for a in state["auths"]] == [555555, 666666]


def test_the_overlay_records_why_it_differs_from_the_spec() -> None:
    from local.nuki_spec import overlay_notes

    notes = "\n".join(overlay_notes())
    for status_note in ("422 declared on POST", "401 declared on PUT", "400 declared on GET", "ObjectId"):
        assert status_note in notes


def test_a_lock_reports_its_smart_hosting_subscription_and_the_control_routes_set_it(
    nuki: NukiApi, sim: Sim, lock_a: int
) -> None:
    # A sandbox lock has an active Smart Hosting subscription, shaped as Nuki's spec has it
    # (NukiApi.call asserts every answer conforms to the spec)
    current = nuki.get(f"/smartlock/{lock_a}").json()["currentSubscription"]
    assert current["state"] == "ACTIVE"
    assert validate_definition("ShsSubscription", current) == []
    # The control routes set another state, or none at all
    sim.patch_lock(lock_a, subscription="EXPIRED")
    assert nuki.get(f"/smartlock/{lock_a}").json()["currentSubscription"]["state"] == "EXPIRED"
    sim.patch_lock(lock_a, subscription=None)
    assert "currentSubscription" not in nuki.get(f"/smartlock/{lock_a}").json()
    sim.patch_lock(lock_a, name="still none")
    assert "currentSubscription" not in nuki.get(f"/smartlock/{lock_a}").json()
    sim.add_lock(LOCK_B, subscription="PENDING")
    assert nuki.get(f"/smartlock/{LOCK_B}").json()["currentSubscription"]["state"] == "PENDING"
    assert nuki.get("/smartlock").status_code == 200
    # A state Nuki's spec does not have is refused
    assert sim.call("PATCH", f"/_sim/smartlocks/{lock_a}", json={"subscription": "GOLD"}).status_code == 400
    assert sim.call("PATCH", f"/_sim/smartlocks/{lock_a}", json={"subscription": 1}).status_code == 400
