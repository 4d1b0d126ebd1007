"""What a sync round reads besides the booking (`services.sync`): the locks it looks at (the
read-backs, ``GET /smartlock/{id}/auth``, and whether a lock is online while a write waits for it),
the reconciler's last code count per lock, and how long to wait before the next read-back (shorter
with Nuki's webhooks registered)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import TYPE_CHECKING

from staykey.core.models import Booking
from staykey.core.round import Look
from staykey.core.timeutil import Clock
from staykey.nuki import errors as nuki_errors
from staykey.observability import logger
from staykey.store import Store

if TYPE_CHECKING:
    from staykey.nuki import NukiClient
    from staykey.settings import Settings

WEBHOOK_CONFIG_MAX_AGE = 60.0  # seconds


class CodeCounts(Mapping[int, int | None]):
    """The reconciler's last code count per lock, read from the store when a round asks for one."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._read: dict[int, int | None] = {}

    def __getitem__(self, smartlock_id: int) -> int | None:
        if smartlock_id not in self._read:
            self._read[smartlock_id] = self.store.code_count(smartlock_id)
        return self._read[smartlock_id]

    def __iter__(self) -> Iterator[int]:
        return iter(self._read)

    def __len__(self) -> int:
        return len(self._read)


class ReadBack:
    """Reads the locks of a booking for a round, and the read-back schedule."""

    def __init__(self, settings: Settings, store: Store, nuki: Callable[[], NukiClient], clock: Clock) -> None:
        self.settings = settings
        self.store = store
        self._nuki = nuki
        self.clock = clock
        self._webhook_seen: tuple[float, bool] | None = None

    @property
    def nuki(self) -> NukiClient:
        return self._nuki()

    def looks(self, booking: Booking, extra: Collection[int] = (), everything: bool = True) -> dict[int, Look]:
        """`GET /smartlock/{id}/auth` of the locks with a write in flight (`everything`) and of `extra`."""
        looks = {}
        for lock in booking.slots():
            if lock.smartlockId in looks:
                continue  # one read-back a lock, for the booking's code and a PIN rotation's
            if not ((everything and (lock.op is not None or lock.recheck)) or lock.smartlockId in extra):
                continue
            stamp = self.clock.now()
            try:
                # Every kind the booking has on the lock: a move that changed how the guest opens it
                # leaves the old kind's code there until the new one is confirmed (complete looks).
                kinds = {slot.access for slot in booking.slots_on(lock.smartlockId)}
                types = tuple(t for kind, t in (("app", 0), ("keypad", 13)) if kind in kinds)
                auths = self.nuki.list_auths(lock.smartlockId, types=types)
            except nuki_errors.NukiError as exc:
                logger.warning(
                    "read-back failed",
                    booking_id=booking.bookingId,
                    smartlock_id=lock.smartlockId,
                    error=type(exc).__name__,
                )
                continue
            online = None
            if any(
                slot.op == "find" or (slot.op in ("create", "update") and slot.opChecks >= 2)
                for slot in booking.slots_on(lock.smartlockId)
            ):
                with contextlib.suppress(nuki_errors.NukiError):
                    online = self.nuki.get_smartlock(lock.smartlockId).online
            looks[lock.smartlockId] = Look(auths=auths, complete=True, online=online, stamp=stamp)
        return looks

    def backoff(self) -> list[float]:
        # Whether the webhook is registered, read at most once a minute per container: it changes
        # when an operator runs tools.register_webhook, and a stale answer only shifts read-backs.
        now = self.clock.now().timestamp()
        if self._webhook_seen is None or abs(now - self._webhook_seen[0]) > WEBHOOK_CONFIG_MAX_AGE:
            registered = False
            with contextlib.suppress(Exception):
                registered = self.store.get_config("WEBHOOK") is not None
            self._webhook_seen = (now, registered)
        registered = self._webhook_seen[1]
        s = self.settings
        return s.confirm_backoff_with_webhooks_seconds if registered else s.confirm_backoff_seconds


__all__ = ["CodeCounts", "ReadBack"]
