"""HTTP clients for the end-to-end tests: the shop (the API with its key) and the Nuki sandbox's
control routes. Nothing here reaches into the stack's processes."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from local.stack import LocalStack

_lock_ids = itertools.count(18_000_001)

GUEST = {"name": "Ada Lovelace", "email": "ada@example.org", "locale": "en"}


def new_lock_id() -> int:
    return next(_lock_ids)


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds")


def now() -> datetime:
    return datetime.now(UTC)


def eventually(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` and the last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g}s (last: {last!r})")
        time.sleep(interval)


class Shop:
    def __init__(self, stack: LocalStack, session: requests.Session) -> None:
        self.url = stack.gateway_url
        self.http = session
        self.headers = {"x-api-key": stack.config.api_key}

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> requests.Response:
        chosen = self.headers if headers is None else headers
        return self.http.request(method, self.url + path, json=body, headers=chosen, timeout=60)

    def put_room(self, locks: list[int], room_id: str | None = None, **kw: Any) -> str:
        room_id = room_id or new_id("room")
        body = {"name": kw.pop("name", f"Room {room_id}"), "smartlockIds": locks, "timezone": "Europe/Berlin", **kw}
        r = self.call("PUT", f"/rooms/{room_id}", body)
        assert r.status_code in (200, 201), r.text
        return room_id

    def booking_body(
        self, room_id: str, check_in: datetime | str, check_out: datetime | str, booking_id: str | None = None
    ) -> dict[str, Any]:
        return {
            "bookingId": booking_id or new_id("B"),
            "roomId": room_id,
            "guest": dict(GUEST),
            "checkIn": iso(check_in) if isinstance(check_in, datetime) else check_in,
            "checkOut": iso(check_out) if isinstance(check_out, datetime) else check_out,
        }

    def book(self, room_id: str, check_in: datetime | str, check_out: datetime | str, **kw: Any) -> dict[str, Any]:
        r = self.call("POST", "/bookings", {**self.booking_body(room_id, check_in, check_out), **kw})
        assert r.status_code == 201, r.text
        return dict(r.json())

    def book_now(self, room_id: str, nights: int = 2) -> dict[str, Any]:
        start = now()
        return self.book(room_id, start, start + timedelta(days=nights))

    def get(self, booking_id: str) -> dict[str, Any]:
        r = self.call("GET", f"/bookings/{booking_id}")
        assert r.status_code == 200, r.text
        return dict(r.json())

    def wait_status(self, booking_id: str, status: str, timeout: float = 20.0) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            booking = self.get(booking_id)
            if booking["status"] == status:
                return booking
            if booking["status"] == "failed" and status != "failed":
                raise AssertionError(f"booking {booking_id} failed: {booking.get('statusReason')} {booking['locks']}")
            return None

        try:
            return dict(eventually(reached, timeout, f"booking {booking_id} {status}"))
        except AssertionError as exc:
            raise AssertionError(f"{exc}; now: {self.get(booking_id)}") from None


class Sim:
    """The Nuki sandbox's /_sim control routes."""

    def __init__(self, stack: LocalStack, session: requests.Session) -> None:
        self.url = stack.nuki_url
        self.http = session

    def call(self, method: str, path: str, body: Any = None) -> requests.Response:
        return self.http.request(method, self.url + path, json=body, timeout=30)

    def add_lock(self, lock_id: int | None = None, **kw: Any) -> int:
        lock_id = lock_id or new_lock_id()
        r = self.call("POST", "/_sim/smartlocks", {"smartlockId": lock_id, "name": f"Lock {lock_id}", **kw})
        assert r.status_code == 201, r.text
        return lock_id

    def state(self, lock_id: int) -> dict[str, Any]:
        r = self.call("GET", f"/_sim/smartlocks/{lock_id}")
        assert r.status_code == 200, r.text
        return dict(r.json())

    def codes(self, lock_id: int) -> list[int]:
        """Keypad codes visible on the lock (applied writes only)."""
        return [a["code"] for a in self.state(lock_id)["auths"] if a.get("code") is not None]

    def keypad(self, lock_id: int, code: str | int) -> bool:
        r = self.call("POST", f"/_sim/smartlocks/{lock_id}/keypad", {"code": int(code)})
        assert r.status_code == 200, r.text
        return bool(r.json()["success"])

    def set_online(self, lock_id: int, online: bool) -> None:
        r = self.call("PATCH", f"/_sim/smartlocks/{lock_id}", {"online": online})
        assert r.status_code == 200, r.text

    def faults(self, **body: Any) -> None:
        r = self.call("PUT", "/_sim/faults", body)
        assert r.status_code == 200, r.text

    def clear_faults(self) -> None:
        r = self.call("DELETE", "/_sim/faults")
        assert r.status_code == 204, r.text

    def requests(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "/_sim/requests").json())
