"""Domain models: what the shop sends (strict: unknown fields and wrong types are refused), what we
store, and what we answer. JSON is camelCase, as docs/shop-api.md says."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from staykey.core.parts import ActivityItem as ActivityItem
from staykey.core.parts import BackupCode as BackupCode
from staykey.core.parts import GuestAccount as GuestAccount
from staykey.core.parts import PinRotation as PinRotation
from staykey.core.parts import Readiness as Readiness
from staykey.core.parts import ReadinessReason as ReadinessReason
from staykey.core.parts import ReadinessStatus as ReadinessStatus
from staykey.core.parts import Schedule as Schedule
from staykey.core.parts import StaffPart as StaffPart
from staykey.core.text import clean_text as clean_text
from staykey.core.text import email_address
from staykey.core.timeutil import iana_zone, iso_utc, local_to_utc, parse_hhmm, zone

ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
# A stored booking's id in StayKey's own messages (schedules, follow-ups): a shop's booking id, a
# staff code's `staff~<staffCodeId>` or a backup code's `pool~<lock>.<n>` (core.staff), no path's.
STORED_ID_PATTERN = r"^((staff|pool)~)?[A-Za-z0-9._-]{1,64}$"
MAX_LOCKS_PER_ROOM = 5
MAX_STAY_DAYS = 366
MAX_BACKUP_POOL = 20
# Nuki's smartlockId is an int64; the API takes positive ids only.
SMARTLOCK_ID_MAX = 2**63 - 1


class BookingStatus(StrEnum):
    SCHEDULED = "scheduled"
    PROVISIONING = "provisioning"
    ACTIVE = "active"
    REVOKING = "revoking"
    REVOKED = "revoked"
    CANCELLED = "cancelled"
    FAILED = "failed"


# How a guest opens a lock: a keypad code (type 13) or the Nuki app (an app authorization, type 0,
# for the guest's Nuki account user).
AccessKind = Literal["keypad", "app"]


class LockStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    FAILED = "failed"
    REMOVED = "removed"


FINISHED = {BookingStatus.REVOKED, BookingStatus.CANCELLED}
ENDED = {BookingStatus.REVOKING, BookingStatus.REVOKED, BookingStatus.CANCELLED}
# The code should be on the lock in these states (a failed booking keeps whatever did land,
# so a late confirmation can still rescue it, until checkout removes it).
CODE_WANTED = {BookingStatus.PROVISIONING, BookingStatus.ACTIVE, BookingStatus.FAILED}


CleanText = Annotated[str, AfterValidator(clean_text)]


def _stay_point(value: Any) -> Any:
    """A date (room times apply) or an RFC 3339 date-time with an offset; nothing else."""
    if isinstance(value, date):
        return _in_range(value)
    shape = "must be a date (2026-12-01) or a date-time with offset (2026-12-01T15:00:00+01:00)"
    if not isinstance(value, str):
        raise ValueError(shape)
    # re.ASCII: \d is 0-9 only (not the fullwidth or Arabic-Indic digits Unicode counts as digits)
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value, re.ASCII):
            return _in_range(date.fromisoformat(value))
        if not re.fullmatch(
            r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?([Zz]|[+-]\d{2}:\d{2})", value, re.ASCII
        ):
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?", value, re.ASCII):
                raise ValueError("a date-time needs an offset, for example 2026-12-01T15:00:00+01:00 or ...Z")
            raise ValueError(shape)
        return _in_range(datetime.fromisoformat(value.upper().replace("Z", "+00:00")))
    except ValueError as exc:
        if str(exc).startswith(("a date-time needs", "must be")):
            raise
        # The right shape, but no such day, time or offset (2026-02-30, 24:00, +24:00): Python's
        # own message names its internals, not the problem.
        raise ValueError(
            f"{value[:40]!r} is not a real date or time (a day of its month, 00:00 to 23:59:59, an offset "
            "from -23:59 to +23:59)"
        ) from None


# Dates a stay can have at all (the window rules then narrow it to the next three years): outside
# these, converting between zones runs off the calendar's ends (year 1, year 9999).
STAY_YEARS = (2000, 2200)


def _in_range(value: date) -> Any:
    if not STAY_YEARS[0] <= value.year <= STAY_YEARS[1]:
        raise ValueError(f"must be a date in the years {STAY_YEARS[0]} to {STAY_YEARS[1]}")
    return value


StayPoint = Annotated[date | datetime, BeforeValidator(_stay_point)]


def _valid_zone(value: str) -> str:
    iana_zone(value)
    return value


def _valid_hhmm(value: str) -> str:
    parse_hhmm(value)
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=1000)


class GuestIn(Strict):
    # Lengths are of what the shop sent (NFC may lengthen a name: U+0958 becomes two code points).
    name: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(clean_text)]
    email: Annotated[str, Field(max_length=254), AfterValidator(email_address)]
    locale: Annotated[str, Field(pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8}){0,3}$")] = "en"


class RoomIn(Strict):
    name: Annotated[str, Field(min_length=1, max_length=100), AfterValidator(clean_text)]
    smartlockIds: Annotated[
        list[Annotated[StrictInt, Field(ge=1, le=SMARTLOCK_ID_MAX)]],
        Field(min_length=1, max_length=MAX_LOCKS_PER_ROOM),
    ]
    timezone: Annotated[str, Field(max_length=64), AfterValidator(_valid_zone)]
    checkInTime: Annotated[str, AfterValidator(_valid_hhmm)] = "15:00"
    checkOutTime: Annotated[str, AfterValidator(_valid_hhmm)] = "11:00"
    accessBeforeMinutes: Annotated[StrictInt, Field(ge=0, le=1440)] = 0
    accessAfterMinutes: Annotated[StrictInt, Field(ge=0, le=1440)] = 0
    # How guests open each lock, by its id: "keypad" (the default for a lock not named) or "app".
    access: Annotated[dict[str, AccessKind], Field(max_length=MAX_LOCKS_PER_ROOM)] = Field(default_factory=dict)
    # Opt-in: keypad codes are linked to the guest's Nuki account user (Nuki Web then shows the name).
    linkKeypadCodes: StrictBool = False
    # Opt-in: a pool of backup codes on each keypad lock (services.backup), of BackupPoolSize or this.
    backupCodes: StrictBool = False
    backupPoolSize: Annotated[StrictInt, Field(ge=1, le=MAX_BACKUP_POOL)] | None = None

    @field_validator("smartlockIds")
    @classmethod
    def _unique_locks(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("must not repeat a lock")
        return value

    @field_validator("access")
    @classmethod
    def _known_locks(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        locks = {str(lock_id) for lock_id in info.data.get("smartlockIds") or []}
        unknown = sorted(key for key in value if key not in locks)
        if unknown and "smartlockIds" in info.data:
            raise ValueError(f"names lock(s) {', '.join(unknown)}, which smartlockIds does not list")
        return value

    def access_of(self, smartlock_id: int) -> AccessKind:
        return self.access.get(str(smartlock_id), "keypad")


class Room(RoomIn):
    model_config = ConfigDict(extra="ignore")
    roomId: str
    createdAt: datetime
    updatedAt: datetime

    def to_api(self) -> dict[str, Any]:
        out = self.model_dump(mode="json")
        out["createdAt"] = iso_utc(self.createdAt)
        out["updatedAt"] = iso_utc(self.updatedAt)
        return out


class BookingIn(Strict):
    bookingId: Annotated[str, Field(pattern=ID_PATTERN)]
    roomId: Annotated[str, Field(pattern=ID_PATTERN)]
    guest: GuestIn
    checkIn: StayPoint
    checkOut: StayPoint
    notifyGuest: StrictBool = True

    def request_hash(self) -> str:
        """What makes two requests "the same": the body, normalised."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class BookingPatch(Strict):
    checkIn: StayPoint | None = None
    checkOut: StayPoint | None = None
    roomId: Annotated[str, Field(pattern=ID_PATTERN)] | None = None
    guest: GuestIn | None = None

    @model_validator(mode="after")
    def _something(self) -> BookingPatch:
        if not self.model_fields_set:
            raise ValueError("give at least one of checkIn, checkOut, roomId, guest")
        for key in self.model_fields_set:
            if getattr(self, key) is None:
                raise ValueError(f"{key} must not be null")
        return self


