"""What the client sends to Nuki, call by call; every request is also checked against the spec."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import requests

from staykey.nuki import (
    KeypadCodeCreate,
    NukiCall,
    NukiClient,
    NukiProtocolError,
    SmartlockAuth,
    SmartlockAuthUpdate,
)
from tests.unit.nuki.nuki_fakes import (
    AUTH_ID,
    BASE_URL,
    LOCK,
    OTHER_LOCK,
    PIN,
    TOKEN,
    FakeNuki,
    auth_json,
    log_json,
    smartlock_json,
    webhook_json,
)

BERLIN = ZoneInfo("Europe/Berlin")


def keypad_code(**changes: object) -> KeypadCodeCreate:
    fields: dict[str, object] = {
        "name": "SK-B1001",
        "code": PIN,
        "allowed_from": datetime(2026, 12, 1, 15, 0, tzinfo=BERLIN),
        "allowed_until": datetime(2026, 12, 3, 11, 0, tzinfo=BERLIN),
        **changes,
    }
    return KeypadCodeCreate.model_validate(fields)


# --- the basics of every call ----------------------------------------------------------------------


def test_every_call_sends_bearer_token_accept_json_and_a_timeout(client: NukiClient, fake_nuki: FakeNuki) -> None:
    # Given Nuki knows one lock
    fake_nuki.add("GET", "/smartlock", json_body=[smartlock_json()])
    fake_nuki.add("PUT", f"/smartlock/{LOCK}/auth", 204)

    # When we read the locks and create a code
    client.list_smartlocks()
    client.create_keypad_code([LOCK], keypad_code())

    # Then both calls carried the token, asked for JSON and had a timeout; the body said it is JSON
    for seen in fake_nuki.requests:
        assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
        assert seen.headers["Accept"] == "application/json"
        assert seen.timeout == (3.05, 10.0)
    assert "Content-Type" not in fake_nuki.requests[0].headers
    assert fake_nuki.requests[1].headers["Content-Type"] == "application/json"


def test_a_token_callable_is_asked_on_every_call(make_client: Callable[..., NukiClient], fake_nuki: FakeNuki) -> None:
    # Given the token comes from a callable (a cached Secrets Manager lookup) that rotates
    tokens = iter(["token-one", "token-two"])
    client = make_client(token=lambda: next(tokens))
    fake_nuki.add("GET", "/smartlock", json_body=[])
    fake_nuki.add("GET", "/smartlock", json_body=[])

    # When two calls are made
    client.list_smartlocks()
    client.list_smartlocks()

    # Then each used the token current at the time
    assert [r.headers["Authorization"] for r in fake_nuki.requests] == ["Bearer token-one", "Bearer token-two"]


def test_the_hook_sees_one_record_per_call_with_the_path_template(
    client: NukiClient, fake_nuki: FakeNuki, calls: list[NukiCall]
) -> None:
    # Given a lock with one code
    fake_nuki.add("GET", f"/smartlock/{LOCK}/auth/{AUTH_ID}", json_body=auth_json())

    # When we read it
    client.get_auth(LOCK, AUTH_ID)

    # Then the hook got the template, never the concrete ids, the token or the body
    assert len(calls) == 1
    call = calls[0]
    assert (call.method, call.path, call.status, call.attempt, call.error) == (
        "GET",
        "/smartlock/{smartlockId}/auth/{id}",
        200,
        1,
        None,
    )
    assert TOKEN not in repr(call)
    assert str(PIN) not in repr(call)


def test_a_broken_hook_does_not_break_the_call(make_client: Callable[..., NukiClient], fake_nuki: FakeNuki) -> None:
    # Given a metrics hook that fails
    def broken(call: NukiCall) -> None:
        raise RuntimeError("metrics backend down")

    client = make_client(on_request=broken)
    fake_nuki.add("GET", "/smartlock", json_body=[smartlock_json()])

    # When / Then the call still answers
    assert [lock.smartlock_id for lock in client.list_smartlocks()] == [LOCK]


def test_an_injected_session_is_used_and_left_open(make_client: Callable[..., NukiClient], fake_nuki: FakeNuki) -> None:
    # Given the caller owns a session
    session = requests.Session()
    client = make_client(session=session)
    fake_nuki.add("GET", "/smartlock", json_body=[])

    # When the client is used and closed as a context manager
    with client:
        client.list_smartlocks()

    # Then the caller's session is still usable (not closed by us)
    assert session.adapters
    session.close()


# --- smartlocks -----------------------------------------------------------------------------------


def test_list_smartlocks_returns_typed_locks(client: NukiClient, fake_nuki: FakeNuki) -> None:
    # Given two locks, one offline without keypad
    offline = smartlock_json(smartlockId=OTHER_LOCK, name="Entrance", serverState=4)
    offline["config"] = {**offline["config"], "keypadPaired": False}
    fake_nuki.add("GET", "/smartlock", json_body=[smartlock_json(), offline])

    # When we list them
    locks = client.list_smartlocks()

    # Then we can tell which can take keypad codes now
    assert [(lock.smartlock_id, lock.online, lock.has_keypad) for lock in locks] == [
        (LOCK, True, True),
        (OTHER_LOCK, False, False),
    ]
    assert fake_nuki.last.path == "/smartlock"
    assert fake_nuki.last.query == {}


def test_get_smartlock_addresses_the_lock(client: NukiClient, fake_nuki: FakeNuki) -> None:
    fake_nuki.add("GET", f"/smartlock/{LOCK}", json_body=smartlock_json())

    lock = client.get_smartlock(LOCK)

    assert lock.name == "Room 12"
    assert lock.state is not None
    assert lock.state.battery_charge == 87
    assert fake_nuki.last.path == f"/smartlock/{LOCK}"


def test_sync_posts_without_a_body(client: NukiClient, fake_nuki: FakeNuki) -> None:
    fake_nuki.add("POST", f"/smartlock/{LOCK}/sync", 204)

    client.sync(LOCK)

    assert (fake_nuki.last.method, fake_nuki.last.path, fake_nuki.last.body) == (
        "POST",
        f"/smartlock/{LOCK}/sync",
        None,
    )


# --- authorizations -------------------------------------------------------------------------------


def test_list_auths_asks_for_keypad_codes_by_default(client: NukiClient, fake_nuki: FakeNuki) -> None:
    # Given a lock with one keypad code
    fake_nuki.add("GET", f"/smartlock/{LOCK}/auth", json_body=[auth_json()])

    # When we list its auths
    auths = client.list_auths(LOCK)

    # Then only type 13 was asked for, and the code came back as a number with UTC dates
    assert fake_nuki.last.query == {"types": ["13"]}
    assert len(auths) == 1
    auth = auths[0]
    assert (auth.id, auth.auth_id, auth.code, auth.is_keypad_code) == (AUTH_ID, 8200, PIN, True)
    assert auth.allowed_from_date == datetime(2026, 12, 1, 14, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("types", "query"),
    [((0, 2, 13), {"types": ["0,2,13"]}), (None, {}), ((), {})],
)
def test_list_auths_types_filter(
    client: NukiClient, fake_nuki: FakeNuki, types: tuple[int, ...] | None, query: dict[str, list[str]]
) -> None:
    fake_nuki.add("GET", f"/smartlock/{LOCK}/auth", json_body=[])

    client.list_auths(LOCK, types=types)

    assert fake_nuki.last.query == query


def test_get_auth_addresses_the_auth_by_its_string_id(client: NukiClient, fake_nuki: FakeNuki) -> None:
    fake_nuki.add("GET", f"/smartlock/{LOCK}/auth/{AUTH_ID}", json_body=auth_json())

    auth = client.get_auth(LOCK, AUTH_ID)

    assert isinstance(auth, SmartlockAuth)
    assert fake_nuki.last.path == f"/smartlock/{LOCK}/auth/{AUTH_ID}"


def test_create_on_one_lock_puts_a_keypad_code_with_number_code_and_utc_dates(
    client: NukiClient, fake_nuki: FakeNuki
) -> None:
    # Given a booking from 15:00 to 11:00 Berlin time (UTC+1 in December)
    fake_nuki.add("PUT", f"/smartlock/{LOCK}/auth", 204)

    # When the code is created on the room's only lock
    result = client.create_keypad_code([LOCK], keypad_code())

    # Then Nuki got a type-13 auth, the code as a JSON number, the window in UTC, all day every day
    assert result is None
    assert fake_nuki.last.method == "PUT"
    assert fake_nuki.last.path == f"/smartlock/{LOCK}/auth"
    assert fake_nuki.last.json() == {
        "name": "SK-B1001",
        "code": PIN,
        "type": 13,
        "allowedFromDate": "2026-12-01T14:00:00.000Z",
        "allowedUntilDate": "2026-12-03T10:00:00.000Z",
        "allowedWeekDays": 127,
        "allowedFromTime": 0,
        "allowedUntilTime": 0,
        "remoteAllowed": False,
    }
    assert b'"code":483726' in (fake_nuki.last.body or b"")


def test_create_on_several_locks_uses_one_call_with_smartlock_ids(client: NukiClient, fake_nuki: FakeNuki) -> None:
    # Given a room with its door and the shared entrance
    fake_nuki.add("PUT", "/smartlock/auth", 204)

    # When the code is created for both
    client.create_keypad_code([LOCK, OTHER_LOCK], keypad_code())

    # Then one PUT /smartlock/auth carried both ids and the same code body
    body = fake_nuki.last.json()
    assert fake_nuki.last.path == "/smartlock/auth"
    assert body["smartlockIds"] == [LOCK, OTHER_LOCK]
    assert body["code"] == PIN
    assert body["type"] == 13


def test_create_with_a_repeated_lock_id_goes_to_that_lock_once(client: NukiClient, fake_nuki: FakeNuki) -> None:
    fake_nuki.add("PUT", f"/smartlock/{LOCK}/auth", 204)

    client.create_keypad_code([LOCK, LOCK], keypad_code())

    assert len(fake_nuki.requests) == 1
    assert fake_nuki.last.path == f"/smartlock/{LOCK}/auth"


def test_create_without_locks_is_refused_before_any_call(client: NukiClient, fake_nuki: FakeNuki) -> None:
    with pytest.raises(ValueError, match="at least one smartlock"):
        client.create_keypad_code([], keypad_code())
    assert fake_nuki.requests == []


def test_update_sends_the_full_restriction_set(client: NukiClient, fake_nuki: FakeNuki) -> None:
    # Given the guest extends the stay by a day
    current = SmartlockAuth.model_validate(auth_json())
    update = SmartlockAuthUpdate.from_auth(current, allowed_until=datetime(2026, 12, 4, 10, 0, tzinfo=UTC))
    fake_nuki.add("POST", f"/smartlock/{LOCK}/auth/{AUTH_ID}", 204)

    # When the auth is updated
    client.update_auth(LOCK, AUTH_ID, update)

    # Then the POST carried every restriction, not only the changed one (forum 40095)
    assert fake_nuki.last.method == "POST"
    assert fake_nuki.last.path == f"/smartlock/{LOCK}/auth/{AUTH_ID}"
    assert fake_nuki.last.json() == {
        "name": "SK-B1001",
        "code": PIN,
        "allowedFromDate": "2026-12-01T14:00:00.000Z",
        "allowedUntilDate": "2026-12-04T10:00:00.000Z",
        "allowedWeekDays": 127,
        "allowedFromTime": 0,
        "allowedUntilTime": 0,
        "enabled": True,
        "remoteAllowed": False,
    }


def test_delete_one_auth_has_no_body(client: NukiClient, fake_nuki: FakeNuki) -> None:
    fake_nuki.add("DELETE", f"/smartlock/{LOCK}/auth/{AUTH_ID}", 204)

    client.delete_auth(LOCK, AUTH_ID)

    assert (fake_nuki.last.method, fake_nuki.last.path, fake_nuki.last.body) == (
        "DELETE",
        f"/smartlock/{LOCK}/auth/{AUTH_ID}",
        None,
    )


def test_bulk_delete_sends_a_json_array_of_ids(client: NukiClient, fake_nuki: FakeNuki) -> None:
    other = "6ab2be33a7fc3019addfa5d2"
    fake_nuki.add("DELETE", "/smartlock/auth", 204)

    client.delete_auths([AUTH_ID, other, AUTH_ID])

    assert fake_nuki.last.path == "/smartlock/auth"
    assert fake_nuki.last.headers["Content-Type"] == "application/json"
    assert fake_nuki.last.json() == [AUTH_ID, other]


def test_bulk_delete_of_nothing_makes_no_call(client: NukiClient, fake_nuki: FakeNuki) -> None:
    client.delete_auths([])

    assert fake_nuki.requests == []


def test_an_auth_id_is_one_path_segment(client: NukiClient, fake_nuki: FakeNuki) -> None:
    # Given an id that would climb the path if it were pasted in
    fake_nuki.add("GET", f"/smartlock/{LOCK}/auth/..%2Fx", json_body=auth_json(id="../x"))

    # When it is read
    client.get_auth(LOCK, "../x")

    # Then it stayed inside its segment
    assert fake_nuki.last.path == f"/smartlock/{LOCK}/auth/..%2Fx"


def test_an_empty_auth_id_is_refused_before_any_call(client: NukiClient, fake_nuki: FakeNuki) -> None:
    with pytest.raises(ValueError, match="auth id"):
        client.delete_auth(LOCK, " ")
    assert fake_nuki.requests == []


# --- activity log ---------------------------------------------------------------------------------


def test_log_pages_follow_the_id_cursor_across_three_pages(client: NukiClient, fake_nuki: FakeNuki) -> None:
    # Given 134 entries: Nuki serves them 50, 50, 34
    entries = [log_json(n) for n in range(134)]
    fake_nuki.add("GET", f"/smartlock/{LOCK}/log", json_body=entries[:50])
    fake_nuki.add("GET", f"/smartlock/{LOCK}/log", json_body=entries[50:100])
    fake_nuki.add("GET", f"/smartlock/{LOCK}/log", json_body=entries[100:])
    since = datetime(2026, 12, 1, 15, 0, tzinfo=BERLIN)

    # When we read every page since a local time
    pages = list(client.iter_log_pages(LOCK, from_date=since))

    # Then three calls were made; each next one asked for entries older than the last seen
    assert [len(page) for page in pages] == [50, 50, 34]
    assert [entry.id for page in pages for entry in page] == [entry["id"] for entry in entries]
    queries = [seen.query for seen in fake_nuki.requests]
    assert queries[0] == {"limit": ["50"], "fromDate": ["2026-12-01T14:00:00.000Z"]}
    assert queries[1] == {**queries[0], "id": [entries[49]["id"]]}
    assert queries[2] == {**queries[0], "id": [entries[99]["id"]]}


def test_log_pages_stop_on_an_empty_page_without_yielding_it(client: NukiClient, fake_nuki: FakeNuki) -> None:
    # Given exactly one full page of 2 entries, then nothing older
    fake_nuki.add("GET", f"/smartlock/{LOCK}/log", json_body=[log_json(0), log_json(1)])
    fake_nuki.add("GET", f"/smartlock/{LOCK}/log", json_body=[])

    pages = list(client.iter_log_pages(LOCK, limit=2))

    assert [len(page) for page in pages] == [2]
    assert len(fake_nuki.requests) == 2


@pytest.mark.parametrize(("asked", "sent"), [(500, "50"), (51, "50"), (0, "1"), (-3, "1"), (20, "20")])
def test_log_limit_is_clamped_to_what_nuki_serves(
    client: NukiClient, fake_nuki: FakeNuki, asked: int, sent: str
) -> None:
    fake_nuki.add("GET", f"/smartlock/{LOCK}/log", json_body=[])

    list(client.iter_log_pages(LOCK, limit=asked))

    assert fake_nuki.last.query["limit"] == [sent]


def test_log_query_carries_dates_cursor_and_auth_filter(client: NukiClient, fake_nuki: FakeNuki) -> None:
    # Given a stored cursor and a window
    fake_nuki.add("GET", f"/smartlock/{LOCK}/log", json_body=[log_json(5)])

    # When we resume from the cursor for one auth, dates with sub-second precision
    list(
        client.iter_log_pages(
            LOCK,
            from_date=datetime(2026, 12, 1, 0, 0, tzinfo=UTC),
            to_date=datetime(2026, 12, 2, 8, 30, 5, 250000, tzinfo=ZoneInfo("America/New_York")),
            before_id="6751c2e4a8b0f21d3cffffff",
            auth_id=AUTH_ID,
        )
    )

    # Then the dates went out as RFC 3339 UTC, never as Unix numbers
    assert fake_nuki.last.query == {
        "limit": ["50"],
        "fromDate": ["2026-12-01T00:00:00.000Z"],
        "toDate": ["2026-12-02T13:30:05.250Z"],
        "id": ["6751c2e4a8b0f21d3cffffff"],
        "authId": [AUTH_ID],
    }


def test_max_pages_stops_early(client: NukiClient, fake_nuki: FakeNuki) -> None:
    fake_nuki.add("GET", f"/smartlock/{LOCK}/log", json_body=[log_json(0), log_json(1)])

    pages = list(client.iter_log_pages(LOCK, limit=2, max_pages=1))

    assert len(pages) == 1
    assert len(fake_nuki.requests) == 1


def test_pages_are_fetched_only_as_they_are_consumed(client: NukiClient, fake_nuki: FakeNuki) -> None:
    # Given a full first page (more may follow)
    fake_nuki.add("GET", f"/smartlock/{LOCK}/log", json_body=[log_json(0), log_json(1)])

    # When the caller reads only the first page
    first = next(client.iter_log_pages(LOCK, limit=2))

    # Then no second call was made
    assert len(first) == 2
    assert len(fake_nuki.requests) == 1


def test_a_naive_date_is_refused_before_any_call(client: NukiClient, fake_nuki: FakeNuki) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        client.iter_log_pages(LOCK, from_date=datetime(2026, 12, 1, 0, 0))
    assert fake_nuki.requests == []


def test_a_cursor_that_does_not_advance_is_an_error_not_a_loop(client: NukiClient, fake_nuki: FakeNuki) -> None:
    # Given a server that ignores the cursor and serves the same full page again
    page = [log_json(0), log_json(1)]
    fake_nuki.add("GET", f"/smartlock/{LOCK}/log", json_body=page)
    fake_nuki.add("GET", f"/smartlock/{LOCK}/log", json_body=page)

    # When / Then paging stops with a protocol error
    with pytest.raises(NukiProtocolError, match="cursor"):
        list(client.iter_log_pages(LOCK, limit=2))


# --- webhooks -------------------------------------------------------------------------------------


def test_register_webhook_returns_id_and_secret(client: NukiClient, fake_nuki: FakeNuki) -> None:
    # Given Nuki accepts the registration
    fake_nuki.add("PUT", "/api/decentralWebhook", json_body=webhook_json())

    # When we register for auth and log events
    hook = client.register_webhook("https://stay.example.org/webhooks/nuki", ["DEVICE_AUTHS", "DEVICE_LOGS"])

    # Then only the URL and the features were sent, and we got the id and signing secret
    assert fake_nuki.last.json() == {
        "webhookUrl": "https://stay.example.org/webhooks/nuki",
        "webhookFeatures": ["DEVICE_AUTHS", "DEVICE_LOGS"],
    }
    assert hook.id == 31337
    assert hook.secret == "3f9a1c5e7b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a"
    assert "3f9a1c5e" not in repr(hook)


def test_register_webhook_refuses_unknown_features_before_any_call(client: NukiClient, fake_nuki: FakeNuki) -> None:
    with pytest.raises(ValueError, match="webhook features"):
        client.register_webhook("https://stay.example.org/webhooks/nuki", ["DEVICE_LOGS", "DOOR_BELL"])
    with pytest.raises(ValueError, match="webhook features"):
        client.register_webhook("https://stay.example.org/webhooks/nuki", [])
    assert fake_nuki.requests == []


def test_list_and_delete_webhooks(client: NukiClient, fake_nuki: FakeNuki) -> None:
    # Given one registered webhook (Nuki does not repeat the secret in listings)
    listed = webhook_json()
    del listed["secret"]
    fake_nuki.add("GET", "/api/decentralWebhook", json_body=[listed])
    fake_nuki.add("DELETE", "/api/decentralWebhook/31337", 204)

    # When we list and then delete it
    hooks = client.list_webhooks()
    client.delete_webhook(hooks[0].id or 0)

    # Then
    assert [(h.id, h.secret, h.webhook_features) for h in hooks] == [(31337, None, ["DEVICE_AUTHS", "DEVICE_LOGS"])]
    assert (fake_nuki.last.method, fake_nuki.last.path) == ("DELETE", "/api/decentralWebhook/31337")


# --- the harness itself ---------------------------------------------------------------------------


def test_the_harness_fails_a_request_the_spec_refuses(fake_nuki: FakeNuki) -> None:
    # Given a scripted answer for a create
    fake_nuki.add("PUT", f"/smartlock/{LOCK}/auth", 204)

    # When something sends the code as a string and forgets remoteAllowed
    with pytest.raises(AssertionError, match="violates the Nuki spec"):
        requests.put(
            f"{BASE_URL}/smartlock/{LOCK}/auth",
            json={"name": "x", "type": 13, "code": str(PIN)},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=1,
        )

    # Then the problems are named (and cleared here so this test passes)
    assert any("remoteAllowed" in p for p in fake_nuki.problems)
    assert any("code" in p for p in fake_nuki.problems)
    fake_nuki.problems.clear()
