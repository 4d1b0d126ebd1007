"""Nuki's own routes: parse the request as Nuki would, call the sandbox, shape the answer.

Request bodies are checked against the spec's body schemas (``local.nuki_spec``): a missing
required field or a wrong type is Nuki's 400 ``The supplied value '...' for parameter '...' is
not valid``. A JSON ``null`` counts as "not sent" (Jackson reads it so; forum 86 clears
``allowedUntilDate`` by sending null).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import cache
from typing import Any

from local.nuki_sandbox.model import (
    JSON,
    NukiError,
    Reply,
    Route,
    bad_param,
    find_route,
    is_object_id,
    nuki_error_body,
    parse_date,
    route,
    unauthorized,
)
from local.nuki_sandbox.state import (
    AUTH_PAGE_SIZE_DEFAULT,
    LOG_LIMIT_DEFAULT,
    AuthChange,
    AuthDraft,
    NukiSandbox,
    Window,
)
from local.nuki_spec import jsonschema, load_spec

Query = Mapping[str, list[str]]
NO_MATCH = -(2**63)  # what a malformed filter on a route that declares no 400 compares equal to
Handler = Callable[[NukiSandbox, dict[str, str], Query, bytes], Reply]


# --- request parsing ----------------------------------------------------------------------------


@cache
def _validator(definition: str) -> Any:
    spec = load_spec()
    schema = {"$ref": f"#/definitions/{definition}", "definitions": spec["definitions"]}
    return jsonschema.Draft4Validator(schema)


def _json_body(raw: bytes) -> JSON:
    if not raw.strip():
        raise bad_param("body", None)
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise bad_param("body", raw[:64].decode("utf-8", "replace")) from exc


def _without_nulls(body: JSON) -> JSON:
    if isinstance(body, dict):
        return {k: v for k, v in body.items() if v is not None}
    return body


def validated(definition: str, raw: bytes) -> dict[str, JSON]:
    """The JSON body as a dict that conforms to ``definition``, or Nuki's 400 naming the first bad field."""
    return conform(definition, _json_body(raw))


def conform(definition: str, body: JSON) -> dict[str, JSON]:
    """``body`` (nulls dropped) if it conforms to the spec's ``definition``, else Nuki's 400."""
    body = _without_nulls(body)
    errors = sorted(_validator(definition).iter_errors(body), key=lambda e: ([str(p) for p in e.path], e.validator))
    if errors:
        raise _schema_error(errors[0])
    if not isinstance(body, dict):
        raise bad_param("body", body)
    return body


def _schema_error(error: Any) -> NukiError:
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = next((p for p in error.validator_value if p not in error.instance), "body")
        return bad_param(missing, None)
    path = list(error.path)
    if path:
        return bad_param(str(path[0]), error.instance)
    return bad_param("body", error.instance)


def _date(body: Mapping[str, JSON], key: str) -> datetime | None:
    if key not in body:
        return None
    value = parse_date(body[key])
    if value is None:
        raise bad_param(key, body[key])
    return value


