"""The shop's webhook endpoints: where StayKey delivers events, and the secret each is signed with.

* Stored as ``WEBHOOKS / ENDPOINT#{endpointId}`` (URL, event types, health, whether it is enabled).
* Each endpoint's signing secret lives in **Secrets Manager**, one secret per endpoint, named
  ``<WEBHOOK_SECRET_PREFIX><endpointId>``: never in the table (whose stream, backups and exports
  go elsewhere), never in a log, shown to the shop once (at creation and at rotation). The API
  function may create, rotate and delete these secrets; only the sender may read them. A rotation
  keeps the previous secret valid for `webhook_secret_grace_hours` (deliveries carry a signature by
  each), so a shop can switch without dropping a delivery.
* A URL must be https (http only for a loopback host, and only where the local stack allows it),
  without credentials, and every address its host resolves to must be public: no private,
  loopback, link-local, multicast or reserved address (checked at registration, and again before
  every delivery, which then connects to exactly the address that was checked).
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import secrets as pysecrets
import socket
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, model_validator

from staykey.adapters.aws import LazyClient
from staykey.core.models import clean_text
from staykey.core.timeutil import iso_utc, parse_iso
from staykey.events.model import EVENT_TYPES, new_ulid

PK = "WEBHOOKS"
ENDPOINT_ID_PATTERN = r"^ep_[0-9A-HJKMNP-TV-Z]{26}$"
ALL_TYPES = "*"
URL_MAX = 2048

Resolver = Callable[[str, int], list[str]]
EventType = Literal[(ALL_TYPES, *EVENT_TYPES)]  # type: ignore[valid-type]


def system_resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (IPv4 and IPv6)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def hosts_resolve(host: str, port: int) -> list[str]:
    """IP literals and the names in /etc/hosts only, never DNS: the local stack's resolver (its
    receivers are on this machine, and nothing it runs may send traffic elsewhere)."""
    del port
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        pass
    found: list[str] = []
    try:
        with open("/etc/hosts", encoding="utf-8") as hosts:
            for line in hosts:
                fields = line.split("#", 1)[0].split()
                if len(fields) >= 2 and host.lower() in (name.lower() for name in fields[1:]):
                    found.append(fields[0])
    except OSError:
        pass
    if not found and host.lower() == "localhost":
        found = ["127.0.0.1"]
    if not found:
        raise OSError(f"{host} is not in /etc/hosts")
    return found


class UnsafeUrl(ValueError):
    """The URL must not be used (the message says why; it names no secret)."""


def _unsafe(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_unspecified


def check_url(raw: str, *, allow_loopback: bool, resolve: Resolver = system_resolve) -> tuple[str, list[str]]:
    """(the URL, the addresses it may be delivered to) or UnsafeUrl."""
    if len(raw) > URL_MAX:
        raise UnsafeUrl(f"must be at most {URL_MAX} characters")
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"is not a URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise UnsafeUrl("must be an https URL")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("must not contain a user name or password")
    if parts.fragment:
        raise UnsafeUrl("must not have a #fragment")
    host = parts.hostname
    if not host:
        raise UnsafeUrl("has no host")
    try:
        addresses = resolve(host, port or (443 if scheme == "https" else 80))
    except (OSError, UnicodeError):
        raise UnsafeUrl(f"names a host that does not resolve ({host})") from None
    if not addresses:
        raise UnsafeUrl(f"names a host that does not resolve ({host})")
    loopback = True
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if allow_loopback and ip.is_loopback:
            continue
        loopback = False
        if _unsafe(ip):
            raise UnsafeUrl(f"points at a private, loopback or link-local address ({ip}); give a public https URL")
    if scheme == "http" and not (allow_loopback and loopback):
        raise UnsafeUrl("must be https (http is accepted only for a loopback host in the local stack)")
    return raw, addresses


def _unique(value: list[str]) -> list[str]:
    if len(set(value)) != len(value):
        raise ValueError("must not repeat a type")
    if ALL_TYPES in value and len(value) > 1:
        raise ValueError('"*" (every type) stands alone')
    return value


Url = Annotated[str, Field(min_length=1, max_length=URL_MAX)]
Types = Annotated[list[EventType], Field(min_length=1, max_length=len(EVENT_TYPES)), AfterValidator(_unique)]
Description = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(clean_text)]


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: Url
    eventTypes: Types
    description: Description | None = None
    enabled: StrictBool = True


class EndpointPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: Url | None = None
    eventTypes: Types | None = None
    description: Description | None = None
    enabled: StrictBool | None = None

    @model_validator(mode="after")
    def _something(self) -> EndpointPatch:
        if not self.model_fields_set:
            raise ValueError("give at least one of url, eventTypes, description, enabled")
        for key in self.model_fields_set - {"description"}:
            if getattr(self, key) is None:
                raise ValueError(f"{key} must not be null")
        return self


class Endpoint(BaseModel):
    model_config = ConfigDict(extra="ignore")
    endpointId: str
    url: str
    eventTypes: list[str]
    description: str | None = None
    enabled: bool = True
    disabledAt: datetime | None = None
    disabledReason: str | None = None
    failingSince: datetime | None = None
    lastSuccessAt: datetime | None = None
    lastFailureAt: datetime | None = None
    lastError: str | None = None
    consecutiveFailures: int = 0
    secretVersion: int = 1
    previousSecretUntil: datetime | None = None
    createdAt: datetime
    updatedAt: datetime

    def wants(self, event_type: str) -> bool:
        return self.enabled and (ALL_TYPES in self.eventTypes or event_type in self.eventTypes)

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.endpointId,
            "url": self.url,
            "eventTypes": self.eventTypes,
            "description": self.description,
            "enabled": self.enabled,
            "disabledAt": iso_utc(self.disabledAt),
            "disabledReason": self.disabledReason,
            "health": {
                "failingSince": iso_utc(self.failingSince),
                "consecutiveFailures": self.consecutiveFailures,
                "lastSuccessAt": iso_utc(self.lastSuccessAt),
                "lastFailureAt": iso_utc(self.lastFailureAt),
                "lastError": self.lastError,
            },
            "previousSecretExpiresAt": iso_utc(self.previousSecretUntil),
            "createdAt": iso_utc(self.createdAt),
            "updatedAt": iso_utc(self.updatedAt),
        }


def new_endpoint_id() -> str:
    return f"ep_{new_ulid()}"


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes, base64."""
    return "whsec_" + base64.b64encode(pysecrets.token_bytes(32)).decode()


