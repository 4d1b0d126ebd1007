"""The HTTP edge: one resolver factory, body parsing, and the one place domain errors become HTTP.

Error bodies: `{"code": "validation_error", "message": "...", "errors": [{"field": "guest.email",
"message": "..."}]}`. They never carry a stack trace, a token or a PIN. Unparseable JSON is 400;
a body that parses but breaks a rule of docs/shop-api.md is 422 naming each bad field.

We parse bodies with pydantic ourselves rather than with the resolver's `enable_validation`: it
keeps the error shape ours and keeps the OpenAPI machinery out of every cold start.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from pydantic import BaseModel, ValidationError

from staykey.errors import PayloadTooLarge, StayKeyError, ValidationFailed
from staykey.observability import logger

M = TypeVar("M", bound=BaseModel)

MAX_BODY_BYTES = 64 * 1024
# The 422 message; `errors` names each field (the rules: docs/shop-api.md).
INVALID = "the request is not valid; errors names each bad field"


class BadRequest(StayKeyError):
    status = 400
    code = "bad_request"


def respond(status: int, body: Any, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def error_body(exc: StayKeyError) -> dict[str, Any]:
    body: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.details:
        body["errors"] = exc.details
    return body


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if not (isinstance(p, str) and p.startswith("function-"))]
    return ".".join(parts) or "(body)"


def validation_details(err: ValidationError) -> list[dict[str, Any]]:
    details = []
    for e in err.errors(include_url=False, include_input=False):
        message = str(e.get("msg", "is not valid")).removeprefix("Value error, ")
        loc = tuple(e.get("loc", ()))
        # pydantic names the union member for StayPoint (`date`, `datetime`); the shop does not care.
        loc = tuple(
            p for p in loc if p not in ("date", "datetime", "function-before[_stay_point(), union[date,datetime]]")
        )
        details.append({"field": _field(loc), "message": message})
    return details


def parse_body(app: APIGatewayRestResolver, model: type[M]) -> M:
    event = app.current_event
    try:
        raw = event.decoded_body if event.body is not None else None
    except ValueError:  # base64 that is not, or bytes that are not UTF-8
        raise BadRequest("the body is not UTF-8 text") from None
    if raw is None or raw == "":
        raise BadRequest("the request needs a JSON body")
    if len(raw.encode()) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the body is larger than {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except ValueError:
        raise BadRequest("the body is not valid JSON") from None
    except RecursionError:  # some 1,000 nested arrays or objects fit in a few KB
        raise BadRequest("the body is nested too deeply") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(INVALID, details=validation_details(exc)) from None


def parse_optional_body(app: APIGatewayRestResolver, model: type[M]) -> M:
    """A body that may be left out (or empty): then the model's defaults; otherwise as `parse_body`."""
    event = app.current_event
    if event.body is None or event.body == "":
        return model.model_validate({})
    return parse_body(app, model)


def make_resolver() -> APIGatewayRestResolver:
    app = APIGatewayRestResolver()

    @app.exception_handler(StayKeyError)  # type: ignore[untyped-decorator]
    def _domain(exc: StayKeyError) -> Response[Any]:
        if exc.status >= 500:
            logger.warning("request failed", error_code=exc.code, status=exc.status)
        return respond(exc.status, error_body(exc))

    @app.exception_handler(ValidationError)  # type: ignore[untyped-decorator]
    def _validation(exc: ValidationError) -> Response[Any]:
        return respond(
            422,
            {
                "code": "validation_error",
                "message": INVALID,
                "errors": validation_details(exc),
            },
        )

    @app.not_found
    def _not_found(exc: NotFoundError) -> Response[Any]:
        return respond(404, {"code": "not_found", "message": "no such route"})

    @app.exception_handler(Exception)  # type: ignore[untyped-decorator]
    def _unexpected(exc: Exception) -> Response[Any]:
        logger.exception("unexpected error")
        return respond(500, {"code": "internal_error", "message": "internal error; it has been logged"})

    return app
