"""Register StayKey's webhook URL with Nuki (decentral webhook), or remove it.

    python -m tools.register_webhook --url https://<api>.execute-api.<region>.amazonaws.com/<stage>/webhooks/nuki
    python -m tools.register_webhook --unregister

It reads its configuration the way the functions do: `NUKI_API_URL`, the Nuki token from the
Secrets Manager secret named by `NUKI_TOKEN_SECRET_NAME`, the webhook secret's name from
`NUKI_WEBHOOK_SECRET_NAME`, the table from `TABLE_NAME` (boto3 honours `AWS_ENDPOINT_URL`, so the
local stack points it at moto). Registering:

1. lists the account's decentral webhooks and deletes ours: the one recorded in the table
   (CONFIG/WEBHOOK) and any other registered for the same URL, so re-running replaces the
   registration instead of adding another (Nuki would post every event to each of them);
2. registers the URL with the features DEVICE_AUTHS, DEVICE_LOGS, DEVICE_STATUS;
3. stores the signing secret Nuki returns (shown only once) in the webhook secret;
4. writes CONFIG/WEBHOOK (id, url, features, registeredAt): the lifecycle then expects
   DEVICE_AUTHS to confirm codes and reads back less often.

Webhooks signed with the new secret that arrive between steps 2 and 3 are refused with 401; the
receiver re-reads the secret when a signature does not match, so it catches up at once after
step 3. Nothing secret is printed. Exit status 0 on success, 1 on a Nuki or AWS error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "layers" / "common") not in sys.path:
    # As in Lambda, where the layer is on the path: `python -m tools.register_webhook` from the repo.
    sys.path.insert(0, str(ROOT / "layers" / "common"))

if TYPE_CHECKING:
    from staykey.nuki import NukiClient
    from staykey.store import Store

FEATURES = ("DEVICE_AUTHS", "DEVICE_LOGS", "DEVICE_STATUS")
CONFIG_NAME = "WEBHOOK"


def _same_url(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def _remove_ours(nuki: NukiClient, store: Store, url: str | None) -> list[int]:
    """Delete the registration recorded in the table and every one for `url`; their ids."""
    recorded = store.get_config(CONFIG_NAME) or {}
    recorded_id = recorded.get("id")
    removed = []
    for hook in nuki.list_webhooks():
        if hook.id is None:
            continue
        if hook.id == recorded_id or (url is not None and _same_url(hook.webhook_url, url)):
            nuki.delete_webhook(hook.id)
            removed.append(hook.id)
    return removed


def register(
    url: str,
    *,
    nuki: NukiClient,
    store: Store,
    put_secret: Callable[[str], None],
    now: datetime | None = None,
) -> dict[str, Any]:
    """Replace our registration with one for `url`; what was done (never the secret)."""
    removed = _remove_ours(nuki, store, url)
    hook = nuki.register_webhook(url, FEATURES)
    if hook.id is None or not hook.secret:
        raise RuntimeError("Nuki answered the registration without an id or a secret")
    put_secret(hook.secret)
    registered_at = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    store.put_config(
        CONFIG_NAME,
        id=hook.id,
        url=hook.webhook_url,
        features=list(hook.webhook_features),
        registeredAt=registered_at.isoformat().replace("+00:00", "Z"),
    )
    return {"registered": hook.id, "url": hook.webhook_url, "features": list(hook.webhook_features), "removed": removed}


def unregister(url: str | None, *, nuki: NukiClient, store: Store) -> dict[str, Any]:
    """Remove our registration (and any for `url`) and the CONFIG/WEBHOOK item."""
    removed = _remove_ours(nuki, store, url)
    store.delete_config(CONFIG_NAME)
    return {"removed": removed}


def _secret_writer(secret_name: str) -> Callable[[str], None]:
    def put(secret: str) -> None:
        import boto3

        boto3.client("secretsmanager").put_secret_value(SecretId=secret_name, SecretString=secret)

    return put


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.register_webhook",
        description="Register StayKey's /webhooks/nuki URL with Nuki (replacing ours), or remove it.",
    )
    parser.add_argument("--url", help="the public URL of POST /webhooks/nuki (the stack output WebhookUrl)")
    parser.add_argument("--unregister", action="store_true", help="remove our registration instead")
    args = parser.parse_args(argv)
    if not args.unregister and not args.url:
        parser.error("--url is required (or --unregister)")
    if args.url and not args.url.startswith(("https://", "http://")):
        parser.error("--url must be an http(s) URL")

    from staykey import wiring
    from staykey.adapters import secrets
    from staykey.nuki import NukiError
    from staykey.settings import get_settings

    settings = get_settings()
    nuki, store = wiring.nuki(), wiring.store()
    try:
        if args.unregister:
            result = unregister(args.url, nuki=nuki, store=store)
        else:
            if not args.url.startswith("https://"):
                print(
                    "warning: Nuki accepts only https webhook URLs; http works with the local sandbox", file=sys.stderr
                )
            result = register(
                args.url, nuki=nuki, store=store, put_secret=_secret_writer(settings.nuki_webhook_secret_name)
            )
            secrets.clear_cache()
    except NukiError as exc:
        print(f"Nuki refused: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # AWS errors (botocore), a missing secret...: say what failed, no trace
        print(f"failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
