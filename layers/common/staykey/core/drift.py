"""The reconciler's rule, pure: what one lock holds against what our records say, as drift classes
(`Drift`) and one action each (`Do`). No I/O: the shell (`services.reconciler`) reads Nuki's list
and our records into a `LockPlan` and `LockFacts`, calls `classify`, and carries out the actions.

Ownership comes from our records, never from a name alone. A code is ours when: its Nuki id is
recorded on the lock state of a booking that claims a code on this lock; or the claim item of its
(lock, code) names a booking and the code's name is that booking's auth name; or its name is a
booking's auth name in our name index AND its code is one we chose for that booking (`pinHistory`)
on a lock the booking has or had. An app authorization (type 0, no code) is ours when its Nuki id is
recorded, or when its name is a booking's in our name index AND the booking opens this lock with the
app AND it is for the guest's Nuki account user. Everything else is someone else's: never changed or
deleted; counted, its code remembered (a `foreign` claim) so that no PIN we choose collides with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from staykey.core import looks, onlock
from staykey.core.models import FINISHED, Booking, BookingStatus, LockState, LockStatus
from staykey.core.observe import booked_differences
from staykey.core.pins import looks_like_our_name
from staykey.core.round import CodeItem
from staykey.core.timeutil import iso_utc

if TYPE_CHECKING:
    from staykey.nuki import SmartlockAuth

# Bookings.expire acts once validUntil is less than a minute away; so do we.
EXPIRY_GRACE = timedelta(minutes=1)


class Drift(StrEnum):
    """What the reconciler found, per code on a lock or per booking that claims a code there."""

    OK = "ok"  # ours, expected, as the booking says
    PENDING = "pending"  # a write of the sync engine in flight; its read-backs confirm it
    WAITING = "waiting"  # the booking waits for a free slot: the lock holds Nuki's limit
    FAILED = "failed"  # the lock state gave up (the booking says why); nothing to do here
    NOT_DUE = "not_due"  # ours, on the lock before the booking's provisioning time: removed, its PIN kept
    OVERDUE = "overdue"  # still scheduled after its provisioning time (the schedule was lost): provisioned
    MISSING = "missing"  # expected, not on the lock: created again
    UNCONFIRMED = "unconfirmed"  # on the lock (or gone) but not recorded so: recorded and confirmed
    WRONG_CODE = "wrong_code"  # ours, code or name changed in Nuki: updated
    WRONG_WINDOW = "wrong_window"  # ours, dates or restrictions changed in Nuki: updated
    EXPIRED = "expired"  # the stay is over: removed
    CANCELLED = "cancelled"  # the booking was cancelled: removed
    MOVED = "moved"  # the booking no longer uses this lock: removed
    UNKNOWN = "unknown"  # claimed for a booking we do not have: removed
    DUPLICATE = "duplicate"  # a second code of one booking on one lock: removed
    ROTATED = "rotated"  # an old code after a rotation or a change of access: removed once replaced and told
    REMOVED = "removed"  # an orphan deletion, confirmed by read-back
    STALE_CLAIM = "stale_claim"  # a claim on a code no booking needs any more: released
    FOREIGN = "foreign"  # not ours: left alone, counted, its code remembered
    OFFLINE = "offline"  # the lock is offline: skipped this round
    UNREACHABLE = "unreachable"  # Nuki did not answer for this lock: skipped this round


# Not drift: no "found" metric for these.
QUIET = frozenset({Drift.OK, Drift.PENDING, Drift.FOREIGN})


class Do(StrEnum):
    NONE = "none"
    HEAL = "heal"  # Sync.heal: the engine writes and confirms
    EXPIRE = "expire"  # Bookings.expire: the stay's removal, which never ran
    PROVISION = "provision"  # Bookings.start_provisioning: the schedule that should have run
    DELETE = "delete"  # an orphan: delete it, confirm by read-back
    CONFIRM = "confirm"  # an orphan deletion is confirmed: stop tracking it
    RELEASE = "release"  # release a booking's claim on a code
    RELEASE_APP = "release_app"  # release a booking's app claim on a lock it no longer opens
    REMEMBER = "remember"  # record a foreign code (after releasing a stale claim on it)
    FORGET = "forget"  # a foreign code is gone from the lock: forget it


@dataclass(frozen=True)
class Action:
    """One thing the reconciler does (or, `Do.NONE`, notes) on one lock. Never holds a PIN in its
    repr or its dict: `code` is only for the store's bookkeeping."""

    smartlock_id: int
    drift: Drift
    do: Do
    booking_id: str | None = None
    auth_id: str | None = None  # Nuki's id of the code (24 hex), never the code itself
    note: str = ""
    code: str | None = field(default=None, repr=False, compare=False)

    def key(self) -> tuple[int, str, str, str | None, str | None]:
        return (self.smartlock_id, self.drift.value, self.do.value, self.booking_id, self.auth_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "smartlockId": self.smartlock_id,
            "drift": self.drift.value,
            "action": self.do.value,
            "bookingId": self.booking_id,
            "authId": self.auth_id,
            "note": self.note,
        }


