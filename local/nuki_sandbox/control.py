"""The ``/_sim`` control routes: not Nuki's API, the test harness's handle on the sandbox.

They take no token, see no faults or latency and are not recorded in ``/_sim/requests``. Errors
are ``{"error": "..."}`` with 400 (bad body), 404 (unknown lock or route) or 409 (lock exists);
rules shared with Nuki's routes (code rules, one code per lock) answer Nuki's error bodies.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from local.nuki_sandbox.api import conform, draft_from
from local.nuki_sandbox.model import JSON, ControlError, NukiError, Reply, Route, find_route, parse_date, route
from local.nuki_sandbox.state import BATTERY_FIELDS, DEFAULT_SUBSCRIPTION, KEYPAD_CODE, NukiSandbox
from local.nuki_spec import validate_definition

Query = Mapping[str, list[str]]
Handler = Callable[[NukiSandbox, dict[str, str], bytes], Reply]
T = TypeVar("T")


# --- body helpers -------------------------------------------------------------------------------


def _object(raw: bytes, allowed: set[str]) -> dict[str, JSON]:
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise ControlError(400, f"body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ControlError(400, "body must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ControlError(400, f"unknown field(s) {unknown}; known: {sorted(allowed)}")
    return body


def _opt(body: Mapping[str, JSON], key: str, kind: type[T]) -> T | None:
    """``body[key]`` if present and of ``kind`` (bools are not numbers), None if absent, else 400."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) and kind is not bool:
        raise ControlError(400, f"{key} must be a {kind.__name__}, not a boolean")
    if kind is float and isinstance(value, int):
        value = float(value)
    if not isinstance(value, kind):
        raise ControlError(400, f"{key} must be a {kind.__name__}, not {type(value).__name__}")
    return value


def _get(body: Mapping[str, JSON], key: str, kind: type[T], default: T) -> T:
    value = _opt(body, key, kind)
    return default if value is None else value


def _number(body: Mapping[str, JSON], key: str, default: float, low: float = 0.0, high: float | None = None) -> float:
    value = _get(body, key, float, default)
    if value < low or (high is not None and value > high):
        raise ControlError(400, f"{key} must be within [{low}, {high if high is not None else 'inf'}]")
    return value


def _at(body: Mapping[str, JSON]) -> datetime | None:
    if body.get("date") is None:
        return None
    value = parse_date(body["date"])
    if value is None:
        raise ControlError(400, f"date {body['date']!r} is not an RFC 3339 date-time")
    return value


def _battery(body: Mapping[str, JSON]) -> dict[str, JSON]:
    battery: dict[str, JSON] = {}
    for key in BATTERY_FIELDS:
        if key not in body:
            continue
        if key == "batteryCharge":
            charge = _get(body, key, int, 100)
            if not 0 <= charge <= 100:
                raise ControlError(400, "batteryCharge must be within [0, 100]")
            battery[key] = charge
        else:
            battery[key] = _get(body, key, bool, False)
    return battery


# --- handlers -----------------------------------------------------------------------------------

_LOCK_FIELDS = {
    "smartlockId",
    "name",
    "keypad",
    "keypad2",
    "online",
    "type",
    "timezone",
    "subscription",
    *BATTERY_FIELDS,
}


def _subscription(body: Mapping[str, JSON], default: str | None) -> str | None:
    """``subscription``: a ShsSubscription state (``"EXPIRED"``) or null (the lock reports none)."""
    if "subscription" not in body:
        return default
    value = body["subscription"]
    if value is not None and not isinstance(value, str):
        raise ControlError(400, 'subscription must be a Smart Hosting subscription state (e.g. "EXPIRED") or null')
    return value


def _health(_sandbox: NukiSandbox, _params: dict[str, str], _raw: bytes) -> Reply:
    return Reply(200, {"status": "ok"})


def _list_locks(sandbox: NukiSandbox, _params: dict[str, str], _raw: bytes) -> Reply:
    return Reply(200, sandbox.smartlock_states())


def _add_lock(sandbox: NukiSandbox, _params: dict[str, str], raw: bytes) -> Reply:
    body = _object(raw, _LOCK_FIELDS)
    smartlock_id = _opt(body, "smartlockId", int)
    lock_type = _get(body, "type", int, 4)
    if lock_type not in range(6):
        raise ControlError(400, "type must be a Smartlock type 0..5")
    return Reply(
        201,
        sandbox.add_smartlock(
            smartlock_id=smartlock_id,
            name=_get(body, "name", str, "") or None,
            keypad=_get(body, "keypad", bool, True),
            keypad2=_get(body, "keypad2", bool, False),
            online=_get(body, "online", bool, True),
            lock_type=lock_type,
            timezone=_get(body, "timezone", str, "UTC"),
            battery=_battery(body),
            subscription=_subscription(body, DEFAULT_SUBSCRIPTION),
        ),
    )


