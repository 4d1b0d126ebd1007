"""Typed shapes of what we send to and read from the Nuki Web API (spec 4.18.0): smartlocks and
their authorizations (the activity log is `staykey.nuki.logs`, webhook payloads `staykey.nuki.webhooks`).

Python names are snake_case; on the wire they are Nuki's camelCase (either is accepted when
building a model). Response models ignore fields they do not know, so a new Nuki field never
breaks parsing, and keep enum-like values as plain ints, so a new Nuki value never breaks parsing
either.

Every datetime on a model is timezone-aware UTC. Request models refuse naive datetimes and
serialise dates as ``YYYY-MM-DDTHH:MM:SS.000Z`` (Nuki reads ``allowedFromDate`` and
``allowedUntilDate`` as UTC instants; sub-second precision is dropped so a read-back compares
equal). Models that can hold a keypad code or a webhook secret leave it out of their ``repr``,
and validation errors never echo input values.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)
from pydantic.alias_generators import to_camel

from staykey.nuki.codes import is_valid_keypad_code

KEYPAD_CODE_AUTH_TYPE: Final = 13
KEYPAD_NAME_MAX_LENGTH = 20
ALL_WEEK_DAYS = 127
SERVER_STATE_OFFLINE = 4


# --- datetimes ---------------------------------------------------------------------------------


def _as_utc(value: datetime) -> datetime:
    # Nuki writes "...Z"; should an answer ever come without an offset, it is UTC all the same.
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _floor_to_second_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(microsecond=0)


def format_utc(value: datetime, *, milliseconds: bool = True) -> str:
    """An aware datetime as Nuki's RFC 3339 UTC form, ``2026-12-01T14:00:00.000Z``.

    With ``milliseconds=False`` the fraction is dropped to ``.000``. Naive datetimes are refused:
    we never guess a time zone.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("a timezone-aware datetime is required")
    utc = value.astimezone(UTC)
    millis = utc.microsecond // 1000 if milliseconds else 0
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{millis:03d}Z"


def _format_write_date(value: datetime) -> str:
    return format_utc(value, milliseconds=False)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
"""A datetime read from Nuki, normalised to aware UTC."""

WriteDatetime = Annotated[
    AwareDatetime,
    AfterValidator(_floor_to_second_utc),
    PlainSerializer(_format_write_date, return_type=str, when_used="json"),
]
"""A datetime we send to Nuki: must be aware; stored as UTC to the second; JSON ``...SS.000Z``."""


def _check_keypad_code(code: int) -> int:
    if not is_valid_keypad_code(code):
        # No value in the message: it would be a PIN.
        raise ValueError("keypad code must be 6 digits 1-9 and must not start with 12")
    return code


KeypadCode = Annotated[int, AfterValidator(_check_keypad_code)]
"""A keypad code Nuki accepts (see codes.is_valid_keypad_code), sent as a JSON number."""


# --- base classes ------------------------------------------------------------------------------


class NukiModel(BaseModel):
    """Base of what Nuki sends us: unknown fields are ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", hide_input_in_errors=True
    )


class NukiRequestModel(BaseModel):
    """Base of what we send to Nuki: immutable, no unknown fields, serialised by alias."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        hide_input_in_errors=True,
    )

    def to_body(self) -> dict[str, Any]:
        """The JSON body Nuki expects (camelCase, dates as strings, ``code`` as a number)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def check_window(allowed_from: datetime, allowed_until: datetime) -> None:
    """A write's window (`allowedFromDate` before `allowedUntilDate`): ValueError otherwise."""
    if allowed_until <= allowed_from:
        raise ValueError("allowedUntilDate must be after allowedFromDate")


# --- smartlocks --------------------------------------------------------------------------------


class SmartlockState(NukiModel):
    """``Smartlock.State``: the device state (its ``trigger`` list differs from the log's)."""

    mode: int | None = None
    state: int | None = None
    trigger: int | None = None
    last_action: int | None = None
    battery_critical: bool | None = None
    battery_charging: bool | None = None
    battery_charge: int | None = None
    keypad_battery_critical: bool | None = None
    doorsensor_battery_critical: bool | None = None
    door_state: int | None = None
    ring_to_open_timer: int | None = None
    night_mode: bool | None = None


