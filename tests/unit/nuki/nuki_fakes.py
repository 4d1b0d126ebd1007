"""Test doubles for the Nuki client tests: a scripted, spec-checking Nuki, a fake clock, sample documents.

`FakeNuki` answers from a script (responses registered per method and path, served in order) and
checks every request the client sends against the official spec with our overlay
(`local.nuki_spec.validate_request`): a request the spec does not allow fails the test. Canned
answers are checked with `validate_response` when they are registered, so the fixtures stay
realistic; faults Nuki's spec does not declare (429, 5xx, 423 on reads) are marked `in_spec=False`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from local.nuki_spec import validate_request, validate_response

BASE_URL = "https://api.nuki.io"
TOKEN = "nk-test-token-f00dbabe"
LOCK = 17000001
OTHER_LOCK = 17000099
AUTH_ID = "6ab2be33a7fc3019addfa5d1"
PIN = 483726


class FakeClock:
    """monotonic() and sleep() for the client: sleeping only moves the clock forward."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class SeenRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    body: bytes | None
    headers: dict[str, str]
    timeout: Any = None

    def json(self) -> Any:
        assert self.body is not None, "the request had no body"
        return json.loads(self.body)


@dataclass
class FakeNuki:
    rsps: responses.RequestsMock
    clock: FakeClock
    requests: list[SeenRequest] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add(
        self,
        method: str,
        path: str,
        status: int = 200,
        *,
        json_body: Any = None,
        body: str | None = None,
        headers: dict[str, str] | None = None,
        raises: Exception | None = None,
        takes: float = 0.0,
        in_spec: bool = True,
    ) -> None:
        """Answer the next `method path` (query ignored) with `status` and a body, or raise `raises`.

        `takes` moves the fake clock as if the attempt lasted that long (a timeout takes time).
        """
        raw = body if body is not None else (json.dumps(json_body) if json_body is not None else "")
        if raises is None and in_spec:
            problems = validate_response(method, path, status, raw)
            if problems:
                pytest.fail(f"canned answer for {method} {path} is not spec-valid: {problems}")

        def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
            self._record(request)
            self.clock.advance(takes)
            if raises is not None:
                raise raises
            return status, {"Content-Type": "application/json", **(headers or {})}, raw

        self.rsps.add_callback(method, BASE_URL + path, callback=answer)

    def _record(self, request: requests.PreparedRequest) -> None:
        parts = urlsplit(request.url or "")
        query = parse_qs(parts.query, keep_blank_values=True)
        body = request.body.encode() if isinstance(request.body, str) else request.body
        headers = dict(request.headers)
        method = request.method or ""
        timeout = getattr(request, "req_kwargs", {}).get("timeout")
        self.requests.append(SeenRequest(method, parts.path, query, body, headers, timeout))
        problems = validate_request(method, parts.path, query, body, headers)
        if problems:
            self.problems.extend(problems)
            raise AssertionError(f"{method} {parts.path} violates the Nuki spec: {problems}")

    @property
    def last(self) -> SeenRequest:
        return self.requests[-1]


# --- realistic, spec-valid Nuki documents ---------------------------------------------------------


def smartlock_json(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "smartlockId": LOCK,
        "accountId": 41234,
        "type": 4,
        "lmType": 0,
        "authId": 1,
        "name": "Room 12",
        "favorite": False,
        "config": {
            "name": "Room 12",
            "latitude": 52.52,
            "longitude": 13.405,
            "autoUnlatch": False,
            "pairingEnabled": True,
            "buttonEnabled": True,
            "ledEnabled": True,
            "ledBrightness": 3,
            "timezoneOffset": 60,
            "daylightSavingMode": 1,
            "fobPaired": False,
            "singleLock": False,
            "advertisingMode": 0,
            "keypadPaired": True,
            "keypad2Paired": False,
            "homekitState": 0,
            "timezoneId": 37,
            "deviceType": 4,
            "wifiEnabled": True,
        },
        "state": {
            "mode": 2,
            "state": 1,
            "trigger": 0,
            "lastAction": 2,
            "batteryCritical": False,
            "batteryCharging": False,
            "batteryCharge": 87,
            "keypadBatteryCritical": False,
            "doorsensorBatteryCritical": False,
            "doorState": 2,
            "ringToOpenTimer": 0,
            "nightMode": False,
        },
        "firmwareVersion": 197388,
        "hardwareVersion": 1537,
        "serverState": 0,
        "adminPinState": 0,
        "virtualDevice": False,
        "creationDate": "2025-03-14T09:12:44.000Z",
        "updateDate": "2026-11-20T07:01:02.000Z",
    }
    doc.update(changes)
    return doc


def auth_json(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": AUTH_ID,
        "smartlockId": LOCK,
        "authId": 8200,
        "code": PIN,
        "type": 13,
        "name": "SK-B1001",
        "enabled": True,
        "remoteAllowed": False,
        "lockCount": 0,
        "allowedFromDate": "2026-12-01T14:00:00.000Z",
        "allowedUntilDate": "2026-12-03T10:00:00.000Z",
        "allowedWeekDays": 127,
        "allowedFromTime": 0,
        "allowedUntilTime": 0,
        "creationDate": "2026-11-28T14:00:05.000Z",
        "updateDate": "2026-11-28T14:00:09.000Z",
    }
    doc.update(changes)
    return doc


def log_json(n: int = 0, **changes: Any) -> dict[str, Any]:
    """The n-th newest log entry: ids and dates decrease as n grows."""
    doc: dict[str, Any] = {
        "id": f"6751c2e4a8b0f21d3c{0xFFFFFF - n:06x}",
        "smartlockId": LOCK,
        "deviceType": 4,
        "authId": AUTH_ID,
        "name": "SK-B1001",
        "action": 1,
        "trigger": 255,
        "state": 0,
        "autoUnlock": False,
        "date": f"2026-12-01T14:{59 - n % 60:02d}:11.000Z",
        "source": 1,
    }
    doc.update(changes)
    return doc


def webhook_json(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": 31337,
        "secret": "3f9a1c5e7b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a",
        "webhookUrl": "https://stay.example.org/webhooks/nuki",
        "webhookFeatures": ["DEVICE_AUTHS", "DEVICE_LOGS"],
    }
    doc.update(changes)
    return doc