def _lock_state(sandbox: NukiSandbox, params: dict[str, str], _raw: bytes) -> Reply:
    return Reply(200, sandbox.smartlock_state(int(params["smartlockId"])))


def _patch_lock(sandbox: NukiSandbox, params: dict[str, str], raw: bytes) -> Reply:
    body = _object(raw, _LOCK_FIELDS - {"smartlockId", "type"})
    return Reply(
        200,
        sandbox.update_smartlock(
            int(params["smartlockId"]),
            online=_opt(body, "online", bool),
            name=_opt(body, "name", str),
            keypad=_opt(body, "keypad", bool),
            keypad2=_opt(body, "keypad2", bool),
            timezone=_opt(body, "timezone", str),
            battery=_battery(body),
            subscription=_subscription(body, None) if "subscription" in body else "unchanged",
        ),
    )


def _keypad(sandbox: NukiSandbox, params: dict[str, str], raw: bytes) -> Reply:
    body = _object(raw, {"code", "date"})
    code = _opt(body, "code", int)
    if code is None:
        raise ControlError(400, "code is required: the digits typed, as a number")
    return Reply(200, sandbox.keypad_entry(int(params["smartlockId"]), code, _at(body)))


def _app(sandbox: NukiSandbox, params: dict[str, str], raw: bytes) -> Reply:
    body = _object(raw, {"accountUserId", "date"})
    account_user_id = _opt(body, "accountUserId", int)
    if account_user_id is None:
        raise ControlError(400, "accountUserId is required: the account user who opens with the Nuki app")
    return Reply(200, sandbox.app_entry(int(params["smartlockId"]), account_user_id, _at(body)))


def _list_users(sandbox: NukiSandbox, _params: dict[str, str], _raw: bytes) -> Reply:
    return Reply(200, sandbox.account_users())


def _add_user(sandbox: NukiSandbox, _params: dict[str, str], raw: bytes) -> Reply:
    body = _object(raw, {"email", "name", "language"})
    email, name = _opt(body, "email", str), _opt(body, "name", str)
    if not email or not name:
        raise ControlError(400, "email and name are required")
    return Reply(201, sandbox.add_account_user(email, name, _get(body, "language", str, "en")))


_LOG_FIELDS = {
    "action",
    "trigger",
    "state",
    "source",
    "name",
    "authId",
    "accountUserId",
    "autoUnlock",
    "deviceType",
    "ajarTimeout",
    "error",
    "openerLog",
    "date",
}


def _add_log(sandbox: NukiSandbox, params: dict[str, str], raw: bytes) -> Reply:
    body = _object(raw, _LOG_FIELDS)
    if "action" not in body or "trigger" not in body:
        raise ControlError(400, "action and trigger are required (e.g. action 1 unlock, trigger 5 app)")
    fields = {k: v for k, v in body.items() if k != "date"}
    # Check the entry as it will be stored against the spec before it is stored and announced.
    candidate = {
        "id": "0" * 24,
        "smartlockId": int(params["smartlockId"]),
        "deviceType": 4,
        "name": "",
        "state": 0,
        "autoUnlock": False,
        **fields,
        "date": "2000-01-01T00:00:00.000Z",
    }
    problems = validate_definition("SmartlockLog", candidate)
    if problems:
        raise ControlError(400, "; ".join(problems))
    return Reply(201, sandbox.add_log(int(params["smartlockId"]), fields, _at(body)))


