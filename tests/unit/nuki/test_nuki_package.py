"""The package's surface: light to import, and every public name where the docs say."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import staykey.nuki

REPO = Path(__file__).resolve().parents[3]


def test_importing_the_package_loads_neither_requests_nor_aws_libraries() -> None:
    # Given a fresh interpreter, as a webhook Lambda that only checks signatures would be
    code = (
        "import sys, staykey.nuki\n"
        "heavy = sorted(m for m in ('requests', 'urllib3', 'boto3', 'botocore', 'aws_lambda_powertools')"
        " if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "layers" / "common")}

    # When it imports staykey.nuki
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env, cwd=REPO)

    # Then none of the heavy libraries came along
    assert result.stdout.strip() == ""


def test_every_public_name_is_exported() -> None:
    for name in staykey.nuki.__all__:
        assert hasattr(staykey.nuki, name), name
    assert {
        "NukiClient",
        "NukiCall",
        "NukiError",
        "NukiAuthError",
        "NukiNotFound",
        "NukiCodeConflict",
        "NukiInvalidRequest",
        "NukiLocked",
        "NukiUnavailable",
        "NukiRefused",
        "is_valid_keypad_code",
        "sign",
        "verify_signature",
        "parse_webhook",
    } <= set(staykey.nuki.__all__)


def test_every_error_is_a_nuki_error_and_none_is_a_requests_error() -> None:
    import requests

    errors = [getattr(staykey.nuki, name) for name in staykey.nuki.__all__ if name.startswith("Nuki")]
    for error in errors:
        if isinstance(error, type) and issubclass(error, Exception):
            assert issubclass(error, staykey.nuki.NukiError)
            assert not issubclass(error, requests.RequestException)
