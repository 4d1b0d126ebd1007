"""Shared fixtures. AWS is moto (`mock_aws`), built from template.yaml; Nuki is a fake or the sandbox."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

# Before anything imports boto3 or Powertools: fake credentials, one region, no tracing.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-central-1",
        "AWS_REGION": "eu-central-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "staykey",
        "POWERTOOLS_METRICS_NAMESPACE": "StayKey",
        "POWERTOOLS_DEV": "false",
        "TABLE_NAME": "staykey-test",
        "SCHEDULE_GROUP_NAME": "staykey-test",
        "SENDER_EMAIL": "stays@example.com",
        "NUKI_TOKEN_SECRET_NAME": "staykey-test/nuki-api-token",
        "NUKI_WEBHOOK_SECRET_NAME": "staykey-test/nuki-webhook-secret",
        # Exact times in the functional tests: no spread of provisioning and removal (the simulator,
        # the local stack and tests/functional/lifecycle/test_spread.py run with the template's).
        "PROVISION_SPREAD_MINUTES": "0",
        "EXPIRY_SPREAD_MINUTES": "0",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)

from local.kit import inprocess_aws
from local.kit.fakes import ListJobQueue, ListMailer
from local.kit.services import engine
from staykey import wiring
from staykey.adapters.schedules import Scheduler
from staykey.core.models import RoomIn
from staykey.core.timeutil import FixedClock
from staykey.services.bookings import Bookings
from staykey.services.rooms import Rooms
from staykey.services.sync import Sync
from staykey.settings import load_settings
from staykey.store import Store
from tests.fakes import FakeNuki

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
NUKI_TOKEN = "test-nuki-token"
WEBHOOK_SECRET = "test-webhook-secret-0123456789abcdef"


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def create_local_aws(table: str, group: str, sender: str) -> dict[str, str]:
    """Tables, schedule group, queues, SES identity and secrets, as template.yaml declares them."""
    return inprocess_aws.create_local_aws(table, group, sender, NUKI_TOKEN, WEBHOOK_SECRET)


@pytest.fixture
def captured_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], str]]:
    """Everything the service logged (formatted JSON lines) and printed (metrics) during the test."""
    import io
    import logging

    from staykey.observability import logger

    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logger.registered_formatter)
    logger._logger.addHandler(handler)
    # At the deployed level (template.yaml: INFO): a simulated world quiets the service's logger for
    # its run (local.sim.world), and a test of tests/sim run before this one left it so.
    level = logger._logger.level
    logger._logger.setLevel(logging.INFO)

    def read() -> str:
        out = capsys.readouterr()
        return buffer.getvalue() + out.out + out.err

    yield read
    logger._logger.setLevel(level)
    logger._logger.removeHandler(handler)


@pytest.fixture
def aws() -> Iterator[dict[str, str]]:
    from moto import mock_aws

    from local import moto_streams

    moto_streams.apply()  # DynamoDB as faithful as the local stack's (one request at a time among threads)
    with mock_aws():
        urls = create_local_aws(os.environ["TABLE_NAME"], os.environ["SCHEDULE_GROUP_NAME"], "stays@example.com")
        os.environ["LIFECYCLE_QUEUE_URL"] = urls["lifecycle"]
        os.environ["WEBHOOK_QUEUE_URL"] = urls["webhooks"]
        wiring.reset()
        yield urls
        wiring.reset()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 26, 9, 0, tzinfo=UTC))


@pytest.fixture
def nuki(clock: FixedClock) -> FakeNuki:
    fake = FakeNuki(clock=clock.now)
    for lock_id in (17000001, 17000002, 17000099):
        fake.add_lock(lock_id)
    return fake


@dataclass
class World:
    """The shop's commands and the sync engine with moto-backed AWS, a fake Nuki, a clock the test
    moves, kept mail and jobs."""

    bookings: Bookings
    sync: Sync
    store: Store
    nuki: FakeNuki
    clock: FixedClock
    jobs: ListJobQueue
    mail: ListMailer
    rooms: Rooms

    def add_room(self, room_id: str = "room-12", locks: tuple[int, ...] = (17000001, 17000099), **kw: Any) -> None:
        body = {
            "name": kw.pop("name", "Room 12"),
            "smartlockIds": list(locks),
            "timezone": "Europe/Berlin",
            **kw,
        }
        self.rooms.put(room_id, RoomIn.model_validate(body))

    def run_jobs(self, rounds: int = 1) -> int:
        """Run the queued follow-ups (as the sync queue would deliver them)."""
        ran = 0
        for _ in range(rounds):
            for job in self.jobs.drain():
                self.sync.run_job(job)
                ran += 1
        return ran

    def settle(self, max_rounds: int = 30) -> None:
        """Let Nuki apply writes and run follow-ups until nothing is queued."""
        for _ in range(max_rounds):
            self.nuki.apply()
            if not self.jobs.jobs:
                return
            self.clock.advance(seconds=max(delay for _, delay in self.jobs.jobs))
            self.run_jobs()


@pytest.fixture
def world(aws: dict[str, str], nuki: FakeNuki, clock: FixedClock) -> World:
    settings = load_settings()
    store = Store(settings.table_name)
    jobs = ListJobQueue()
    mail = ListMailer()
    bookings, sync = engine(settings, store, lambda: nuki, Scheduler(settings), jobs, mail, clock)  # type: ignore[arg-type, return-value]
    return World(bookings, sync, store, nuki, clock, jobs, mail, Rooms(store, clock, nuki=lambda: nuki))  # type: ignore[arg-type, return-value]
