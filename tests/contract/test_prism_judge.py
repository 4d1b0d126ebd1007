"""An independent judge: Stoplight Prism, proxying between our functions and the Nuki sandbox,
checks every request our client sends and every answer the sandbox gives against Nuki's official
spec (with our documented overlay). We run a whole guest journey through it and require zero
violations. Prism is not ours, so this does not share a blind spot with local/nuki_spec.py.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from local.nuki_spec import load_spec
from local.stack import LocalStack, StackConfig

ROOT = Path(__file__).resolve().parents[2]
PRISM = ROOT / "node_modules" / ".bin" / "prism"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def judged_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, Path]]:
    if not PRISM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("Prism is not installed (make test installs it with npm ci)")
        pytest.skip("Prism is not installed: run `npm ci` (make test does)")
    work = tmp_path_factory.mktemp("prism")
    spec = work / "nuki-overlay.json"
    spec.write_text(__import__("json").dumps(load_spec()), encoding="utf-8")
    sandbox_port, prism_port = _free_port(), _free_port()
    log = work / "prism.log"
    with log.open("wb") as out:
        prism = subprocess.Popen(
            [
                str(PRISM),
                "proxy",
                str(spec),
                f"http://127.0.0.1:{sandbox_port}",
                "--errors",
                "-h",
                "127.0.0.1",
                "-p",
                str(prism_port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while b"Prism is listening" not in log.read_bytes():
            if prism.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Prism did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.2)
        config = StackConfig.from_env(
            {},
            gateway_port=0,
            nuki_port=sandbox_port,
            aws_port=0,
            sync_delay=0.3,
            nuki_api_url=f"http://127.0.0.1:{prism_port}",
            env={"CONFIRM_BACKOFF_SECONDS": "0.5,1,1,2", "LOCAL_RATE_EVENTS": "off"},
        )
        with LocalStack(config) as stack:
            yield stack, log
    finally:
        os.killpg(prism.pid, 15)
        prism.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


def _until(check: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_a_whole_journey_passes_prism_without_a_violation(judged_stack: tuple[LocalStack, Path]) -> None:
    stack, log = judged_stack
    shop = requests.Session()
    shop.headers["x-api-key"] = stack.config.api_key
    api, sim = stack.gateway_url, stack.nuki_url
    for lock_id in (17000001, 17000099):
        requests.post(
            f"{sim}/_sim/smartlocks",
            json={"smartlockId": lock_id, "name": "L", "keypad": True, "online": True},
            timeout=5,
        )
    assert (
        shop.put(
            f"{api}/rooms/r1",
            json={"name": "Room 1", "smartlockIds": [17000001, 17000099], "timezone": "Europe/Berlin"},
            timeout=10,
        ).status_code
        == 201
    )
    now = time.time()
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 86400))
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 2 * 86400))
    booking = {
        "bookingId": "B-PRISM",
        "roomId": "r1",
        "guest": {"name": "Ada", "email": "ada@example.org"},
        "checkIn": start,
        "checkOut": end,
    }
    created = shop.post(f"{api}/bookings", json=booking, timeout=30)
    assert created.status_code == 201, created.text
    pin = created.json()["pin"]

    def status() -> str:
        return str(shop.get(f"{api}/bookings/B-PRISM", timeout=10).json()["status"])

    assert _until(lambda: status() == "active"), status()
    # an update with the full restriction set, a keypad entry, then the removal
    assert shop.patch(f"{api}/bookings/B-PRISM", json={"checkOut": later}, timeout=30).status_code == 200
    assert _until(lambda: status() == "active"), status()
    entry = requests.post(f"{sim}/_sim/smartlocks/17000001/keypad", json={"code": int(pin)}, timeout=5).json()
    assert entry["success"]
    assert shop.post(f"{api}/bookings/B-PRISM/checkout", timeout=30).status_code == 200
    assert _until(lambda: status() == "revoked"), status()

    text = log.read_text(encoding="utf-8", errors="replace")
    forwarded = text.count("Forwarding")
    violations = [line for line in text.splitlines() if "✖" in line or "Violation" in line]
    assert forwarded >= 5, text[-3000:]  # the journey really went through Prism
    assert violations == []