@dataclass
class LockPlan:
    """What the reconciler found on one lock and what it does about it."""

    smartlock_id: int
    at: datetime
    state: str = "online"  # online, offline, unreachable
    reason: str | None = None
    server_state: int | None = None
    in_room: bool = True
    auths: list[SmartlockAuth] = field(default_factory=list, repr=False)
    code_count: int | None = None  # every keypad code Nuki listed
    ours: int = 0  # keypad codes of ours
    foreign: int = 0  # keypad codes of others
    app_ours: int = 0  # app authorizations of ours (others' app users are not counted)
    claims: int = 0
    orphan_attempts: dict[str, int] = field(default_factory=dict)
    actions: list[Action] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)  # one per action, after execute

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "smartlockId": self.smartlock_id,
            "state": self.state,
            "at": iso_utc(self.at),
            "keypadCodes": self.code_count,
            "ours": self.ours,
            "foreign": self.foreign,
            "inRoom": self.in_room,
            "actions": [a.to_dict() for a in self.actions],
        }
        if self.reason:
            out["reason"] = self.reason
        for item, outcome in zip(out["actions"], self.outcomes, strict=False):
            item["outcome"] = outcome  # none before execute
        return out


@dataclass(frozen=True)
class LockFacts:
    """Our records for one lock: its claims, their bookings (and names'), the name index's answers."""

    claims: list[CodeItem]
    bookings: Mapping[str, Booking | None]
    named: Mapping[str, str | None] = field(default_factory=dict)


def claimed(claims: list[CodeItem]) -> list[str]:
    """The bookings that claim codes on a lock: the first thing the shell reads for a plan."""
    return sorted({c.booking_id for c in claims if c.owner != "foreign" and c.booking_id})


def names_to_look_up(smartlock_id: int, auths: list[SmartlockAuth], facts: LockFacts) -> list[str]:
    """The names the shell must look up in our name index (`LockFacts.named`) before `classify`:
    codes our records do not place that carry one of our names. Only a hint: the lookup decides."""
    recorded = _recorded(smartlock_id, facts)
    by_code = _by_code(facts.claims)
    return [
        auth.name
        for auth in auths
        if auth.id not in recorded
        and looks_like_our_name(auth.name)
        and (
            auth.type == onlock.APP
            or ((code := onlock.code_of(auth)) is not None and not _claim_matches(by_code.get(code), auth))
        )
    ]


def _by_code(claims: list[CodeItem]) -> dict[str, CodeItem]:
    return {c.pin: c for c in claims if c.owner != "app"}


def classify(plan: LockPlan, facts: LockFacts, max_codes: int, stall_seconds: float) -> LockPlan:
    """Step 2 for one lock, from plain values: who owns each code Nuki listed (`plan.auths`), what
    each booking with a claim here wants, and one `Action` for each. Fills `plan` and returns it."""
    _Classifier(plan, facts, max_codes, stall_seconds).run()
    return plan


