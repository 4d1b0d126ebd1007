"""What one round of the sync engine takes and gives: plain values, no I/O.

A round (`core.decide.decide`) takes a booking, the looks at its locks (`Look`) and what the shell
read for it (`Context`), and returns the booking as it must be saved together with the actions that
follow (`Plan`). After the Nuki writes, `core.decide.after_outcome` takes what Nuki answered
(`Outcome`) the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from staykey.core.syncdelay import SyncSample

if TYPE_CHECKING:
    from staykey.core.parts import Schedule
    from staykey.nuki import SmartlockAuth
    from staykey.settings import Settings


@dataclass
class CodeClaim:
    """A (lock, code) pair a booking claims, or releases, in the transaction that saves it; `app`:
    the booking's claim on a lock it opens with the Nuki app (no code; `pin` is unused), so the
    reconciler finds the bookings with app authorizations on a lock."""

    smartlock_id: int
    pin: str
    app: bool = False

    @property
    def key(self) -> tuple[int, str, bool]:
        return (self.smartlock_id, "" if self.app else self.pin, self.app)


@dataclass
class CodeItem:
    """A claim the store holds on a (lock, code): a booking's, or a foreign code we remembered."""

    smartlock_id: int
    pin: str
    owner: str  # "booking", "foreign", or "app" (a booking on a lock it opens with the app: no code)
    booking_id: str | None
    auth_name: str | None
    nuki_id: str | None


@dataclass
class Look:
    """What we saw of our code on one lock: the full auth list (read-back) or one webhook event."""

    auths: list[SmartlockAuth]
    complete: bool  # True: the lock's whole list, so "not in it" means absent
    deleted_ids: set[str] = field(default_factory=set)
    online: bool | None = None  # known only when we asked (while looking for a late create)
    # When it was true: the read-back's time, or Nuki's updateDate of a webhook's auth.
    stamp: datetime | None = None
    # Timed by the write's own read-back points (False: the shared look, `services.shared`, which
    # comes on its own minute and says nothing of the lock's sync delay).
    timed: bool = True


@dataclass(frozen=True)
class Context:
    """What a round may know beyond the booking and the looks, read by the shell beforehand."""

    settings: Settings
    now: datetime
    # The read-back backoff (with or without webhooks registered).
    backoff: list[float]
    # Keypad codes on each lock at the reconciler's last count (None: never counted).
    code_counts: Mapping[int, int | None] = field(default_factory=dict)
    # Each lock's learned sync delay (`core.syncdelay`), read lazily; empty with webhooks registered
    # (they confirm first, and the read-backs keep their own backoff).
    sync_delays: Mapping[int, float | None] = field(default_factory=dict)
    # Whether the shared look runs (SHARED_LOOKS): writes nobody waits for are confirmed by it.
    shared_looks: bool = False


@dataclass
class IndexAuth:
    """An auth id of ours to index for attribution (the activity's `authId`), once confirmed."""

    smartlock_id: int
    booking_id: str
    nuki_id: str
    auth_id: int | None
    expires_at: datetime


@dataclass
class Plan:
    """The actions of one round: Nuki writes, claims to release, the guest's email, the next look,
    metrics and log lines. The shell carries them out after it saved the booking."""

    creates: list[int] = field(default_factory=list)
    # App authorizations (type 0) to create, for the guest's Nuki account user.
    app_creates: list[int] = field(default_factory=list)
    # The guest's Nuki account user is needed and not there yet: find or create it first.
    account_user: bool = False
    updates: list[tuple[int, str]] = field(default_factory=list)
    deletes: list[tuple[int, str]] = field(default_factory=list)
    resend_deletes: list[tuple[int, str]] = field(default_factory=list)
    stale: list[tuple[int, str]] = field(default_factory=list)
    pin: str = ""
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    schedule: Schedule | None = None  # a staff code's weekly schedule (None: every day, all day)
    # Locks whose create goes again with the PIN an earlier create of this lock state carried (that
    # one may still land: a 409 nobody can see the holder of is then taken for it, services.writes).
    resent: list[int] = field(default_factory=list)
    # Locks a write waits on for room (Nuki's 200 codes, as last counted): counted again before its
    # retry, by the watcher (a lock no stay keeps hot is otherwise counted only by the daily sweep).
    recount: list[int] = field(default_factory=list)
    # The guest's email: whether one is due (its outbox lease taken), with its fingerprint.
    email: bool = False
    email_updated: bool = False
    email_fingerprint: str = ""
    next_check_delay: float | None = None
    # Locks whose write in flight waits for the shared look: from when it may be read, and by when
    # (`core.looks.shared`).
    shared_at: list[tuple[int, datetime, datetime]] = field(default_factory=list)
    claims: list[CodeClaim] = field(default_factory=list)
    releases: list[CodeClaim] = field(default_factory=list)
    index_auths: list[IndexAuth] = field(default_factory=list)
    # What the read-backs of this round taught about their locks' sync delays.
    sync_samples: list[SyncSample] = field(default_factory=list)
    metrics: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    logs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    warnings: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # The writes of the booking's rotation codes (`Booking.rotationCodes`): another PIN, answered
    # per lock apart from the booking's own code (`Outcome.rotation`).
    rotation: Plan | None = None

    def writes(self) -> bool:
        own = bool(
            self.creates
            or self.app_creates
            or self.account_user
            or self.updates
            or self.deletes
            or self.resend_deletes
            or self.stale
        )
        return own or (self.rotation is not None and self.rotation.writes())


@dataclass
class Outcome:
    """What Nuki answered to the writes of one plan, per lock."""

    failed: dict[int, tuple[str, int | None]] = field(default_factory=dict)  # lock -> (reason, HTTP status)
    transient: dict[int, str] = field(default_factory=dict)
    foreign_conflict: dict[int, str | None] = field(default_factory=dict)  # lock -> the other auth's id
    unsent: list[int] = field(default_factory=list)  # refused as a whole: send again
    vanished: list[int] = field(default_factory=list)
    # The guest's Nuki account user: its id, found or created; or why not, and whether for good.
    account_user: int | None = None
    account_user_failed: tuple[str, bool] | None = None
    rotation: Outcome | None = None  # what Nuki answered to `Plan.rotation`'s writes

    def any(self) -> bool:
        own = bool(
            self.failed
            or self.transient
            or self.foreign_conflict
            or self.unsent
            or self.vanished
            or self.account_user is not None
            or self.account_user_failed
        )
        return own or (self.rotation is not None and self.rotation.any())


__all__ = ["CodeClaim", "CodeItem", "Context", "IndexAuth", "Look", "Outcome", "Plan"]
