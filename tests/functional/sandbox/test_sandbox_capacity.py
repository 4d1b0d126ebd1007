"""200 keypad codes per lock: the 201st is accepted (204) and lands with Nuki's 0x29 error."""

from __future__ import annotations

from local.nuki_spec import validate_definition
from tests.functional.sandbox.helpers import NukiApi, Receiver, Sim, eventually, keypad_body, valid_codes


def fill(nuki: NukiApi, smartlock_id: int, count: int) -> list[int]:
    codes = []
    for n, code in zip(range(count), valid_codes(), strict=False):
        assert nuki.put(f"/smartlock/{smartlock_id}/auth", json=keypad_body(code, f"SK-{n}")).status_code == 204
        codes.append(code)
    return codes


def test_the_201st_keypad_code_lands_with_too_many_entries(
    nuki: NukiApi, lock_a: int, sim: Sim, receiver: Receiver
) -> None:
    # Given a lock holding 200 keypad codes and a DEVICE_AUTHS webhook
    sim.config(syncDelaySeconds=0)
    fill(nuki, lock_a, 200)
    assert sim.state(lock_a)["keypadCodes"] == 200
    nuki.put("/api/decentralWebhook", json={"webhookUrl": receiver.url, "webhookFeatures": ["DEVICE_AUTHS"]})
    # When a 201st code is created
    response = nuki.put(f"/smartlock/{lock_a}/auth", json=keypad_body(987654, "SK-201"))
    # Then Nuki accepts it: it cannot know what the device holds
    assert response.status_code == 204
    # And it is listed with the device's error and announced with it
    auth = nuki.wait_for_code(lock_a, 987654)
    assert auth["error"].startswith("K_ERROR_TOO_MANY_ENTRIES (0x29)")
    delivered = receiver.wait_for("DEVICE_AUTHS")
    assert delivered[0].payload["smartlockAuth"]["error"] == auth["error"]
    assert validate_definition("SmartlockAuth", delivered[0].payload["smartlockAuth"]) == []
    # And it does not open the door
    assert sim.keypad(lock_a, 987654)["success"] is False
    # And it does not count as a working code, but its code stays taken until it is deleted
    assert sim.state(lock_a)["keypadCodes"] == 200
    assert nuki.put(f"/smartlock/{lock_a}/auth", json=keypad_body(987654, "SK-202")).status_code == 409
    assert nuki.delete(f"/smartlock/{lock_a}/auth/{auth['id']}").status_code == 204
    eventually(lambda: nuki.auth_with_code(lock_a, 987654) is None)


def test_freeing_a_slot_lets_the_next_code_work(nuki: NukiApi, lock_a: int, sim: Sim) -> None:
    sim.config(syncDelaySeconds=0)
    codes = fill(nuki, lock_a, 200)
    first = nuki.auth_with_code(lock_a, codes[0])
    assert first is not None
    assert nuki.delete(f"/smartlock/{lock_a}/auth/{first['id']}").status_code == 204
    eventually(lambda: nuki.auth_with_code(lock_a, codes[0]) is None)
    assert nuki.put(f"/smartlock/{lock_a}/auth", json=keypad_body(987654, "SK-new")).status_code == 204
    auth = nuki.wait_for_code(lock_a, 987654)
    assert "error" not in auth
    assert sim.keypad(lock_a, 987654)["success"] is True


def test_app_authorizations_do_not_use_keypad_slots(nuki: NukiApi, lock_a: int, sim: Sim) -> None:
    sim.config(syncDelaySeconds=0)
    fill(nuki, lock_a, 199)
    owner = nuki.put("/account/user", json={"email": "owner@example.org", "name": "Owner"}).json()["accountUserId"]
    body = {"name": "Owner", "remoteAllowed": True, "accountUserId": owner}
    assert nuki.put(f"/smartlock/{lock_a}/auth", json=body).status_code == 204
    assert nuki.put(f"/smartlock/{lock_a}/auth", json=keypad_body(987654, "SK-200")).status_code == 204
    assert "error" not in nuki.wait_for_code(lock_a, 987654)
