"""The signature of Nuki decentral webhooks (nuki-web-api.md section 7.2).

Nuki sends ``X-Nuki-Signature-SHA256``: the lowercase hex HMAC-SHA256 of the raw request body,
keyed with the ``secret`` returned when the webhook was registered. Verify the bytes exactly as
received, before parsing anything: a re-serialised JSON body does not have the same signature.
"""

from __future__ import annotations

import hashlib
import hmac
import re

SIGNATURE_HEADER = "X-Nuki-Signature-SHA256"
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")


def sign(raw_body: bytes, secret: str) -> str:
    """Lowercase hex HMAC-SHA256 of `raw_body`, keyed with the UTF-8 bytes of `secret`."""
    return hmac.new(secret.encode("utf-8"), raw_body, hashlib.sha256).hexdigest()


def verify_signature(raw_body: bytes, header: str | None, secret: str) -> bool:
    """True if `header` is the signature of `raw_body` under `secret` (compared in constant time).

    False for a missing, empty or malformed header and for an empty secret. Upper-case hex and
    surrounding whitespace in the header are tolerated.
    """
    if not header or not secret:
        return False
    candidate = header.strip().lower()
    if not _HEX_SHA256.fullmatch(candidate):
        return False
    return hmac.compare_digest(candidate, sign(raw_body, secret))


__all__ = ["SIGNATURE_HEADER", "sign", "verify_signature"]
