"""Cognito ID tokens, verified by the console: signature against the pool's keys, issuer, audience,
expiry, issued-at and token_use; CSRF tokens bound to the session."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path
from typing import Any

import jwt
import moto
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from staykey.console.auth import InvalidSession, TokenVerifier, csrf_ok, csrf_token

RESOURCES = Path(moto.__file__).parent / "cognitoidp" / "resources"
POOL = "eu-central-1_testpool"
ISSUER = f"https://cognito-idp.eu-central-1.amazonaws.com/{POOL}"
CLIENT = "console-client-id"


def _jwks(name: str) -> dict[str, Any]:
    return dict(json.loads(gzip.decompress((RESOURCES / name).read_bytes())))


PRIVATE = jwt.PyJWK.from_dict(
    _jwks("jwks-private.json.gz")["keys"][0]
    if "keys" in _jwks("jwks-private.json.gz")
    else _jwks("jwks-private.json.gz")
)


def _token(key: Any = None, kid: str = "dummy", **claims: Any) -> str:
    now = int(time.time())
    body = {
        "iss": ISSUER,
        "aud": CLIENT,
        "sub": "0000-1111",
        "token_use": "id",
        "iat": now,
        "exp": now + 3600,
        "jti": "session-1",
        "email": "op@example.org",
        **claims,
    }
    return jwt.encode(
        {k: v for k, v in body.items() if v is not None}, key or PRIVATE.key, algorithm="RS256", headers={"kid": kid}
    )


@pytest.fixture
def verifier() -> TokenVerifier:
    fetched: list[str] = []

    def fetch(url: str) -> dict[str, Any]:
        fetched.append(url)
        return _jwks("jwks-public.json.gz")

    v = TokenVerifier(ISSUER, CLIENT, f"{ISSUER}/.well-known/jwks.json", fetch=fetch)
    v.fetched = fetched  # type: ignore[attr-defined]
    return v


def test_a_good_token_names_the_operator(verifier: TokenVerifier) -> None:
    operator = verifier.verify(_token())
    assert (operator.username, operator.session_id) == ("op@example.org", "session-1")
    verifier.verify(_token())
    assert len(verifier.fetched) == 1  # type: ignore[attr-defined]  # the keys are cached


@pytest.mark.parametrize(
    ("case", "claims"),
    [
        ("expired", {"exp": int(time.time()) - 120, "iat": int(time.time()) - 3700}),
        ("another pool", {"iss": "https://cognito-idp.eu-central-1.amazonaws.com/eu-central-1_other"}),
        ("another client", {"aud": "someone-else"}),
        ("an access token", {"token_use": "access"}),
        ("no token_use", {"token_use": None}),
        ("no expiry", {"exp": None}),
        ("issued in the future", {"iat": int(time.time()) + 3600, "exp": int(time.time()) + 7200}),
    ],
)
def test_tokens_that_are_not_this_consoles_sessions_are_refused(
    verifier: TokenVerifier, case: str, claims: dict[str, Any]
) -> None:
    with pytest.raises(InvalidSession):
        verifier.verify(_token(**claims))


def test_a_forged_signature_an_unknown_key_and_no_signature_are_refused(verifier: TokenVerifier) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for token in (
        _token(key=other),
        _token(kid="another-key"),
        jwt.encode(
            {"iss": ISSUER, "aud": CLIENT, "token_use": "id"}, "secret", algorithm="HS256", headers={"kid": "dummy"}
        ),
        _token().rsplit(".", 1)[0] + ".",
        "not a token",
        "",
    ):
        with pytest.raises(InvalidSession):
            verifier.verify(token)


def test_csrf_tokens_are_bound_to_the_session() -> None:
    token = csrf_token("k" * 32, "session-1")
    assert csrf_ok("k" * 32, "session-1", token)
    assert not csrf_ok("k" * 32, "session-2", token)
    assert not csrf_ok("another key", "session-1", token)
    assert not csrf_ok("k" * 32, "session-1", None)
    assert not csrf_ok("k" * 32, "session-1", "")
