"""Secrets from Secrets Manager, through Powertools parameters (cached with a max age).

A secret's value is either the bare string or JSON with a "token" / "secret" key. Values never
go into logs or errors.
"""

from __future__ import annotations

import json

from staykey.settings import get_settings


def _read(name: str, key: str, force_fetch: bool = False) -> str:
    from aws_lambda_powertools.utilities import parameters

    raw: object = parameters.get_secret(name, max_age=get_settings().secret_max_age_seconds, force_fetch=force_fetch)
    value = raw.decode() if isinstance(raw, bytes) else str(raw)
    if value.lstrip().startswith("{"):
        try:
            parsed = json.loads(value)
        except ValueError:
            return value
        if isinstance(parsed, dict) and isinstance(parsed.get(key), str):
            return str(parsed[key])
    return value


def nuki_token() -> str:
    return _read(get_settings().nuki_token_secret_name, "token")


def webhook_secret(force_fetch: bool = False) -> str:
    """The webhook signing secret; `force_fetch` skips the cache (after a re-registration)."""
    return _read(get_settings().nuki_webhook_secret_name, "secret", force_fetch)


def console_secret() -> str:
    """The key the console signs its CSRF tokens with."""
    return _read(get_settings().console_secret_name, "secret")


def clear_cache() -> None:
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()  # type: ignore[no-untyped-call]
