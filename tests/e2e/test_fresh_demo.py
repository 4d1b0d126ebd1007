"""`make demo` as a new user runs it: a copy of the project's files with no `.venv`, so make
installs requirements-demo.txt alone (not the development tools this test runs under) and plays the
guest's stay. Found by an adversarial run: the demo's moto lacked the console's Cognito dependency
(joserfc), so `make demo` and `make local` died creating the user pool on a fresh clone, while
every test passed in the full development `.venv`."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def _project_files() -> list[str]:
    """The files a clone has (tracked and new ones not ignored, as they are in the working tree)."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    return [name for name in out.decode().split("\0") if name]


@pytest.mark.skipif(shutil.which("git") is None or shutil.which("make") is None, reason="needs git and make")
def test_make_demo_works_with_only_what_it_installs(tmp_path: Path) -> None:
    clone = tmp_path / "staykey"
    for name in _project_files():
        source = ROOT / name
        if not source.is_file():
            continue  # deleted in the working tree
        target = clone / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "VIRTUAL_ENV", "PYTEST"))}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    run = subprocess.run(["make", "demo"], cwd=clone, env=env, capture_output=True, text=True, timeout=900)
    tail = (run.stdout + run.stderr)[-3000:]
    assert run.returncode == 0, tail
    assert "Every step checked out" in run.stdout, tail
    installed = subprocess.run(
        [str(clone / ".venv" / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.lower()
    assert "pytest==" not in installed, "make demo installed the development tools"
