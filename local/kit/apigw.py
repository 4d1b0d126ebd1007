"""API Gateway REST (v1 proxy) events for handler tests, shaped like events/*.json."""

from __future__ import annotations

import base64
import json
import re
import uuid
from typing import Any


def api_event(
    method: str,
    path: str,
    body: Any = None,
    *,
    resource: str | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    raw_body: bytes | None = None,
    base64_encoded: bool = False,
) -> dict[str, Any]:
    """An event for `method path`; `resource` is the template path (/bookings/{bookingId})."""
    resource = resource or path
    names = re.findall(r"\{([^}]+)\}", resource)
    pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(resource)) + "$"
    match = re.match(pattern, path)
    params = dict(zip(names, match.groups(), strict=True)) if match and names else None
    if raw_body is not None:
        text = base64.b64encode(raw_body).decode() if base64_encoded else raw_body.decode()
    elif body is None:
        text = None
    else:
        text = body if isinstance(body, str) else json.dumps(body)
    hdrs = {"Content-Type": "application/json", "x-api-key": "local-dev-key", **(headers or {})}
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": hdrs,
        "multiValueHeaders": {k: [v] for k, v in hdrs.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": params,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/dev{path}",
            "stage": "dev",
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": "127.0.0.1", "apiKey": hdrs.get("x-api-key")},
        },
        "body": text,
        "isBase64Encoded": base64_encoded,
    }


def response_json(response: dict[str, Any]) -> Any:
    return json.loads(response["body"]) if response.get("body") else None


class Context:
    """The parts of a Lambda context that Powertools reads."""

    function_name = "staykey-test"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:eu-central-1:123456789012:function:staykey-test"
    aws_request_id = "test-request"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000
