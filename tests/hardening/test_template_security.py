"""The template's security and limits, read from template.yaml itself (checkov runs in `make scan`).

* IAM: no inline statement allows a wildcard action (`*`, `s3:*`, `dynamodb:Get*`), uses
  NotAction or NotResource, or a wildcard resource unless the service allows nothing narrower,
  and each such resource is listed below with its reason. SAM policy templates
  (DynamoDBCrudPolicy, ...) are AWS's own narrow policies and are not inline statements.
* The usage plan throttles and caps the shop's key; the stage throttles every route, also those
  without a key (the webhook, health).
* Request validation: every route that takes a body, except the webhook (its signature comes
  before anything reads the body), gets only a JSON object past API Gateway.
* Body size: API Gateway REST refuses bodies over 10 MB; the functions refuse more than 64 KiB
  (shop routes: staykey.edge.http.MAX_BODY_BYTES; the webhook: WEBHOOK_MAX_BODY_BYTES) with 413, checked
  before the body is parsed or its signature computed. A request validator cannot limit a raw
  body's size (only a WAF size rule could, at a cost), so the function's check is the limit.
* Every checkov skip carries its reason.
"""

from __future__ import annotations

from typing import Any

import pytest

from local import cfn
from staykey.edge.http import MAX_BODY_BYTES
from staykey.settings import Settings

# (function or role, the resource's text) -> why nothing narrower exists.
WILDCARD_RESOURCES_ALLOWED = {
    "schedule/${ScheduleGroup}/*": "one-time schedules are named per booking; the group is the narrowest scope",
    "identity/*": "SES checks the sender's address or domain identity and, in the SES sandbox, the "
    "recipients' identities; the statement is pinned to SenderEmail by ses:FromAddress",
    "${AWS::StackName}/webhook-endpoints/*": "one signing secret per webhook endpoint, named by its id when "
    "the shop registers it; the prefix is the stack's",
}
API_GATEWAY_MAX_BODY_BYTES = 10 * 1024 * 1024


