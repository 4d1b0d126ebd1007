"""The local gateway builds API Gateway REST proxy events and answers as API Gateway does."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from local import cfn
from local.gateway import GatewayConfig, Router, RunningGateway, start_gateway
from local.lambdas import Functions

KEY = "test-key"


@pytest.fixture
def gateway(functions: Functions) -> Iterator[RunningGateway]:
    running = start_gateway(functions, GatewayConfig(api_key=KEY, max_body_bytes=1024, integration_timeout=1.0))
    yield running
    running.stop()


def url(gateway: RunningGateway, path: str) -> str:
    return f"http://127.0.0.1:{gateway.port}{path}"


def test_router_prefers_literal_segments() -> None:
    router = Router(
        [
            cfn.Route("GET", "/bookings/{bookingId}", "A", True),
            cfn.Route("GET", "/bookings/special", "B", True),
            cfn.Route("ANY", "/files/{proxy+}", "C", False),
        ]
    )
    assert router.match("GET", "/bookings/special")[0].function == "B"  # type: ignore[union-attr]
    route, params, _ = router.match("GET", "/bookings/B%2D1")
    assert route is not None
    assert route.function == "A"
    assert params == {"bookingId": "B-1"}
    assert router.match("PUT", "/files/a/b/c")[1] == {"proxy": "a/b/c"}
    assert router.match("POST", "/bookings/B-1") == (None, {}, True)
    assert router.match("GET", "/elsewhere") == (None, {}, False)


def test_the_event_is_an_api_gateway_rest_proxy_event(functions: Functions, gateway: RunningGateway) -> None:
    seen: list[dict[str, Any]] = []

    def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.append(event)
        return {"statusCode": 207, "headers": {"X-Echo": "1"}, "body": "ok"}

    functions["BookingsApiFunction"].use_handler(echo)
    r = requests.patch(
        url(gateway, "/bookings/B-7?a=1&a=2&b="),
        data=b"\xff\xfe binary",
        headers={"x-api-key": KEY, "X-Thing": "t"},
        timeout=5,
    )
    assert r.status_code == 207
    assert r.text == "ok"
    assert r.headers["X-Echo"] == "1"
    event = seen[0]
    assert event["httpMethod"] == "PATCH"
    assert event["resource"] == "/bookings/{bookingId}"
    assert event["path"] == "/bookings/B-7"
    assert event["pathParameters"] == {"bookingId": "B-7"}
    assert event["queryStringParameters"] == {"a": "2", "b": ""}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": [""]}
    assert event["headers"]["X-Thing"] == "t"
    assert event["multiValueHeaders"]["X-Thing"] == ["t"]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\xfe binary"
    context = event["requestContext"]
    assert context["stage"] == "dev"
    assert context["resourcePath"] == "/bookings/{bookingId}"
    assert context["requestId"] == r.headers["x-amzn-RequestId"]
    assert context["identity"]["apiKey"] == KEY


def test_function_failures_are_502_and_slow_ones_504(functions: Functions, gateway: RunningGateway) -> None:
    def boom(event: Any, context: Any) -> Any:
        raise RuntimeError("secret detail")

    functions["BookingsApiFunction"].use_handler(boom)
    r = requests.get(url(gateway, "/bookings/B-1"), headers={"x-api-key": KEY}, timeout=5)
    assert r.status_code == 502
    assert r.json() == {"message": "Internal server error"}

    functions["RoomsApiFunction"].use_handler(lambda event, context: {"body": "no status"})
    r = requests.get(url(gateway, "/health"), timeout=5)
    assert r.status_code == 502

    def slow(event: Any, context: Any) -> Any:
        import time

        time.sleep(1.5)
        return {"statusCode": 200, "body": ""}

    functions["CheckoutFunction"].use_handler(slow)
    r = requests.post(url(gateway, "/bookings/B-1/checkout"), headers={"x-api-key": KEY}, timeout=5)
    assert r.status_code == 504
    assert r.json() == {"message": "Endpoint request timed out"}


def test_body_limit_key_and_unknown_routes(gateway: RunningGateway) -> None:
    r = requests.post(url(gateway, "/bookings"), data=b"x" * 2048, headers={"x-api-key": KEY}, timeout=5)
    assert r.status_code == 413
    r = requests.post(url(gateway, "/bookings"), json={}, timeout=5)
    assert (r.status_code, r.json()) == (403, {"message": "Forbidden"})
    r = requests.get(url(gateway, "/nope"), headers={"x-api-key": KEY}, timeout=5)
    assert (r.status_code, r.json()) == (403, {"message": "Missing Authentication Token"})
    assert r.headers["x-local-gateway-error"] == "no resource /nope"
