"""How the client rides out Nuki's bad moments, and when it gives up (no real sleeping here)."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests

from staykey.nuki import (
    KeypadCodeCreate,
    NukiAuthError,
    NukiCall,
    NukiClient,
    NukiCodeConflict,
    NukiError,
    NukiInvalidRequest,
    NukiLocked,
    NukiNotFound,
    NukiRefused,
    NukiUnavailable,
    SmartlockAuth,
    SmartlockAuthUpdate,
)
from staykey.nuki.transport import parse_retry_after
from tests.unit.nuki.nuki_fakes import AUTH_ID, LOCK, PIN, FakeClock, FakeNuki, auth_json, smartlock_json

CREATE = f"/smartlock/{LOCK}/auth"
ONE_AUTH = f"/smartlock/{LOCK}/auth/{AUTH_ID}"


def keypad_code() -> KeypadCodeCreate:
    return KeypadCodeCreate(
        name="SK-B1001",
        code=PIN,
        allowed_from=datetime(2026, 12, 1, 14, tzinfo=UTC),
        allowed_until=datetime(2026, 12, 3, 10, tzinfo=UTC),
    )


def full_update() -> SmartlockAuthUpdate:
    return SmartlockAuthUpdate.from_auth(SmartlockAuth.model_validate(auth_json()))


# --- retried ---------------------------------------------------------------------------------------


def test_429_waits_as_long_as_retry_after_says(client: NukiClient, fake_nuki: FakeNuki, fake_clock: FakeClock) -> None:
    # Given Nuki throttles once and asks for 7 seconds
    fake_nuki.add("GET", "/smartlock", 429, headers={"Retry-After": "7"}, in_spec=False)
    fake_nuki.add("GET", "/smartlock", json_body=[smartlock_json()])

    # When we list the locks
    locks = client.list_smartlocks()

    # Then we waited exactly 7 s once, and got the answer
    assert len(locks) == 1
    assert fake_clock.sleeps == [7.0]
    assert len(fake_nuki.requests) == 2


def test_429_with_an_http_date_retry_after(client: NukiClient, fake_nuki: FakeNuki, fake_clock: FakeClock) -> None:
    # Given a Retry-After as an HTTP date 12 s from now
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=12), usegmt=True)
    fake_nuki.add("GET", "/smartlock", 429, headers={"Retry-After": when}, in_spec=False)
    fake_nuki.add("GET", "/smartlock", json_body=[])

    client.list_smartlocks()

    # Then we waited about that long (the date has whole seconds)
    assert len(fake_clock.sleeps) == 1
    assert 10.0 <= fake_clock.sleeps[0] <= 12.0


@pytest.mark.parametrize("statuses", [(500,), (503,), (500, 503), (502, 504)])
def test_server_errors_then_success(
    client: NukiClient, fake_nuki: FakeNuki, fake_clock: FakeClock, statuses: tuple[int, ...]
) -> None:
    # Given Nuki fails a few times before answering
    for status in statuses:
        fake_nuki.add("GET", f"/smartlock/{LOCK}", status, body="", in_spec=False)
    fake_nuki.add("GET", f"/smartlock/{LOCK}", json_body=smartlock_json())

    # When we read the lock
    lock = client.get_smartlock(LOCK)

    # Then we got it after short, jittered, growing waits (base 0.2 s, full jitter)
    assert lock.smartlock_id == LOCK
    assert len(fake_nuki.requests) == len(statuses) + 1
    assert len(fake_clock.sleeps) == len(statuses)
    for n, wait in enumerate(fake_clock.sleeps):
        assert 0.0 <= wait <= 0.2 * 2**n


def test_423_locked_auth_then_success(client: NukiClient, fake_nuki: FakeNuki, fake_clock: FakeClock) -> None:
    # Given an earlier operation still holds the auth once
    fake_nuki.add("POST", ONE_AUTH, 423, json_body={"stackTrace": [], "suppressedExceptions": []})
    fake_nuki.add("POST", ONE_AUTH, 204)

    # When we update it
    client.update_auth(LOCK, AUTH_ID, full_update())

    # Then the update went through on the second attempt, with the same body
    assert len(fake_nuki.requests) == 2
    assert fake_nuki.requests[0].body == fake_nuki.requests[1].body
    assert len(fake_clock.sleeps) == 1


@pytest.mark.parametrize(
    "failure",
    [
        requests.exceptions.ReadTimeout("read timed out"),
        requests.exceptions.ConnectTimeout("connect timed out"),
        requests.exceptions.ConnectionError("connection reset by peer"),
        requests.exceptions.ChunkedEncodingError("connection broken"),
    ],
    ids=["read-timeout", "connect-timeout", "connection-error", "broken-body"],
)
def test_transport_failures_then_success(
    client: NukiClient, fake_nuki: FakeNuki, calls: list[NukiCall], failure: Exception
) -> None:
    # Given the network fails once
    fake_nuki.add("GET", "/smartlock", raises=failure)
    fake_nuki.add("GET", "/smartlock", json_body=[smartlock_json()])

    # When we list the locks
    locks = client.list_smartlocks()

    # Then the retry answered, and the hook saw the failed attempt without a status
    assert len(locks) == 1
    assert [(c.status, c.attempt) for c in calls] == [(None, 1), (200, 2)]
    assert calls[0].error in {"timeout", "connection_error"}


def test_waits_grow_exponentially_up_to_the_cap(
    make_client: Callable[..., NukiClient], fake_nuki: FakeNuki, fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the jitter always draws its upper bound
    monkeypatch.setattr(random, "uniform", lambda low, high: high)
    client = make_client(backoff_base=0.5, backoff_cap=1.5, max_attempts=6)
    for _ in range(5):
        fake_nuki.add("GET", "/smartlock", 503, body="", in_spec=False)
    fake_nuki.add("GET", "/smartlock", json_body=[])

    # When Nuki needs six attempts
    client.list_smartlocks()

    # Then the worst-case waits doubled until the cap
    assert fake_clock.sleeps == [0.5, 1.0, 1.5, 1.5, 1.5]


# --- giving up -------------------------------------------------------------------------------------


def test_gives_up_after_max_attempts(client: NukiClient, fake_nuki: FakeNuki, fake_clock: FakeClock) -> None:
    # Given Nuki keeps answering 503
    for _ in range(5):
        fake_nuki.add("GET", "/smartlock", 503, body="", in_spec=False)

    # When we list the locks
    with pytest.raises(NukiUnavailable) as caught:
        client.list_smartlocks()

    # Then five attempts were made with four waits in between, and the error says so
    assert len(fake_nuki.requests) == 5
    assert len(fake_clock.sleeps) == 4
    assert caught.value.status == 503
    assert caught.value.retryable is True
    assert caught.value.operation == "GET /smartlock"
    assert "5 attempts" in str(caught.value)


def test_gives_up_when_the_time_budget_is_spent(
    make_client: Callable[..., NukiClient], fake_nuki: FakeNuki, fake_clock: FakeClock
) -> None:
    # Given every attempt hangs until the 10 s read timeout, and a 20 s budget
    client = make_client(max_total_seconds=20.0)
    for _ in range(2):
        fake_nuki.add("GET", "/smartlock", raises=requests.exceptions.ReadTimeout("read timed out"), takes=10.0)

    # When we list the locks
    started = fake_clock.now
    with pytest.raises(NukiUnavailable) as caught:
        client.list_smartlocks()

    # Then we stopped after two attempts rather than run past the budget
    assert len(fake_nuki.requests) == 2
    assert len(fake_clock.sleeps) == 1
    assert fake_clock.now - started <= 20.0 + 0.2
    assert caught.value.status is None
    assert "budget" in str(caught.value)


def test_a_retry_after_beyond_the_budget_is_handed_to_the_caller(
    client: NukiClient, fake_nuki: FakeNuki, fake_clock: FakeClock
) -> None:
    # Given Nuki asks us to come back in two minutes
    fake_nuki.add("GET", "/smartlock", 429, headers={"Retry-After": "120"}, in_spec=False)

    # When we list the locks
    with pytest.raises(NukiUnavailable) as caught:
        client.list_smartlocks()

    # Then we did not sleep two minutes in a Lambda; the caller learns when to come back
    assert fake_clock.sleeps == []
    assert caught.value.retry_after == 120.0
    assert caught.value.status == 429


def test_still_locked_after_all_attempts_is_nuki_locked(
    make_client: Callable[..., NukiClient], fake_nuki: FakeNuki
) -> None:
    # Given the auth stays locked
    client = make_client(max_attempts=3)
    for _ in range(3):
        fake_nuki.add("DELETE", ONE_AUTH, 423, headers={"Retry-After": "1"})

    # When we delete it
    with pytest.raises(NukiLocked) as caught:
        client.delete_auth(LOCK, AUTH_ID)

    # Then the caller gets a retryable "locked", with Nuki's hint
    assert len(fake_nuki.requests) == 3
    assert caught.value.status == 423
    assert caught.value.retry_after == 1.0
    assert caught.value.retryable is True


def test_persistent_timeouts_end_as_unavailable(
    make_client: Callable[..., NukiClient], fake_nuki: FakeNuki, calls: list[NukiCall]
) -> None:
    client = make_client(max_attempts=2)
    for _ in range(2):
        fake_nuki.add("GET", "/smartlock", raises=requests.exceptions.ConnectionError("no route to host"))

    with pytest.raises(NukiUnavailable) as caught:
        client.list_smartlocks()

    assert caught.value.status is None
    assert caught.value.retry_after is None
    assert [c.attempt for c in calls] == [1, 2]


# --- not retried -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, NukiInvalidRequest),
        (402, NukiRefused),
        (409, NukiCodeConflict),
        (422, NukiInvalidRequest),
        (426, NukiRefused),
    ],
)
def test_create_refusals_are_not_retried(
    client: NukiClient, fake_nuki: FakeNuki, fake_clock: FakeClock, status: int, error: type[NukiError]
) -> None:
    # Given Nuki refuses the create
    fake_nuki.add("PUT", CREATE, status, json_body={"detailMessage": "refused", "stackTrace": []})

    # When we create the code
    with pytest.raises(error) as caught:
        client.create_keypad_code([LOCK], keypad_code())

    # Then exactly one call was made and nothing was waited for
    assert len(fake_nuki.requests) == 1
    assert fake_clock.sleeps == []
    assert caught.value.status == status
    assert caught.value.retryable is False


@pytest.mark.parametrize(("status", "error"), [(401, NukiAuthError), (403, NukiAuthError), (404, NukiNotFound)])
def test_read_refusals_are_not_retried(
    client: NukiClient, fake_nuki: FakeNuki, status: int, error: type[NukiError]
) -> None:
    fake_nuki.add(
        "GET",
        f"/smartlock/{LOCK}",
        status,
        json_body={"detailMessage": "Your access token is not authorized", "stackTrace": []},
    )

    with pytest.raises(error):
        client.get_smartlock(LOCK)

    assert len(fake_nuki.requests) == 1


# --- a conflict after an attempt without an answer ----------------------------------------------------


@pytest.mark.parametrize(
    ("first", "ambiguous"),
    [
        (requests.exceptions.ReadTimeout("read timed out"), True),
        (requests.exceptions.ConnectionError("connection reset by peer"), True),
        (502, True),
        (requests.exceptions.ConnectTimeout("connect timed out"), False),
        (429, False),
        (503, False),
        (None, False),
    ],
    ids=["read-timeout", "reset", "bad-gateway", "connect-timeout", "throttled", "unavailable", "first-try"],
)
def test_409_tells_whether_our_own_earlier_attempt_may_have_landed(
    client: NukiClient, fake_nuki: FakeNuki, first: Exception | int | None, ambiguous: bool
) -> None:
    # Given the first attempt of a create ended as `first`, and the next one met a 409
    if isinstance(first, Exception):
        fake_nuki.add("PUT", CREATE, raises=first)
    elif isinstance(first, int):
        fake_nuki.add("PUT", CREATE, first, body="", in_spec=False)
    fake_nuki.add("PUT", CREATE, 409, json_body={"detailMessage": "Parameter conflicts", "stackTrace": []})

    # When we create the code
    with pytest.raises(NukiCodeConflict) as caught:
        client.create_keypad_code([LOCK], keypad_code())

    # Then the conflict says whether it may be our own code (read back before picking a new PIN)
    assert caught.value.after_ambiguous_retry is ambiguous
    assert ("may have been applied" in str(caught.value)) is ambiguous


# --- Retry-After parsing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        (" 2.5 ", 2.5),
        ("0", 0.0),
        ("-4", 0.0),
        ("Wed, 02 Dec 2026 10:00:30 GMT", 30.0),
        ("Wed, 02 Dec 2026 09:59:00 GMT", 0.0),
        ("soon", None),
        ("nan", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    now = datetime(2026, 12, 2, 10, 0, 0, tzinfo=UTC)
    assert parse_retry_after(header, now=now) == seconds
