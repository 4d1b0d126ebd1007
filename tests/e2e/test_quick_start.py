"""The README's quick start works as written: `make local` (on free ports, its env file in a
directory of the test's own), then the README's quick-start shell block, extracted from the
README and run as it stands with bash in that directory, and the booking turns `active`.

Only the ports differ from a developer's run: LOCAL_*_PORT=0 picks free ones, and the env file the
block sources says which, as it does for a developer (LOCAL_ENV_FILE puts it where the block's
`source .local-stack/env` finds it: in the directory bash runs in).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from local import cfn
from tests.e2e.pins import LEDGER

pytestmark = pytest.mark.e2e

README = cfn.ROOT / "README.md"
BLOCK = re.compile(r"<!-- quick-start:begin -->\s*```sh\n(?P<script>.*?)```\s*<!-- quick-start:end -->", re.DOTALL)


def quick_start_block() -> str:
    match = BLOCK.search(README.read_text(encoding="utf-8"))
    assert match, "README.md has no quick-start block between <!-- quick-start:begin/end --> markers"
    return match.group("script")


def _env(path: Path) -> dict[str, str]:
    line = path.read_text(encoding="utf-8").strip()
    assert line.startswith("export "), line
    return dict(pair.split("=", 1) for pair in line.removeprefix("export ").split())


@pytest.fixture(scope="module")
def make_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """`make local` in the foreground, as a developer starts it, until the test is done."""
    home = tmp_path_factory.mktemp("quick-start")
    env_file = home / ".local-stack" / "env"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("LOCAL_", "NUKI_"))},
        "LOCAL_GATEWAY_PORT": "0",
        "LOCAL_NUKI_PORT": "0",
        "LOCAL_AWS_PORT": "0",
        "LOCAL_ENV_FILE": str(env_file),
        "LOCAL_LOG_DIR": str(home / "logs"),
    }
    output = (home / "make-local.out").open("wb")
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "local"],
        cwd=str(cfn.ROOT),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while not env_file.exists():
            assert proc.poll() is None, (home / "make-local.out").read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "make local did not write its env file within 180 s"
            time.sleep(0.2)
        yield home, _env(env_file)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # Ctrl-C's equivalent for make local and its children
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        output.close()
        LEDGER.add_logs(home / "logs")
    # make exits at once on SIGTERM; the stack's own process may still be stopping.
    gone_by = time.monotonic() + 30
    while env_file.exists() and time.monotonic() < gone_by:
        time.sleep(0.2)
    assert not env_file.exists(), (
        "make local leaves no env file behind once it stops; its output:\n"
        + (home / "make-local.out").read_text(errors="replace")[-2000:]
    )


def test_the_readme_quick_start_run_as_written_ends_in_an_active_booking(
    make_local: tuple[Path, dict[str, str]],
) -> None:
    home, exported = make_local
    assert set(exported) == {"API", "KEY", "NUKI"}
    script = quick_start_block()
    assert "source .local-stack/env" in script
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=str(home),
        env={k: v for k, v in os.environ.items() if k not in ("API", "KEY", "NUKI")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    room, created, got, entry, activity = answers
    LEDGER.add({created["pin"]})
    assert room["roomId"] == "room-12"
    assert created["bookingId"] == "B-1001"
    assert created["status"] in ("provisioning", "active"), created
    assert entry["success"] is True, entry

    with requests.Session() as http:
        http.trust_env = False
        url, headers = exported["API"] + "/bookings/B-1001", {"x-api-key": exported["KEY"]}
        deadline = time.monotonic() + 30
        booking = http.get(url, headers=headers, timeout=30).json()
        while booking["status"] != "active" and time.monotonic() < deadline:
            assert booking["status"] in ("provisioning", "active"), booking
            time.sleep(0.5)
            booking = http.get(url, headers=headers, timeout=30).json()
        assert booking["status"] == "active", booking
        assert [lock["status"] for lock in booking["locks"]] == ["active", "active"]
        assert got["status"] in ("provisioning", "active")
        # The entry the block printed (or, on a slow machine, a moment later)
        items = activity["items"]
        while not items and time.monotonic() < deadline:
            time.sleep(0.5)
            items = http.get(url + "/activity", headers=headers, timeout=30).json()["items"]
    assert items, "the guest's keypad entry is in the booking's activity"
    assert items[0]["smartlockId"] == 17000001
    assert items[0]["success"] is True
