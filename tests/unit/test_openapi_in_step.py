"""The two specs describe exactly the routes template.yaml deploys, with the same key rules:
openapi.yaml the shop's API, openapi-nuki-webhook.yaml the route Nuki calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_spec_validator import validate

from local.cfn import routes

ROOT = Path(__file__).resolve().parents[2]
SHOP = ROOT / "openapi.yaml"
NUKI_WEBHOOK = ROOT / "openapi-nuki-webhook.yaml"
SPECS = (SHOP, NUKI_WEBHOOK)
METHODS = {"get", "put", "post", "patch", "delete"}
# Routes Nuki calls: never in the shop's spec (a shop's generated client must not offer them).
NUKI_ROUTES = {("POST", "/webhooks/nuki")}


def _spec(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded


def _operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(m.upper(), path): op for path, item in spec["paths"].items() for m, op in item.items() if m in METHODS}


def _api_routes() -> list:  # type: ignore[type-arg]
    """The deployed API routes: the operator console (/console, HTML pages for a browser) is not
    part of the shop API and not in its spec."""
    return [r for r in routes() if not r.path.startswith("/console")]


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_each_spec_is_a_valid_openapi_document(path: Path) -> None:
    validate(_spec(path))


def test_every_deployed_route_is_documented_once_and_every_documented_route_is_deployed() -> None:
    shop, nuki = _operations(_spec(SHOP)), _operations(_spec(NUKI_WEBHOOK))
    assert not set(shop) & set(nuki), "a route is in both specs"
    assert set(nuki) == NUKI_ROUTES
    deployed = {(r.method, r.path) for r in _api_routes()}
    assert set(shop) | set(nuki) == deployed


def test_key_requirements_match() -> None:
    for path in SPECS:
        spec = _spec(path)
        operations = _operations(spec)
        for route in _api_routes():
            op = operations.get((route.method, route.path))
            if op is None:
                continue
            secured = bool(op["security"]) if "security" in op else bool(spec.get("security"))
            assert secured == route.api_key_required, f"{path.name}: {route.method} {route.path}"


def test_every_operation_has_a_tag_the_spec_declares_and_every_tag_is_used() -> None:
    for path in SPECS:
        spec = _spec(path)
        declared = {t["name"] for t in spec.get("tags", [])}
        used = {tag for op in _operations(spec).values() for tag in op.get("tags", [])}
        assert all(op.get("tags") for op in _operations(spec).values()), path.name
        assert used == declared, path.name


def test_the_api_key_is_a_security_scheme_in_the_x_api_key_header() -> None:
    spec = _spec(SHOP)
    (name,) = (next(iter(requirement)) for requirement in spec["security"])
    assert spec["components"]["securitySchemes"][name] == {
        **spec["components"]["securitySchemes"][name],
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
    }


def test_error_codes_are_an_open_vocabulary() -> None:
    """A generated client must not raise on a code it does not know (a closed enum would)."""
    for path in SPECS:
        code = _spec(path)["components"]["schemas"]["Error"]["properties"]["code"]
        assert code.get("type") == "string", path.name
        assert "enum" not in code, path.name


def test_every_error_code_the_shop_api_answers_is_documented() -> None:
    from staykey import errors
    from staykey.edge.http import BadRequest

    kinds = [
        BadRequest,
        *(v for v in vars(errors).values() if isinstance(v, type) and issubclass(v, errors.StayKeyError)),
    ]
    described = _spec(SHOP)["components"]["schemas"]["Error"]["properties"]["code"]["description"]
    shop_codes = {k.code for k in kinds if k.code != "unauthorized"}  # 401: only the webhook receiver's
    missing = sorted(code for code in shop_codes if f"`{code}`" not in described)
    assert not missing
    webhook = _spec(NUKI_WEBHOOK)["components"]["schemas"]["Error"]["properties"]["code"]["description"]
    assert all(f"`{code}`" in webhook for code in ("bad_request", "unauthorized", "payload_too_large", "unavailable"))


def test_every_shop_operation_declares_the_throttle_and_every_keyed_one_the_key_refusal() -> None:
    """The stage and the usage plan throttle every route (429), and API Gateway refuses a missing or
    wrong key (403) before our code runs: a generated client must know both on every operation."""
    spec = _spec(SHOP)
    keyed = {(r.method, r.path) for r in _api_routes() if r.api_key_required}
    for key, op in _operations(spec).items():
        responses = op.get("responses", {})
        assert responses.get("429") == {"$ref": "#/components/responses/TooManyRequests"}, key
        if key in keyed:
            assert responses.get("403") == {"$ref": "#/components/responses/Forbidden"}, key