class EndpointStore:
    client = LazyClient("dynamodb")

    def __init__(self, table_name: str, client: Any | None = None) -> None:
        from staykey.store import Codec

        self.table_name = table_name
        self._client = client
        self._codec = Codec()

    def _key(self, endpoint_id: str) -> dict[str, Any]:
        return self._codec.dump({"pk": PK, "sk": f"ENDPOINT#{endpoint_id}"})

    @staticmethod
    def _item(endpoint: Endpoint) -> dict[str, Any]:
        return {"pk": PK, "sk": f"ENDPOINT#{endpoint.endpointId}", **endpoint.model_dump(mode="json")}

    def put_new(self, endpoint: Endpoint) -> None:
        self.client.put_item(
            TableName=self.table_name,
            Item=self._codec.dump(self._item(endpoint)),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def put(self, endpoint: Endpoint) -> bool:
        """Replace an endpoint that still exists; False if it was deleted meanwhile."""
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=self._codec.dump(self._item(endpoint)),
                ConditionExpression="attribute_exists(pk)",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def get(self, endpoint_id: str) -> Endpoint | None:
        res = self.client.get_item(TableName=self.table_name, Key=self._key(endpoint_id), ConsistentRead=True)
        return Endpoint.model_validate(self._codec.load(res["Item"])) if "Item" in res else None

    def list(self) -> list[Endpoint]:
        out: list[Endpoint] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :p AND begins_with(sk, :s)",
            "ExpressionAttributeValues": self._codec.dump({":p": PK, ":s": "ENDPOINT#"}),
            "ConsistentRead": True,
        }
        while True:
            res = self.client.query(**kwargs)
            out += [Endpoint.model_validate(self._codec.load(raw)) for raw in res.get("Items", [])]
            if "LastEvaluatedKey" not in res:
                return out
            kwargs["ExclusiveStartKey"] = res["LastEvaluatedKey"]

    def delete(self, endpoint_id: str) -> bool:
        res = self.client.delete_item(TableName=self.table_name, Key=self._key(endpoint_id), ReturnValues="ALL_OLD")
        return "Attributes" in res

    def _update(self, endpoint_id: str, expression: str, condition: str, values: dict[str, Any]) -> Endpoint | None:
        names = {f"#{name}": name for name in ("enabled", "failingSince", "lastSuccessAt", "lastFailureAt")}
        names.update({f"#{name}": name for name in ("lastError", "consecutiveFailures", "updatedAt")})
        names.update({"#disabledAt": "disabledAt", "#disabledReason": "disabledReason"})
        used = {k: v for k, v in names.items() if k in expression or k in condition}
        try:
            res = self.client.update_item(
                TableName=self.table_name,
                Key=self._key(endpoint_id),
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=used,
                ExpressionAttributeValues=self._codec.dump(values),
                ReturnValues="ALL_NEW",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return None
        return Endpoint.model_validate(self._codec.load(res["Attributes"]))

    def record_success(self, endpoint_id: str, now: datetime) -> None:
        """A delivery succeeded: the endpoint is healthy. Written only when that is news (it was
        failing, or the last success is over a minute old), so a busy endpoint costs no write each."""
        self._update(
            endpoint_id,
            "SET #lastSuccessAt = :now, #consecutiveFailures = :zero REMOVE #failingSince",
            "attribute_exists(pk) AND (attribute_exists(#failingSince) OR attribute_not_exists(#lastSuccessAt)"
            " OR #lastSuccessAt < :minute_ago)",
            {":now": iso_utc(now), ":zero": 0, ":minute_ago": iso_utc(now - timedelta(minutes=1))},
        )

    def record_failure(self, endpoint_id: str, now: datetime, error: str) -> Endpoint | None:
        return self._update(
            endpoint_id,
            "SET #failingSince = if_not_exists(#failingSince, :now), #lastFailureAt = :now, #lastError = :error,"
            " #consecutiveFailures = if_not_exists(#consecutiveFailures, :zero) + :one",
            "attribute_exists(pk)",
            {":now": iso_utc(now), ":error": error[:300], ":zero": 0, ":one": 1},
        )

    def disable(self, endpoint_id: str, now: datetime, reason: str) -> bool:
        """Disable a failing endpoint; False if it was not enabled (or is gone)."""
        updated = self._update(
            endpoint_id,
            "SET #enabled = :false, #disabledAt = :now, #disabledReason = :reason, #updatedAt = :now",
            "attribute_exists(pk) AND #enabled = :true",
            {":false": False, ":true": True, ":now": iso_utc(now), ":reason": reason[:500]},
        )
        return updated is not None


class EndpointSecrets:
    """One Secrets Manager secret per endpoint: ``{"current", "previous", "previousUntil"}``."""

    client = LazyClient("secretsmanager")

    def __init__(self, prefix: str, cache_seconds: float = 300.0, client: Any | None = None) -> None:
        self.prefix = prefix
        self.cache_seconds = cache_seconds
        self._client = client
        self._cache: dict[tuple[str, int], tuple[float, dict[str, Any]]] = {}

    def name(self, endpoint_id: str) -> str:
        return f"{self.prefix}{endpoint_id}"

    def create(self, endpoint_id: str) -> str:
        secret = new_secret()
        value = {"current": secret, "previous": None, "previousUntil": None}
        self.client.create_secret(
            Name=self.name(endpoint_id),
            Description="StayKey: signing secret of one webhook endpoint (Standard Webhooks)",
            SecretString=json.dumps(value),
        )
        return secret

    def rotate(self, endpoint_id: str, previous_until: datetime) -> str:
        current = json.loads(self.client.get_secret_value(SecretId=self.name(endpoint_id))["SecretString"])
        secret = new_secret()
        value = {"current": secret, "previous": current["current"], "previousUntil": iso_utc(previous_until)}
        self.client.put_secret_value(SecretId=self.name(endpoint_id), SecretString=json.dumps(value))
        return secret

    def delete(self, endpoint_id: str) -> None:
        with contextlib.suppress(self.client.exceptions.ResourceNotFoundException):
            self.client.delete_secret(SecretId=self.name(endpoint_id), ForceDeleteWithoutRecovery=True)

    def signing(self, endpoint: Endpoint, now: datetime) -> list[str]:
        """The secrets a delivery is signed with now: the current one, and the previous one during
        its grace period. Cached per endpoint and secret version (a rotation is seen at once)."""
        key = (endpoint.endpointId, endpoint.secretVersion)
        cached = self._cache.get(key)
        if cached is None or time.monotonic() - cached[0] > self.cache_seconds:
            raw = self.client.get_secret_value(SecretId=self.name(endpoint.endpointId))["SecretString"]
            cached = (time.monotonic(), json.loads(raw))
            self._cache = {k: v for k, v in self._cache.items() if k[0] != endpoint.endpointId}
            self._cache[key] = cached
        value = cached[1]
        out = [str(value["current"])]
        until = parse_iso(value.get("previousUntil"))
        if value.get("previous") and until is not None and until > now:
            out.append(str(value["previous"]))
        return out


def endpoint_types_for(endpoints: Sequence[Endpoint], event_type: str) -> list[Endpoint]:
    return [e for e in endpoints if e.wants(event_type)]


def utcnow() -> datetime:
    return datetime.now(UTC)
