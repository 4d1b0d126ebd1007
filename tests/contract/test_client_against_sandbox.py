"""The contract test: our Nuki client against our Nuki sandbox, with Nuki's official spec judging
every request the client sends and every answer the sandbox gives (local/nuki_spec.py overlay)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from local.nuki_sandbox import start_sandbox
from local.nuki_spec import validate_request, validate_response
from staykey.nuki import (
    AccountUserCreate,
    AppAuthCreate,
    AppAuthUpdate,
    KeypadCodeCreate,
    NukiAuthError,
    NukiClient,
    NukiCodeConflict,
    NukiInvalidRequest,
    SmartlockAuthUpdate,
    parse_webhook,
    verify_signature,
)

TOKEN = "contract-token"


class SpecJudgedSession(requests.Session):
    """A session that checks each exchange against the spec and keeps the problems."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.exchanges = 0

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        url = urlsplit(request.url or "")
        query = parse_qs(url.query, keep_blank_values=True)
        body = request.body if isinstance(request.body, bytes | str) else None
        self.problems += validate_request(request.method or "", url.path, query, body, dict(request.headers))
        response = super().send(request, **kwargs)
        self.problems += validate_response(request.method or "", url.path, response.status_code, response.content)
        self.exchanges += 1
        return response


@pytest.fixture
def sandbox() -> Iterator[Any]:
    running = start_sandbox(token=TOKEN, sync_delay=0.05)
    for lock_id, keypad in ((17000001, True), (17000099, True), (17000500, False)):
        requests.post(
            f"{running.url}/_sim/smartlocks",
            json={"smartlockId": lock_id, "name": f"L{lock_id}", "keypad": keypad, "online": True},
            timeout=5,
        )
    yield running
    running.stop()


@pytest.fixture
def judged() -> SpecJudgedSession:
    return SpecJudgedSession()


@pytest.fixture
def client(sandbox: Any, judged: SpecJudgedSession) -> Iterator[NukiClient]:
    with NukiClient(TOKEN, sandbox.url, session=judged, max_total_seconds=5) as nuki:
        yield nuki
    assert judged.problems == []
    assert judged.exchanges > 0


def _eventually(check: Any, timeout: float = 3.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.02)


def _code(name: str, code: int, hours: int = 48) -> KeypadCodeCreate:
    start = datetime.now(UTC).replace(microsecond=0)
    return KeypadCodeCreate(name=name, code=code, allowed_from=start, allowed_until=start + timedelta(hours=hours))


def test_keypad_code_lifecycle_conforms_to_the_spec(client: NukiClient) -> None:
    # Create on two locks at once (PUT /smartlock/auth), then find it by name on each
    client.create_keypad_code([17000001, 17000099], _code("SK B-1", 483726))
    found = _eventually(lambda: [a for a in client.list_auths(17000001) if a.name == "SK B-1"])
    assert found[0].code == 483726
    assert found[0].id
    assert found[0].auth_id is not None
    assert _eventually(lambda: [a for a in client.list_auths(17000099) if a.name == "SK B-1"])
    # Update with the full restriction set
    auth = found[0]
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(days=5)
    client.update_auth(
        17000001,
        auth.id,
        SmartlockAuthUpdate(
            name="SK B-1",
            code=483726,
            allowed_from=auth.allowed_from_date,
            allowed_until=later,
            allowed_week_days=127,
            allowed_from_time=0,
            allowed_until_time=0,
            enabled=True,
            remote_allowed=False,
        ),
    )
    assert _eventually(lambda: client.get_auth(17000001, auth.id).allowed_until_date == later)
    # Delete one, bulk-delete the other
    client.delete_auth(17000001, auth.id)
    other = next(a for a in client.list_auths(17000099) if a.name == "SK B-1")
    client.delete_auths([other.id])
    client.sync(17000099)
    assert _eventually(lambda: not client.list_auths(17000001) and not client.list_auths(17000099))


