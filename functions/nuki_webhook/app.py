"""POST /webhooks/nuki: Nuki's decentral webhooks. No API key: the signature is the authentication.

The body is checked for size, then its X-Nuki-Signature-SHA256 over the raw bytes (base64-decoded
when API Gateway encoded it), before anything parses it. A verified body goes onto the webhook
queue as it came and Nuki gets 200 at once; the webhook processor does the work. A bad or missing
signature is 401 with nothing queued; a failure to queue is 503, so Nuki counts it as not delivered.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from staykey import wiring
from staykey.edge.nuki_webhook import SIGNATURE_HEADER
from staykey.errors import PayloadTooLarge, StayKeyError, Unauthorized
from staykey.observability import count, logger


class BadBody(StayKeyError):
    status = 400
    code = "bad_request"


def _answer(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", "Cache-Control": "no-store"},
        "body": json.dumps(body, separators=(",", ":")),
    }


def _header(event: dict[str, Any], name: str) -> str | None:
    """A header's value whatever its case (API Gateway passes names as the client sent them)."""
    wanted = name.lower()
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == wanted and isinstance(value, str):
            return value
    for key, values in (event.get("multiValueHeaders") or {}).items():
        if key.lower() == wanted and values:
            return str(values[0])
    return None


def _raw_body(event: dict[str, Any], max_bytes: int) -> bytes:
    """The request body's bytes as Nuki sent them; sizes checked before any decoding."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        # 4 base64 characters carry 3 bytes: refuse what cannot fit before decoding it.
        if len(body) > (max_bytes // 3 + 2) * 4:
            raise PayloadTooLarge(f"the body is larger than {max_bytes} bytes")
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise BadBody("the body is not valid base64") from None
    if len(body) > max_bytes:  # a UTF-8 string has at least as many bytes as characters
        raise PayloadTooLarge(f"the body is larger than {max_bytes} bytes")
    return body.encode("utf-8")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    receiver = wiring.webhook_receiver()
    try:
        raw = _raw_body(event, receiver.max_body_bytes)
        receiver.accept(raw, _header(event, SIGNATURE_HEADER))
    except Unauthorized as exc:
        count("WebhookRejected")
        logger.warning("webhook rejected", reason=exc.message)
        return _answer(401, {"code": exc.code, "message": exc.message})
    except StayKeyError as exc:
        logger.warning("webhook refused", status=exc.status, reason=exc.message)
        return _answer(exc.status, {"code": exc.code, "message": exc.message})
    except Exception:
        # Secrets Manager or SQS unavailable: not delivered, so Nuki may deliver it again.
        logger.exception("webhook could not be queued")
        return _answer(503, {"code": "unavailable", "message": "try again later"})
    return _answer(200, {"status": "accepted"})
