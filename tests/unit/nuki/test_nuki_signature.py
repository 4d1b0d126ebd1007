"""Webhook signatures: only a body signed with our secret, byte for byte, is accepted."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest

from local.nuki_spec import validate_definition
from staykey.nuki import DeviceLogsWebhook, is_successful_keypad_entry, parse_webhook, sign, verify_signature

SAMPLE = Path(__file__).parent / "samples" / "device_logs_webhook.json"
SECRET = "3f9a1c5e7b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a"
# The sample's signature under SECRET, recorded once: a changed byte in the sample shows here.
SAMPLE_SIGNATURE = "74dd087ee8360c268cb31dcb2ba84c30836e8ec5534c9b21a52b1f6fc8cb7d67"


def hmac_hex(raw: bytes, secret: str) -> str:
    return hmac.new(secret.encode("utf-8"), raw, hashlib.sha256).hexdigest()


@pytest.fixture
def raw() -> bytes:
    return SAMPLE.read_bytes()


def test_the_recorded_sample_verifies_byte_for_byte(raw: bytes) -> None:
    # Given a DEVICE_LOGS body as Nuki posts it, and its signature computed independently
    expected = hmac_hex(raw, SECRET)

    # Then it is the recorded one, and our check accepts it
    assert expected == SAMPLE_SIGNATURE
    assert verify_signature(raw, expected, SECRET) is True
    assert sign(raw, SECRET) == expected


def test_the_recorded_sample_is_a_guest_entry(raw: bytes) -> None:
    # Given the verified body, parsed only now
    payload = json.loads(raw)

    # Then it is a spec-valid log of a successful keypad entry
    assert validate_definition("SmartlockLog", payload["smartlockLog"]) == []
    webhook = parse_webhook(payload)
    assert isinstance(webhook, DeviceLogsWebhook)
    assert is_successful_keypad_entry(webhook.smartlock_log)


def test_a_reserialised_body_does_not_verify(raw: bytes) -> None:
    # Given the same JSON, parsed and dumped again (spaces after separators)
    reserialised = json.dumps(json.loads(raw)).encode()

    # Then the original signature does not fit it: verify the raw body, before parsing
    assert reserialised != raw
    assert verify_signature(reserialised, SAMPLE_SIGNATURE, SECRET) is False


def test_one_changed_byte_does_not_verify(raw: bytes) -> None:
    tampered = raw.replace(b'"state":0', b'"state":1')

    assert tampered != raw
    assert verify_signature(tampered, SAMPLE_SIGNATURE, SECRET) is False


def test_another_secret_does_not_verify(raw: bytes) -> None:
    assert verify_signature(raw, SAMPLE_SIGNATURE, SECRET[:-1] + "b") is False


@pytest.mark.parametrize("header", [None, "", "   "])
def test_a_missing_signature_does_not_verify(raw: bytes, header: str | None) -> None:
    assert verify_signature(raw, header, SECRET) is False


@pytest.mark.parametrize(
    "header",
    [
        SAMPLE_SIGNATURE[:-1],
        SAMPLE_SIGNATURE + "0",
        "sha256=" + SAMPLE_SIGNATURE,
        SAMPLE_SIGNATURE[:-1] + "g",
        "not a signature",
        "é" * 64,
    ],
    ids=["short", "long", "prefixed", "not-hex", "text", "non-ascii"],
)
def test_a_malformed_signature_does_not_verify(raw: bytes, header: str) -> None:
    assert verify_signature(raw, header, SECRET) is False


def test_upper_case_hex_and_surrounding_whitespace_are_tolerated(raw: bytes) -> None:
    assert verify_signature(raw, SAMPLE_SIGNATURE.upper(), SECRET) is True
    assert verify_signature(raw, f"  {SAMPLE_SIGNATURE}\r\n", SECRET) is True


def test_an_empty_secret_never_verifies() -> None:
    body = b"{}"
    assert verify_signature(body, hmac_hex(body, ""), "") is False


def test_the_secret_is_used_as_utf8_and_bodies_as_raw_bytes() -> None:
    # Given a body with non-ASCII text and a non-ASCII secret
    body = '{"feature":"DEVICE_AUTHS","smartlockAuth":{"name":"Reinigung Süd"}}'.encode()
    secret = "geheimnis-ß"

    # Then our signature is the plain HMAC-SHA256 over those bytes with the UTF-8 secret
    assert sign(body, secret) == hmac_hex(body, secret)
    assert verify_signature(body, hmac_hex(body, secret), secret) is True