def _add_auth(sandbox: NukiSandbox, params: dict[str, str], raw: bytes) -> Reply:
    try:
        body = json.loads(raw or b"{}")
    except ValueError as exc:
        raise ControlError(400, f"body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ControlError(400, "body must be a JSON object")
    # As the Nuki app would make it: a keypad code unless said otherwise, enabled, no remote access.
    body = {"type": KEYPAD_CODE, "remoteAllowed": False, **body}
    enabled = body.pop("enabled", True)
    draft = draft_from(conform("SmartlockAuthCreate", body))
    draft.enabled = bool(enabled)
    return Reply(201, sandbox.add_foreign_auth(int(params["smartlockId"]), draft))


_FAULT_FIELDS = {"errorRate", "statuses", "timeoutRate", "seed", "timeoutSeconds", "ghostDeletes"}


def _get_faults(sandbox: NukiSandbox, _params: dict[str, str], _raw: bytes) -> Reply:
    return Reply(200, sandbox.faults())


def _put_faults(sandbox: NukiSandbox, _params: dict[str, str], raw: bytes) -> Reply:
    body = _object(raw, _FAULT_FIELDS)
    error_rate = _number(body, "errorRate", 0.0, 0.0, 1.0)
    timeout_rate = _number(body, "timeoutRate", 0.0, 0.0, 1.0)
    if error_rate + timeout_rate > 1.0:
        raise ControlError(400, "errorRate + timeoutRate must not exceed 1")
    statuses = _get(body, "statuses", list, [429, 500, 503])
    if not statuses or not all(isinstance(s, int) and 400 <= s <= 599 for s in statuses):
        raise ControlError(400, "statuses must be a non-empty list of 4xx/5xx codes")
    seed = _opt(body, "seed", int)
    ghost_deletes = _get(body, "ghostDeletes", int, 0)
    if ghost_deletes < 0:
        raise ControlError(400, "ghostDeletes must not be negative")
    return Reply(
        200,
        sandbox.set_faults(
            error_rate=error_rate,
            statuses=statuses,
            timeout_rate=timeout_rate,
            timeout_seconds=_number(body, "timeoutSeconds", 5.0),
            seed=seed,
            ghost_deletes=ghost_deletes,
        ),
    )


def _delete_faults(sandbox: NukiSandbox, _params: dict[str, str], _raw: bytes) -> Reply:
    sandbox.clear_faults()
    return Reply(204)


def _get_config(sandbox: NukiSandbox, _params: dict[str, str], _raw: bytes) -> Reply:
    return Reply(200, sandbox.config())


def _put_config(sandbox: NukiSandbox, _params: dict[str, str], raw: bytes) -> Reply:
    body = _object(raw, {"syncDelaySeconds", "latencySeconds", "webhookRetryDelaysSeconds", "leanAuthWebhooks"})
    retry: Any = body.get("webhookRetryDelaysSeconds")
    if retry is not None and (
        not isinstance(retry, list)
        or not all(isinstance(d, int | float) and not isinstance(d, bool) and d >= 0 for d in retry)
    ):
        raise ControlError(400, "webhookRetryDelaysSeconds must be a list of non-negative numbers")
    lean = body.get("leanAuthWebhooks")
    if lean is not None and not isinstance(lean, bool):
        raise ControlError(400, "leanAuthWebhooks must be true or false")
    return Reply(
        200,
        sandbox.configure(
            sync_delay=_number(body, "syncDelaySeconds", 0.0) if "syncDelaySeconds" in body else None,
            latency=_number(body, "latencySeconds", 0.0) if "latencySeconds" in body else None,
            webhook_retry_delays=retry,
            lean_auth_webhooks=lean,
        ),
    )


def _get_requests(sandbox: NukiSandbox, _params: dict[str, str], _raw: bytes) -> Reply:
    return Reply(200, sandbox.requests())


def _clear_requests(sandbox: NukiSandbox, _params: dict[str, str], _raw: bytes) -> Reply:
    sandbox.clear_requests()
    return Reply(204)


def _get_deliveries(sandbox: NukiSandbox, _params: dict[str, str], _raw: bytes) -> Reply:
    return Reply(200, sandbox.deliveries())


def _clear_deliveries(sandbox: NukiSandbox, _params: dict[str, str], _raw: bytes) -> Reply:
    sandbox.clear_deliveries()
    return Reply(204)


def _reset(sandbox: NukiSandbox, _params: dict[str, str], _raw: bytes) -> Reply:
    sandbox.reset()
    return Reply(204)


_LOCK = r"/_sim/smartlocks/(?P<smartlockId>\d+)"


ROUTES: tuple[Route[Handler], ...] = (
    route("GET", r"/_sim/health", _health),
    route("GET", r"/_sim/smartlocks", _list_locks),
    route("POST", r"/_sim/smartlocks", _add_lock),
    route("GET", _LOCK, _lock_state),
    route("PATCH", _LOCK, _patch_lock),
    route("POST", _LOCK + r"/keypad", _keypad),
    route("POST", _LOCK + r"/log", _add_log),
    route("POST", _LOCK + r"/auths", _add_auth),
    route("POST", _LOCK + r"/app", _app),
    route("GET", r"/_sim/account-users", _list_users),
    route("POST", r"/_sim/account-users", _add_user),
    route("GET", r"/_sim/faults", _get_faults),
    route("PUT", r"/_sim/faults", _put_faults),
    route("DELETE", r"/_sim/faults", _delete_faults),
    route("GET", r"/_sim/config", _get_config),
    route("PUT", r"/_sim/config", _put_config),
    route("GET", r"/_sim/requests", _get_requests),
    route("DELETE", r"/_sim/requests", _clear_requests),
    route("GET", r"/_sim/webhooks/deliveries", _get_deliveries),
    route("DELETE", r"/_sim/webhooks/deliveries", _clear_deliveries),
    route("DELETE", r"/_sim/state", _reset),
)


def handle_control(sandbox: NukiSandbox, method: str, path: str, raw: bytes) -> Reply:
    found = find_route(ROUTES, method, path)
    if isinstance(found, int):
        verdict = "is not allowed on" if found == 405 else "has no control route at"
        return Reply(found, {"error": f"{method} {verdict} {path}"})
    handler, params = found
    try:
        return handler(sandbox, params, raw)
    except (ControlError, NukiError) as exc:
        return exc.reply