class RotatePinRequest(Strict):
    """`POST /bookings/{bookingId}/rotate-pin` takes no fields: no body, or `{}` (the new PIN is
    always StayKey's choice, so that it is free on every lock)."""


def stay_point_json(value: date | datetime) -> str:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value.isoformat()


def window_for(room: Room, check_in: date | datetime, check_out: date | datetime) -> tuple[datetime, datetime]:
    """validFrom and validUntil (UTC) from the stay and the room's zone, times and buffers."""
    tz = zone(room.timezone)
    if isinstance(check_in, datetime):
        start = check_in.astimezone(UTC)
    else:
        start = local_to_utc(check_in, parse_hhmm(room.checkInTime), tz)
    if isinstance(check_out, datetime):
        end = check_out.astimezone(UTC)
    else:
        end = local_to_utc(check_out, parse_hhmm(room.checkOutTime), tz)
    return start - timedelta(minutes=room.accessBeforeMinutes), end + timedelta(minutes=room.accessAfterMinutes)


class Guest(BaseModel):
    name: str
    email: str
    locale: str = "en"


class LockState(BaseModel):
    """One lock of a booking, with the Nuki write in flight on it, if any."""

    model_config = ConfigDict(extra="ignore")

    smartlockId: int
    # keypad: a keypad code with the booking's PIN (type 13); app: an app authorization (type 0)
    # for the guest's Nuki account user. `link`: the keypad code is linked to that account user too.
    access: AccessKind = "keypad"
    link: bool = False
    status: LockStatus = LockStatus.PENDING
    # present: the code should be on this lock while the booking wants codes; absent: remove it
    # (a lock the booking moved away from, or any lock once the booking ends).
    desired: Literal["present", "absent"] = "present"
    # find: a create may have landed after the booking ended; look for it by name, then delete it.
    op: Literal["create", "update", "delete", "find"] | None = None
    opSentAt: datetime | None = None
    opChecks: int = 0
    sentPin: str | None = None
    # The Nuki account user the write in flight (or the last confirmed one) carries; None: unlinked code.
    sentUser: int | None = None
    # The code confirmed on the lock right now (differs from sentPin while a PIN change is in flight).
    heldPin: str | None = None
    firstSentAt: datetime | None = None
    sentFrom: datetime | None = None
    sentUntil: datetime | None = None
    sentSchedule: Schedule | None = None  # a staff code's weekly schedule, as sent (None: none)
    nukiId: str | None = None
    authId: int | None = None
    error: str | None = None
    retryAt: datetime | None = None
    # Failed tries of the write in a row (its backoff); 0 again once the lock confirms it.
    retries: int = 0
    # The newest look applied (a webhook's updateDate, a read-back's time): older webhooks are history.
    seenAt: datetime | None = None
    # The lock stored our code with an error (a full keypad): it is deleted, then sent again.
    refused: bool = False
    # While looking for a create that may still land (op "find"): since when the lock is online.
    findSince: datetime | None = None
    # Nuki refused the write for good (400, 422: a request no retry cures); a change of the booking
    # or the retry action starts it again.
    stopped: bool = False
    # A webhook said something about our code here that only a read-back can tell: read it back,
    # on the follow-ups, until one succeeds (a hint is never dropped because Nuki did not answer).
    recheck: bool = False
    # For the booking's timeline (never in the API or an event): when our code was first sent to
    # this lock, first and last seen holding what we sent, and seen gone after we removed it.
    sentAt: datetime | None = None
    firstConfirmedAt: datetime | None = None
    confirmedAt: datetime | None = None
    removedAt: datetime | None = None
    # The PIN of this code when it is not the booking's (`Booking.rotationCodes` only): a rotation's
    # new code (desired present), or an old code being removed after a rotation (desired absent).
    pin: str | None = None
    # An old code after a rotation: removed once the guest has been told the new PIN (until then
    # the PIN the guest was last told keeps opening the doors).
    untilTold: bool = False
    # An old code of the other kind (`access`) on a lock a move kept with another access: removed
    # once the lock's new one is confirmed and the guest told (`Booking.keeps_old_code`).
    untilReplaced: bool = False

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"smartlockId": self.smartlockId, "status": self.status.value, "access": self.access}
        if self.error:
            out["error"] = self.error
        return out


