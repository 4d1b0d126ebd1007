"""python -m tools.register_webhook: one registration of ours, its secret stored, re-runs replace it."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence

import boto3
import pytest

from staykey import wiring
from staykey.nuki import DecentralWebhook
from staykey.settings import get_settings
from tools import register_webhook

URL = "https://abc123.execute-api.eu-central-1.amazonaws.com/dev/webhooks/nuki"


class FakeWebhooks:
    """Nuki's decentral webhook endpoints: the secret comes only with the registration."""

    def __init__(self) -> None:
        self.hooks: dict[int, DecentralWebhook] = {}
        self._ids = itertools.count(4001)

    def list_webhooks(self) -> list[DecentralWebhook]:
        return [hook.model_copy(update={"secret": None}) for hook in self.hooks.values()]

    def register_webhook(self, url: str, features: Sequence[str]) -> DecentralWebhook:
        hook_id = next(self._ids)
        self.hooks[hook_id] = DecentralWebhook(
            id=hook_id, secret=f"secret-{hook_id}", webhook_url=url, webhook_features=list(features)
        )
        return self.hooks[hook_id]

    def delete_webhook(self, webhook_id: int) -> None:
        del self.hooks[webhook_id]


@pytest.fixture
def nuki(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> FakeWebhooks:
    fake = FakeWebhooks()
    monkeypatch.setattr(wiring, "nuki", lambda: fake)
    return fake


def stored_secret() -> str:
    name = get_settings().nuki_webhook_secret_name
    return str(boto3.client("secretsmanager").get_secret_value(SecretId=name)["SecretString"])


def test_register_stores_the_secret_and_the_registration(
    nuki: FakeWebhooks, capsys: pytest.CaptureFixture[str]
) -> None:
    # When the operator registers the stack's webhook URL
    assert register_webhook.main(["--url", URL]) == 0
    # Then Nuki has one webhook for it, with the three features we handle
    (hook,) = nuki.hooks.values()
    assert hook.webhook_url == URL
    assert sorted(hook.webhook_features) == ["DEVICE_AUTHS", "DEVICE_LOGS", "DEVICE_STATUS"]
    # And the signing secret is in Secrets Manager, where the receiver reads it
    assert stored_secret() == hook.secret
    from staykey.adapters import secrets

    assert secrets.webhook_secret() == hook.secret
    # And the table records the registration (the lifecycle then relies on DEVICE_AUTHS)
    config = wiring.store().get_config("WEBHOOK")
    assert config is not None
    assert config["id"] == hook.id
    assert config["url"] == URL
    assert config["registeredAt"].endswith("Z")
    # And the output says what was done, without the secret
    out = capsys.readouterr().out
    assert json.loads(out) == {"registered": hook.id, "url": URL, "features": hook.webhook_features, "removed": []}
    assert str(hook.secret) not in out


def test_running_it_again_replaces_ours_and_leaves_other_webhooks_alone(
    nuki: FakeWebhooks, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given another integration's webhook on the same Nuki account
    theirs = nuki.register_webhook("https://example.org/their-hook", ["DEVICE_LOGS"])
    assert register_webhook.main(["--url", URL]) == 0
    first = wiring.store().get_config("WEBHOOK")
    assert first is not None
    # When the operator runs it again (and once more, to the stage's new URL)
    assert register_webhook.main(["--url", URL]) == 0
    assert register_webhook.main(["--url", URL.replace("/dev/", "/prod/")]) == 0
    # Then there is still exactly one webhook of ours, the newest, and theirs is untouched
    ours = [hook for hook in nuki.hooks.values() if hook.id != theirs.id]
    assert len(ours) == 1
    assert ours[0].webhook_url == URL.replace("/dev/", "/prod/")
    assert theirs.id in nuki.hooks
    config = wiring.store().get_config("WEBHOOK")
    assert config is not None
    assert config["id"] == ours[0].id != first["id"]
    assert stored_secret() == ours[0].secret


def test_an_older_duplicate_for_our_url_is_cleaned_up(nuki: FakeWebhooks) -> None:
    # Given two registrations for our URL that the table does not know of (an earlier manual attempt)
    nuki.register_webhook(URL, ["DEVICE_LOGS"])
    nuki.register_webhook(URL + "/", ["DEVICE_LOGS"])
    assert register_webhook.main(["--url", URL]) == 0
    assert len(nuki.hooks) == 1


def test_unregister_removes_ours_and_the_config(nuki: FakeWebhooks) -> None:
    theirs = nuki.register_webhook("https://example.org/their-hook", ["DEVICE_LOGS"])
    assert register_webhook.main(["--url", URL]) == 0
    assert register_webhook.main(["--unregister"]) == 0
    assert list(nuki.hooks) == [theirs.id]
    assert wiring.store().get_config("WEBHOOK") is None


def test_a_nuki_refusal_is_reported_and_exits_1(
    nuki: FakeWebhooks, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from staykey.nuki import NukiAuthError

    def refuse(url: str, features: Sequence[str]) -> DecentralWebhook:
        raise NukiAuthError("PUT /api/decentralWebhook failed: HTTP 403 Forbidden", status=403)

    monkeypatch.setattr(nuki, "register_webhook", refuse)
    assert register_webhook.main(["--url", URL]) == 1
    assert "403" in capsys.readouterr().err
    assert wiring.store().get_config("WEBHOOK") is None


@pytest.mark.parametrize("argv", [[], ["--url", "ftp://example.org/hook"]])
def test_bad_arguments_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        register_webhook.main(argv)
    assert exc.value.code == 2
