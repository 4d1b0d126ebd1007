"""The operator console at /console (GET and POST, no API key: operators sign in with Cognito).

All of it is in the layer (`staykey.console`): pages, sign-in and sessions, CSRF, the audit log;
this handler only hands the event over."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from staykey import wiring
from staykey.console.app import Console
from staykey.observability import logger

console = Console(wiring.console)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return console.handle(event, context)
