"""A lock's activity log as Nuki reports it (spec 4.18.0): ``SmartlockLog``, the enums of its
numbers, their readable names, and what counts as a guest's entry.

``SmartlockLog`` keeps Nuki's numbers as plain ints, so a new Nuki action or trigger never breaks
parsing: the ``*_enum`` properties and the ``*_name`` helpers interpret them (``unknown_<n>`` for
a value this version does not know).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Annotated, Any, TypeVar

from pydantic import BeforeValidator

from staykey.nuki.models import NukiModel, UtcDatetime


class LogAction(IntEnum):
    """``SmartlockLog.action`` (spec 4.18.0)."""

    UNLOCK = 1
    LOCK = 2
    UNLATCH = 3
    LOCK_N_GO = 4
    LOCK_N_GO_UNLATCH = 5
    RESTORE_DEFAULTS = 11
    DOOR_WARNING_AJAR = 208
    DOOR_WARNING_STATUS_MISMATCH = 209
    DOORBELL_RECOGNITION = 224
    DOOR_OPENED = 240
    DOOR_CLOSED = 241
    DOOR_SENSOR_JAMMED = 242
    FIRMWARE_UPDATE = 243
    DOOR_LOG_ENABLED = 250
    DOOR_LOG_DISABLED = 251
    INITIALIZATION = 252
    CALIBRATION = 253
    LOG_ENABLED = 254
    LOG_DISABLED = 255


class LogTrigger(IntEnum):
    """``SmartlockLog.trigger`` (spec 4.18.0). The keypad is 255; 6 is auto lock."""

    SYSTEM = 0
    MANUAL = 1
    BUTTON = 2
    AUTOMATIC = 3
    WEB = 4
    APP = 5
    AUTO_LOCK = 6
    ACCESSORY = 7
    KEYPAD_ERROR = 253
    NUKI_MODE = 254
    KEYPAD = 255


class LogState(IntEnum):
    """``SmartlockLog.state``, the completion state (spec 4.18.0)."""

    SUCCESS = 0
    MOTOR_BLOCKED = 1
    CANCELED = 2
    TOO_RECENT = 3
    BUSY = 4
    LOW_MOTOR_VOLTAGE = 5
    CLUTCH_FAILURE = 6
    MOTOR_POWER_FAILURE = 7
    INCOMPLETE = 8
    REJECTED = 9
    REJECTED_NIGHT_MODE = 10
    INVALID_CODE = 224
    INVALID_FINGERPRINT = 225
    INVALID_NFC_TAG = 226
    OTHER_ERROR = 254
    UNKNOWN_ERROR = 255


class TapToUnlockErrorState(IntEnum):
    """``SmartlockLog.state`` when ``source`` is 3 (Tap to Unlock) and ``trigger`` 253 (keypad error)."""

    ACCESS_DOCUMENT_REVOKED = 0
    SEND_NFC_FAILED = 1
    CONTROL_FLOW = 2
    COMMAND_TIME_EXPIRED = 3
    INVALID_DATA_CONTENT = 7
    INVALID_ACCESS_RIGHTS = 37
    UNKNOWN = 255


class LogSource(IntEnum):
    """``SmartlockLog.source`` (spec 4.18.0)."""

    DEFAULT = 0
    KEYPAD_CODE = 1
    FINGERPRINT = 2
    TAP_TO_UNLOCK = 3


class DeviceType(IntEnum):
    """``SmartlockLog.deviceType`` (spec 4.18.0)."""

    SMARTLOCK_1_2 = 0  # also the Box
    OPENER = 2
    SMARTDOOR = 3
    SMARTLOCK_3_4 = 4
    SMARTLOCK_5 = 5


_E = TypeVar("_E", bound=IntEnum)


def enum_or_none(enum: type[_E], value: int | None) -> _E | None:
    """`value` as a member of `enum`, or None when Nuki sent a value this version does not know."""
    if value is None:
        return None
    try:
        return enum(value)
    except ValueError:
        return None


def _name(enum: type[IntEnum], value: int) -> str:
    member = enum_or_none(enum, value)
    return member.name.lower() if member is not None else f"unknown_{value}"


def action_name(value: int) -> str:
    """``"unlock"``, ``"lock"``, ``"lock_n_go"``, ``"door_opened"``..., or ``"unknown_<n>"``."""
    return _name(LogAction, value)


def trigger_name(value: int) -> str:
    """``"system"``, ``"manual"``, ..., ``"auto_lock"``, ``"keypad_error"``, ``"nuki_mode"``, ``"keypad"``."""
    return _name(LogTrigger, value)


def source_name(value: int) -> str:
    """``"default"``, ``"keypad_code"``, ``"fingerprint"``, ``"tap_to_unlock"``; else ``"unknown_<n>"``."""
    return _name(LogSource, value)


def state_name(value: int, *, source: int | None = None, trigger: int | None = None) -> str:
    """``"success"``, ``"motor_blocked"``, ..., ``"invalid_code"``; else ``"unknown_<n>"``.

    Give `source` and `trigger` to read the Tap to Unlock error states (source 3, trigger 253).
    """
    if source == LogSource.TAP_TO_UNLOCK and trigger == LogTrigger.KEYPAD_ERROR:
        return _name(TapToUnlockErrorState, value)
    return _name(LogState, value)


def device_type_name(value: int) -> str:
    return _name(DeviceType, value)


def _id_as_str(value: Any) -> Any:
    # The spec types the log's authId as a string; tolerate a number all the same.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class SmartlockLog(NukiModel):
    """An activity log entry. Logs come newest first; ``id`` is also the paging cursor."""

    id: str
    smartlock_id: int
    action: int
    trigger: int
    state: int
    date: UtcDatetime
    source: int = 0
    device_type: int | None = None
    auth_id: Annotated[str | None, BeforeValidator(_id_as_str)] = None
    account_user_id: int | None = None
    name: str = ""
    auto_unlock: bool = False
    ajar_timeout: int | None = None
    error: str | None = None

    @property
    def action_enum(self) -> LogAction | None:
        return enum_or_none(LogAction, self.action)

    @property
    def trigger_enum(self) -> LogTrigger | None:
        return enum_or_none(LogTrigger, self.trigger)

    @property
    def state_enum(self) -> LogState | None:
        return enum_or_none(LogState, self.state)

    @property
    def source_enum(self) -> LogSource | None:
        return enum_or_none(LogSource, self.source)

    @property
    def device_type_enum(self) -> DeviceType | None:
        return enum_or_none(DeviceType, self.device_type)

    @property
    def action_name(self) -> str:
        return action_name(self.action)

    @property
    def trigger_name(self) -> str:
        return trigger_name(self.trigger)

    @property
    def source_name(self) -> str:
        return source_name(self.source)

    @property
    def state_name(self) -> str:
        return state_name(self.state, source=self.source, trigger=self.trigger)


_ENTRY_ACTIONS = frozenset({LogAction.UNLOCK, LogAction.UNLATCH})
_ENTRY_SOURCES = frozenset({LogSource.KEYPAD_CODE, LogSource.FINGERPRINT})


def is_successful_keypad_entry(log: SmartlockLog) -> bool:
    """True for a guest's successful entry at the keypad: unlock or unlatch, trigger keypad (255),
    state success (0), source keypad code (1) or fingerprint (2)."""
    return (
        log.action in _ENTRY_ACTIONS
        and log.trigger == LogTrigger.KEYPAD
        and log.state == LogState.SUCCESS
        and log.source in _ENTRY_SOURCES
    )


_APP_TRIGGERS = frozenset({LogTrigger.SYSTEM, LogTrigger.APP})


def is_successful_app_entry(log: SmartlockLog) -> bool:
    """True for a successful unlock or unlatch with the Nuki app (trigger app 5, or system 0 for a
    Bluetooth command), state success (0)."""
    return log.action in _ENTRY_ACTIONS and log.trigger in _APP_TRIGGERS and log.state == LogState.SUCCESS


__all__ = [
    "DeviceType",
    "LogAction",
    "LogSource",
    "LogState",
    "LogTrigger",
    "SmartlockLog",
    "TapToUnlockErrorState",
    "action_name",
    "device_type_name",
    "enum_or_none",
    "is_successful_app_entry",
    "is_successful_keypad_entry",
    "source_name",
    "state_name",
    "trigger_name",
]
