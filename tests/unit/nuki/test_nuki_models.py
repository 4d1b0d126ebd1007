"""Reading Nuki's documents and building ours: tolerant of what Nuki adds, strict about what we send."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pydantic
import pytest

from local.nuki_spec import validate_definition
from staykey.core.readiness import LockReport, not_in_force
from staykey.nuki import (
    DecentralWebhook,
    DeviceAuthsWebhook,
    DeviceLogsWebhook,
    DeviceStatusWebhook,
    DeviceType,
    KeypadCodeCreate,
    LogAction,
    LogSource,
    LogState,
    LogTrigger,
    Smartlock,
    SmartlockAuth,
    SmartlockAuthUpdate,
    SmartlockLog,
    UnknownWebhook,
    action_name,
    format_utc,
    is_successful_keypad_entry,
    parse_webhook,
    source_name,
    state_name,
    trigger_name,
)
from tests.unit.nuki.nuki_fakes import AUTH_ID, LOCK, PIN, auth_json, log_json, smartlock_json

FROM = datetime(2026, 12, 1, 14, tzinfo=UTC)
UNTIL = datetime(2026, 12, 3, 10, tzinfo=UTC)


# --- smartlocks -----------------------------------------------------------------------------------


def test_a_realistic_lock_parses_and_ignores_fields_we_do_not_know() -> None:
    # Given a spec-valid lock with a field from a newer Nuki version
    doc = smartlock_json(someFutureField={"x": 1})
    assert validate_definition("Smartlock", doc) == []

    # When it is parsed
    lock = Smartlock.model_validate(doc)

    # Then the parts we use are typed, dates are aware UTC
    assert (lock.smartlock_id, lock.name, lock.online, lock.has_keypad) == (LOCK, "Room 12", True, True)
    assert lock.config is not None
    assert lock.config.timezone_id == 37
    assert lock.state is not None
    assert lock.state.door_state == 2
    assert lock.creation_date == datetime(2025, 3, 14, 9, 12, 44, tzinfo=UTC)


@pytest.mark.parametrize(
    ("server_state", "keypad", "keypad2", "online", "has_keypad"),
    [(0, False, True, True, True), (4, True, False, False, True), (0, False, False, True, False)],
)
def test_lock_online_and_keypad(server_state: int, keypad: bool, keypad2: bool, online: bool, has_keypad: bool) -> None:
    doc = smartlock_json(serverState=server_state)
    doc["config"] = {**doc["config"], "keypadPaired": keypad, "keypad2Paired": keypad2}

    lock = Smartlock.model_validate(doc)

    assert (lock.online, lock.has_keypad) == (online, has_keypad)


def test_a_lock_without_config_has_no_keypad() -> None:
    doc = smartlock_json()
    del doc["config"], doc["state"]

    assert Smartlock.model_validate(doc).has_keypad is False


@pytest.mark.parametrize(
    ("state", "problem"),
    [
        ("ACTIVE", None),
        ("PENDING_CANCEL", None),
        ("EXPIRED", "has a Smart Hosting subscription that is EXPIRED, not active"),
        ("ON_HOLD", "has a Smart Hosting subscription that is ON_HOLD, not active"),
        ("A_STATE_NUKI_ADDS_LATER", "has a Smart Hosting subscription that is A_STATE_NUKI_ADDS_LATER, not active"),
    ],
)
def test_a_locks_smart_hosting_subscription_parses_and_says_whether_it_is_in_force(
    state: str, problem: str | None
) -> None:
    doc = smartlock_json(
        currentSubscription={
            "type": "B2B",
            "state": state,
            "shsSubscriptionType": "BUSINESS",
            "expirationDate": "2027-03-14T09:12:44.000Z",
            "isInGracePeriod": False,
        }
    )
    lock = Smartlock.model_validate(doc)
    assert lock.current_subscription is not None
    assert lock.current_subscription.state == state
    assert lock.current_subscription.expiration_date == datetime(2027, 3, 14, 9, 12, 44, tzinfo=UTC)
    assert not_in_force(LockReport.of(lock), datetime(2027, 3, 1, tzinfo=UTC)) == problem


def test_a_subscription_in_force_by_its_state_but_past_its_expiration_date_is_not_in_force() -> None:
    doc = smartlock_json(
        currentSubscription={"type": "B2B", "state": "ACTIVE", "expirationDate": "2027-03-14T09:12:44.000Z"}
    )
    report = LockReport.of(Smartlock.model_validate(doc))
    assert not_in_force(report, datetime(2027, 3, 14, 9, 12, 43, tzinfo=UTC)) is None
    assert not_in_force(report, datetime(2027, 3, 14, 9, 12, 44, tzinfo=UTC)) == (
        "has a Smart Hosting subscription (ACTIVE) that expired at 2027-03-14T09:12:44Z"
    )


def test_a_lock_that_reports_no_subscription_has_no_subscription_problem() -> None:
    report = LockReport.of(Smartlock.model_validate(smartlock_json()))
    assert not_in_force(report, datetime(2030, 1, 1, tzinfo=UTC)) is None


# --- authorizations -------------------------------------------------------------------------------


def test_a_realistic_keypad_auth_parses() -> None:
    doc = auth_json(lastActiveDate="2026-12-01T14:03:11.000Z", appId=0, fingerprints={})
    assert validate_definition("SmartlockAuth", doc) == []

    auth = SmartlockAuth.model_validate(doc)

    assert (auth.id, auth.auth_id, auth.code, auth.name, auth.type) == (AUTH_ID, 8200, PIN, "SK-B1001", 13)
    assert auth.allowed_until_date == UNTIL
    assert auth.last_active_date is not None
    assert auth.last_active_date.tzinfo is UTC
    assert auth.operation_pending is False


def test_an_auth_repr_never_shows_the_code() -> None:
    auth = SmartlockAuth.model_validate(auth_json())

    assert str(PIN) not in repr(auth)
    assert str(PIN) not in str(auth)


@pytest.mark.parametrize("operation_id", ["65a1f0c2e4b0a1b2c3d4e5f6", {"timestamp": 1733061791, "counter": 4}])
def test_a_pending_operation_is_recognised_in_either_shape(operation_id: Any) -> None:
    auth = SmartlockAuth.model_validate(auth_json(operationId=operation_id))

    assert auth.operation_pending is True


def test_a_date_without_offset_is_read_as_utc() -> None:
    auth = SmartlockAuth.model_validate(auth_json(allowedFromDate="2026-12-01T14:00:00"))

    assert auth.allowed_from_date == FROM


# --- keypad code create -------------------------------------------------------------------------


def test_create_body_is_spec_valid_with_code_as_number_and_utc_dates() -> None:
    # Given a window given in a +05:30 zone with sub-second noise
    ist = timezone(timedelta(hours=5, minutes=30))
    code = KeypadCodeCreate(
        name="SK-B1001",
        code=PIN,
        allowed_from=datetime(2026, 12, 1, 19, 30, 0, 999999, tzinfo=ist),
        allowed_until=datetime(2026, 12, 3, 15, 30, tzinfo=ist),
    )

    # When it becomes a body
    body = code.to_body()

    # Then Nuki gets UTC instants to the second, the code as an int, and only declared fields
    assert body["allowedFromDate"] == "2026-12-01T14:00:00.000Z"
    assert body["allowedUntilDate"] == "2026-12-03T10:00:00.000Z"
    assert body["code"] == PIN
    assert isinstance(body["code"], int)
    assert validate_definition("SmartlockAuthCreate", body) == []
    assert str(PIN) not in repr(code)


def test_create_accepts_nukis_camel_case_names_too() -> None:
    code = KeypadCodeCreate.model_validate(
        {
            "name": "SK-B1001",
            "code": PIN,
            "allowedFromDate": FROM,
            "allowedUntilDate": UNTIL,
            "remoteAllowed": True,
        }
    )

    assert code.remote_allowed is True
    assert code.allowed_week_days == 127


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "x" * 21}, "name"),
        ({"name": ""}, "name"),
        ({"code": 123456}, "code"),
        ({"code": 483706}, "code"),
        ({"code": 48372}, "code"),
        ({"allowed_from": datetime(2026, 12, 1, 14)}, "allowed_from"),
        ({"allowed_until": FROM}, "allowedUntilDate"),
        ({"allowed_week_days": 128}, "allowed_week_days"),
        ({"allowed_from_time": 1440}, "allowed_from_time"),
        ({"type": 0}, "type"),
        ({"smartActionsEnabled": True}, "smartActionsEnabled"),
    ],
    ids=[
        "name-21-chars",
        "name-empty",
        "code-starts-12",
        "code-with-0",
        "code-5-digits",
        "naive-date",
        "empty-window",
        "weekdays-bitmask",
        "time-past-midnight",
        "not-a-keypad-code",
        "unknown-field",
    ],
)
def test_create_refuses_what_nuki_would_refuse(changes: dict[str, Any], field: str) -> None:
    fields: dict[str, Any] = {"name": "SK-B1001", "code": PIN, "allowed_from": FROM, "allowed_until": UNTIL}

    with pytest.raises(pydantic.ValidationError) as caught:
        KeypadCodeCreate.model_validate({**fields, **changes})

    assert field in str(caught.value)


def test_a_refused_code_is_not_echoed_in_the_validation_error() -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        KeypadCodeCreate(name="SK-B1001", code=129876, allowed_from=FROM, allowed_until=UNTIL)

    assert "129876" not in str(caught.value)
    assert "must not start with 12" in str(caught.value)


def test_create_is_immutable() -> None:
    code = KeypadCodeCreate(name="SK-B1001", code=PIN, allowed_from=FROM, allowed_until=UNTIL)

    with pytest.raises(pydantic.ValidationError):
        code.name = "other"  # type: ignore[misc]


# --- auth update ----------------------------------------------------------------------------------


def test_update_needs_every_restriction() -> None:
    # Given an update that forgets the daily times
    partial = {
        "name": "SK-B1001",
        "code": PIN,
        "allowed_from": FROM,
        "allowed_until": UNTIL,
        "allowed_week_days": 127,
        "enabled": True,
        "remote_allowed": False,
    }

    # Then it is refused here, before Nuki could wipe those restrictions
    with pytest.raises(pydantic.ValidationError) as caught:
        SmartlockAuthUpdate.model_validate(partial)
    missing = {error["loc"][0] for error in caught.value.errors()}
    assert missing == {"allowedFromTime", "allowedUntilTime"}


def test_update_from_an_auth_keeps_everything_but_the_change() -> None:
    auth = SmartlockAuth.model_validate(auth_json(allowedWeekDays=96, allowedFromTime=600, allowedUntilTime=1080))
    later = UNTIL + timedelta(days=1)

    update = SmartlockAuthUpdate.from_auth(auth, allowed_until=later)

    assert update.to_body() == {
        "name": "SK-B1001",
        "code": PIN,
        "allowedFromDate": "2026-12-01T14:00:00.000Z",
        "allowedUntilDate": "2026-12-04T10:00:00.000Z",
        "allowedWeekDays": 96,
        "allowedFromTime": 600,
        "allowedUntilTime": 1080,
        "enabled": True,
        "remoteAllowed": False,
    }
    assert validate_definition("SmartlockAuthUpdate", update.to_body()) == []


def test_update_from_an_auth_without_dates_needs_them_explicitly() -> None:
    doc = auth_json()
    del doc["allowedFromDate"], doc["allowedUntilDate"]
    auth = SmartlockAuth.model_validate(doc)

    with pytest.raises(ValueError, match="allowed_from, allowed_until"):
        SmartlockAuthUpdate.from_auth(auth)
    with pytest.raises(ValueError, match="unknown fields"):
        SmartlockAuthUpdate.from_auth(auth, allowedFromDate=FROM)
    assert SmartlockAuthUpdate.from_auth(auth, allowed_from=FROM, allowed_until=UNTIL).allowed_until == UNTIL


def test_update_carries_an_account_user_only_when_given() -> None:
    auth = SmartlockAuth.model_validate(auth_json(accountUserId=4242))

    assert SmartlockAuthUpdate.from_auth(auth).to_body()["accountUserId"] == 4242
    assert "accountUserId" not in SmartlockAuthUpdate.from_auth(auth, account_user_id=None).to_body()


# --- activity log ---------------------------------------------------------------------------------


def test_a_realistic_log_entry_parses_with_readable_names() -> None:
    doc = log_json()
    assert validate_definition("SmartlockLog", doc) == []

    log = SmartlockLog.model_validate(doc)

    assert (log.action_enum, log.trigger_enum, log.state_enum, log.source_enum, log.device_type_enum) == (
        LogAction.UNLOCK,
        LogTrigger.KEYPAD,
        LogState.SUCCESS,
        LogSource.KEYPAD_CODE,
        DeviceType.SMARTLOCK_3_4,
    )
    assert (log.action_name, log.trigger_name, log.state_name, log.source_name) == (
        "unlock",
        "keypad",
        "success",
        "keypad_code",
    )
    assert log.auth_id == AUTH_ID
    assert log.date.tzinfo is UTC


def test_values_nuki_adds_later_do_not_break_parsing() -> None:
    # Given a log entry with an action, trigger, state, source and device type from the future
    doc = log_json(action=77, trigger=99, state=199, source=9, deviceType=7, openerLog={"doorbell": True})

    # When it is parsed
    log = SmartlockLog.model_validate(doc)

    # Then the ints are kept, the enums are None and the names say "unknown"
    assert (log.action, log.trigger, log.state, log.source, log.device_type) == (77, 99, 199, 9, 7)
    assert (log.action_enum, log.trigger_enum, log.state_enum, log.source_enum, log.device_type_enum) == (
        None,
        None,
        None,
        None,
        None,
    )
    assert (log.action_name, log.trigger_name, log.state_name, log.source_name) == (
        "unknown_77",
        "unknown_99",
        "unknown_199",
        "unknown_9",
    )
    assert is_successful_keypad_entry(log) is False


def test_a_numeric_log_auth_id_is_kept_as_text() -> None:
    assert SmartlockLog.model_validate(log_json(authId=8200)).auth_id == "8200"


def test_a_log_without_source_is_the_default_source() -> None:
    doc = log_json()
    del doc["source"]

    assert SmartlockLog.model_validate(doc).source_name == "default"


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (1, "unlock"),
        (2, "lock"),
        (3, "unlatch"),
        (4, "lock_n_go"),
        (5, "lock_n_go_unlatch"),
        (11, "restore_defaults"),
        (208, "door_warning_ajar"),
        (224, "doorbell_recognition"),
        (240, "door_opened"),
        (241, "door_closed"),
        (255, "log_disabled"),
        (0, "unknown_0"),
    ],
)
def test_action_names(value: int, name: str) -> None:
    assert action_name(value) == name


def test_trigger_names_follow_the_spec_keypad_is_255_and_6_is_auto_lock() -> None:
    assert [trigger_name(v) for v in (0, 1, 2, 3, 4, 5, 6, 7, 253, 254, 255, 8)] == [
        "system",
        "manual",
        "button",
        "automatic",
        "web",
        "app",
        "auto_lock",
        "accessory",
        "keypad_error",
        "nuki_mode",
        "keypad",
        "unknown_8",
    ]


def test_source_names() -> None:
    assert [source_name(v) for v in (0, 1, 2, 3, 4)] == [
        "default",
        "keypad_code",
        "fingerprint",
        "tap_to_unlock",
        "unknown_4",
    ]


@pytest.mark.parametrize(
    ("value", "source", "trigger", "name"),
    [
        (0, None, None, "success"),
        (1, 1, 255, "motor_blocked"),
        (10, None, None, "rejected_night_mode"),
        (224, 1, 255, "invalid_code"),
        (225, 2, 255, "invalid_fingerprint"),
        (226, None, None, "invalid_nfc_tag"),
        (255, None, None, "unknown_error"),
        (42, None, None, "unknown_42"),
        (0, 3, 253, "access_document_revoked"),
        (37, 3, 253, "invalid_access_rights"),
        (255, 3, 253, "unknown"),
    ],
)
def test_state_names(value: int, source: int | None, trigger: int | None, name: str) -> None:
    assert state_name(value, source=source, trigger=trigger) == name


@pytest.mark.parametrize(
    ("changes", "entry"),
    [
        ({}, True),
        ({"action": 3}, True),
        ({"source": 2}, True),
        ({"state": 224}, False),  # wrong code typed
        ({"trigger": 6}, False),  # auto lock, not the keypad
        ({"trigger": 5}, False),  # the app
        ({"action": 2}, False),  # locking from the keypad is not an entry
        ({"source": 0}, False),
        ({"source": 3}, False),
    ],
)
def test_successful_keypad_entry(changes: dict[str, int], entry: bool) -> None:
    assert is_successful_keypad_entry(SmartlockLog.model_validate(log_json(**changes))) is entry


# --- webhooks -------------------------------------------------------------------------------------


def test_device_auths_webhook() -> None:
    # Given Nuki's DEVICE_AUTHS payload for our new code
    payload = {"feature": "DEVICE_AUTHS", "deleted": False, "smartlockAuth": auth_json()}
    assert validate_definition("SmartlockAuth", payload["smartlockAuth"]) == []

    webhook = parse_webhook(payload)

    assert isinstance(webhook, DeviceAuthsWebhook)
    assert (webhook.deleted, webhook.smartlock_auth.id, webhook.smartlock_auth.auth_id) == (
        False,
        AUTH_ID,
        8200,
    )
    assert str(PIN) not in repr(webhook)


def test_device_auths_webhook_for_a_deletion_defaults() -> None:
    deleted = parse_webhook({"feature": "DEVICE_AUTHS", "deleted": True, "smartlockAuth": auth_json()})
    implicit = parse_webhook({"feature": "DEVICE_AUTHS", "smartlockAuth": auth_json()})

    assert isinstance(deleted, DeviceAuthsWebhook)
    assert deleted.deleted is True
    assert isinstance(implicit, DeviceAuthsWebhook)
    assert implicit.deleted is False


def test_device_logs_webhook_with_unknown_enum_values() -> None:
    webhook = parse_webhook({"feature": "DEVICE_LOGS", "smartlockLog": log_json(action=99, trigger=250)})

    assert isinstance(webhook, DeviceLogsWebhook)
    assert webhook.smartlock_log.action_name == "unknown_99"
    assert webhook.smartlock_log.trigger_enum is None


def test_device_status_webhook_official_example() -> None:
    payload = {
        "feature": "DEVICE_STATUS",
        "smartlockId": 123456789,
        "state": {
            "mode": 2,
            "state": 1,
            "trigger": 6,
            "lastAction": 2,
            "batteryCritical": False,
            "batteryCharging": False,
            "batteryCharge": 90,
            "keypadBatteryCritical": False,
            "doorsensorBatteryCritical": False,
            "doorState": 0,
            "ringToOpenTimer": 0,
            "nightMode": False,
        },
        "serverState": 0,
        "adminPinState": 0,
    }

    webhook = parse_webhook(payload)

    assert isinstance(webhook, DeviceStatusWebhook)
    assert webhook.smartlock_id == 123456789
    assert webhook.state is not None
    assert webhook.state.battery_charge == 90
    assert webhook.state.keypad_battery_critical is False


@pytest.mark.parametrize("feature", ["DEVICE_MASTERDATA", "ACCOUNT_USER", "SOMETHING_NEW"])
def test_other_features_are_kept_as_unknown(feature: str) -> None:
    webhook = parse_webhook({"feature": feature, "smartlockId": LOCK, "name": "Hello"})

    assert isinstance(webhook, UnknownWebhook)
    assert webhook.feature == feature
    assert webhook.model_extra == {"smartlockId": LOCK, "name": "Hello"}


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"feature": ""},
        {"feature": 5},
        {"feature": "DEVICE_LOGS"},
        {"feature": "DEVICE_AUTHS", "smartlockAuth": {"id": AUTH_ID}},
        ["DEVICE_LOGS"],
    ],
    ids=["empty", "blank-feature", "numeric-feature", "logs-without-log", "auth-without-fields", "array"],
)
def test_unusable_payloads_raise_value_error(payload: Any) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_webhook(payload)


def test_decentral_webhook_hides_its_secret() -> None:
    hook = DecentralWebhook.model_validate(
        {
            "id": 1,
            "secret": "s3cr3t-value",
            "webhookUrl": "https://x.example",
            "webhookFeatures": ["DEVICE_LOGS"],
        }
    )

    assert "s3cr3t-value" not in repr(hook)
    assert hook.secret == "s3cr3t-value"


# --- dates ----------------------------------------------------------------------------------------


def test_format_utc() -> None:
    cest = timezone(timedelta(hours=2))
    assert format_utc(datetime(2026, 6, 1, 16, 0, 0, 123456, tzinfo=cest)) == "2026-06-01T14:00:00.123Z"
    assert format_utc(datetime(2026, 6, 1, 14, 0, 0, 123456, tzinfo=UTC), milliseconds=False) == (
        "2026-06-01T14:00:00.000Z"
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        format_utc(datetime(2026, 6, 1))
