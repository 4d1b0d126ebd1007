"""Nuki's official Web API spec (Swagger 2.0, 4.18.0) as a judge of our client and our sandbox.

The spec is vendored byte for byte in ``third_party/nuki`` (its provenance in SOURCE.md there; the
SHA-256 below is checked on load), so a fresh clone needs nothing beside it. A few of its
declarations contradict what Nuki itself returns (``third_party/nuki/QUIRKS.md``), so we apply a
small overlay to a copy in memory, each patch
with the reason next to it, and validate against the patched copy:

* ``validate_request`` checks what a client sends: the operation exists, path and query parameters
  are declared and typed, the Bearer header is there, a JSON body matches the body schema and
  carries no property the schema does not know (our client must not invent fields) and no
  read-only property.
* ``validate_response`` checks what a server answers: the status is declared for the operation and
  a JSON body matches the declared schema.

``python -m local.nuki_spec --write build/nuki-web-api.overlay.json`` writes the patched spec, for
Prism (``prism proxy``) or any other Swagger tool.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema import Draft4Validator, FormatChecker

ROOT = Path(__file__).resolve().parent.parent
SPEC_PATH = Path(
    os.environ.get("NUKI_SPEC_PATH", str(ROOT / "third_party" / "nuki" / "nuki-web-api-swagger-4.18.0.json"))
)
SPEC_SHA256 = "653153b31104eebac5a4fd77816857c82015b1d12da6910e3cd546f2ad1f808c"

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)


def _patch_overlay(spec: dict[str, Any]) -> list[str]:
    """Apply our overlay in place; return one line per patch, for the record."""
    notes: list[str] = []
    definitions = spec["definitions"]

    # QUIRKS 1: no consumes/produces anywhere; Nuki speaks JSON.
    for item in spec["paths"].values():
        for method, op in item.items():
            if method not in {"get", "put", "post", "delete", "patch"}:
                continue
            op["produces"] = ["application/json"]
            if any(p.get("in") == "body" for p in op.get("parameters", [])):
                op["consumes"] = ["application/json"]
    notes.append("consumes/produces application/json on every operation (QUIRKS 1)")

    # QUIRKS 2: SmartlockAuth.type says maximum 2 but lists 3, 13, 14, 15; keypad codes are 13.
    definitions["SmartlockAuth"]["properties"]["type"]["maximum"] = 15
    notes.append("SmartlockAuth.type maximum 2 -> 15 (QUIRKS 2)")

    # QUIRKS 3: `"type": "int"` is not a Swagger type.
    for item in spec["paths"].values():
        for op in item.values():
            if isinstance(op, dict):
                for param in op.get("parameters", []):
                    if param.get("type") == "int":
                        param["type"] = "integer"
    notes.append('query parameters of type "int" -> "integer" (QUIRKS 3)')

    # QUIRKS 4: operations reference `api_key`, which is not defined; Nuki takes a Bearer token.
    spec["securityDefinitions"]["api_key"] = {
        "type": "apiKey",
        "name": "Authorization",
        "in": "header",
        "description": "Bearer <API token> (added by the StayKey overlay)",
    }
    notes.append("securityDefinitions.api_key = Authorization header (QUIRKS 4)")

    # The log's completion state 0 means "Success" in the spec's own description, yet the
    # schema says minimum 1 (nuki-web-api.md, section 1 "Spec quirks").
    definitions["SmartlockLog"]["properties"]["state"]["minimum"] = 0
    notes.append("SmartlockLog.state minimum 1 -> 0 (0 is Success)")

    # Nuki answers 422 to a keypad code whose name is longer than 20 characters (forum 35593),
    # a status the spec does not declare for the create operations.
    for template in ("/smartlock/{smartlockId}/auth", "/smartlock/auth"):
        spec["paths"][template]["put"]["responses"]["422"] = {
            "description": "Unprocessable entity (keypad code name longer than 20 characters; observed)"
        }
    notes.append("422 declared on PUT /smartlock/{smartlockId}/auth and PUT /smartlock/auth (forum 35593)")

    # The keypad-code name rule (at most 20 characters) is the same when an update renames a
    # code; the Nuki sandbox answers it with the same 422, which the update does not declare.
    spec["paths"]["/smartlock/{smartlockId}/auth/{id}"]["post"]["responses"]["422"] = {
        "description": "Unprocessable entity (keypad code name longer than 20 characters; as on create)"
    }
    notes.append("422 declared on POST /smartlock/{smartlockId}/auth/{id} (keypad name rule, as on create)")

    # Every operation takes the Bearer token and Nuki answers 401 to a missing or wrong one
    # everywhere (ioBroker.nuki-extended#273), yet the two create operations do not declare it.
    for template in ("/smartlock/{smartlockId}/auth", "/smartlock/auth", "/account/user"):
        spec["paths"][template]["put"]["responses"].setdefault("401", {"description": "Not authorized"})
    notes.append(
        "401 declared on PUT /smartlock/{smartlockId}/auth, PUT /smartlock/auth, PUT /account/user (bad token)"
    )

    # Nuki answers 400 to a malformed log filter, e.g. "The supplied value '1788213600' for
    # parameter 'fromDate' is not valid" for Unix seconds (observed live, nuki-web-api.md 5.2),
    # yet the log operations declare only 200 and 401.
    for template in ("/smartlock/{smartlockId}/log", "/smartlock/log"):
        spec["paths"][template]["get"]["responses"].setdefault("400", {"description": "Bad parameter (observed)"})
    notes.append("400 declared on GET /smartlock/{smartlockId}/log and GET /smartlock/log (Unix dates, observed)")

    # SmartlockAuth.operationId refers to ObjectId, declared as an object of its parts; Nuki
    # sends the id as a 24-hex string (leonnicolas/nupin api/nuki/patch.json turns ObjectId into a
    # string so its generated client can read live answers). ObjectId is used nowhere else.
    definitions["ObjectId"] = {"type": "string", "description": "24-hex MongoDB ObjectId (StayKey overlay)"}
    notes.append("ObjectId (SmartlockAuth.operationId) object -> string (nupin patch.json)")
    return notes


@lru_cache(maxsize=1)
def load_spec() -> dict[str, Any]:
    """The official spec with our overlay applied (a fresh copy is cheap to deep-copy)."""
    spec = _official()
    _patch_overlay(spec)
    return spec


def _official() -> dict[str, Any]:
    raw = SPEC_PATH.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SPEC_SHA256:
        raise RuntimeError(f"{SPEC_PATH} is not Nuki's spec 4.18.0 as vendored (sha256 {digest})")
    parsed: dict[str, Any] = json.loads(raw)
    return parsed


def overlay_notes() -> list[str]:
    return _patch_overlay(_official())


_format_checker = FormatChecker()


@_format_checker.checks("int32")
def _is_int32(value: object) -> bool:
    return not isinstance(value, int) or INT32[0] <= value <= INT32[1]


@_format_checker.checks("int64")
def _is_int64(value: object) -> bool:
    return not isinstance(value, int) or INT64[0] <= value <= INT64[1]


@_format_checker.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    # RFC 3339: a date, a time and an offset (Z or +hh:mm).
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})", value):
        raise ValueError(f"{value!r} is not an RFC 3339 date-time")
    datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    op: dict[str, Any]
    path_params: dict[str, str]


def _template_regex(template: str) -> re.Pattern[str]:
    pattern = re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(template))
    return re.compile(f"^{pattern}$")


@lru_cache(maxsize=1)
def _routes() -> list[tuple[re.Pattern[str], str, list[str]]]:
    spec = load_spec()
    routes = []
    for template in spec["paths"]:
        names = re.findall(r"\{([^}]+)\}", template)
        routes.append((_template_regex(template), template, names))
    # Literal segments win over parameters (/smartlock/auth before /smartlock/{smartlockId}).
    routes.sort(key=lambda r: (r[1].count("{"), -len(r[1])))
    return routes


def find_operation(method: str, path: str) -> Operation | None:
    return _find_operation(method.lower(), path)


@lru_cache(maxsize=8192)
def _find_operation(method: str, path: str) -> Operation | None:
    """Remembered by (method, path): the routes are tried in order, a regex each, and the answer
    depends on the text and the spec alone (`load_spec` reads it once); no caller changes one."""
    spec = load_spec()
    for regex, template, names in _routes():
        match = regex.match(path)
        if match and method in spec["paths"][template]:
            return Operation(
                method, template, spec["paths"][template][method], dict(zip(names, match.groups(), strict=True))
            )
    return None


def _schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A standalone JSON schema: the fragment plus every definition it may reference."""
    spec = load_spec()
    return {**copy.deepcopy(dict(schema)), "definitions": spec["definitions"]}


