# ruff: noqa: E501 - the docstring is a Markdown table, one row a line
"""Bad inputs: each gets a 4xx that names the problem, and changes nothing.

Every row of `tests.hardening.bad_inputs.BAD_INPUTS` goes through the function the template wires
for its route (as API Gateway would call it), with moto for AWS and a fake Nuki. "Changes
nothing" is checked on everything a request could touch: the whole DynamoDB table, the
EventBridge schedules, the lifecycle and webhook queues, Nuki's calls and the guest emails.
The same rows run over HTTP against the local stack in tests/e2e/test_hardening_bad_inputs_http.py.

| input | example | answer |
|---|---|---|
| broken JSON | `{"bookingId": "B-1",` | 400 `bad_request`, "the body is not valid JSON: ... at line 1 column 21" |
| a JSON value that is not an object | `["B-1"]` | 400, "the body must be a JSON object" |
| no body | (empty) | 400, "the request needs a JSON body" |
| bytes that are not UTF-8 | `{"bookingId": "\\xff\\xfe"}` | 400, "the body is not UTF-8 text" |
| wrong types | `"guest": {"name": 42}`, `"notifyGuest": "yes"`, `"checkIn": 20261201`, `"accessBeforeMinutes": "30"` | 422 `validation_error`, `errors[].field` names each (`guest.name`, `notifyGuest`, ...) |
| unknown fields | `"colour"`, `guest.phone`, a room's `floor`, `pin` in a PATCH | 422 naming the field ("Extra inputs are not permitted") |
| empty strings | `bookingId: ""`, `guest.name: ""` or `"   "`, `guest.email: ""`, room `name: ""` | 422 naming the field |
| huge strings | a name of 201 or 10,000 characters, a 65-character `bookingId`, a 255-character email | 422 naming the field ("at most 200 characters") |
| a huge body | a body over 64 KiB | 413 `payload_too_large` (the function; API Gateway itself stops at 10 MB) |
| control characters | NUL, newline, ESC, tab in a name; invisible formatting (U+202E bidi override, U+200B zero width space); NUL, ESC or invisible formatting in a guest's email (in a POST or a PATCH) | 422 naming the field: "must not contain control or invisible formatting characters" |
| non-Latin names | "Ada Lövelace", "李小龍", "محمد بن موسى الخوارزمي", "Ελένη", "Zoë 🙂", 200 x "क" | **accepted** (201), stored and answered as sent (NFC) |
| more than 5 locks on a room | `smartlockIds: [1, 2, 3, 4, 5, 6]`; also none, or one lock twice | 422 `smartlockIds` |
| a lock id that is not a positive integer | `0`, `-17000001`, `17000001.5`, `"17000001"`, `true`, `2^63`, `17000001` (not a list) | 422 `smartlockIds.0` (or `smartlockIds`) |
| an unknown time zone | `Mars/Olympus`, `Europe` (a folder of the zone database: was a 500, found by the fuzzer), `../../etc/passwd`, `europe/berlin` | 422 `timezone`: "... is not an IANA time zone" |
| a bad time of day or room id | `checkInTime: "25:00"`, `PUT /rooms/room%20one` | 422 `checkInTime` / `roomId` |
| a date-time without offset | `checkIn: "2026-12-01T15:00:00"` | 422 `checkIn`: "a date-time needs an offset, for example ..." |
| not a date | `"tomorrow"`, `"2026-02-30"`, `"0000-01-01"` | 422 naming `checkIn` / `checkOut` |
| a `checkOut` decades away | `checkIn: 2026-12-01, checkOut: 2056-12-03` | 422 `checkOut`: "a stay may last at most 366 days" |
| a stay decades away | `checkIn: 2056-12-01` | 422 `checkIn`: "is more than three years away" |
| a window that is not one | `checkOut` before `checkIn`, or in the past | 422 `checkOut`: "must be after checkIn" / "is in the past" |
| an unknown room | `roomId: "no-such-room"` | 404 `not_found` |
| an empty or null PATCH | `{}`, `{"checkIn": null}`, or a window decades long | 422 |
| bad ids in paths and queries | `/bookings/<script>`, `/locks/abc/activity`, `/locks/0/activity`, `?limit=ten`, `?limit=100000` | 404 / 422 `limit` |
| list filters that are not | `GET /bookings?roomid=...` (unknown), `status=checkedout`, `from=2026-12-01` (no time), `to` before `from`, a date-time UTC puts outside the years 1-9999 (`updatedSince=0001-01-01T00:00:00+01:00`: was a 500, found by the fuzzer), `limit=101`, a forged or garbled `cursor`, on `/rooms`, `/locks` and the activity routes too | 422 naming the parameter (`roomid`, `status`, `from`, `to`, `updatedSince`, `limit`, `cursor`) |
| an action that does not apply | `POST /bookings/{id}/resend-email` before the code is confirmed, `/retry` of a booking that did not fail, or of no booking, `/rotate-pin` of no booking | 409 saying why / 404 |
| a rotation with a body | `POST /bookings/{id}/rotate-pin` with `{"pin": "482913"}` (the new PIN is StayKey's choice), broken JSON, or an array | 422 `pin` / 400 |
| an oversized body on `/webhooks/nuki` | 64 KiB + 1 byte, correctly signed | 413, nothing queued (checked before the signature) |
| an unsigned webhook | no `X-Nuki-Signature-SHA256` | 401, nothing queued |
| a webhook endpoint URL that is unsafe | `https://10.0.0.7/`, `https://169.254.169.254/...`, `https://[fd12::1]/`, `http://` to a public address, `ftp://`, `https://user:pw@...` | 422 `url` naming why ("points at a private, loopback or link-local address", "must be https"); no endpoint, no secret |
| a bad webhook endpoint body | no `url`, `eventTypes: []` or an unknown type, a `secret` of its own | 422 `url` / `eventTypes` / `eventTypes.0` / `secret` |
| unknown endpoint ids | `GET /webhook-endpoints/ep_...`, `PATCH /webhook-endpoints/<script>`, rotate an unknown one | 404 |
| a bad event cursor or limit | `GET /events?after=12345`, `?limit=1000`, `?limit=ten` | 422 `after` / `limit` |
"""