class SmartlockConfig(NukiModel):
    """``Smartlock.Config``: the parts we use."""

    name: str | None = None
    keypad_paired: bool = False
    keypad2_paired: bool = False
    timezone_id: int | None = None
    timezone_offset: int | None = None
    advertising_mode: int | None = None
    product_variant: int | None = None


class ShsSubscription(NukiModel):
    """``ShsSubscription``: a lock's Smart Hosting subscription (``Smartlock.currentSubscription``).

    Values are kept as Nuki sends them (plain strings), so a state Nuki adds never breaks parsing.
    """

    type: str | None = None  # B2C, B2B
    state: str | None = None  # ACTIVE, INACTIVE, CANCELLED, EXPIRED, ON_HOLD, PENDING, PENDING_CANCEL
    shs_subscription_type: str | None = None  # BUSINESS, STANDARD, BUSINESS_PLUS, API_ONLY
    expiration_date: UtcDatetime | None = None
    is_in_grace_period: bool | None = None


"""Subscription states in which Nuki serves the lock today: ``PENDING_CANCEL`` is cancelled at
the end of its term and runs until then."""


class Smartlock(NukiModel):
    smartlock_id: int
    account_id: int
    type: int
    auth_id: int
    name: str
    favorite: bool
    server_state: int
    admin_pin_state: int
    config: SmartlockConfig | None = None
    state: SmartlockState | None = None
    firmware_version: int | None = None
    hardware_version: int | None = None
    operation_id: str | None = None
    error: str | None = None
    creation_date: UtcDatetime | None = None
    update_date: UtcDatetime | None = None
    current_subscription: ShsSubscription | None = None

    @property
    def online(self) -> bool:
        """False when Nuki reports the lock offline (``serverState`` 4): writes stay pending."""
        return self.server_state != SERVER_STATE_OFFLINE

    @property
    def has_keypad(self) -> bool:
        """True when a Keypad or Keypad 2 is paired: keypad codes can be created."""
        return self.config is not None and (self.config.keypad_paired or self.config.keypad2_paired)


# --- authorizations ----------------------------------------------------------------------------


class SmartlockAuth(NukiModel):
    """An authorization on a lock. ``id`` (24 hex) addresses it in URLs; ``auth_id`` is the device's number.

    ``enabled`` is not "currently valid": an expired code still shows ``enabled``. It may be absent
    from a ``DEVICE_AUTHS`` webhook (Nuki's published example has none): None then, and such a body
    says too little to confirm anything (``staykey.core.onlock.complete``).
    """

    id: str
    smartlock_id: int
    type: int
    name: str
    enabled: bool | None = None
    # Nuki's lists always carry it (the spec requires it); a webhook that leaves it out says
    # nothing of it: None then, and such a body cannot confirm a code (`core.onlock.complete`).
    remote_allowed: bool | None = None
    lock_count: int = 0
    auth_id: int | None = None
    code: int | None = Field(default=None, repr=False)
    allowed_from_date: UtcDatetime | None = None
    allowed_until_date: UtcDatetime | None = None
    allowed_week_days: int | None = None
    allowed_from_time: int | None = None
    allowed_until_time: int | None = None
    account_user_id: int | None = None
    last_active_date: UtcDatetime | None = None
    creation_date: UtcDatetime | None = None
    update_date: UtcDatetime | None = None
    # The spec says ObjectId (an object); Nuki's lock-level operationId is a string. Accept both.
    operation_id: str | dict[str, Any] | None = None
    error: str | None = None
    app_id: int | None = None
    auth_type_as_string: str | None = None

    @property
    def is_keypad_code(self) -> bool:
        return self.type == KEYPAD_CODE_AUTH_TYPE

    @property
    def operation_pending(self) -> bool:
        """True while another operation runs on this auth: Nuki answers 423 to changes until it ends."""
        return self.operation_id is not None


class Pagination(NukiModel):
    """``Pagination`` of a paged answer (``GET /smartlock/auth/paged``)."""

    total_items: int | None = None
    total_pages: int | None = None
    current_page: int | None = None
    page_size: int | None = None


class AuthPage(NukiModel):
    """One page of ``GET /smartlock/auth/paged`` (the spec's ``PaginatedResponse``): the
    authorizations of every lock of the account, a page at a time."""

    results: list[SmartlockAuth] = Field(default_factory=list)
    pagination: Pagination = Field(default_factory=Pagination)