def _strict(schema: dict[str, Any], definitions: dict[str, Any], seen: set[str] | None = None) -> dict[str, Any]:
    """A copy of a request schema that refuses unknown and read-only properties."""
    seen = seen or set()
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return {}
        return _strict(copy.deepcopy(definitions[name]), definitions, seen | {name})
    out = dict(schema)
    if out.get("type") == "object" and "properties" in out:
        props = {}
        for key, sub in out["properties"].items():
            if sub.get("readOnly"):
                continue
            props[key] = _strict(sub, definitions, seen)
        out["properties"] = props
        out["additionalProperties"] = False
    if out.get("type") == "array" and "items" in out:
        out["items"] = _strict(out["items"], definitions, seen)
    return out


# A validator per schema, built once (a copy of the schema with every definition, and its reference
# registry), and what it said about each JSON document it judged: judging is a pure function of the
# schema and the document, and the simulator sends the same documents again and again (a lock's
# codes, read back every few minutes). An array of one definition is judged element by element, so
# a list that changed in one element costs one element. The problems found are the same either way.
_VALIDATORS: dict[tuple[str, ...], Draft4Validator] = {}
_Found = tuple[tuple[tuple[str | int, ...], str], ...]
_JUDGED: dict[tuple[tuple[str, ...], str], _Found] = {}
_JUDGED_MAX = 200_000


