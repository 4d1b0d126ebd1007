"""The local API Gateway answers as API Gateway would: key check, unknown routes, size limit."""

from __future__ import annotations

import pytest

from tests.e2e.helpers import Shop

pytestmark = pytest.mark.e2e


def test_health_needs_no_key(shop: Shop) -> None:
    r = shop.call("GET", "/health", headers={})
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
    assert r.headers["x-amzn-RequestId"]


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "wrong"}], ids=["missing", "wrong"])
def test_routes_need_the_api_key(shop: Shop, headers: dict[str, str]) -> None:
    for method, path in (("GET", "/rooms"), ("POST", "/bookings"), ("GET", "/bookings/B-1")):
        r = shop.call(method, path, headers=headers)
        assert r.status_code == 403, (method, path)
        assert r.json() == {"message": "Forbidden"}


def test_unknown_route_or_method_answers_like_api_gateway(shop: Shop) -> None:
    for method, path in (("GET", "/nothing-here"), ("DELETE", "/rooms"), ("GET", "/bookings/B-1/nope")):
        r = shop.call(method, path)
        assert r.status_code == 403, (method, path)
        assert r.json() == {"message": "Missing Authentication Token"}


def test_body_over_the_limit_is_refused_before_any_function(shop: Shop) -> None:
    big = {"bookingId": "B-big", "padding": "x" * (300 * 1024)}
    r = shop.call("POST", "/bookings", big)
    assert r.status_code == 413
    assert r.json() == {"message": "Request Too Long"}


def test_function_errors_reach_the_shop_as_the_handler_shapes_them(shop: Shop) -> None:
    r = shop.call("GET", "/bookings/B-does-not-exist")
    assert r.status_code == 404
    r = shop.call("POST", "/bookings", {"bookingId": "B-bad"})
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} >= {"roomId", "guest", "checkIn", "checkOut"}
    r = shop.call("PUT", "/rooms/r-1", None)
    assert r.status_code == 400