def _text(value: Any) -> str:
    return str(value.value) if isinstance(value, cfn.Tag) else str(value)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def inline_statements() -> list[tuple[str, dict[str, Any]]]:
    """(resource, statement) for every statement written out in the template."""
    out = []
    for logical_id, res in cfn.load_template()["Resources"].items():
        props = res.get("Properties") or {}
        if res["Type"] == "AWS::Serverless::Function":
            for policy in _as_list(props.get("Policies") or []):
                if isinstance(policy, dict) and "Statement" in policy:
                    out += [(logical_id, s) for s in policy["Statement"]]
        elif res["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies") or []:
                out += [(logical_id, s) for s in policy["PolicyDocument"]["Statement"]]
        elif res["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            out += [(logical_id, s) for s in props["PolicyDocument"]["Statement"]]
    return out


def test_there_are_inline_statements_to_check() -> None:
    assert len(inline_statements()) >= 10


@pytest.mark.parametrize(("resource", "statement"), inline_statements())
def test_no_wildcard_action_and_no_wildcard_resource_where_a_narrower_one_exists(
    resource: str, statement: dict[str, Any]
) -> None:
    assert statement.get("Effect") == "Allow", resource
    assert "NotAction" not in statement, resource
    assert "NotResource" not in statement, resource
    for action in _as_list(statement["Action"]):
        assert "*" not in _text(action), f"{resource}: wildcard action {action}"
    for target in _as_list(statement["Resource"]):
        text = _text(target)
        assert text != "*", f"{resource}: Resource '*'"
        if "*" in text:
            allowed = [why for suffix, why in WILDCARD_RESOURCES_ALLOWED.items() if text.endswith(suffix)]
            assert allowed, f"{resource}: wildcard resource {text} is not one the service needs"
            if text.endswith("identity/*"):
                assert "ses:FromAddress" in str(statement.get("Condition")), resource


def test_passing_the_scheduler_role_is_only_to_the_scheduler() -> None:
    for resource, statement in inline_statements():
        if "iam:PassRole" in _as_list(statement["Action"]):
            assert "scheduler.amazonaws.com" in str(statement.get("Condition")), resource


def _api() -> dict[str, Any]:
    (api,) = cfn.resources("AWS::Serverless::Api").values()
    return dict(api["Properties"])


def test_the_usage_plan_throttles_and_caps_the_shops_key() -> None:
    plan = _api()["Auth"]["UsagePlan"]
    assert plan["Throttle"]["RateLimit"] > 0
    assert plan["Throttle"]["BurstLimit"] > 0
    assert plan["Quota"]["Limit"] > 0


def test_the_stage_throttles_every_route_also_those_without_a_key() -> None:
    settings = _api()["MethodSettings"]
    every = [s for s in settings if s["ResourcePath"] == "/*" and s["HttpMethod"] == "*"]
    assert every, settings
    assert every[0]["ThrottlingRateLimit"] > 0
    assert every[0]["ThrottlingBurstLimit"] > 0


# Actions that take no body: API Gateway would refuse them without one if a model were required.
NO_BODY = {
    ("POST", "/bookings/{bookingId}/checkout"),
    ("POST", "/bookings/{bookingId}/resend-email"),
    ("POST", "/bookings/{bookingId}/retry"),
    ("POST", "/bookings/{bookingId}/rotate-pin"),  # no body, or `{}`: the function refuses any field (422)
    ("POST", "/bookings/{bookingId}/backup-codes"),  # no body, `{}` or the locks: the function checks it (422)
    ("POST", "/staff-codes/{staffCodeId}/retry"),
    ("POST", "/staff-codes/{staffCodeId}/rotate-pin"),  # as a booking's
    ("POST", "/webhook-endpoints/{endpointId}/rotate-secret"),
    # The console's forms are form-encoded, not JSON; the function checks them (and their CSRF token).
    ("POST", "/console/{proxy+}"),
}


def test_routes_with_a_body_are_validated_by_api_gateway_except_the_webhook() -> None:
    api = _api()
    models = api["Models"]
    body_routes = [r for r in cfn.routes() if r.method in ("POST", "PUT", "PATCH")]
    for logical_id, res in cfn.resources("AWS::Serverless::Function").items():
        for event in (res["Properties"].get("Events") or {}).values():
            if event["Type"] != "Api":
                continue
            props = event["Properties"]
            route = (props["Method"].upper(), props["Path"])
            if route not in {(r.method, r.path) for r in body_routes}:
                continue
            if route in {("POST", "/webhooks/nuki"), *NO_BODY}:
                assert "RequestModel" not in props, route  # signature first / no body
                continue
            model = props.get("RequestModel")
            assert model, f"{logical_id} {route}: no request validation"
            assert model["ValidateBody"] is True
            assert model["Required"] is True
            assert models[model["Model"]] == {"type": "object"}
    answer = api["GatewayResponses"]["BAD_REQUEST_BODY"]
    assert int(answer["StatusCode"]) == 400  # the same status the functions give a body that is not an object
    assert '"code": "bad_request"' in answer["ResponseTemplates"]["application/json"]


def test_body_size_limits_are_below_api_gateways() -> None:
    assert MAX_BODY_BYTES == 64 * 1024
    webhook_limit = Settings.model_validate({}).webhook_max_body_bytes
    assert webhook_limit == 64 * 1024
    for fn in cfn.functions().values():
        override = fn.environment.get("WEBHOOK_MAX_BODY_BYTES")
        assert override is None or int(_text(override)) <= API_GATEWAY_MAX_BODY_BYTES
    assert MAX_BODY_BYTES < API_GATEWAY_MAX_BODY_BYTES


def test_every_checkov_skip_carries_its_reason() -> None:
    skips = 0
    for logical_id, res in cfn.load_template()["Resources"].items():
        for skip in ((res.get("Metadata") or {}).get("checkov") or {}).get("skip") or []:
            skips += 1
            assert skip["id"].startswith("CKV"), logical_id
            assert len(str(skip.get("comment", "")).strip()) >= 40, f"{logical_id} {skip['id']}: no reason"
    assert skips > 0


def test_scheduled_functions_that_do_not_retry_are_not_silent() -> None:
    for logical_id in ("LogPollerFunction", "ReconcilerFunction"):
        props = cfn.load_template()["Resources"][logical_id]["Properties"]
        assert props["EventInvokeConfig"]["MaximumRetryAttempts"] == 0
        assert props["DeadLetterQueue"]["Type"] == "SQS", logical_id