from __future__ import annotations

import base64
import importlib
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import boto3
import pytest

from local import cfn
from local.gateway import Router
from local.kit.apigw import Context, api_event
from staykey.nuki import sign
from staykey.services.activity import Activity
from tests.conftest import WEBHOOK_SECRET, World
from tests.hardening.bad_inputs import (
    ACCEPTED_NAMES,
    BAD_INPUTS,
    BOOKING_ID,
    NEW_ROOM_ID,
    ROOM,
    ROOM_ID,
    Bad,
    booking,
    guest,
)

Invoke = Callable[..., tuple[int, Any]]
ROUTER = Router(cfn.routes())
FUNCTIONS = cfn.functions()


def invoke_route(method: str, target: str, raw: bytes | None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """`method target` through the function the template wires for it, as API Gateway calls it."""
    split = urlsplit(target)
    route, _params, _ = ROUTER.match(method, unquote(split.path))
    if route is None:
        return 403, {"message": "Missing Authentication Token"}
    text_ok = True
    if raw is not None:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            text_ok = False
    event = api_event(
        method,
        split.path,
        resource=route.path,
        raw_body=raw if raw else None,
        base64_encoded=not text_ok,
        query=dict(parse_qsl(split.query)) or None,
        headers=headers,
    )
    if raw == b"":
        event["body"] = None
    pairs = parse_qsl(split.query)
    if pairs:  # a repeated parameter, as API Gateway hands it over: every value in the multi-value map
        multi: dict[str, list[str]] = {}
        for key, value in pairs:
            multi.setdefault(key, []).append(value)
        event["multiValueQueryStringParameters"] = multi
    if event["pathParameters"]:
        event["pathParameters"] = {k: unquote(v) for k, v in event["pathParameters"].items()}
    module = importlib.import_module(FUNCTIONS[route.function].module)
    response = module.lambda_handler(event, Context())
    body = response.get("body")
    return response["statusCode"], json.loads(body) if body else None


def send(case: Bad) -> tuple[int, Any]:
    raw = case.payload()
    headers = {"X-Nuki-Signature-SHA256": sign(raw or b"", WEBHOOK_SECRET)} if case.signed else None
    return invoke_route(case.method, case.path, raw, headers)


def assert_names_the_problem(case: Bad, status: int, answer: Any) -> None:
    assert status == case.status, f"{case.id}: {status} {answer}"
    assert isinstance(answer, dict), answer
    if case.status == 422:
        assert answer["code"] == "validation_error"
        fields = [e["field"] for e in answer["errors"]]
        assert case.names in fields, f"{case.id}: {fields}"
    else:
        assert case.names.lower() in answer["message"].lower(), f"{case.id}: {answer}"
    # Errors never carry a stack trace or a PIN.
    text = json.dumps(answer)
    assert "Traceback" not in text
    assert not re.search(r"(?<![0-9])[1-9]{6}(?![0-9])", text) or case.id == "unknown-patch-field"


class Everything:
    """What a request could change: the table, schedules, queues, Nuki, mail and follow-ups."""

    def __init__(self, world: World, queues: dict[str, str]) -> None:
        self.world = world
        self.queues = queues

    def snapshot(self) -> dict[str, Any]:
        ddb = boto3.client("dynamodb")
        items = ddb.scan(TableName=self.world.store.table_name)["Items"]
        scheduler = boto3.client("scheduler")
        schedules = scheduler.list_schedules()["Schedules"]
        sqs = boto3.client("sqs")
        depth = {
            name: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
            for name, url in self.queues.items()
        }
        return {
            "items": sorted(json.dumps(i, sort_keys=True) for i in items),
            "schedules": sorted(s["Name"] for s in schedules),
            "queues": depth,
            "nuki": len(self.world.nuki.calls),
            "mail": len(self.world.mail.sent),
            "jobs": len(self.world.jobs.jobs),
        }


@pytest.fixture
def prepared(world: World, activity: Activity, aws: dict[str, str]) -> Everything:
    """A room and a scheduled booking exist (for the PATCH and activity rows); then the snapshot."""
    status, body = invoke_route("PUT", f"/rooms/{ROOM_ID}", json.dumps(ROOM).encode())
    assert status == 201, body
    status, body = invoke_route("POST", "/bookings", json.dumps(booking(BOOKING_ID)).encode())
    assert status == 201, body
    return Everything(world, aws)


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c.id for c in BAD_INPUTS])
def test_a_bad_input_gets_a_4xx_naming_the_problem_and_changes_nothing(prepared: Everything, case: Bad) -> None:
    before = prepared.snapshot()
    status, answer = send(case)
    assert_names_the_problem(case, status, answer)
    assert prepared.snapshot() == before, f"{case.id} changed something"