def _validator(key: tuple[str, ...], schema: Callable[[], dict[str, Any]]) -> Draft4Validator:
    validator = _VALIDATORS.get(key)
    if validator is None:
        validator = _VALIDATORS[key] = Draft4Validator(schema(), format_checker=_format_checker)
    return validator


def _judge(key: tuple[str, ...], validator: Draft4Validator, instance: Any) -> _Found:
    """(path, message) of every error `validator` finds in `instance`, remembered per document."""
    document = json.dumps(instance, sort_keys=True, separators=(",", ":"))
    found = _JUDGED.get((key, document))
    if found is None:
        if len(_JUDGED) >= _JUDGED_MAX:
            _JUDGED.clear()
        found = tuple((tuple(err.absolute_path), err.message) for err in validator.iter_errors(instance))
        _JUDGED[(key, document)] = found
    return found


def _validate(
    instance: Any, key: tuple[str, ...], schema: Mapping[str, Any], where: str, *, strict: bool = False
) -> list[str]:
    """Problems with `instance` against `schema` (a fragment of the spec; `strict`: a request body's
    schema, refusing unknown and read-only properties), each with where it is in the document."""

    def whole() -> dict[str, Any]:
        if not strict:
            return _schema(schema)
        definitions = load_spec()["definitions"]
        return {**_strict(copy.deepcopy(dict(schema)), definitions), "definitions": definitions}

    items = schema.get("items")
    if not strict and set(schema) == {"type", "items"} and schema["type"] == "array" and isinstance(instance, list):
        item_key, item_schema = (*key, "items"), dict(items or {})
        item_validator = _validator(item_key, lambda: _schema(item_schema))
        found = [
            ((n, *path), message)
            for n, element in enumerate(instance)
            for path, message in _judge(item_key, item_validator, element)
        ]
    else:
        found = list(_judge(key, _validator(key, whole), instance))
    errors = []
    for path, message in sorted(found, key=lambda e: list(e[0])):
        loc = "/".join(str(p) for p in path) or "(root)"
        errors.append(f"{where} {loc}: {message}")
    return errors


