"""The shop's events: ``/webhook-endpoints`` (register, list, read, change, delete an endpoint,
rotate its signing secret) and ``GET /events`` (the pull API: every event after a cursor, ascending).
See docs/events.md."""

from __future__ import annotations

import re
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from staykey import wiring
from staykey.edge.http import make_resolver, parse_body, respond
from staykey.edge.pagination import Query
from staykey.errors import NotFound
from staykey.events.endpoints import ENDPOINT_ID_PATTERN, EndpointIn, EndpointPatch
from staykey.observability import logger

app = make_resolver()


def _endpoint_id(raw: str) -> str:
    if not re.match(ENDPOINT_ID_PATTERN, raw):
        raise NotFound(f"webhook endpoint {raw!r} does not exist")
    logger.append_keys(endpoint_id=raw)
    return raw


@app.post("/webhook-endpoints")
def create_endpoint() -> Any:
    endpoint, secret = wiring.events_service().create(parse_body(app, EndpointIn))
    return respond(201, {**endpoint.to_api(), "secret": secret})


@app.get("/webhook-endpoints")
def list_endpoints() -> Any:
    return respond(200, {"items": [e.to_api() for e in wiring.events_service().list()]})


@app.get("/webhook-endpoints/<endpointId>")
def get_endpoint(endpointId: str) -> Any:
    return respond(200, wiring.events_service().get(_endpoint_id(endpointId)).to_api())


@app.patch("/webhook-endpoints/<endpointId>")
def update_endpoint(endpointId: str) -> Any:
    endpoint_id = _endpoint_id(endpointId)
    change = parse_body(app, EndpointPatch)
    return respond(200, wiring.events_service().update(endpoint_id, change).to_api())


@app.delete("/webhook-endpoints/<endpointId>")
def delete_endpoint(endpointId: str) -> Any:
    wiring.events_service().delete(_endpoint_id(endpointId))
    return Response(status_code=204, body="", headers={"Cache-Control": "no-store"})


@app.post("/webhook-endpoints/<endpointId>/rotate-secret")
def rotate_secret(endpointId: str) -> Any:
    endpoint, secret = wiring.events_service().rotate_secret(_endpoint_id(endpointId))
    return respond(200, {**endpoint.to_api(), "secret": secret})


@app.get("/events")
def list_events() -> Any:
    event = app.current_event
    # Known names only, each at most once: a 422 naming the parameter, as every list route answers.
    query = Query(event.query_string_parameters, event.multi_value_query_string_parameters, ("after", "limit"))
    page = wiring.events_service().events(query.get("after"), query.get("limit"))
    return respond(200, page)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
