"""Operators' sign-in and sessions: Amazon Cognito tokens, verified with PyJWT.

* Sign-in: the console's form sends the username and password to Cognito (`InitiateAuth`,
  USER_PASSWORD_AUTH, a public app client without a secret); an operator an admin created signs in
  first with a temporary password and sets their own (NEW_PASSWORD_REQUIRED). The console never
  stores a password.
* The session is Cognito's ID token in a cookie (HttpOnly, SameSite=Strict, Secure except on
  loopback), for the token's lifetime (the app client's IdTokenValidity).
* Every request verifies the token: RS256 signature against the user pool's published keys
  (JWKS, fetched and cached; fetched again once for a key id it does not know, as after Cognito
  rotates its keys), issuer (the pool), audience (the console's app client id), expiry and
  issued-at (with a minute of leeway for clock skew), and `token_use` "id". Anything else is no
  session.
* CSRF: every form carries a token, an HMAC (with the console's secret from Secrets Manager) of
  the session's token id; a POST without the right one is refused, and so is one whose Origin is
  another site. The sign-in form has its own pre-session token (a random cookie, the same value in
  the form).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

LEEWAY_SECONDS = 60
JWKS_REFRESH_MIN_SECONDS = 60.0
JWKS_MAX_AGE_SECONDS = 3600.0


class InvalidSession(Exception):
    """The token is missing, forged, expired or not for this console (the reason is for the log)."""


@dataclass(frozen=True)
class Operator:
    username: str
    email: str | None
    session_id: str  # the token's jti: what CSRF tokens are bound to
    expires_at: int


def fetch_json(url: str, timeout: float = 5.0) -> dict[str, Any]:
    if not url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise ValueError("the JWKS URL must be https (or loopback for the local stack)")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}) if "127.0.0.1" in url else None)  # type: ignore[arg-type]
    with opener.open(url, timeout=timeout) as resp:
        data = json.loads(resp.read())
    if not isinstance(data, dict):
        raise ValueError("the JWKS is not a JSON object")
    return data


class TokenVerifier:
    """Verifies Cognito ID tokens for one user pool and app client."""

    def __init__(
        self,
        issuer: str,
        client_id: str,
        jwks_url: str,
        fetch: Callable[[str], dict[str, Any]] = fetch_json,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.jwks_url = jwks_url
        self._fetch = fetch
        self._clock = clock
        self._keys: dict[str, Any] = {}
        self._fetched_at = -1e12
        self._lock = threading.Lock()

    def _key(self, kid: str) -> Any:
        import jwt

        with self._lock:
            now = time.monotonic()
            stale = now - self._fetched_at > JWKS_MAX_AGE_SECONDS
            if stale or (kid not in self._keys and now - self._fetched_at > JWKS_REFRESH_MIN_SECONDS):
                jwks = jwt.PyJWKSet.from_dict(self._fetch(self.jwks_url))
                self._keys = {k.key_id: k for k in jwks.keys if k.key_id}
                self._fetched_at = now
            key = self._keys.get(kid)
        if key is None:
            raise InvalidSession("the token's key is not one of the user pool's keys")
        return key

    def verify(self, token: str | None) -> Operator:
        import jwt

        if not token:
            raise InvalidSession("no session")
        if len(token) > 8192:
            raise InvalidSession("the token is too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidSession(f"not a token: {type(exc).__name__}") from None
        if header.get("alg") != "RS256" or not isinstance(header.get("kid"), str):
            raise InvalidSession("the token is not signed as Cognito signs (RS256 with a key id)")
        key = self._key(header["kid"])
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=self.client_id,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "token_use"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidSession("the token has expired") from None
        except jwt.PyJWTError as exc:
            raise InvalidSession(f"the token is not valid: {type(exc).__name__}") from None
        if claims.get("token_use") != "id":
            raise InvalidSession("not an ID token")
        if int(claims["iat"]) > self._clock() + LEEWAY_SECONDS:
            raise InvalidSession("the token was issued in the future")
        # With email as the username attribute, cognito:username is the user's sub: show the email.
        username = claims.get("email") or claims.get("cognito:username") or claims["sub"]
        return Operator(
            username=str(username),
            email=claims.get("email"),
            session_id=str(claims.get("jti") or claims.get("origin_jti") or hashlib.sha256(token.encode()).hexdigest()),
            expires_at=int(claims["exp"]),
        )


def csrf_token(secret: str, session_id: str) -> str:
    return hmac.new(secret.encode(), f"csrf|{session_id}".encode(), hashlib.sha256).hexdigest()


def csrf_ok(secret: str, session_id: str, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(csrf_token(secret, session_id), str(sent))


@dataclass
class SignInResult:
    id_token: str | None = None
    expires_in: int = 0
    challenge_session: str | None = None  # NEW_PASSWORD_REQUIRED: the session to answer it with
    error: str | None = None  # "credentials" or "unavailable"


class CognitoSignIn:
    """USER_PASSWORD_AUTH against the console's public app client."""

    def __init__(self, client_id: str, client: Any | None = None) -> None:
        self.client_id = client_id
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("cognito-idp")
        return self._client

    def _result(self, answer: dict[str, Any]) -> SignInResult:
        if answer.get("ChallengeName") == "NEW_PASSWORD_REQUIRED":
            return SignInResult(challenge_session=answer.get("Session"))
        auth = answer.get("AuthenticationResult") or {}
        if "IdToken" not in auth:
            return SignInResult(error="unavailable")
        return SignInResult(id_token=auth["IdToken"], expires_in=int(auth.get("ExpiresIn", 3600)))

    def sign_in(self, username: str, password: str) -> SignInResult:
        try:
            answer = self.client.initiate_auth(
                ClientId=self.client_id,
                AuthFlow="USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": username, "PASSWORD": password},
            )
        except Exception as exc:
            return SignInResult(error=_sign_in_error(exc))
        return self._result(answer)

    def new_password(self, username: str, password: str, session: str) -> SignInResult:
        try:
            answer = self.client.respond_to_auth_challenge(
                ClientId=self.client_id,
                ChallengeName="NEW_PASSWORD_REQUIRED",
                Session=session,
                ChallengeResponses={"USERNAME": username, "NEW_PASSWORD": password},
            )
        except Exception as exc:
            return SignInResult(error=_sign_in_error(exc))
        return self._result(answer)


def _sign_in_error(exc: Exception) -> str:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    if code in ("NotAuthorizedException", "UserNotFoundException", "InvalidPasswordException"):
        return "credentials"
    return "unavailable"
