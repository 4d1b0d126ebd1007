"""WebhookReceiver: size first, then signature (re-reading a rotated secret, but not for every
forged request), then the queue."""

from __future__ import annotations

import pytest

from local.kit.fakes import ListWebhookInbox
from staykey.edge.nuki_webhook import SIGNATURE_HEADER as RECEIVER_HEADER
from staykey.edge.nuki_webhook import NotText, WebhookReceiver
from staykey.errors import PayloadTooLarge, Unauthorized
from staykey.nuki import sign
from staykey.nuki.signature import SIGNATURE_HEADER

BODY = b'{"feature": "DEVICE_STATUS", "smartlockId": 17000001}'


class Secrets:
    """A secret source that counts reads, like Secrets Manager behind Powertools' cache."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.cached: str | None = None
        self.forced = 0

    def __call__(self, force_fetch: bool) -> str:
        if force_fetch or self.cached is None:
            self.forced += force_fetch
            self.cached = self.value
        return self.cached


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def receiver(secrets: Secrets, clock: Clock | None = None) -> tuple[WebhookReceiver, ListWebhookInbox]:
    inbox = ListWebhookInbox()
    return WebhookReceiver(secrets, inbox, 1024, monotonic=clock or Clock()), inbox


def test_the_receiver_uses_nukis_header_name() -> None:
    assert RECEIVER_HEADER == SIGNATURE_HEADER


def test_a_signed_body_is_queued_as_text() -> None:
    r, inbox = receiver(Secrets("s3cret"))
    r.accept(BODY, sign(BODY, "s3cret"))
    assert inbox.bodies == [BODY.decode()]


def test_size_is_checked_before_the_secret_is_read() -> None:
    secrets = Secrets("s3cret")
    r, inbox = receiver(secrets)
    with pytest.raises(PayloadTooLarge):
        r.accept(b"x" * 1025, sign(b"x" * 1025, "s3cret"))
    assert secrets.cached is None
    assert inbox.bodies == []


def test_a_missing_signature_is_refused_without_reading_the_secret() -> None:
    secrets = Secrets("s3cret")
    r, _ = receiver(secrets)
    for header in (None, ""):
        with pytest.raises(Unauthorized):
            r.accept(BODY, header)
    assert secrets.cached is None


def test_a_rotated_secret_is_fetched_again_but_forged_requests_do_not_hammer_secrets_manager() -> None:
    secrets, clock = Secrets("old"), Clock()
    r, inbox = receiver(secrets, clock)
    r.accept(BODY, sign(BODY, "old"))
    # When the secret is rotated, the first request signed with the new one triggers one re-read
    secrets.value = "new"
    r.accept(BODY, sign(BODY, "new"))
    assert secrets.forced == 1
    # When forged requests keep coming, the secret is re-read at most once a minute
    for _ in range(50):
        with pytest.raises(Unauthorized):
            r.accept(BODY, sign(BODY, "forged"))
    assert secrets.forced == 1
    clock.t += 61
    with pytest.raises(Unauthorized):
        r.accept(BODY, sign(BODY, "forged"))
    assert secrets.forced == 2
    assert len(inbox.bodies) == 2


def test_a_signed_body_that_is_not_utf8_is_refused() -> None:
    r, inbox = receiver(Secrets("s3cret"))
    raw = b"\xff\xfe{}"
    with pytest.raises(NotText):
        r.accept(raw, sign(raw, "s3cret"))
    assert inbox.bodies == []