class Booking(BaseModel):
    """A booking as stored (the booking item; guest data lives in its own item, see store)."""

    model_config = ConfigDict(extra="ignore")

    bookingId: str
    roomId: str
    status: BookingStatus
    pin: str
    pinHistory: list[str] = Field(default_factory=list)
    authName: str
    validFrom: datetime
    validUntil: datetime
    checkIn: str
    checkOut: str
    timezone: str
    notifyGuest: bool = True
    locks: list[LockState]
    firstEntryAt: datetime | None = None
    createdAt: datetime
    updatedAt: datetime
    provisionAt: datetime
    requestHash: str
    version: int = 0
    statusReason: str | None = None
    pinChoices: int = 1
    checkSeq: int = 0
    checkRound: int = 0
    nobodyWaits: bool = False  # provisioned by its schedule, unchanged since (`core.looks.shared`)
    emailFingerprint: str | None = None  # what the guest was last told (see notice_fingerprint)
    emailSentAt: datetime | None = None
    emailPending: str | None = None  # the outbox: an email being sent, under a lease
    emailLeaseUntil: datetime | None = None
    emailAttempts: int = 0
    emailError: str | None = None
    account: GuestAccount = Field(default_factory=GuestAccount)
    readiness: Readiness | None = None
    # A PIN rotation in progress (None: none), and the booking's codes besides the one of `pin` on
    # each lock: the rotation's new codes, and old codes being removed after a rotation.
    rotation: PinRotation | None = None
    rotationCodes: list[LockState] = Field(default_factory=list)
    formerLocks: list[int] = Field(default_factory=list)  # locks it moved away from, their codes gone
    pinRotatedAt: datetime | None = None
    staff: StaffPart | None = None  # a staff code's (core.staff), not a guest's stay
    backups: list[BackupCode] = Field(default_factory=list)  # backup codes it was given (services.backup)
    guest: Guest | None = Field(default=None, exclude=True)
    # What the store read (staykey.events.model.booking_snapshot): a save derives its events from it.
    _stored: dict[str, Any] | None = PrivateAttr(default=None)

    def lock(self, smartlock_id: int) -> LockState | None:
        return next((lock for lock in self.locks if lock.smartlockId == smartlock_id), None)

    def covered(self, smartlock_id: int) -> bool:
        """Whether the guest was given a backup code for this lock (it opens it, whatever ours does)."""
        return any(code.smartlockId == smartlock_id and code.ok for code in self.backups)

    def schedule(self) -> Schedule | None:
        return None if self.staff is None else self.staff.schedule

    def slots(self) -> list[LockState]:
        """Every code of the booking on its locks: the booking's PIN on each lock (`locks`), then
        the rotation's codes (`rotationCodes`)."""
        return [*self.locks, *self.rotationCodes]

    def slots_on(self, smartlock_id: int) -> list[LockState]:
        return [slot for slot in self.slots() if slot.smartlockId == smartlock_id]

    def had_lock(self, smartlock_id: int) -> bool:
        """Whether the booking has, or had, a code of its own to put on this lock."""
        return smartlock_id in self.formerLocks or any(s.smartlockId == smartlock_id for s in self.slots())

    def target_pin(self, lock: LockState) -> str:
        """The PIN the code of this lock state carries: its own (a rotation's code), or the booking's."""
        return lock.pin or self.pin

    def uses_lock(self, smartlock_id: int) -> bool:
        """Whether the booking wants a code on this lock (a lock of its room)."""
        return any(lk.smartlockId == smartlock_id and lk.desired == "present" for lk in self.locks)

    def awaits_notice(self) -> bool:
        """The guest is to be emailed the booking's PIN and has not been yet (the old codes of a
        rotation stay on the locks until then: the PIN the guest was last told keeps working)."""
        if self.status in ENDED or not self.notifyGuest or self.guest is None:
            return False
        told = (self.emailFingerprint or "").startswith(self.notice_fingerprint() + ":")
        # An email given up on (`emailError`: SES refused it for good, or EMAIL_MAX_ATTEMPTS tries)
        # told the guest nothing: what they know keeps working until a re-send or the stay's end.
        return not told or self.emailError is not None

    def keeps_old_code(self, lock: LockState) -> bool:
        """Whether an old code after a rotation (`untilTold`) stays on its lock for now: only until
        the guest is first told the new PIN (an email sent since the rotation: a later change that
        calls for another email does not bring the hold back), and only on a lock the booking still
        uses (a door of a room it left is not one the guest opens). An old code of the other kind
        (`untilReplaced`) stays while the lock's new one is not confirmed, then until the guest is told."""
        if self.status not in CODE_WANTED:
            return False  # ended, or scheduled again: nothing of it opens a door now (`code_off`)
        new = self.lock(lock.smartlockId)
        if lock.untilReplaced and new is not None and new.desired == "present":
            confirmed = new.status == LockStatus.ACTIVE and new.op is None
            return new.access != lock.access and (not confirmed or self.awaits_notice())
        if not lock.untilTold or not self.awaits_notice():
            return False
        if self.pinRotatedAt is not None and self.emailSentAt is not None and self.emailSentAt >= self.pinRotatedAt:
            return False
        return any(lk.smartlockId == lock.smartlockId and lk.desired == "present" for lk in self.locks)

    def rotation_status(self) -> str | None:
        """A rotation's state: pending, or failed (a lock refused or did not confirm the new code in
        time; it keeps trying); None without one."""
        if self.rotation is None:
            return None
        wanted = [lk for lk in self.rotationCodes if lk.desired == "present"]
        return "failed" if any(lk.status == LockStatus.FAILED for lk in wanted) else "pending"

    def wants_code(self, lock: LockState) -> bool:
        return self.status in CODE_WANTED and lock.desired == "present"

    def code_unwanted(self, lock: LockState) -> bool:
        """The code must come off this lock (or never go on), its PIN freed there: the lock was
        left, or the stay ended. Not "not wants_code": a scheduled booking keeps its PIN reserved."""
        return lock.desired == "absent" or self.status in ENDED

    def code_off(self, lock: LockState) -> bool:
        """Nothing of the booking belongs on this lock now: its code is unwanted, or the booking is
        scheduled (a change put its stay beyond the lead after the code went on: it comes off, its
        PIN stays reserved, and goes on again at the lead; `core.lead`)."""
        return self.code_unwanted(lock) or self.status == BookingStatus.SCHEDULED

    def notice_fingerprint(self) -> str:
        """What the guest was told: a change in any of these means telling them again."""
        raw = f"{self.pin}|{iso_utc(self.validFrom)}|{iso_utc(self.validUntil)}|{self.roomId}"
        raw += "".join(f"|{code.smartlockId}:{code.pin}" for code in self.backups)
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    def to_api(self) -> dict[str, Any]:
        return {
            "bookingId": self.bookingId,
            "roomId": self.roomId,
            "status": self.status.value,
            "pin": self.pin,
            "validFrom": iso_utc(self.validFrom),
            "validUntil": iso_utc(self.validUntil),
            "checkIn": self.checkIn,
            "checkOut": self.checkOut,
            "timezone": self.timezone,
            "guest": self.guest.model_dump() if self.guest else None,
            "notifyGuest": self.notifyGuest,
            "locks": [lock.to_api() for lock in self.locks],
            "pinRotation": self.rotation_api(),
            "statusReason": self.statusReason,
            "provisionAt": iso_utc(self.provisionAt),
            "firstEntryAt": iso_utc(self.firstEntryAt),
            "readiness": self.readiness.to_api() if self.readiness else None,
            "backupCodes": [code.to_api() for code in self.backups],
            "createdAt": iso_utc(self.createdAt),
            "updatedAt": iso_utc(self.updatedAt),
        }

    def rotation_api(self) -> dict[str, Any] | None:
        """The rotation in progress as the shop sees it (never its PIN: `pin` changes once it is
        confirmed on every lock), or None."""
        status = self.rotation_status()
        if self.rotation is None or status is None:
            return None
        wanted = [lk for lk in self.rotationCodes if lk.desired == "present"]
        reason = "; ".join(f"lock {lk.smartlockId}: {lk.error}" for lk in wanted if lk.error) or None
        return {
            "status": status,
            "requestedAt": iso_utc(self.rotation.requestedAt),
            "statusReason": reason,
            "locks": [lk.to_api() for lk in wanted],
        }