def _check_param_value(param: Mapping[str, Any], raw: str) -> str | None:
    kind = param.get("type")
    name = param["name"]
    if kind == "integer":
        if not re.fullmatch(r"-?\d+", raw):
            return f"parameter {name!r}={raw!r} is not an integer"
        fmt_range = INT64 if param.get("format") == "int64" else INT32 if param.get("format") == "int32" else None
        if fmt_range and not fmt_range[0] <= int(raw) <= fmt_range[1]:
            return f"parameter {name!r}={raw!r} is out of {param.get('format')} range"
    elif kind == "boolean" and raw not in {"true", "false"}:
        return f"parameter {name!r}={raw!r} is not a boolean"
    if "maximum" in param and re.fullmatch(r"-?\d+", raw) and int(raw) > param["maximum"]:
        return f"parameter {name!r}={raw!r} exceeds maximum {param['maximum']}"
    return None


def validate_request(
    method: str,
    path: str,
    query: Mapping[str, list[str]] | None = None,
    body: bytes | str | None = None,
    headers: Mapping[str, str] | None = None,
) -> list[str]:
    """Problems with a request as the spec sees it; an empty list means it conforms."""
    op = find_operation(method, path)
    if op is None:
        return [f"{method.upper()} {path}: no such operation in the Nuki spec"]
    problems: list[str] = []
    params = op.op.get("parameters", [])
    for param in params:
        if param["in"] == "path":
            problem = _check_param_value(param, op.path_params[param["name"]])
            if problem:
                problems.append(problem)
    declared_query = {p["name"]: p for p in params if p["in"] == "query"}
    for name, values in (query or {}).items():
        if name not in declared_query:
            problems.append(f"query parameter {name!r} is not declared for {method.upper()} {op.template}")
            continue
        for value in values:
            problem = _check_param_value(declared_query[name], value)
            if problem:
                problems.append(problem)
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    if headers is not None and not lowered.get("authorization", "").startswith("Bearer "):
        problems.append("missing Authorization: Bearer header")
    body_param = next((p for p in params if p["in"] == "body"), None)
    raw: str | None = body.decode() if isinstance(body, bytes) else body
    if body_param is None:
        if raw:
            problems.append(f"{method.upper()} {op.template} takes no body")
        return problems
    if not raw:
        if body_param.get("required"):
            problems.append(f"{method.upper()} {op.template} requires a JSON body")
        return problems
    if headers is not None and "application/json" not in lowered.get("content-type", ""):
        problems.append("body sent without Content-Type: application/json")
    try:
        instance = json.loads(raw)
    except ValueError as exc:
        return [*problems, f"body is not JSON: {exc}"]

    key = ("request", op.method, op.template)
    problems += _validate(instance, key, body_param["schema"], "request body", strict=True)
    return problems


def validate_response(method: str, path: str, status: int, body: bytes | str | None) -> list[str]:
    """Problems with a response as the spec sees it; an empty list means it conforms."""
    op = find_operation(method, path)
    if op is None:
        return [f"{method.upper()} {path}: no such operation in the Nuki spec"]
    responses = op.op.get("responses", {})
    declared = responses.get(str(status))
    if declared is None:
        return [f"{method.upper()} {op.template}: status {status} is not declared (declared: {sorted(responses)})"]
    schema = declared.get("schema")
    raw = body.decode() if isinstance(body, bytes) else body
    if schema is None:
        if status == 204 and raw:
            return [f"{method.upper()} {op.template}: 204 must have an empty body"]
        return []
    try:
        instance = json.loads(raw or "")
    except ValueError as exc:
        return [f"{method.upper()} {op.template}: body is not JSON: {exc}"]
    key = ("response", op.method, op.template, str(status))
    return _validate(instance, key, schema, f"{method.upper()} {op.template} {status}")


def validate_definition(name: str, instance: Any) -> list[str]:
    """Problems with a document that should be one of the spec's definitions (a webhook payload part)."""
    return _validate(instance, ("definition", name), {"$ref": f"#/definitions/{name}"}, name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", type=Path, help="write the patched spec to this file")
    args = parser.parse_args(argv)
    if args.write:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(json.dumps(load_spec(), indent=1), encoding="utf-8")
    for note in overlay_notes():
        print(f"overlay: {note}")
    return 0


__all__ = [
    "SPEC_PATH",
    "find_operation",
    "jsonschema",
    "load_spec",
    "validate_definition",
    "validate_request",
    "validate_response",
]

if __name__ == "__main__":
    raise SystemExit(main())
