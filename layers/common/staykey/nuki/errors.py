"""Typed errors of the Nuki client.

Every failure of a Nuki call reaches the caller as one of these, never as a `requests` exception.
Messages are safe to log: they name the operation by its path template (never a concrete URL),
never contain the Bearer token, and every 6-digit number in them (Nuki echoes keypad codes in its
``detailMessage``: "The supplied value '245678' for parameter 'code' is not valid") is replaced
by ``******``, every email address (an account user's) by ``[email]``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_SIX_DIGITS = re.compile(r"(?<!\d)\d{6}(?!\d)")
_EMAIL = re.compile(r"[^\s'\"<>@]+@[^\s'\"<>@]+")
_MAX_DETAIL = 300


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every given secret replaced by ``[redacted]``, every 6-digit number by ``******``
    and every email address by ``[email]``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return _SIX_DIGITS.sub("******", _EMAIL.sub("[email]", text))


class NukiError(Exception):
    """A Nuki call failed.

    ``status`` is the HTTP status of the last answer (``None`` when there was none), ``operation``
    the call as "METHOD /path/{template}", ``detail`` Nuki's own explanation when it sent one.
    ``retryable`` tells whether the same call may succeed later without any change.
    """

    retryable = False
    # An earlier attempt of the same request ended without a definite answer (timeout, dropped
    # connection, gateway error): Nuki may have applied it, whatever this answer says.
    after_ambiguous_retry = False

    def __init__(
        self, message: str, *, status: int | None = None, operation: str = "", detail: str | None = None
    ) -> None:
        self.status = status
        self.operation = operation
        self.detail = redact(detail)[:_MAX_DETAIL] if detail else None
        super().__init__(redact(message))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r}, status={self.status!r}, operation={self.operation!r})"


class NukiAuthError(NukiError):
    """401 or 403: the token is invalid, lacks a permission, or the lock is not in the account."""


class NukiNotFound(NukiError):
    """404: the lock (or authorization) does not exist for this account."""


class NukiCodeConflict(NukiError):
    """409: Nuki refuses the change as a conflict, typically: the keypad code exists on the lock already.

    ``after_ambiguous_retry`` is True when an earlier attempt of the same request ended without a
    definite answer (timeout, dropped connection, gateway error). Nuki may then have applied that
    earlier attempt, and the conflict may be with our own code: read the lock's codes back before
    choosing another PIN.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = 409,
        operation: str = "",
        detail: str | None = None,
        after_ambiguous_retry: bool = False,
    ) -> None:
        super().__init__(message, status=status, operation=operation, detail=detail)
        self.after_ambiguous_retry = after_ambiguous_retry


class NukiInvalidRequest(NukiError):
    """400 or 422: Nuki rejects the request as invalid (bad code, name too long, no keypad paired...).

    ``detail`` carries Nuki's ``detailMessage`` (or ``description``), with keypad codes redacted.
    """


class _RetryLater(NukiError):
    retryable = True

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        operation: str = "",
        detail: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, operation=operation, detail=detail)
        self.retry_after = retry_after


class NukiLocked(_RetryLater):
    """423 after the retries ran out: another operation on the same authorization is still running.

    ``retry_after`` is the delay in seconds Nuki asked for, or the wait we would have needed next.
    """


class NukiUnavailable(_RetryLater):
    """429, 5xx, timeout or connection failure after the retries ran out.

    ``retry_after`` is the delay in seconds Nuki asked for (``Retry-After``), or the wait that would
    have exceeded the time budget; ``None`` when neither is known.
    """


class NukiRefused(NukiError):
    """402, 426 or another unexpected 4xx: a refusal a retry will not fix (billing, plan...)."""


class NukiProtocolError(NukiError):
    """Nuki answered something we cannot use: an unparsable body, a cursor that does not advance,
    an unexpected status such as a redirect."""


__all__ = [
    "NukiAuthError",
    "NukiCodeConflict",
    "NukiError",
    "NukiInvalidRequest",
    "NukiLocked",
    "NukiNotFound",
    "NukiProtocolError",
    "NukiRefused",
    "NukiUnavailable",
    "redact",
]


def describe(exc: BaseException) -> str:
    """A short, safe, readable reason for a failed Nuki call, for a booking's `locks[].error`."""
    if isinstance(exc, NukiError):
        text = exc.detail or str(exc)
        return f"Nuki answered {exc.status}: {text}" if exc.status else f"Nuki: {text}"
    return f"Nuki unreachable: {type(exc).__name__}"
