"""``python -m local.nuki_sandbox``: settings from the environment, clean stop on SIGTERM/SIGINT."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def cli() -> Iterator[tuple[subprocess.Popen[str], str]]:
    env = {
        **os.environ,
        "LOCAL_NUKI_PORT": "0",
        "NUKI_API_TOKEN": "cli-token",
        "NUKI_SIM_SYNC_DELAY_SECONDS": "0.05",
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "local.nuki_sandbox", "--host", "127.0.0.1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:\d+", line)
    assert match, line + (process.stderr.read() if process.stderr else "")
    yield process, match.group(0)
    if process.poll() is None:
        process.kill()
        process.wait(5)


@pytest.mark.parametrize("stop_with", [signal.SIGTERM, signal.SIGINT])
def test_the_cli_serves_with_env_settings_and_stops_cleanly(
    cli: tuple[subprocess.Popen[str], str], stop_with: signal.Signals
) -> None:
    process, url = cli
    with requests.Session() as session:
        session.trust_env = False
        # The token comes from NUKI_API_TOKEN
        assert (
            session.get(f"{url}/smartlock", headers={"Authorization": "Bearer cli-token"}, timeout=5).status_code == 200
        )
        assert (
            session.get(f"{url}/smartlock", headers={"Authorization": "Bearer local-nuki-token"}, timeout=5).status_code
            == 401
        )
        # The sync delay from NUKI_SIM_SYNC_DELAY_SECONDS
        assert session.get(f"{url}/_sim/config", timeout=5).json()["syncDelaySeconds"] == 0.05
    process.send_signal(stop_with)
    out, _ = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "stopped" in out
