"""The one-time schedules: an upsert that meets a delete of the same schedule (two changes of one
staff code at once, adversarial review helper-32 F3: a 500) still leaves the schedule in place."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from staykey.adapters.schedules import Scheduler
from staykey.settings import load_settings


class Conflict(Exception):
    pass


class NotFound(Exception):
    pass


class RacingClient:
    """create: the schedule exists (409); update: a concurrent delete removed it (404); then a
    create finds the name free."""

    class exceptions:  # boto3 names its exceptions so
        ConflictException = Conflict
        ResourceNotFoundException = NotFound

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.created: list[dict[str, Any]] = []

    def create_schedule(self, **args: Any) -> None:
        self.calls.append("create")
        if len(self.calls) == 1:
            raise Conflict()
        self.created.append(args)

    def update_schedule(self, **args: Any) -> None:
        self.calls.append("update")
        raise NotFound()


def test_an_upsert_whose_schedule_was_deleted_meanwhile_creates_it_again() -> None:
    client = RacingClient()
    scheduler = Scheduler(load_settings(), client=client)
    scheduler.upsert("expire", "staff~anna", datetime(2027, 1, 5, 10, 0, tzinfo=UTC))
    assert client.calls == ["create", "update", "create"]
    assert client.created[0]["ScheduleExpression"] == "at(2027-01-05T10:00:00)"
