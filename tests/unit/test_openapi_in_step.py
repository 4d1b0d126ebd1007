"""openapi.yaml describes exactly the routes template.yaml deploys, with the same key rules."""

from __future__ import annotations

from pathlib import Path

import yaml
from openapi_spec_validator import validate

from local.cfn import routes

SPEC = Path(__file__).resolve().parents[2] / "openapi.yaml"
METHODS = {"get", "put", "post", "patch", "delete"}


def _spec() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load(SPEC.read_text(encoding="utf-8"))


def test_openapi_is_a_valid_openapi_document() -> None:
    validate(_spec())


def _api_routes() -> list:  # type: ignore[type-arg]
    """The shop's routes: the operator console (/console, HTML pages for a browser) is not part of
    the shop API and not in its spec."""
    return [r for r in routes() if not r.path.startswith("/console")]


def test_every_deployed_route_is_documented_and_every_documented_route_is_deployed() -> None:
    spec = _spec()
    documented = {(m.upper(), path) for path, item in spec["paths"].items() for m in item if m in METHODS}
    deployed = {(r.method, r.path) for r in _api_routes()}
    assert documented == deployed


def test_key_requirements_match() -> None:
    spec = _spec()
    default_secured = bool(spec.get("security"))
    for route in _api_routes():
        op = spec["paths"][route.path][route.method.lower()]
        secured = bool(op.get("security", spec.get("security"))) if "security" in op else default_secured
        assert secured == route.api_key_required, f"{route.method} {route.path}"