class AuthWindowCreate(NukiRequestModel):
    """What every authorization StayKey creates carries (``SmartlockAuthCreate``): its window
    (absolute, UTC instants) and restrictions. Defaults: every day, all day, no remote access."""

    allowed_from: WriteDatetime = Field(alias="allowedFromDate")
    allowed_until: WriteDatetime = Field(alias="allowedUntilDate")
    allowed_week_days: int = Field(default=ALL_WEEK_DAYS, ge=0, le=ALL_WEEK_DAYS)
    allowed_from_time: int = Field(default=0, ge=0, le=1439)
    allowed_until_time: int = Field(default=0, ge=0, le=1439)
    remote_allowed: bool = False

    @model_validator(mode="after")
    def _window(self) -> AuthWindowCreate:
        check_window(self.allowed_from, self.allowed_until)
        return self


class KeypadCodeCreate(AuthWindowCreate):
    """Body of a keypad-code creation (``SmartlockAuthCreate`` with ``type`` 13)."""

    name: str = Field(min_length=1, max_length=KEYPAD_NAME_MAX_LENGTH)
    code: KeypadCode = Field(repr=False)
    type: Literal[13] = KEYPAD_CODE_AUTH_TYPE
    # Links the code to a Nuki account user: Nuki Web's activity log then shows that person's name.
    account_user_id: int | None = Field(default=None, ge=1, le=2**31 - 1)


class SmartlockAuthUpdate(NukiRequestModel):
    """Body of ``POST /smartlock/{smartlockId}/auth/{id}`` for a keypad code: the FULL restriction set.

    Every field but ``account_user_id`` is required because Nuki clears restrictions that an update
    leaves out (forum 40095). Build one from the current auth with :meth:`from_auth`.
    """

    name: str = Field(min_length=1, max_length=KEYPAD_NAME_MAX_LENGTH)
    code: KeypadCode = Field(repr=False)
    allowed_from: WriteDatetime = Field(alias="allowedFromDate")
    allowed_until: WriteDatetime = Field(alias="allowedUntilDate")
    allowed_week_days: int = Field(ge=0, le=ALL_WEEK_DAYS)
    allowed_from_time: int = Field(ge=0, le=1439)
    allowed_until_time: int = Field(ge=0, le=1439)
    enabled: bool
    remote_allowed: bool
    account_user_id: int | None = None

    @model_validator(mode="after")
    def _window(self) -> SmartlockAuthUpdate:
        check_window(self.allowed_from, self.allowed_until)
        return self

    @classmethod
    def from_auth(cls, auth: SmartlockAuth, **changes: Any) -> SmartlockAuthUpdate:
        """The full update that keeps everything of `auth` except `changes` (python field names).

        Raises ValueError if a required value is neither on the auth nor in `changes`.
        """
        current: dict[str, Any] = {
            "name": auth.name,
            "code": auth.code,
            "allowed_from": auth.allowed_from_date,
            "allowed_until": auth.allowed_until_date,
            "allowed_week_days": ALL_WEEK_DAYS if auth.allowed_week_days is None else auth.allowed_week_days,
            "allowed_from_time": auth.allowed_from_time or 0,
            "allowed_until_time": auth.allowed_until_time or 0,
            "enabled": auth.enabled,
            "remote_allowed": auth.remote_allowed is True,  # not said: none (StayKey never wants it)
            "account_user_id": auth.account_user_id,
        }
        unknown = set(changes) - set(current)
        if unknown:
            raise ValueError(f"unknown fields for an auth update: {sorted(unknown)}")
        current.update(changes)
        missing = [key for key, value in current.items() if value is None and key != "account_user_id"]
        if missing:
            raise ValueError(f"the auth has no {', '.join(missing)}: pass them explicitly")
        return cls(**current)


__all__ = [
    "ALL_WEEK_DAYS",
    "KEYPAD_CODE_AUTH_TYPE",
    "KEYPAD_NAME_MAX_LENGTH",
    "SERVER_STATE_OFFLINE",
    "AuthPage",
    "KeypadCode",
    "KeypadCodeCreate",
    "NukiModel",
    "NukiRequestModel",
    "Pagination",
    "ShsSubscription",
    "Smartlock",
    "SmartlockAuth",
    "SmartlockAuthUpdate",
    "SmartlockConfig",
    "SmartlockState",
    "UtcDatetime",
    "WriteDatetime",
    "format_utc",
]
