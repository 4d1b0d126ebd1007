"""The shop's side of events: its webhook endpoints (``/webhook-endpoints``) and the pull API
(``GET /events``). See docs/events.md."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from staykey.core.timeutil import Clock
from staykey.errors import NotFound, ValidationFailed
from staykey.events.endpoints import (
    Endpoint,
    EndpointIn,
    EndpointPatch,
    EndpointSecrets,
    EndpointStore,
    Resolver,
    UnsafeUrl,
    check_url,
    new_endpoint_id,
)
from staykey.events.feed import LIMIT_DEFAULT, LIMIT_MAX, Feed, decode_cursor, encode_cursor
from staykey.observability import logger


def _bad(field: str, message: str) -> ValidationFailed:
    return ValidationFailed("the request does not fit the contract", details=[{"field": field, "message": message}])


class EventsService:
    def __init__(
        self,
        *,
        store: EndpointStore,
        secrets: EndpointSecrets,
        feed: Feed,
        clock: Clock,
        allow_loopback: bool,
        max_endpoints: int,
        secret_grace: timedelta,
        resolve: Resolver | None = None,
    ) -> None:
        self.store = store
        self.secrets = secrets
        self.feed = feed
        self.clock = clock
        self.allow_loopback = allow_loopback
        self.max_endpoints = max_endpoints
        self.secret_grace = secret_grace
        self.resolve = resolve

    def _check_url(self, url: str) -> None:
        try:
            kwargs = {"resolve": self.resolve} if self.resolve is not None else {}
            check_url(url, allow_loopback=self.allow_loopback, **kwargs)
        except UnsafeUrl as exc:
            raise _bad("url", str(exc)) from None

    # ------------------------------------------------------------------ endpoints

    def create(self, request: EndpointIn) -> tuple[Endpoint, str]:
        """A new endpoint and its signing secret (shown to the shop this once)."""
        self._check_url(request.url)
        if len(self.store.list()) >= self.max_endpoints:
            raise ValidationFailed(
                f"at most {self.max_endpoints} webhook endpoints; delete one first",
                details=[{"field": "url", "message": f"at most {self.max_endpoints} endpoints"}],
            )
        now = self.clock.now()
        endpoint = Endpoint(
            endpointId=new_endpoint_id(),
            url=request.url,
            eventTypes=list(request.eventTypes),
            description=request.description,
            enabled=request.enabled,
            createdAt=now,
            updatedAt=now,
        )
        # The secret first: an endpoint item never exists without its secret (if the item cannot
        # be written, the secret is deleted again).
        secret = self.secrets.create(endpoint.endpointId)
        try:
            self.store.put_new(endpoint)
        except Exception:
            self.secrets.delete(endpoint.endpointId)
            raise
        logger.info("webhook endpoint created", endpoint_id=endpoint.endpointId, types=endpoint.eventTypes)
        return endpoint, secret

    def get(self, endpoint_id: str) -> Endpoint:
        endpoint = self.store.get(endpoint_id)
        if endpoint is None:
            raise NotFound(f"webhook endpoint {endpoint_id!r} does not exist")
        return endpoint

    def list(self) -> list[Endpoint]:
        return sorted(self.store.list(), key=lambda e: e.endpointId)

    def update(self, endpoint_id: str, change: EndpointPatch) -> Endpoint:
        endpoint = self.get(endpoint_id)
        fields = change.model_fields_set
        if "url" in fields and change.url is not None:
            self._check_url(change.url)
            endpoint.url = change.url
        if "eventTypes" in fields and change.eventTypes is not None:
            endpoint.eventTypes = list(change.eventTypes)
        if "description" in fields:
            endpoint.description = change.description
        if "enabled" in fields and change.enabled is not None:
            if change.enabled and not endpoint.enabled:
                # Enabled again: a fresh start (the deliveries that were dead-lettered meanwhile are
                # in GET /events).
                endpoint.disabledAt, endpoint.disabledReason = None, None
                endpoint.failingSince, endpoint.consecutiveFailures = None, 0
            endpoint.enabled = change.enabled
        endpoint.updatedAt = self.clock.now()
        if not self.store.put(endpoint):
            raise NotFound(f"webhook endpoint {endpoint_id!r} does not exist")
        logger.info("webhook endpoint changed", endpoint_id=endpoint_id, fields=sorted(fields))
        return endpoint

    def delete(self, endpoint_id: str) -> None:
        if not self.store.delete(endpoint_id):
            raise NotFound(f"webhook endpoint {endpoint_id!r} does not exist")
        self.secrets.delete(endpoint_id)
        logger.info("webhook endpoint deleted", endpoint_id=endpoint_id)

    def rotate_secret(self, endpoint_id: str) -> tuple[Endpoint, str]:
        """A new signing secret; the previous one still signs deliveries for `secret_grace`."""
        endpoint = self.get(endpoint_id)
        now = self.clock.now()
        until = now + self.secret_grace
        secret = self.secrets.rotate(endpoint_id, until)
        endpoint.secretVersion += 1
        endpoint.previousSecretUntil = until
        endpoint.updatedAt = now
        if not self.store.put(endpoint):
            raise NotFound(f"webhook endpoint {endpoint_id!r} does not exist")
        logger.info("webhook endpoint secret rotated", endpoint_id=endpoint_id)
        return endpoint, secret

    # ------------------------------------------------------------------ the pull API

    def events(self, after: str | None, limit: str | None, now: datetime | None = None) -> dict[str, Any]:
        seq = 0
        if after not in (None, ""):
            try:
                seq = decode_cursor(str(after))
            except ValueError as exc:
                raise _bad("after", f"{exc} (give the `next` of an earlier answer, or leave it out)") from None
        size = LIMIT_DEFAULT
        if limit not in (None, ""):
            raw = str(limit)
            if not (raw.isascii() and raw.isdigit() and len(raw) <= 4) or not 1 <= int(raw) <= LIMIT_MAX:
                raise _bad("limit", f"must be a whole number from 1 to {LIMIT_MAX}")
            size = int(raw)
        page = self.feed.read(seq, size, now)
        return {"items": page.items, "next": encode_cursor(page.next_seq), "hasMore": page.has_more}
