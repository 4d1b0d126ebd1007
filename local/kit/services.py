"""The booking services wired with the collaborators a caller passes (a fake Nuki, moto, an
in-memory queue), as `staykey.wiring` wires them with the real ones."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING

from staykey.services.bookings import Bookings
from staykey.services.sync import Sync
from staykey.services.writes import NukiWriter

if TYPE_CHECKING:
    from staykey.adapters.jobs import JobQueue
    from staykey.adapters.mail import Mailer
    from staykey.adapters.schedules import Scheduler
    from staykey.core.timeutil import Clock
    from staykey.nuki import NukiClient
    from staykey.settings import Settings
    from staykey.store import Store


def engine(
    settings: Settings,
    store: Store,
    nuki: Callable[[], NukiClient],
    scheduler: Scheduler,
    jobs: JobQueue,
    mailer: Mailer,
    clock: Clock,
    pin_choice: Callable[[str], str] = secrets.choice,
) -> tuple[Bookings, Sync]:
    """The shop's commands and the sync engine behind them."""
    sync = Sync(settings, store, nuki, jobs, mailer, clock, NukiWriter(store, nuki, clock), pin_choice)
    return Bookings(settings, store, scheduler, clock, sync, pin_choice), sync


__all__ = ["engine"]
