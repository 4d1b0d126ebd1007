"""GET /bookings/{bookingId}/activity for the shop, GET /locks/{smartlockId}/activity for the operator."""

from __future__ import annotations

from datetime import timedelta

import pytest

from local.kit.apigw import Context, response_json
from tests.conftest import World, load_event
from tests.functional.activity.conftest import LOCK_A, STAY_START, Pipeline, handler, stay
from tests.functional.activity.helpers import keypad_entry, logs_body


def test_the_sample_request_reads_the_bookings_activity_newest_first(pipeline: Pipeline, world: World) -> None:
    booking = stay(world)
    entries = [keypad_entry(world.nuki, LOCK_A, STAY_START + timedelta(hours=h), booking.pin) for h in (0, 5, 2)]
    pipeline.deliver(*(logs_body(entry) for entry in entries))
    # When the shop sends the sample request
    response = handler("bookings_api")(load_event("bookings_api_get_activity.json"), Context())
    # Then it gets the documented shape (docs/shop-api.md), newest first
    assert response["statusCode"] == 200
    items = response_json(response)["items"]
    assert [item["at"] for item in items] == ["2026-11-27T19:00:00Z", "2026-11-27T16:00:00Z", "2026-11-27T14:00:00Z"]
    assert set(items[0]) == {"id", "at", "smartlockId", "action", "trigger", "source", "success", "state"}


def test_a_booking_without_entries_has_an_empty_activity(pipeline: Pipeline, world: World) -> None:
    stay(world)
    assert pipeline.booking_activity() == []


@pytest.mark.parametrize("booking_id", ["B-404", "bad id!"])
def test_an_unknown_booking_is_404(pipeline: Pipeline, world: World, booking_id: str) -> None:
    status, body = pipeline.get(f"/bookings/{booking_id}/activity", "/bookings/{bookingId}/activity", "bookings_api")
    assert status == 404
    assert body["code"] == "not_found"


def test_limit_returns_the_newest_entries(pipeline: Pipeline, world: World) -> None:
    booking = stay(world)
    entries = [keypad_entry(world.nuki, LOCK_A, STAY_START + timedelta(hours=h), booking.pin) for h in range(4)]
    pipeline.deliver(*(logs_body(entry) for entry in entries))
    status, body = pipeline.get(
        "/bookings/B-1001/activity", "/bookings/{bookingId}/activity", "bookings_api", query={"limit": "2"}
    )
    assert status == 200
    assert [item["id"] for item in body["items"]] == [entries[3].id, entries[2].id]


@pytest.mark.parametrize("limit", ["0", "1001", "ten", "-1", "\u0663"])
def test_a_bad_limit_is_422_naming_the_field(pipeline: Pipeline, world: World, limit: str) -> None:
    stay(world)
    status, body = pipeline.get(
        "/bookings/B-1001/activity", "/bookings/{bookingId}/activity", "bookings_api", query={"limit": limit}
    )
    assert status == 422
    assert [e["field"] for e in body["errors"]] == ["limit"]


def test_the_operator_reads_a_locks_activity_with_the_sample_request(pipeline: Pipeline, world: World) -> None:
    stay(world)
    wrong = keypad_entry(world.nuki, LOCK_A, STAY_START, "987651")
    pipeline.deliver(logs_body(wrong))
    response = handler("rooms_api")(load_event("rooms_api_get_lock_activity.json"), Context())
    assert response["statusCode"] == 200
    assert [(i["id"], i["state"], i["success"]) for i in response_json(response)["items"]] == [
        (wrong.id, "invalid_code", False)
    ]


@pytest.mark.parametrize("lock", ["17000002", "0", "abc", "9" * 40])
def test_a_lock_we_know_nothing_about_is_404(pipeline: Pipeline, world: World, lock: str) -> None:
    stay(world)
    status, _ = pipeline.get(f"/locks/{lock}/activity", "/locks/{smartlockId}/activity", "rooms_api")
    assert status == 404
