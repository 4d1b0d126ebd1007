"""What a caller sees when Nuki says no: typed errors, Nuki's reason, and nothing secret."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import requests

from staykey.nuki import (
    KeypadCodeCreate,
    NukiAuthError,
    NukiClient,
    NukiError,
    NukiInvalidRequest,
    NukiNotFound,
    NukiProtocolError,
    NukiRefused,
    NukiUnavailable,
)
from staykey.nuki.errors import NukiCodeConflict, redact
from tests.unit.nuki.nuki_fakes import LOCK, PIN, TOKEN, FakeNuki, auth_json

CREATE = f"/smartlock/{LOCK}/auth"
ECHOED_PIN = "245678"


def keypad_code() -> KeypadCodeCreate:
    return KeypadCodeCreate(
        name="SK-B1001",
        code=int(ECHOED_PIN),
        allowed_from=datetime(2026, 12, 1, 14, tzinfo=UTC),
        allowed_until=datetime(2026, 12, 3, 10, tzinfo=UTC),
    )


def everything_said_about(error: BaseException) -> str:
    """Every text a log line or a traceback could show about the error."""
    detail = getattr(error, "detail", None)
    return "\n".join(
        [
            str(error),
            repr(error),
            repr(error.args),
            str(detail),
            "".join(traceback.format_exception(error)),
        ]
    )


def assert_no_requests_types(error: BaseException) -> None:
    seen: BaseException | None = error
    while seen is not None:
        assert not isinstance(seen, requests.RequestException), f"{type(seen)} escaped"
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)


# --- Nuki's reasons, typed -------------------------------------------------------------------------


def test_a_refused_code_names_the_reason_but_never_the_code(client: NukiClient, fake_nuki: FakeNuki) -> None:
    # Given Nuki refuses the code and echoes it back, as it does
    fake_nuki.add(
        "PUT",
        CREATE,
        400,
        json_body={
            "detailMessage": f"The supplied value '{ECHOED_PIN}' for parameter 'code' is not valid",
            "stackTrace": [],
            "suppressedExceptions": [],
        },
    )

    # When we create the code
    with pytest.raises(NukiInvalidRequest) as caught:
        client.create_keypad_code([LOCK], keypad_code())

    # Then the error tells why, with the code masked, and names the operation by its template
    error = caught.value
    assert error.status == 400
    assert error.operation == "PUT /smartlock/{smartlockId}/auth"
    assert error.detail == "The supplied value '******' for parameter 'code' is not valid"
    assert "for parameter 'code' is not valid" in str(error)
    assert ECHOED_PIN not in everything_said_about(error)
    assert TOKEN not in everything_said_about(error)


def test_a_422_description_becomes_the_detail(client: NukiClient, fake_nuki: FakeNuki) -> None:
    # Given a name too long for a keypad code, refused in Nuki's other error shape
    fake_nuki.add(
        "PUT",
        CREATE,
        422,
        json_body={
            "code": 422,
            "description": "The server understands the content type of the request entity",
            "reasonPhrase": "Unprocessable Entity",
            "uri": "http://www.webdav.org/specs/rfc2518.html#STATUS_422",
        },
    )

    with pytest.raises(NukiInvalidRequest) as caught:
        client.create_keypad_code([LOCK], keypad_code())

    assert caught.value.detail == "The server understands the content type of the request entity"


@pytest.mark.parametrize(
    "body",
    ["", "not json at all", "<html><body>502 Bad Gateway</body></html>", "[1, 2]", '{"stackTrace": []}'],
    ids=["empty", "text", "html", "json-array", "json-without-message"],
)
def test_odd_error_bodies_are_tolerated(client: NukiClient, fake_nuki: FakeNuki, body: str) -> None:
    fake_nuki.add("PUT", CREATE, 409, body=body)

    with pytest.raises(NukiCodeConflict) as caught:
        client.create_keypad_code([LOCK], keypad_code())

    assert caught.value.status == 409
    assert caught.value.detail in {None, "not json at all"}


def test_a_token_echoed_by_the_server_is_redacted(client: NukiClient, fake_nuki: FakeNuki) -> None:
    # Given a (careless) proxy that echoes the Authorization header in its error
    fake_nuki.add(
        "GET",
        f"/smartlock/{LOCK}",
        401,
        json_body={"detailMessage": f"token Bearer {TOKEN} is not authorized", "stackTrace": []},
    )

    with pytest.raises(NukiAuthError) as caught:
        client.get_smartlock(LOCK)

    assert TOKEN not in everything_said_about(caught.value)
    assert "[redacted]" in str(caught.value)


def test_unexpected_4xx_is_a_refusal(client: NukiClient, fake_nuki: FakeNuki) -> None:
    fake_nuki.add("GET", "/smartlock", 418, body="", in_spec=False)

    with pytest.raises(NukiRefused) as caught:
        client.list_smartlocks()

    assert caught.value.status == 418
    assert len(fake_nuki.requests) == 1


def test_a_redirect_is_not_followed(client: NukiClient, fake_nuki: FakeNuki) -> None:
    # Given a misconfigured URL that redirects elsewhere (the token must not follow)
    fake_nuki.add("GET", "/smartlock", 302, headers={"Location": "https://elsewhere.example/"}, in_spec=False)

    with pytest.raises(NukiProtocolError) as caught:
        client.list_smartlocks()

    assert caught.value.status == 302
    assert len(fake_nuki.requests) == 1


def test_a_404_on_a_lock_is_not_found(client: NukiClient, fake_nuki: FakeNuki) -> None:
    fake_nuki.add("GET", f"/smartlock/{LOCK}", 404, body="")

    with pytest.raises(NukiNotFound):
        client.get_smartlock(LOCK)


# --- no requests types, no secrets -----------------------------------------------------------------


def test_transport_errors_are_wrapped_without_their_text(
    make_client: Callable[..., NukiClient], fake_nuki: FakeNuki
) -> None:
    # Given a connection error whose text mentions the token and a PIN
    client = make_client(max_attempts=1)
    fake_nuki.add(
        "PUT",
        CREATE,
        raises=requests.exceptions.ConnectionError(f"reset while sending Bearer {TOKEN} code {ECHOED_PIN}"),
    )

    # When we create the code
    with pytest.raises(NukiUnavailable) as caught:
        client.create_keypad_code([LOCK], keypad_code())

    # Then the caller gets our error type only, and nothing secret
    assert_no_requests_types(caught.value)
    said = everything_said_about(caught.value)
    assert TOKEN not in said
    assert ECHOED_PIN not in said
    assert "connection_error" in str(caught.value)


def test_a_non_transport_requests_failure_is_a_nuki_error_and_not_retried(
    client: NukiClient, fake_nuki: FakeNuki
) -> None:
    fake_nuki.add("GET", "/smartlock", raises=requests.exceptions.InvalidHeader(f"bad header value {TOKEN}"))

    with pytest.raises(NukiError) as caught:
        client.list_smartlocks()

    assert type(caught.value) is NukiError
    assert len(fake_nuki.requests) == 1
    assert_no_requests_types(caught.value)
    assert TOKEN not in everything_said_about(caught.value)


@pytest.mark.parametrize("token", ["", "two words", "line\nbreak", "\x00"])
def test_a_malformed_token_is_refused_before_any_call(
    make_client: Callable[..., NukiClient], fake_nuki: FakeNuki, token: str
) -> None:
    client = make_client(token=token)

    with pytest.raises(NukiAuthError, match="empty or malformed"):
        client.list_smartlocks()

    assert fake_nuki.requests == []


def test_an_unreadable_answer_is_a_protocol_error_that_does_not_echo_codes(
    client: NukiClient, fake_nuki: FakeNuki
) -> None:
    # Given Nuki answers 200 with auths we cannot read (no name, code as text)
    broken = auth_json(code=ECHOED_PIN)
    del broken["name"]
    fake_nuki.add("GET", CREATE, json_body=[broken], in_spec=False)

    # When we list the auths
    with pytest.raises(NukiProtocolError) as caught:
        client.list_auths(LOCK)

    # Then we learn where the answer is wrong, not what it held
    assert "0/name" in str(caught.value)
    assert ECHOED_PIN not in everything_said_about(caught.value)
    assert_no_requests_types(caught.value)


def test_a_non_json_success_is_a_protocol_error(client: NukiClient, fake_nuki: FakeNuki) -> None:
    fake_nuki.add("GET", "/smartlock", body="<html>maintenance</html>", in_spec=False)

    with pytest.raises(NukiProtocolError, match="not JSON"):
        client.list_smartlocks()


# --- redaction itself ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"value '{PIN}' refused", "value '******' refused"),
        ("codes 483726,912345.", "codes ******,******."),
        ("lock 17000001 keeps its id", "lock 17000001 keeps its id"),
        ("12345 is short", "12345 is short"),
        ("auth 6ab2be33a7fc3019addfa5d1", "auth 6ab2be33a7fc3019addfa5d1"),
    ],
)
def test_redact_masks_six_digit_numbers_only(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_errors_built_by_hand_are_redacted_too() -> None:
    error = NukiInvalidRequest(f"code {PIN} refused", status=400, operation="PUT /x", detail=f"'{PIN}'")

    assert str(PIN) not in everything_said_about(error)
    assert error.detail == "'******'"