def _minutes(body: Mapping[str, JSON], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or not 0 <= value <= 24 * 60:
        raise bad_param(key, value)
    return value


def window_from(body: Mapping[str, JSON]) -> Window:
    week_days = body.get("allowedWeekDays")
    return Window(
        from_date=_date(body, "allowedFromDate"),
        until_date=_date(body, "allowedUntilDate"),
        week_days=week_days if isinstance(week_days, int) else None,
        from_time=_minutes(body, "allowedFromTime"),
        until_time=_minutes(body, "allowedUntilTime"),
    )


def _opt_int(body: Mapping[str, JSON], key: str) -> int | None:
    value = body.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _opt_bool(body: Mapping[str, JSON], key: str) -> bool | None:
    value = body.get(key)
    return value if isinstance(value, bool) else None


def draft_from(body: Mapping[str, JSON]) -> AuthDraft:
    """A SmartlockAuthCreate body (already schema-checked) as a draft; ``type`` defaults to 0 (app)."""
    return AuthDraft(
        name=str(body["name"]),
        type=_opt_int(body, "type") or 0,
        remote_allowed=bool(body["remoteAllowed"]),
        window=window_from(body),
        code=_opt_int(body, "code"),
        account_user_id=_opt_int(body, "accountUserId"),
    )


def change_from(body: Mapping[str, JSON]) -> AuthChange:
    return AuthChange(
        name=str(body["name"]),
        window=window_from(body),
        code=_opt_int(body, "code"),
        enabled=_opt_bool(body, "enabled"),
        remote_allowed=_opt_bool(body, "remoteAllowed"),
        account_user_id=_opt_int(body, "accountUserId"),
    )


def _query(query: Query, name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _query_int(query: Query, name: str, strict: bool = True) -> int | None:
    """An integer query parameter; malformed: 400 if ``strict``, else a value no record has."""
    raw = _query(query, name)
    if raw is None or raw == "":
        return None
    if not re.fullmatch(r"-?\d+", raw):
        if strict:
            raise bad_param(name, raw)
        return NO_MATCH
    return int(raw)


def _query_date(query: Query, name: str) -> datetime | None:
    raw = _query(query, name)
    if raw is None or raw == "":
        return None
    value = parse_date(raw)
    if value is None:  # e.g. Unix seconds: Nuki wants RFC 3339
        raise bad_param(name, raw)
    return value


def _query_types(query: Query) -> set[int] | None:
    """The ``types`` filter; parts that are not numbers match nothing (the route declares no 400)."""
    raw = _query(query, "types")
    if raw is None or raw.strip() == "":
        return None
    return {int(p) if p.strip().isdigit() else NO_MATCH for p in raw.split(",") if p.strip()}


def _no_content() -> Reply:
    return Reply(204)


def _ok(body: JSON) -> Reply:
    return Reply(200, body)


# --- handlers -----------------------------------------------------------------------------------


def _list_smartlocks(sandbox: NukiSandbox, _params: dict[str, str], query: Query, _raw: bytes) -> Reply:
    return _ok(
        sandbox.list_smartlocks(_query_int(query, "authId", strict=False), _query_int(query, "type", strict=False))
    )


def _get_smartlock(sandbox: NukiSandbox, params: dict[str, str], _query: Query, _raw: bytes) -> Reply:
    return _ok(sandbox.get_smartlock(int(params["smartlockId"])))


def _sync(sandbox: NukiSandbox, params: dict[str, str], _query: Query, _raw: bytes) -> Reply:
    raw_id = params["smartlockId"]
    if not raw_id.isdigit():
        raise bad_param("smartlockId", raw_id)
    sandbox.sync(int(raw_id))
    return _no_content()


def _list_lock_auths(sandbox: NukiSandbox, params: dict[str, str], query: Query, _raw: bytes) -> Reply:
    return _ok(sandbox.list_auths(int(params["smartlockId"]), types=_query_types(query)))


def _list_all_auths(sandbox: NukiSandbox, _params: dict[str, str], query: Query, _raw: bytes) -> Reply:
    account_user_id = _query_int(query, "accountUserId", strict=False)
    if account_user_id == NO_MATCH:
        return _ok([])
    return _ok(sandbox.list_auths(None, types=_query_types(query), account_user_id=account_user_id))


def _list_all_auths_paged(sandbox: NukiSandbox, _params: dict[str, str], query: Query, _raw: bytes) -> Reply:
    # The route declares no 400: a page or size that is not a number is taken as its default.
    page = _query_int(query, "page", strict=False)
    size = _query_int(query, "size", strict=False)
    account_user_id = _query_int(query, "accountUserId", strict=False)
    return _ok(
        sandbox.list_auths_paged(
            page=0 if page is None or page == NO_MATCH else page,
            size=AUTH_PAGE_SIZE_DEFAULT if size is None or size == NO_MATCH or size < 1 else size,
            types=_query_types(query),
            account_user_id=None if account_user_id == NO_MATCH else account_user_id,
        )
    )


def _get_auth(sandbox: NukiSandbox, params: dict[str, str], _query: Query, _raw: bytes) -> Reply:
    return _ok(sandbox.get_auth(int(params["smartlockId"]), params["id"]))


def _create_auth(sandbox: NukiSandbox, params: dict[str, str], _query: Query, raw: bytes) -> Reply:
    body = validated("SmartlockAuthCreate", raw)
    sandbox.create_auths([int(params["smartlockId"])], draft_from(body))
    return _no_content()


def _create_auths(sandbox: NukiSandbox, _params: dict[str, str], _query: Query, raw: bytes) -> Reply:
    body = validated("SmartlocksAuthCreate", raw)
    smartlock_ids = body.get("smartlockIds")
    if not isinstance(smartlock_ids, list) or not smartlock_ids:
        raise bad_param("smartlockIds", None)
    sandbox.create_auths([int(i) for i in smartlock_ids], draft_from(body), parameter="smartlockIds")
    return _no_content()


def _update_auth(sandbox: NukiSandbox, params: dict[str, str], _query: Query, raw: bytes) -> Reply:
    body = validated("SmartlockAuthUpdate", raw)
    sandbox.update_auth(int(params["smartlockId"]), params["id"], change_from(body))
    return _no_content()


def _delete_auth(sandbox: NukiSandbox, params: dict[str, str], _query: Query, _raw: bytes) -> Reply:
    sandbox.delete_auth(int(params["smartlockId"]), params["id"])
    return _no_content()


def _delete_auths(sandbox: NukiSandbox, _params: dict[str, str], _query: Query, raw: bytes) -> Reply:
    body = _json_body(raw)
    if not isinstance(body, list) or not all(isinstance(i, str) for i in body):
        raise bad_param("body", body)
    sandbox.delete_auths(body)
    return _no_content()


def _log_query(query: Query) -> dict[str, Any]:
    older_than = _query(query, "id")
    if older_than is not None and not is_object_id(older_than):
        raise bad_param("id", older_than)
    limit = _query_int(query, "limit")
    if limit is not None and limit < 1:
        raise bad_param("limit", limit)
    return {
        "account_user_id": _query_int(query, "accountUserId"),
        "from_date": _query_date(query, "fromDate"),
        "to_date": _query_date(query, "toDate"),
        "action": _query_int(query, "action"),
        "older_than": older_than,
        "limit": LOG_LIMIT_DEFAULT if limit is None else limit,
    }


def _lock_logs(sandbox: NukiSandbox, params: dict[str, str], query: Query, _raw: bytes) -> Reply:
    return _ok(sandbox.logs(int(params["smartlockId"]), auth_id=_query(query, "authId") or None, **_log_query(query)))


def _all_logs(sandbox: NukiSandbox, _params: dict[str, str], query: Query, _raw: bytes) -> Reply:
    return _ok(sandbox.logs(None, **_log_query(query)))


def _list_webhooks(sandbox: NukiSandbox, _params: dict[str, str], _query: Query, _raw: bytes) -> Reply:
    return _ok(sandbox.list_webhooks())


def _register_webhook(sandbox: NukiSandbox, _params: dict[str, str], _query: Query, raw: bytes) -> Reply:
    body = validated("DecentralWebhook", raw)
    features = body["webhookFeatures"]
    assert isinstance(features, list)  # the schema says so
    return _ok(sandbox.register_webhook(str(body["webhookUrl"]), [str(f) for f in features]))


def _delete_webhook(sandbox: NukiSandbox, params: dict[str, str], _query: Query, _raw: bytes) -> Reply:
    sandbox.delete_webhook(int(params["id"]))
    return _no_content()


def _list_account_users(sandbox: NukiSandbox, _params: dict[str, str], query: Query, _raw: bytes) -> Reply:
    offset = _query_int(query, "offset", strict=False)
    limit = _query_int(query, "limit", strict=False)
    if offset == NO_MATCH or limit == NO_MATCH:
        return _ok([])  # the route declares no 400: a malformed page matches nothing
    return _ok(sandbox.list_account_users(_query(query, "email"), offset or 0, 100 if limit is None else limit))


def _create_account_user(sandbox: NukiSandbox, _params: dict[str, str], _query: Query, raw: bytes) -> Reply:
    body = validated("AccountUserCreate", raw)
    return _ok(sandbox.create_account_user(body))


def _account_user_id(params: dict[str, str]) -> int:
    raw = params["accountUserId"]
    if not raw.isdigit() or int(raw) > 2**31 - 1:
        raise unauthorized()  # GET and DELETE declare no 400 or 404: an id the account cannot have
    return int(raw)


def _get_account_user(sandbox: NukiSandbox, params: dict[str, str], _query: Query, _raw: bytes) -> Reply:
    return _ok(sandbox.get_account_user(_account_user_id(params)))


def _update_account_user(sandbox: NukiSandbox, params: dict[str, str], _query: Query, raw: bytes) -> Reply:
    body = validated("AccountUserUpdate", raw)
    return _ok(sandbox.update_account_user(_account_user_id(params), body))


def _delete_account_user(sandbox: NukiSandbox, params: dict[str, str], _query: Query, _raw: bytes) -> Reply:
    sandbox.delete_account_user(_account_user_id(params))
    return _no_content()


_LOCK = r"/smartlock/(?P<smartlockId>\d+)"
_AUTH_ID = r"(?P<id>[^/]+)"


ROUTES: tuple[Route[Handler], ...] = (
    route("GET", r"/smartlock", _list_smartlocks),
    route("GET", r"/smartlock/auth", _list_all_auths),
    route("GET", r"/smartlock/auth/paged", _list_all_auths_paged),
    route("PUT", r"/smartlock/auth", _create_auths),
    route("DELETE", r"/smartlock/auth", _delete_auths),
    route("GET", r"/smartlock/log", _all_logs),
    route("GET", _LOCK, _get_smartlock),
    route("GET", _LOCK + r"/auth", _list_lock_auths),
    route("PUT", _LOCK + r"/auth", _create_auth),
    route("GET", _LOCK + r"/auth/" + _AUTH_ID, _get_auth),
    route("POST", _LOCK + r"/auth/" + _AUTH_ID, _update_auth),
    route("DELETE", _LOCK + r"/auth/" + _AUTH_ID, _delete_auth),
    route("GET", _LOCK + r"/log", _lock_logs),
    route("POST", r"/smartlock/(?P<smartlockId>[^/]+)/sync", _sync),
    route("GET", r"/api/decentralWebhook", _list_webhooks),
    route("PUT", r"/api/decentralWebhook", _register_webhook),
    route("DELETE", r"/api/decentralWebhook/(?P<id>\d+)", _delete_webhook),
    route("GET", r"/account/user", _list_account_users),
    route("PUT", r"/account/user", _create_account_user),
    route("GET", r"/account/user/(?P<accountUserId>[^/]+)", _get_account_user),
    route("POST", r"/account/user/(?P<accountUserId>[^/]+)", _update_account_user),
    route("DELETE", r"/account/user/(?P<accountUserId>[^/]+)", _delete_account_user),
)


def handle_api(
    sandbox: NukiSandbox, method: str, path: str, query: Query, raw: bytes, authorization: str | None
) -> Reply:
    """Answer one Nuki API request (faults and latency are the server's business, not this one's)."""
    try:
        if not sandbox.authorized(authorization):
            raise unauthorized()
        found = find_route(ROUTES, method, path)
        if isinstance(found, int):
            return Reply(found, nuki_error_body("Method Not Allowed" if found == 405 else "Not found"))
        handler, params = found
        return handler(sandbox, params, query, raw)
    except NukiError as exc:
        return exc.reply
