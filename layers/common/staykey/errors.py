"""The one error vocabulary of StayKey's domain; `staykey.edge.http` maps it to HTTP in one place."""

from __future__ import annotations

from typing import Any


class StayKeyError(Exception):
    """Base of every domain error. `message` is safe to show: no PIN, token or stack trace."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class ValidationFailed(StayKeyError):
    """Input that breaks a rule of the API (docs/shop-api.md); `details` names each bad field."""

    status = 422
    code = "validation_error"


class NotFound(StayKeyError):
    status = 404
    code = "not_found"


class Conflict(StayKeyError):
    """The request contradicts what is stored (a replay with another body, a finished booking)."""

    status = 409
    code = "conflict"


class Unauthorized(StayKeyError):
    status = 401
    code = "unauthorized"


class PayloadTooLarge(StayKeyError):
    status = 413
    code = "payload_too_large"


class UpstreamUnavailable(StayKeyError):
    """Nuki (or another dependency) could not be reached after retries; the caller may retry."""

    status = 503
    code = "upstream_unavailable"


class ConcurrentModification(StayKeyError):
    """Another writer changed the booking between our read and our write; retry the step."""

    status = 409
    code = "concurrent_modification"
