"""Nuki's decentral webhooks (spec 4.18.0): the features one can subscribe to, a registration,
and the typed payloads Nuki posts, chosen by their ``feature`` (`parse_webhook`).

Payload models ignore fields they do not know; a feature this version does not model gives an
``UnknownWebhook`` that keeps what was sent. A registration's signing secret stays out of its
``repr``, and validation errors never echo input values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field

from staykey.nuki.logs import SmartlockLog
from staykey.nuki.models import NukiModel, SmartlockAuth, SmartlockState

WebhookFeature = Literal[
    "DEVICE_STATUS", "DEVICE_MASTERDATA", "DEVICE_CONFIG", "DEVICE_LOGS", "DEVICE_AUTHS", "ACCOUNT_USER"
]
WEBHOOK_FEATURES: tuple[str, ...] = (
    "DEVICE_STATUS",
    "DEVICE_MASTERDATA",
    "DEVICE_CONFIG",
    "DEVICE_LOGS",
    "DEVICE_AUTHS",
    "ACCOUNT_USER",
)


class DecentralWebhook(NukiModel):
    """A registered decentral webhook. ``secret`` (signing key) comes only with the registration."""

    id: int | None = None
    secret: str | None = Field(default=None, repr=False)
    webhook_url: str
    webhook_features: list[str]


class DeviceAuthsWebhook(NukiModel):
    """``DEVICE_AUTHS``: an authorization was created, changed or (``deleted``) removed."""

    feature: Literal["DEVICE_AUTHS"]
    deleted: bool = False
    smartlock_auth: SmartlockAuth


class DeviceLogsWebhook(NukiModel):
    """``DEVICE_LOGS``: a new activity log entry."""

    feature: Literal["DEVICE_LOGS"]
    smartlock_log: SmartlockLog


class DeviceStatusWebhook(NukiModel):
    """``DEVICE_STATUS``: the lock's state changed (battery, door, online...)."""

    feature: Literal["DEVICE_STATUS"]
    smartlock_id: int
    state: SmartlockState | None = None
    server_state: int | None = None
    admin_pin_state: int | None = None


class UnknownWebhook(BaseModel):
    """Any other feature (``DEVICE_MASTERDATA``, ``DEVICE_CONFIG``, ``ACCOUNT_USER``, future ones).

    The other fields are kept as sent (``model_extra``).
    """

    model_config = ConfigDict(extra="allow", hide_input_in_errors=True)

    feature: str


WebhookPayload: TypeAlias = DeviceAuthsWebhook | DeviceLogsWebhook | DeviceStatusWebhook | UnknownWebhook

_WEBHOOK_MODELS: dict[str, type[DeviceAuthsWebhook | DeviceLogsWebhook | DeviceStatusWebhook]] = {
    "DEVICE_AUTHS": DeviceAuthsWebhook,
    "DEVICE_LOGS": DeviceLogsWebhook,
    "DEVICE_STATUS": DeviceStatusWebhook,
}


def parse_webhook(payload: Mapping[str, Any]) -> WebhookPayload:
    """The typed payload of a Nuki webhook (already JSON-decoded), chosen by its ``feature``.

    Raises ValueError (pydantic's ValidationError is one) when the payload is not an object, has no
    ``feature``, or a known feature lacks what it needs. Unknown features give an UnknownWebhook.
    """
    if not isinstance(payload, Mapping):
        raise ValueError("a webhook payload must be a JSON object")
    feature = payload.get("feature")
    if not isinstance(feature, str) or not feature:
        raise ValueError("a webhook payload must name its feature")
    model = _WEBHOOK_MODELS.get(feature)
    if model is None:
        return UnknownWebhook.model_validate(dict(payload))
    return model.model_validate(dict(payload))


__all__ = [
    "WEBHOOK_FEATURES",
    "DecentralWebhook",
    "DeviceAuthsWebhook",
    "DeviceLogsWebhook",
    "DeviceStatusWebhook",
    "UnknownWebhook",
    "WebhookFeature",
    "WebhookPayload",
    "parse_webhook",
]