def _recorded(smartlock_id: int, facts: LockFacts) -> dict[str, str]:
    """Nuki id -> booking, for the ids recorded on the lock states of the claiming bookings."""
    recorded: dict[str, str] = {}
    for booking_id in claimed(facts.claims):
        b = facts.bookings.get(booking_id)
        for state in b.slots_on(smartlock_id) if b else ():  # its code, and a PIN rotation's
            if state.nukiId:
                recorded[state.nukiId] = booking_id
    return recorded


def _claim_matches(claim: CodeItem | None, auth: SmartlockAuth) -> bool:
    return claim is not None and claim.owner != "foreign" and bool(claim.booking_id) and claim.auth_name == auth.name


class _Classifier:
    """Step 2 for one lock: who owns each code, and what each booking with a claim here wants."""

    def __init__(self, plan: LockPlan, facts: LockFacts, max_codes: int, stall_seconds: float) -> None:
        self.facts = facts
        self.plan = plan
        self.lock_id = plan.smartlock_id
        self.now = plan.at
        self.max_codes = max_codes
        self.stalled_before = self.now - timedelta(seconds=stall_seconds)

    def booking(self, booking_id: str) -> Booking | None:
        return self.facts.bookings.get(booking_id)

    def add(self, drift: Drift, do: Do, **kw: Any) -> None:
        self.plan.actions.append(Action(self.lock_id, drift, do, **kw))

    def run(self) -> None:
        plan, auths, claims = self.plan, self.plan.auths, self.facts.claims
        plan.code_count = sum(1 for a in auths if a.type != onlock.APP)
        plan.claims = len(claims)
        by_code = _by_code(claims)
        claimed_ids = claimed(claims)
        recorded = _recorded(self.lock_id, self.facts)
        owner: dict[str, str] = {}
        foreign: list[SmartlockAuth] = []
        for auth in auths:
            found = self._owner(auth, recorded, by_code)
            if found is None:
                foreign.append(auth)
            else:
                owner[auth.id] = found
        app = {a.id for a in auths if a.type == onlock.APP}
        plan.ours, plan.app_ours = len(set(owner) - app), len(set(owner) & app)
        plan.foreign = sum(1 for a in foreign if a.id not in app)

        for booking_id in sorted(set(claimed_ids) | set(owner.values())):
            mine = [a for a in auths if owner.get(a.id) == booking_id]
            self._booking(booking_id, self.booking(booking_id), mine)

        listed = {a.id for a in auths}
        for auth_id in sorted(plan.orphan_attempts):
            if auth_id not in listed:
                self.add(Drift.REMOVED, Do.CONFIRM, auth_id=auth_id, note="orphan deletion confirmed by read-back")

        on_lock = {code for a in auths if (code := onlock.code_of(a)) is not None}
        for claim in claims:
            if (
                claim.owner == "app"
                and claim.booking_id
                and not _app_claim_needed(self.booking(claim.booking_id), self.lock_id)
            ):
                note = "a booking that no longer opens this lock with the app: its claim is released"
                self.add(Drift.STALE_CLAIM, Do.RELEASE_APP, booking_id=claim.booking_id, note=note)
            if claim.owner in ("foreign", "app") or not claim.booking_id or claim.pin in on_lock:
                continue
            if not _claim_needed(self.booking(claim.booking_id), self.lock_id, claim.pin):
                self.add(
                    Drift.STALE_CLAIM,
                    Do.RELEASE,
                    booking_id=claim.booking_id,
                    code=claim.pin,
                    note="a code no booking needs here any more: its claim is released",
                )
        for auth in foreign:
            self._foreign(auth, by_code)
        for claim in claims:
            if claim.owner == "foreign" and claim.pin not in on_lock:
                self.add(
                    Drift.FOREIGN,
                    Do.FORGET,
                    auth_id=claim.nuki_id,
                    code=claim.pin,
                    note="a code someone else added is gone: forgotten",
                )

    def _owner(self, auth: SmartlockAuth, recorded: Mapping[str, str], by_code: Mapping[str, CodeItem]) -> str | None:
        """The booking a code on the lock belongs to, from our records; None: not ours."""
        if auth.id in recorded:
            return recorded[auth.id]
        if auth.type == onlock.APP:
            return self._app_owner(auth)
        code = onlock.code_of(auth)
        if code is None:
            return None
        claim = by_code.get(code)
        if claim is not None and _claim_matches(claim, auth):
            return claim.booking_id
        if looks_like_our_name(auth.name):  # only a hint that a lookup may find something
            booking_id = self.facts.named.get(auth.name)
            b = self.booking(booking_id) if booking_id else None
            if b is not None and code in b.pinHistory and b.had_lock(self.lock_id):
                return booking_id  # not a copy someone made of our code on a lock we never wrote to
        return None

    def _app_owner(self, auth: SmartlockAuth) -> str | None:
        """An app authorization is ours under one of our names only for the booking's app access to
        this lock (or an old one a change of access is replacing) and the guest's account user."""
        booking_id = self.facts.named.get(auth.name) if looks_like_our_name(auth.name) else None
        b = self.booking(booking_id) if booking_id else None
        apps = [s for s in b.slots_on(self.lock_id) if s.access == "app"] if b is not None else []
        if b is None or not apps or auth.account_user_id is None:
            return None
        return booking_id if auth.account_user_id in {b.account.accountUserId, *(s.sentUser for s in apps)} else None

    def _booking(self, booking_id: str, b: Booking | None, mine: list[SmartlockAuth]) -> None:
        if b is None:
            for auth in mine:
                self.add(Drift.UNKNOWN, Do.DELETE, booking_id=booking_id, auth_id=auth.id, note="no such booking")
            return
        state = b.lock(self.lock_id)
        if b.status not in FINISHED and b.status != BookingStatus.REVOKING and b.validUntil <= self.now - EXPIRY_GRACE:
            self.add(
                Drift.EXPIRED,
                Do.EXPIRE,
                booking_id=booking_id,
                auth_id=mine[0].id if mine else None,
                note=f"the stay ended at {iso_utc(b.validUntil)} and its removal never ran",
            )
            return
        if b.status == BookingStatus.SCHEDULED and b.provisionAt <= self.now - EXPIRY_GRACE and not mine:
            self.add(
                Drift.OVERDUE,
                Do.PROVISION,
                booking_id=booking_id,
                note=f"still scheduled although its code was due on the locks at {iso_utc(b.provisionAt)}",
            )
            return
        # A PIN rotation's codes on this lock (the new one, old ones being removed): each its own.
        for slot in [s for s in b.rotationCodes if s.smartlockId == self.lock_id]:  # a PIN rotation's codes
            found = self._slot_code(b, slot, mine)
            mine = [a for a in mine if a is not found]
            self._code(booking_id, b, slot, [found] if found else [])
        self._code(booking_id, b, state, mine)

    def _slot_code(self, b: Booking, state: LockState, mine: list[SmartlockAuth]) -> SmartlockAuth | None:
        """The code a lock state of the booking tracks on this lock: its recorded id, else its name
        with the PIN it sent (or carries), or, of an app lock state, with the guest's account user."""
        held = next((a for a in mine if state.nukiId and a.id == state.nukiId), None)
        return held or _named(b, state, mine)

    def _code(self, booking_id: str, b: Booking, state: LockState | None, mine: list[SmartlockAuth]) -> None:
        # A write with no send time, or sent before the stall limit, is stuck: its follow-ups died.
        stalled = (
            state is not None
            and state.op is not None
            and (state.opSentAt is None or state.opSentAt <= self.stalled_before)
        )
        in_flight = state is not None and state.op is not None and not stalled
        held = next((a for a in mine if state is not None and state.nukiId and a.id == state.nukiId), None)
        primary = held or _named(b, state, mine)
        if state is not None and b.wants_code(state):
            self._wanted(booking_id, b, state, mine, held, primary, in_flight, stalled)
        else:
            self._unwanted(booking_id, b, state, mine, primary, in_flight)

    def _wanted(
        self,
        booking_id: str,
        b: Booking,
        state: LockState,
        mine: list[SmartlockAuth],
        held: SmartlockAuth | None,
        primary: SmartlockAuth | None,
        in_flight: bool,
        stalled: bool,
    ) -> None:
        for auth in mine:
            if auth is not primary:
                self.add(Drift.DUPLICATE, Do.DELETE, booking_id=booking_id, auth_id=auth.id, note="a second code")
        primary_id, full = primary.id if primary else None, (self.plan.code_count or 0) >= self.max_codes
        if in_flight:
            note = f"a {state.op} is in flight; its read-backs confirm it"
            self.add(Drift.PENDING, Do.NONE, booking_id=booking_id, auth_id=primary_id, note=note)
        elif state.status == LockStatus.FAILED:
            if primary is not None:
                note = "on the lock although the booking gave up on it: confirm it"
                self.add(Drift.UNCONFIRMED, Do.HEAL, booking_id=booking_id, auth_id=primary_id, note=note)
            else:
                self.add(Drift.FAILED, Do.NONE, booking_id=booking_id, note=state.error or "")
        elif held is not None:
            drift = onlock.drift_class(booked_differences(b, state, held))
            if drift is not None:
                note = "changed in Nuki: update with the full restriction set"
                self.add(Drift(drift), Do.HEAL, booking_id=booking_id, auth_id=held.id, note=note)
            elif state.status != LockStatus.ACTIVE or stalled:
                note = "on the lock as booked, not confirmed yet: confirm it"
                self.add(Drift.UNCONFIRMED, Do.HEAL, booking_id=booking_id, auth_id=held.id, note=note)
            else:
                self.add(Drift.OK, Do.NONE, booking_id=booking_id, auth_id=held.id)
        elif primary is not None:
            note = "on the lock, its id not recorded: adopt and confirm it"
            self.add(Drift.UNCONFIRMED, Do.HEAL, booking_id=booking_id, auth_id=primary_id, note=note)
        elif state.access == "keypad" and full and state.status != LockStatus.ACTIVE:  # active: it learns it is gone
            note = f"the lock holds {self.plan.code_count} keypad codes, Nuki's limit"
            self.add(Drift.WAITING, Do.NONE, booking_id=booking_id, note=note)
        else:
            self.add(Drift.MISSING, Do.HEAL, booking_id=booking_id, note="not on the lock: create it again and confirm")

    def _unwanted(
        self,
        booking_id: str,
        b: Booking,
        state: LockState | None,
        mine: list[SmartlockAuth],
        primary: SmartlockAuth | None,
        in_flight: bool,
    ) -> None:
        if b.status == BookingStatus.CANCELLED:
            drift = Drift.CANCELLED
        elif b.status in (BookingStatus.REVOKED, BookingStatus.REVOKING) or b.validUntil <= self.now:
            drift = Drift.EXPIRED
        elif b.status == BookingStatus.SCHEDULED and state is not None and state.desired == "present":
            drift = Drift.NOT_DUE
        elif state is not None and (state.untilTold or state.untilReplaced) and b.uses_lock(state.smartlockId):
            drift = Drift.ROTATED  # an old code on a lock the booking left is a move's, not kept
        else:
            drift = Drift.MOVED
        for auth in mine:
            if auth is primary and state is not None and drift == Drift.ROTATED and b.keeps_old_code(state):
                note = "the old code keeps working until its replacement is on and the guest told; then removed"
                self.add(Drift.PENDING, Do.NONE, booking_id=booking_id, auth_id=auth.id, note=note)
            elif auth is primary and state is not None and (in_flight or looks.removal_waits(state, self.now)):
                waits = f"its removal is due at {iso_utc(state.retryAt)}"
                note = f"a {state.op} is in flight; its read-backs confirm it" if in_flight else waits
                self.add(Drift.PENDING, Do.NONE, booking_id=booking_id, auth_id=auth.id, note=note)
            elif auth is primary and state is not None:
                note = "the sync engine removes it and confirms by read-back"
                if drift == Drift.NOT_DUE:
                    note = "on the lock before its provisioning time (core.lead): the sync engine removes it"
                self.add(drift, Do.HEAL, booking_id=booking_id, auth_id=auth.id, note=note)
            else:
                note = "an orphan: deleted, confirmed by read-back"
                self.add(drift, Do.DELETE, booking_id=booking_id, auth_id=auth.id, note=note)
        if not mine and state is not None and state.status != LockStatus.REMOVED:
            if in_flight:
                note = f"a {state.op} is in flight; its read-backs confirm it"
                self.add(Drift.PENDING, Do.NONE, booking_id=booking_id, note=note)
            elif state.nukiId:
                note = "gone from the lock; the sync engine records the removal"
                self.add(Drift.UNCONFIRMED, Do.HEAL, booking_id=booking_id, note=note)

    def _foreign(self, auth: SmartlockAuth, by_code: Mapping[str, CodeItem]) -> None:
        code = onlock.code_of(auth)
        claim = by_code.get(code) if code is not None else None
        if code is None:
            self.add(Drift.FOREIGN, Do.NONE, auth_id=auth.id, note="someone else's; no code listed")
        elif claim is None:
            self.add(Drift.FOREIGN, Do.REMEMBER, auth_id=auth.id, code=code, note="someone else's: its code remembered")
        elif claim.owner == "foreign":
            self.add(Drift.FOREIGN, Do.NONE, auth_id=auth.id, note="someone else's, known")
        elif claim.booking_id and not _claim_needed(self.booking(claim.booking_id), self.lock_id, code):
            note = "someone else's, on a code a booking of ours gave up: its code remembered"
            self.add(Drift.FOREIGN, Do.REMEMBER, booking_id=claim.booking_id, auth_id=auth.id, code=code, note=note)
        else:
            note = "someone else's, on the PIN reserved for this booking; the booking chooses another when it is sent"
            self.add(Drift.FOREIGN, Do.NONE, booking_id=claim.booking_id, auth_id=auth.id, note=note)