def test_account_users_and_app_authorizations_conform_to_the_spec(client: NukiClient) -> None:
    # An account user for the guest, found by email afterwards
    user = client.create_account_user(AccountUserCreate(email="ada@example.org", name="Ada Lovelace", language="en"))
    assert [u.account_user_id for u in client.find_account_users("ada@example.org")] == [user.account_user_id]
    assert "ada@" not in repr(user)
    with pytest.raises(NukiInvalidRequest) as again:
        client.create_account_user(AccountUserCreate(email="ada@example.org", name="Ada"))
    assert "ada@" not in str(again.value)
    # An app authorization for them on a lock without a keypad, and a keypad code linked to them
    start = datetime.now(UTC).replace(microsecond=0)
    app = AppAuthCreate(
        name="SK B-9", account_user_id=user.account_user_id, allowed_from=start, allowed_until=start + timedelta(days=2)
    )
    client.create_app_auth([17000500], app)
    linked = _code("SK B-9", 571933).model_copy(update={"account_user_id": user.account_user_id})
    client.create_keypad_code([17000001], linked)
    found = _eventually(lambda: client.list_auths(17000500, types=(0,)))
    assert (found[0].type, found[0].account_user_id, found[0].code) == (0, user.account_user_id, None)
    code = _eventually(lambda: client.list_auths(17000001))
    assert code[0].account_user_id == user.account_user_id
    # Updated with the full restriction set, then deleted; the account user too
    update = AppAuthUpdate(
        name="SK B-9",
        account_user_id=user.account_user_id,
        allowed_from=start,
        allowed_until=start + timedelta(days=3),
        allowed_week_days=127,
        allowed_from_time=0,
        allowed_until_time=0,
        enabled=True,
        remote_allowed=False,
    )
    client.update_auth(17000500, found[0].id, update)
    assert _eventually(lambda: client.get_auth(17000500, found[0].id).allowed_until_date == start + timedelta(days=3))
    client.delete_auth(17000500, found[0].id)
    client.delete_account_user(user.account_user_id)
    assert _eventually(lambda: not client.list_account_users())


def test_refusals_arrive_as_typed_errors(client: NukiClient, sandbox: Any) -> None:
    client.create_keypad_code([17000001], _code("SK B-2", 918273))
    with pytest.raises(NukiCodeConflict):
        client.create_keypad_code([17000001], _code("SK B-3", 918273))
    with pytest.raises(NukiInvalidRequest) as refused:
        client.create_keypad_code([17000500], _code("SK B-4", 918273))  # no keypad paired
    assert "type" in str(refused.value.detail)
    with pytest.raises(NukiAuthError):
        NukiClient("wrong-token", sandbox.url, max_total_seconds=2).list_smartlocks()


def test_locks_and_logs_page_with_the_id_cursor(client: NukiClient, sandbox: Any) -> None:
    locks = {lock.smartlock_id: lock for lock in client.list_smartlocks()}
    assert locks[17000001].has_keypad
    assert not locks[17000500].has_keypad
    for i in range(120):
        requests.post(f"{sandbox.url}/_sim/smartlocks/17000001/keypad", json={"code": 111111 + i % 7}, timeout=5)
    pages = list(client.iter_log_pages(17000001, limit=50))
    assert [len(p) for p in pages] == [50, 50, 20]
    ids = [entry.id for page in pages for entry in page]
    assert len(set(ids)) == 120
    assert all(entry.state == 224 for page in pages for entry in page)  # none of those codes exist


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[bytes, str | None]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        _Receiver.received.append((body, self.headers.get("X-Nuki-Signature-SHA256")))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_webhooks_register_and_arrive_signed(client: NukiClient, sandbox: Any) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Receiver.received = []
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/webhooks/nuki"
        hook = client.register_webhook(url, ["DEVICE_AUTHS", "DEVICE_LOGS"])
        assert hook.secret
        assert [h.webhook_url for h in client.list_webhooks()] == [url]
        client.create_keypad_code([17000001], _code("SK B-5", 314159))
        payloads = _eventually(lambda: _Receiver.received)
        body, signature = payloads[0]
        assert verify_signature(body, signature, hook.secret)
        event = parse_webhook(__import__("json").loads(body))
        assert event.feature == "DEVICE_AUTHS"
        client.delete_webhook(hook.id)  # type: ignore[arg-type]
        assert client.list_webhooks() == []
    finally:
        server.shutdown()