def test_nothing_half_written_for_a_refused_room(prepared: Everything) -> None:
    assert invoke_route("GET", f"/rooms/{NEW_ROOM_ID}", None)[0] == 404


@pytest.mark.parametrize("name", ACCEPTED_NAMES, ids=[f"name-{i}" for i in range(len(ACCEPTED_NAMES))])
def test_names_from_every_script_are_accepted_as_sent(prepared: Everything, name: str) -> None:
    import unicodedata

    body = {**guest(name=name), "bookingId": f"B-name-{abs(hash(name)) % 10**8}"}
    status, answer = invoke_route("POST", "/bookings", json.dumps(body, ensure_ascii=False).encode())
    assert status == 201, answer
    assert answer["guest"]["name"] == unicodedata.normalize("NFC", name)
    status, again = invoke_route("GET", f"/bookings/{body['bookingId']}", None)
    assert (status, again["guest"]["name"]) == (200, unicodedata.normalize("NFC", name))


def test_the_table_in_the_docstring_covers_every_kind_of_row() -> None:
    """The docstring is the table the README shows: it must mention what the rows test."""
    doc = __doc__ or ""
    for phrase in (
        "broken JSON",
        "wrong types",
        "unknown fields",
        "empty strings",
        "huge strings",
        "control characters",
        "non-Latin names",
        "more than 5 locks",
        "not a positive integer",
        "unknown time zone",
        "date-time without offset",
        "`checkOut` decades away",
        "oversized body on `/webhooks/nuki`",
    ):
        assert phrase in doc, phrase
    for case in BAD_INPUTS:
        assert str(case.status) in doc, case.id


def test_a_base64_body_that_is_not_utf8_is_a_400_not_a_500(prepared: Everything) -> None:
    """Found by the fuzzer: API Gateway hands a body that is not UTF-8 over base64-encoded, and
    decoding it raised UnicodeDecodeError (500)."""
    event = api_event("PUT", f"/rooms/{NEW_ROOM_ID}", resource="/rooms/{roomId}")
    event["body"] = base64.b64encode(b"0\rb\xaf\x19Z%\xd1\xc01").decode()
    event["isBase64Encoded"] = True
    response = importlib.import_module("functions.rooms_api.app").lambda_handler(event, Context())
    assert response["statusCode"] == 400
    assert json.loads(response["body"]) == {"code": "bad_request", "message": "the body is not UTF-8 text"}
