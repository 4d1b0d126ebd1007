"""The table of bad inputs (tests/hardening/bad_inputs.py; the table itself is the docstring of
tests/hardening/test_bad_inputs.py) over HTTP against the local stack: the same answers through
the local API Gateway, and nothing stored (the booking, room or webhook the request named is not
there afterwards; the moto table holds no item that names them). Names from every script are
accepted as sent.
"""

from __future__ import annotations

import json
import unicodedata
from datetime import timedelta
from typing import Any

import boto3
import pytest

from local.stack import LocalStack
from staykey.nuki import sign
from tests.e2e.helpers import Shop, Sim, new_id, now
from tests.hardening.bad_inputs import ACCEPTED_NAMES, BAD_INPUTS, BOOKING_ID, NEW_ROOM_ID, ROOM_ID, Bad
from tests.hardening.test_bad_inputs import assert_names_the_problem

pytestmark = pytest.mark.e2e


def _aws(stack: LocalStack, service: str) -> Any:
    env = stack.environment()
    return boto3.client(
        service,
        endpoint_url=stack.aws_endpoint,
        region_name=stack.config.region,
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY", "testing"),
    )


def _table(stack: LocalStack) -> str:
    assert stack.resources is not None
    (name,) = stack.resources.of_type("AWS::DynamoDB::Table").values()
    return str(name)


def _keys_naming(stack: LocalStack, *ids: str) -> list[str]:
    ddb = _aws(stack, "dynamodb")
    found = []
    kwargs: dict[str, Any] = {"TableName": _table(stack), "ProjectionExpression": "pk, sk"}
    while True:
        page = ddb.scan(**kwargs)
        for item in page["Items"]:
            key = f"{item['pk']['S']}/{item['sk']['S']}"
            if any(i in key for i in ids):
                found.append(key)
        if "LastEvaluatedKey" not in page:
            return found
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@pytest.fixture(scope="module")
def prepared(stack: LocalStack, session: Any) -> dict[str, str]:
    """The table's room and booking exist (stay dates around today); the webhook secret."""
    shop = Shop(stack, session)
    sim = Sim(stack, session)
    locks = [sim.add_lock(), sim.add_lock()]
    shop.put_room(locks, room_id=ROOM_ID)
    start = now() + timedelta(days=10)
    r = shop.call("POST", "/bookings", shop.booking_body(ROOM_ID, start, start + timedelta(days=2), BOOKING_ID))
    assert r.status_code in (200, 201), r.text
    secret = _aws(stack, "secretsmanager").get_secret_value(SecretId=stack.environment()["NUKI_WEBHOOK_SECRET_NAME"])
    return {"secret": secret["SecretString"]}


def _send(shop: Shop, case: Bad, secret: str) -> tuple[int, Any]:
    raw = case.payload()
    headers = {**shop.headers, "Content-Type": "application/json"}
    if case.signed:
        headers["X-Nuki-Signature-SHA256"] = sign(raw or b"", secret)
    r = shop.http.request(case.method, shop.url + case.path, data=raw, headers=headers, timeout=60)
    try:
        return r.status_code, r.json()
    except ValueError:
        return r.status_code, r.text


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c.id for c in BAD_INPUTS])
def test_a_bad_input_over_http_gets_the_same_answer_and_stores_nothing(
    stack: LocalStack, shop: Shop, prepared: dict[str, str], case: Bad
) -> None:
    status, answer = _send(shop, case, prepared["secret"])
    assert_names_the_problem(case, status, answer)
    body = case.body if isinstance(case.body, dict) else {}
    named = [str(body[k]) for k in ("bookingId",) if isinstance(body.get(k), str) and body[k]]
    if case.path == f"/rooms/{NEW_ROOM_ID}":
        named.append(NEW_ROOM_ID)
    if named:
        assert _keys_naming(stack, *[f"#{n}" for n in named]) == [], f"{case.id} stored something"


def test_the_refused_room_does_not_exist(shop: Shop, prepared: dict[str, str]) -> None:
    assert shop.call("GET", f"/rooms/{NEW_ROOM_ID}").status_code == 404
    assert shop.call("GET", "/bookings/B-bad").status_code == 404


@pytest.mark.parametrize("name", ACCEPTED_NAMES, ids=[f"name-{i}" for i in range(len(ACCEPTED_NAMES))])
def test_names_from_every_script_are_accepted_over_http(shop: Shop, prepared: dict[str, str], name: str) -> None:
    start = now() + timedelta(days=10)
    body = shop.booking_body(ROOM_ID, start, start + timedelta(days=1), new_id("B-name"))
    body["guest"]["name"] = name
    r = shop.http.post(
        shop.url + "/bookings",
        data=json.dumps(body, ensure_ascii=False).encode("utf-8"),
        headers={**shop.headers, "Content-Type": "application/json; charset=utf-8"},
        timeout=60,
    )
    assert r.status_code == 201, r.text
    assert r.json()["guest"]["name"] == unicodedata.normalize("NFC", name)
    assert shop.get(body["bookingId"])["guest"]["name"] == unicodedata.normalize("NFC", name)
