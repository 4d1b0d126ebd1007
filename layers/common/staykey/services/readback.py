"""What a sync round reads besides the booking (`services.sync`): the locks it looks at (the
read-backs, ``GET /smartlock/{id}/auth``, and whether a lock is online while a write waits for it),
the reconciler's last code count per lock, each lock's learned sync delay (`core.syncdelay`: it times
the first read-back of a write; kept in ``LOCK#/META`` as ``syncDelay``), and the read-back backoff
(slower with Nuki's webhooks registered, which confirm first)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from staykey.core.looks import look_due
from staykey.core.models import Booking, LockState
from staykey.core.observe import RESEND_AFTER
from staykey.core.round import Context, Look
from staykey.core.syncdelay import SyncSample, learn
from staykey.core.timeutil import Clock
from staykey.nuki import errors as nuki_errors
from staykey.observability import logger
from staykey.store import Store

if TYPE_CHECKING:
    from staykey.nuki import NukiClient
    from staykey.settings import Settings

WEBHOOK_CONFIG_MAX_AGE = 60.0  # seconds


class LockMetas:
    """What a round reads of its locks' `LOCK#/META` items, each read once, when first asked for."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.items: dict[int, dict[str, Any]] = {}

    def get(self, smartlock_id: int) -> dict[str, Any]:
        if smartlock_id not in self.items:
            self.items[smartlock_id] = self.store.get_lock_meta(smartlock_id)
        return self.items[smartlock_id]


class _MetaView(Mapping[int, Any]):
    def __init__(self, metas: LockMetas, read: Callable[[dict[str, Any]], Any]) -> None:
        self.metas = metas
        self.read = read

    def __getitem__(self, smartlock_id: int) -> Any:
        return self.read(self.metas.get(smartlock_id))

    def __iter__(self) -> Iterator[int]:
        return iter(self.metas.items)

    def __len__(self) -> int:
        return len(self.metas.items)


class CodeCounts(_MetaView):
    """The reconciler's last code count per lock (None: never counted)."""

    def __init__(self, store: Store | LockMetas) -> None:
        metas = store if isinstance(store, LockMetas) else LockMetas(store)
        super().__init__(metas, lambda meta: None if meta.get("codeCount") is None else int(meta["codeCount"]))


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


class SyncDelays(_MetaView):
    """Each lock's learned sync delay in seconds (None: not learned yet)."""

    def __init__(self, metas: LockMetas) -> None:
        super().__init__(metas, lambda meta: _number(meta.get("syncDelay")))


def _overdue(slot: LockState, now: datetime) -> bool:
    """A write in flight missed by two read-backs and sent at least RESEND_AFTER ago: the next look may
    find it lost, if the lock is online."""
    sent = slot.opSentAt
    return slot.opChecks >= 2 and (sent is None or now - sent >= RESEND_AFTER)


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

    def looks(
        self, booking: Booking, extra: Collection[int] = (), everything: bool = True, ctx: Context | None = None
    ) -> dict[int, Look]:
        """`GET /smartlock/{id}/auth` of the locks with a write in flight (`everything`) and of `extra`;
        with `ctx`, of those whose read-back is due (`core.looks.look_due`) among the first."""
        looks = {}
        due = {
            lock.smartlockId
            for lock in booking.slots()
            if (lock.op is not None or lock.recheck) and (ctx is None or lock.recheck or look_due(lock, ctx, booking))
        }
        for lock in booking.slots():
            if lock.smartlockId in looks:
                continue  # one read-back a lock, for the booking's code and a PIN rotation's
            if not ((everything and lock.smartlockId in due) or lock.smartlockId in extra):
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
            # Whether the lock is online says whether a write missed this long is lost (only an online
            # lock tells: `core.observe.unseen_long`), or whether a create looked for will land: asked
            # only then, not at every slow write's third look (a call that told nothing).
            if any(
                slot.op == "find" or (slot.op in ("create", "update") and _overdue(slot, stamp))
                for slot in booking.slots_on(lock.smartlockId)
            ):
                with contextlib.suppress(nuki_errors.NukiError):
                    online = self.nuki.get_smartlock(lock.smartlockId).online
            looks[lock.smartlockId] = Look(auths=auths, complete=True, online=online, stamp=stamp)
        return looks

    def sync_delays(self, metas: LockMetas) -> Mapping[int, float | None]:
        """The learned sync delays a round times its read-backs by; none with webhooks registered."""
        return {} if self.webhooks_registered() else SyncDelays(metas)

    def learn(self, samples: Sequence[SyncSample], metas: LockMetas) -> None:
        """Fold what read-backs saw into their locks' estimates (one write per lock that changed)."""
        for sample in samples:
            meta = metas.get(sample.smartlock_id)
            old = _number(meta.get("syncDelay"))
            new = learn(old, sample)
            if old is not None and abs(old - new) <= 1e-3:
                continue
            meta["syncDelay"] = new
            try:
                self.store.update_lock_meta(sample.smartlock_id, syncDelay=Decimal(str(new)))
            except Exception as exc:  # a lost estimate only times one read-back less well
                logger.warning("sync delay not saved", smartlock_id=sample.smartlock_id, error=type(exc).__name__)

    def webhooks_registered(self) -> bool:
        # Whether the webhook is registered, read at most once a minute per container: it changes
        # when an operator runs tools.register_webhook, and a stale answer only shifts read-backs.
        now = self.clock.now().timestamp()
        if self._webhook_seen is None or abs(now - self._webhook_seen[0]) > WEBHOOK_CONFIG_MAX_AGE:
            registered = False
            with contextlib.suppress(Exception):
                registered = self.store.get_config("WEBHOOK") is not None
            self._webhook_seen = (now, registered)
        return self._webhook_seen[1]

    def backoff(self) -> list[float]:
        s = self.settings
        return s.confirm_backoff_with_webhooks_seconds if self.webhooks_registered() else s.confirm_backoff_seconds


__all__ = ["CodeCounts", "LockMetas", "ReadBack", "SyncDelays"]