def _app_claim_needed(b: Booking | None, smartlock_id: int) -> bool:
    """Does a booking still open this lock with the app (or have something to remove there)?"""
    return b is not None and any(s.access == "app" and not _gone(b, s) for s in b.slots_on(smartlock_id))


def _claim_needed(b: Booking | None, smartlock_id: int, pin: str) -> bool:
    """Does a booking still need its claim on `pin` at this lock (held, being sent, or reserved)?"""
    return b is not None and any(
        pin in {b.target_pin(state), state.heldPin, state.sentPin}
        for state in b.slots_on(smartlock_id)  # its code, and a PIN rotation's (an app one has no PIN)
        if state.access == "keypad" and not _gone(b, state)
    )


def _gone(b: Booking, state: LockState) -> bool:
    return state.status == LockStatus.REMOVED and (b.status in FINISHED or state.desired == "absent")


def _named(b: Booking, state: LockState | None, mine: list[SmartlockAuth]) -> SmartlockAuth | None:
    """Ours by name: with the PIN the lock state sent (or carries), or the guest's account user."""
    if state is not None and state.access == "app":
        user = state.sentUser or b.account.accountUserId
        return next((a for a in mine if a.name == b.authName and a.account_user_id == user), None)
    want = (state.sentPin or b.target_pin(state)) if state is not None else b.pin
    return next((a for a in mine if a.name == b.authName and onlock.code_of(a) == want), None)


__all__ = [
    "EXPIRY_GRACE",
    "QUIET",
    "Action",
    "Do",
    "Drift",
    "LockFacts",
    "LockPlan",
    "claimed",
    "classify",
    "names_to_look_up",
]
