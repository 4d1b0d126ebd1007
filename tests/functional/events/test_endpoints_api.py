"""/webhook-endpoints through the events_api handler: the secret shown once and kept in Secrets
Manager, rotation, and URLs that are refused (SSRF) with a 422 naming `url`, changing nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from staykey.core.timeutil import FixedClock
from staykey.events.endpoints import EndpointIn, EndpointSecrets, EndpointStore, check_url
from staykey.services.events import EventsService
from tests.functional.events.conftest import Events

E, ONE = "/webhook-endpoints", "/webhook-endpoints/{endpointId}"


def _create(events_world: Events, **body: Any) -> tuple[int, Any]:
    return events_world.api("POST", E, E, {"url": "http://127.0.0.1:8999/hooks", "eventTypes": ["*"], **body})


def _secrets() -> list[str]:
    return [
        s["Name"]
        for s in boto3.client("secretsmanager").list_secrets()["SecretList"]
        if "webhook-endpoints" in s["Name"]
    ]


def test_create_shows_the_secret_once_and_keeps_it_in_secrets_manager(events_world: Events) -> None:
    status, created = _create(events_world, description="Shop", eventTypes=["booking.active", "booking.failed"])
    assert status == 201, created
    assert created["secret"].startswith("whsec_")
    assert created["id"].startswith("ep_")
    assert created["enabled"] is True
    path = f"{E}/{created['id']}"
    status, got = events_world.api("GET", path, ONE)
    assert status == 200
    assert "secret" not in got
    assert got["eventTypes"] == ["booking.active", "booking.failed"]
    status, listed = events_world.api("GET", E, E)
    assert [e["id"] for e in listed["items"]] == [created["id"]]
    assert "secret" not in str(listed)
    assert _secrets() == [f"staykey-test/webhook-endpoints/{created['id']}"]
    stored = boto3.client("dynamodb").scan(TableName="staykey-test")["Items"]
    assert created["secret"] not in str(stored)  # never in the table

    status, changed = events_world.api("PATCH", path, ONE, {"eventTypes": ["lock.offline"], "enabled": False})
    assert (status, changed["eventTypes"], changed["enabled"]) == (200, ["lock.offline"], False)

    status, rotated = events_world.api("POST", f"{path}/rotate-secret", f"{ONE}/rotate-secret")
    assert status == 200
    assert rotated["secret"] != created["secret"]
    assert rotated["previousSecretExpiresAt"] is not None

    assert events_world.api("DELETE", path, ONE)[0] == 204
    assert events_world.api("GET", path, ONE)[0] == 404
    assert _secrets() == []
    assert events_world.api("DELETE", path, ONE)[0] == 404


def test_rotation_signs_with_both_secrets_during_the_grace_period(events_world: Events) -> None:
    clock = FixedClock(datetime(2026, 11, 26, 9, 0, tzinfo=UTC))
    secrets = EndpointSecrets("staykey-test/webhook-endpoints/", cache_seconds=0)
    store = EndpointStore("staykey-test")
    service = EventsService(
        store=store,
        secrets=secrets,
        feed=None,  # type: ignore[arg-type]
        clock=clock,
        allow_loopback=True,
        max_endpoints=20,
        secret_grace=timedelta(hours=24),
    )
    endpoint, first = service.create(EndpointIn(url="http://127.0.0.1:8999/", eventTypes=["*"]))
    assert secrets.signing(endpoint, clock.now()) == [first]
    endpoint, second = service.rotate_secret(endpoint.endpointId)
    assert secrets.signing(endpoint, clock.now()) == [second, first]
    assert secrets.signing(endpoint, clock.now() + timedelta(hours=25)) == [second]


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://shop.example.com/hooks", "does not resolve"),  # hosts-only lookup: never DNS in tests
        ("ftp://127.0.0.1/hooks", "https"),
        ("https://user:pw@127.0.0.1/hooks", "user name or password"),
        ("https://127.0.0.1/hooks#frag", "fragment"),
        ("https:///hooks", "no host"),
        ("https://127.0.0.1:99999/", "not a URL"),
        ("https://10.0.0.7/hooks", "private"),
        ("https://192.168.1.20/hooks", "private"),
        ("https://172.16.0.1/hooks", "private"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://[fd00::1]/hooks", "private"),
        ("https://[::ffff:10.0.0.1]/hooks", "private"),
        ("https://0.0.0.0/hooks", "private"),
        ("https://224.0.0.1/hooks", "private"),
        ("https://100.64.0.1/hooks", "private"),
        ("https://" + "a" * 2050 + ".com/", "at most"),
    ],
)
def test_refused_urls_are_a_422_naming_url_and_nothing_is_stored(events_world: Events, url: str, fragment: str) -> None:
    status, body = _create(events_world, url=url)
    assert status == 422, body
    assert body["errors"][0]["field"] == "url"
    assert fragment in body["errors"][0]["message"]
    assert events_world.api("GET", E, E)[1]["items"] == []
    assert _secrets() == []


def test_a_deployed_stack_refuses_loopback_and_http_and_checks_every_address() -> None:
    def resolve(mapping: dict[str, list[str]]) -> Any:
        return lambda host, port: mapping[host]

    public = resolve({"hooks.shop.example": ["93.184.216.34"]})
    assert check_url("https://hooks.shop.example/e", allow_loopback=False, resolve=public)[1] == ["93.184.216.34"]
    refusals = [
        ("https://127.0.0.1/e", {}, "loopback"),
        ("https://localhost/e", {"localhost": ["127.0.0.1"]}, "loopback"),
        ("https://[::1]/e", {}, "loopback"),
        ("http://hooks.shop.example/e", {"hooks.shop.example": ["93.184.216.34"]}, "must be https"),
        # A name that resolves to a public and a private address (DNS rebinding bait): refused.
        ("https://two.shop.example/e", {"two.shop.example": ["93.184.216.34", "10.1.2.3"]}, "private"),
        ("https://meta.shop.example/e", {"meta.shop.example": ["169.254.169.254"]}, "link-local"),
    ]
    for url, mapping, fragment in refusals:
        literal = {"127.0.0.1": ["127.0.0.1"], "::1": ["::1"], **mapping}
        with pytest.raises(ValueError, match=fragment):
            check_url(url, allow_loopback=False, resolve=resolve(literal))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://127.0.0.1:1/"}, "eventTypes"),
        ({"eventTypes": ["*"]}, "url"),
        ({"url": "http://127.0.0.1:1/", "eventTypes": []}, "eventTypes"),
        ({"url": "http://127.0.0.1:1/", "eventTypes": ["booking.exploded"]}, "eventTypes.0"),
        ({"url": "http://127.0.0.1:1/", "eventTypes": ["booking.active", "booking.active"]}, "eventTypes"),
        ({"url": "http://127.0.0.1:1/", "eventTypes": ["*", "booking.active"]}, "eventTypes"),
        ({"url": "http://127.0.0.1:1/", "eventTypes": "booking.active"}, "eventTypes"),
        ({"url": 42, "eventTypes": ["*"]}, "url"),
        ({"url": "http://127.0.0.1:1/", "eventTypes": ["*"], "secret": "whsec_mine"}, "secret"),
        ({"url": "http://127.0.0.1:1/", "eventTypes": ["*"], "enabled": "yes"}, "enabled"),
        ({"url": "http://127.0.0.1:1/", "eventTypes": ["*"], "description": "a\u0000b"}, "description"),
    ],
)
def test_bad_bodies_name_the_field(events_world: Events, body: dict[str, Any], field: str) -> None:
    status, answer = events_world.api("POST", E, E, body)
    assert status == 422, answer
    assert field in [e["field"] for e in answer["errors"]]
    assert _secrets() == []


def test_unknown_ids_and_empty_patches(events_world: Events) -> None:
    assert events_world.api("GET", f"{E}/nope", ONE)[0] == 404
    assert events_world.api("GET", f"{E}/ep_01JDQ8Z5K3N2T7W9XG4HB6C1VE", ONE)[0] == 404
    _, created = _create(events_world)
    path = f"{E}/{created['id']}"
    status, body = events_world.api("PATCH", path, ONE, {})
    assert status == 422
    status, body = events_world.api("PATCH", path, ONE, {"url": "https://10.0.0.1/"})
    assert (status, body["errors"][0]["field"]) == (422, "url")
    assert events_world.api("GET", path, ONE)[1]["url"] == "http://127.0.0.1:8999/hooks"  # unchanged
    status, body = events_world.api("PATCH", path, ONE, {"enabled": None})
    assert status == 422
