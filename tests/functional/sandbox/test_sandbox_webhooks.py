"""Decentral webhooks: registration, signed deliveries of the registered features, retries."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from local.nuki_sandbox import RunningSandbox
from local.nuki_spec import validate_definition
from tests.functional.sandbox.helpers import NukiApi, Receiver, Sim, eventually, keypad_body

ALL_DEVICE_FEATURES = ["DEVICE_STATUS", "DEVICE_LOGS", "DEVICE_AUTHS"]


def register(nuki: NukiApi, url: str, features: list[str]) -> dict[str, Any]:
    response = nuki.put("/api/decentralWebhook", json={"webhookUrl": url, "webhookFeatures": features})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_registration_returns_a_secret_that_listing_does_not(nuki: NukiApi, receiver: Receiver) -> None:
    # When a webhook is registered
    hook = register(nuki, receiver.url, ["DEVICE_AUTHS", "DEVICE_LOGS"])
    # Then the answer carries id, a long random hex secret, the url and the features
    assert isinstance(hook["id"], int)
    assert len(hook["secret"]) >= 40
    assert int(hook["secret"], 16) >= 0
    assert hook["webhookUrl"] == receiver.url
    assert hook["webhookFeatures"] == ["DEVICE_AUTHS", "DEVICE_LOGS"]
    # And the list shows the registration without its secret
    listed = nuki.get("/api/decentralWebhook").json()
    assert listed == [{"id": hook["id"], "webhookUrl": receiver.url, "webhookFeatures": hook["webhookFeatures"]}]
    # And a second registration gets another secret
    assert register(nuki, receiver.url, ["DEVICE_LOGS"])["secret"] != hook["secret"]
    # And delete removes it; deleting again is 403
    assert nuki.delete(f"/api/decentralWebhook/{hook['id']}").status_code == 204
    assert [h["id"] for h in nuki.get("/api/decentralWebhook").json()] != [hook["id"]]
    assert nuki.delete(f"/api/decentralWebhook/{hook['id']}").status_code == 403


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://staykey.example.org/webhooks/nuki", True),
        ("http://127.0.0.1:3000/webhooks/nuki", True),
        ("http://localhost:3000/webhooks/nuki", True),
        ("http://staykey.example.org/webhooks/nuki", False),
        ("ftp://127.0.0.1/x", False),
        ("not a url", False),
    ],
)
def test_webhook_urls_must_be_https_or_loopback_http(nuki: NukiApi, url: str, ok: bool) -> None:
    response = nuki.put("/api/decentralWebhook", json={"webhookUrl": url, "webhookFeatures": ["DEVICE_LOGS"]})
    assert response.status_code == (200 if ok else 400)


@pytest.mark.parametrize(
    "body",
    [
        {"webhookUrl": "https://x.example/h"},
        {"webhookUrl": "https://x.example/h", "webhookFeatures": ["DEVICE_NOPE"]},
        {"webhookUrl": "https://x.example/h", "webhookFeatures": []},
        {"webhookFeatures": ["DEVICE_LOGS"]},
    ],
)
def test_bad_registrations_are_400(nuki: NukiApi, body: dict[str, Any]) -> None:
    assert nuki.put("/api/decentralWebhook", json=body).status_code == 400


def test_deliveries_are_signed_over_the_exact_bytes(nuki: NukiApi, lock_a: int, sim: Sim, receiver: Receiver) -> None:
    # Given a registration for DEVICE_AUTHS
    hook = register(nuki, receiver.url, ["DEVICE_AUTHS"])
    # When a code is created and applied
    nuki.create_code(lock_a, 483726)
    # Then the receiver gets one POST with Nuki's headers and a signature over the raw body
    got = receiver.wait_for("DEVICE_AUTHS")[0]
    assert got.path == "/webhooks/nuki"
    assert got.headers["Content-Type"] == "application/json; charset=UTF-8"
    expected = hmac.new(hook["secret"].encode("utf-8"), got.body, hashlib.sha256).hexdigest()
    assert got.headers["X-Nuki-Signature-SHA256"] == expected
    assert expected == expected.lower()
    # And the delivery log shows the same bytes and a success
    delivery = sim.deliveries()[0]
    assert delivery["body"].encode("utf-8") == got.body
    assert delivery["signature"] == expected
    assert delivery["status"] == "delivered"
    assert delivery["attempts"][0]["status"] == 200


def test_device_auths_on_create_update_and_delete(nuki: NukiApi, lock_a: int, receiver: Receiver) -> None:
    register(nuki, receiver.url, ["DEVICE_AUTHS"])
    auth = nuki.create_code(lock_a, 483726, "SK-B1001")
    assert (
        nuki.post(f"/smartlock/{lock_a}/auth/{auth['id']}", json={"name": "SK-B1001", "code": 634781}).status_code
        == 204
    )
    nuki.wait_for_code(lock_a, 634781)
    assert nuki.delete(f"/smartlock/{lock_a}/auth/{auth['id']}").status_code == 204
    payloads = [r.payload for r in receiver.wait_for("DEVICE_AUTHS", 3)]
    assert [p["deleted"] for p in payloads] == [False, False, True]
    assert [p["smartlockAuth"]["code"] for p in payloads] == [483726, 634781, 634781]
    for payload in payloads:
        assert list(payload) == ["feature", "deleted", "smartlockAuth"]
        embedded = payload["smartlockAuth"]
        assert validate_definition("SmartlockAuth", embedded) == []
        assert (embedded["id"], embedded["authId"], embedded["smartlockId"]) == (auth["id"], auth["authId"], lock_a)
        assert embedded["type"] == 13
        assert embedded["name"] == "SK-B1001"
        assert "operationId" not in embedded
    assert payloads[0]["smartlockAuth"]["allowedFromDate"] == "2020-01-01T00:00:00.000Z"


def test_device_auths_is_sent_when_applied_not_when_accepted(
    nuki: NukiApi, lock_a: int, sim: Sim, receiver: Receiver, running: RunningSandbox
) -> None:
    register(nuki, receiver.url, ["DEVICE_AUTHS"])
    sim.config(syncDelaySeconds=0.3)
    assert nuki.put(f"/smartlock/{lock_a}/auth", json=keypad_body(483726)).status_code == 204
    assert running.sandbox.wait_for_deliveries(1)
    assert receiver.received == []
    receiver.wait_for("DEVICE_AUTHS")


def test_only_registered_features_are_delivered(nuki: NukiApi, lock_a: int, sim: Sim, receiver: Receiver) -> None:
    # Given one registration for logs only
    register(nuki, receiver.url, ["DEVICE_LOGS"])
    # When auths change, the lock goes offline and a keypad entry happens
    nuki.create_code(lock_a, 483726)
    sim.patch_lock(lock_a, online=False)
    sim.keypad(lock_a, 483726)
    # Then only the log arrives
    receiver.wait_for("DEVICE_LOGS")
    assert receiver.features() == ["DEVICE_LOGS"]


def test_device_logs_for_every_entry(nuki: NukiApi, lock_a: int, sim: Sim, receiver: Receiver) -> None:
    register(nuki, receiver.url, ["DEVICE_LOGS"])
    auth = nuki.create_code(lock_a, 483726, "SK-B1001")
    ok = sim.keypad(lock_a, 483726)
    bad = sim.keypad(lock_a, 999999)
    manual = sim.log(lock_a, action=2, trigger=1)
    got = receiver.wait_for("DEVICE_LOGS", 3)
    logs = [r.payload["smartlockLog"] for r in got]
    assert [entry["id"] for entry in logs] == [ok["logId"], bad["logId"], manual["id"]]
    for received, entry in zip(got, logs, strict=True):
        assert list(received.payload) == ["feature", "smartlockLog"]
        assert validate_definition("SmartlockLog", entry) == []
    assert logs[0]["authId"] == auth["id"]
    assert logs[0]["name"] == "SK-B1001"
    assert logs[0]["state"] == 0
    assert logs[1]["state"] == 224
    # And the same entries are what the log route answers
    assert nuki.get(f"/smartlock/{lock_a}/log").json() == list(reversed(logs))


def test_device_status_on_online_changes_and_battery(
    nuki: NukiApi, lock_a: int, sim: Sim, receiver: Receiver, running: RunningSandbox
) -> None:
    register(nuki, receiver.url, ["DEVICE_STATUS"])
    sim.patch_lock(lock_a, online=False)
    sim.patch_lock(lock_a, online=False)  # no change, no webhook
    sim.patch_lock(lock_a, online=True, batteryCharge=15, keypadBatteryCritical=True)
    sim.patch_lock(lock_a, name="Room 12a")  # not a status change
    assert running.sandbox.wait_for_deliveries(3)
    got = receiver.of("DEVICE_STATUS")
    assert len(got) == 2
    first, second = (r.payload for r in got)
    assert set(first) == {"feature", "smartlockId", "state", "serverState", "adminPinState"}
    assert first["smartlockId"] == lock_a
    assert first["serverState"] == 4
    assert second["serverState"] == 0
    assert second["state"]["batteryCharge"] == 15
    assert second["state"]["keypadBatteryCritical"] is True
    assert validate_definition("Smartlock.State", second["state"]) == []
    assert nuki.get(f"/smartlock/{lock_a}").json()["state"]["batteryCharge"] == 15


def test_a_failing_receiver_gets_retries(nuki: NukiApi, lock_a: int, sim: Sim, receiver: Receiver) -> None:
    # Given a receiver that fails twice (the fixture retries after 0.05 s and 0.1 s)
    register(nuki, receiver.url, ["DEVICE_LOGS"])
    receiver.fail_next = 2
    # When a log entry is made
    sim.log(lock_a, action=1, trigger=5)
    # Then the third attempt lands
    receiver.wait_for("DEVICE_LOGS")
    delivery = eventually(lambda: [d for d in sim.deliveries() if d["status"] == "delivered"])[0]
    assert [a["status"] for a in delivery["attempts"]] == [500, 500, 200]


def test_a_receiver_that_keeps_failing_is_given_up(nuki: NukiApi, lock_a: int, sim: Sim, receiver: Receiver) -> None:
    register(nuki, receiver.url, ["DEVICE_LOGS"])
    receiver.fail_next = 10
    sim.log(lock_a, action=1, trigger=5)
    delivery = eventually(lambda: [d for d in sim.deliveries() if d["status"] == "failed"])[0]
    assert [a["status"] for a in delivery["attempts"]] == [500, 500, 500]


def test_a_receiver_that_is_down_is_recorded(nuki: NukiApi, lock_a: int, sim: Sim) -> None:
    register(nuki, "http://127.0.0.1:9/webhooks/nuki", ["DEVICE_LOGS"])  # port 9: nothing listens
    sim.log(lock_a, action=1, trigger=5)
    delivery = eventually(lambda: [d for d in sim.deliveries() if d["status"] == "failed"])[0]
    assert len(delivery["attempts"]) == 3
    assert all(a["status"] is None and a["error"] for a in delivery["attempts"])


def test_deliveries_keep_event_order_across_registrations(
    nuki: NukiApi, lock_a: int, sim: Sim, receiver: Receiver
) -> None:
    register(nuki, receiver.url, ["DEVICE_LOGS"])
    register(nuki, receiver.url, ["DEVICE_LOGS", "DEVICE_AUTHS"])
    ids = [sim.log(lock_a, action=1, trigger=5)["id"] for _ in range(10)]
    got = receiver.wait_for("DEVICE_LOGS", 20)
    assert [r.payload["smartlockLog"]["id"] for r in got] == [i for i in ids for _ in range(2)]
    sim.call("DELETE", "/_sim/webhooks/deliveries", expect=204)
    assert sim.deliveries() == []
