"""Helpers for the Nuki sandbox tests: a Nuki client that checks every answer against the spec,
the control routes, a tiny webhook receiver, polling with a deadline."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import requests

from local.nuki_spec import find_operation, validate_response

TOKEN = "test-token"
SYNC_DELAY = 0.1
LOCK_A = 17000001
LOCK_B = 17000002
T = TypeVar("T")


def eventually(probe: Callable[[], T | None], timeout: float = 3.0, interval: float = 0.02) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def valid_codes(start: int = 311111) -> Iterator[int]:
    """Keypad codes Nuki accepts (digits 1-9, not starting with 12), in increasing order."""
    code = start
    while True:
        digits = str(code)
        if "0" not in digits and not digits.startswith("12"):
            yield code
        code += 1


def keypad_body(code: int, name: str = "SK-B1001", **extra: Any) -> dict[str, Any]:
    """A keypad-code create body as StayKey sends it."""
    return {
        "name": name,
        "type": 13,
        "code": code,
        "remoteAllowed": False,
        "allowedFromDate": "2020-01-01T00:00:00.000Z",
        "allowedUntilDate": "2099-01-01T00:00:00.000Z",
        "allowedWeekDays": 127,
        "allowedFromTime": 0,
        "allowedUntilTime": 0,
        **extra,
    }


@dataclass
class NukiApi:
    """Calls the sandbox's Nuki routes and asserts that every answer conforms to the spec."""

    base: str
    session: requests.Session
    token: str = TOKEN
    seen: list[tuple[str, str, int]] = field(default_factory=list)

    def call(
        self,
        method: str,
        path: str,
        *,
        check_spec: bool = True,
        token: str | None = None,
        timeout: float = 5.0,
        **kwargs: Any,
    ) -> requests.Response:
        assert find_operation(method, path.split("?")[0]) is not None, f"{method} {path} is not a Nuki operation"
        headers = {"Authorization": f"Bearer {token if token is not None else self.token}"}
        headers.update(kwargs.pop("headers", {}))
        response = self.session.request(method, self.base + path, headers=headers, timeout=timeout, **kwargs)
        if check_spec:
            problems = validate_response(method, path.split("?")[0], response.status_code, response.content)
            assert problems == [], problems
            if response.status_code == 204:
                assert response.content == b""
        self.seen.append((method, path, response.status_code))
        return response

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("GET", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("PUT", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("DELETE", path, **kwargs)

    def auths(self, smartlock_id: int, types: str | None = None) -> list[dict[str, Any]]:
        response = self.get(f"/smartlock/{smartlock_id}/auth", params={"types": types} if types else None)
        assert response.status_code == 200
        result: list[dict[str, Any]] = response.json()
        return result

    def auth_with_code(self, smartlock_id: int, code: int) -> dict[str, Any] | None:
        return next((a for a in self.auths(smartlock_id) if a.get("code") == code), None)

    def wait_for_code(self, smartlock_id: int, code: int, timeout: float = 3.0) -> dict[str, Any]:
        return eventually(lambda: self.auth_with_code(smartlock_id, code), timeout)

    def create_code(self, smartlock_id: int, code: int, name: str = "SK-B1001", **extra: Any) -> dict[str, Any]:
        """Create a keypad code and wait until it is on the lock; the auth as Nuki lists it."""
        response = self.put(f"/smartlock/{smartlock_id}/auth", json=keypad_body(code, name, **extra))
        assert response.status_code == 204, response.text
        return self.wait_for_code(smartlock_id, code)


@dataclass
class Sim:
    """The ``/_sim`` control routes."""

    base: str
    session: requests.Session

    def call(self, method: str, path: str, expect: int | None = None, **kwargs: Any) -> requests.Response:
        response = self.session.request(method, self.base + path, timeout=10, **kwargs)
        if expect is not None:
            assert response.status_code == expect, response.text
        return response

    def add_lock(self, smartlock_id: int = LOCK_A, **fields: Any) -> dict[str, Any]:
        body = {"smartlockId": smartlock_id, "name": f"Room {smartlock_id % 100}", "keypad": True, **fields}
        result: dict[str, Any] = self.call("POST", "/_sim/smartlocks", expect=201, json=body).json()
        return result

    def patch_lock(self, smartlock_id: int, **fields: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.call("PATCH", f"/_sim/smartlocks/{smartlock_id}", expect=200, json=fields).json()
        return result

    def state(self, smartlock_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", f"/_sim/smartlocks/{smartlock_id}", expect=200).json()
        return result

    def keypad(self, smartlock_id: int, code: int, **extra: Any) -> dict[str, Any]:
        body = {"code": code, **extra}
        result: dict[str, Any] = self.call(
            "POST", f"/_sim/smartlocks/{smartlock_id}/keypad", expect=200, json=body
        ).json()
        return result

    def log(self, smartlock_id: int, **fields: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.call(
            "POST", f"/_sim/smartlocks/{smartlock_id}/log", expect=201, json=fields
        ).json()
        return result

    def foreign_code(self, smartlock_id: int, code: int, name: str = "Cleaner", **fields: Any) -> dict[str, Any]:
        body = {"name": name, "code": code, **fields}
        result: dict[str, Any] = self.call(
            "POST", f"/_sim/smartlocks/{smartlock_id}/auths", expect=201, json=body
        ).json()
        return result

    def faults(self, **config: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.call("PUT", "/_sim/faults", expect=200, json=config).json()
        return result

    def config(self, **config: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.call("PUT", "/_sim/config", expect=200, json=config).json()
        return result

    def requests(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call("GET", "/_sim/requests", expect=200).json()
        return result

    def deliveries(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call("GET", "/_sim/webhooks/deliveries", expect=200).json()
        return result


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def payload(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.body)
        return result


class Receiver:
    """A local HTTP server standing in for our /webhooks/nuki: records every POST."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.fail_next = 0  # answer 500 to this many requests first
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    failing = receiver.fail_next > 0
                    if failing:
                        receiver.fail_next -= 1
                    else:
                        receiver.received.append(Received(self.path, dict(self.headers.items()), body))
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/nuki"

    def features(self) -> list[str]:
        with self._lock:
            return [r.payload["feature"] for r in self.received]

    def of(self, feature: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.payload["feature"] == feature]

    def wait_for(self, feature: str, count: int = 1, timeout: float = 3.0) -> list[Received]:
        """The deliveries of ``feature`` once there are at least ``count`` of them."""
        eventually(lambda: len(self.of(feature)) >= count, timeout)
        return self.of(feature)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
