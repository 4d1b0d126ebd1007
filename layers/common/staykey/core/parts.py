"""Parts of a stored booking (`core.models.Booking`): the guest's Nuki account user, the last
readiness check, a PIN rotation in progress. Re-exported by `core.models`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from staykey.core.timeutil import iso_utc


class GuestAccount(BaseModel):
    """The guest's Nuki account user (app access, linked keypad codes): its id once Nuki has it;
    while it cannot be created, why, and when it is tried again; `stopped`: refused for good;
    `former`: the account users the booking had before its guest's email changed (their purge
    still follows this booking's stay)."""

    model_config = ConfigDict(extra="ignore")

    accountUserId: int | None = None
    error: str | None = None
    retryAt: datetime | None = None
    tries: int = 0
    stopped: bool = False
    former: list[int] = Field(default_factory=list)

    def renewed(self) -> GuestAccount:
        """Found or created afresh (a new guest email, a retry), the users it had kept as former."""
        had = [*self.former, *([self.accountUserId] if self.accountUserId is not None else [])]
        return GuestAccount(former=list(dict.fromkeys(had)))

    def every_user(self) -> list[int]:
        """Every account user the booking has had: its current one and the former ones."""
        return list(dict.fromkeys([*self.former, *([self.accountUserId] if self.accountUserId is not None else [])]))


ReadinessStatus = Literal["ok", "at_risk"]


class ReadinessReason(BaseModel):
    """One finding of a readiness check: a lock of the booking, what is wrong with it."""

    smartlockId: int
    code: str  # offline, battery_critical, keypad_battery_critical, no_keypad, subscription, ...
    message: str


class Readiness(BaseModel):
    """The last readiness check of a booking's locks before the arrival (core.readiness)."""

    status: ReadinessStatus
    reasons: list[ReadinessReason] = Field(default_factory=list)
    checkedAt: datetime

    def to_api(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reasons": [r.model_dump() for r in self.reasons],
            "checkedAt": iso_utc(self.checkedAt),
        }


class PinRotation(BaseModel):
    """A new PIN on its way to the booking's locks while the old one keeps working.

    Each lock gets the new code as a second authorization (`Booking.rotationCodes`); only once it
    is confirmed on every lock does the booking switch to it (`pin`), and only then is the guest
    told and the old codes removed. The PIN is never shown before the switch."""

    model_config = ConfigDict(extra="ignore")

    pin: str
    requestedAt: datetime
    choices: int = 1  # PINs chosen for this rotation (another is chosen after a 409 conflict)


class Schedule(BaseModel):
    """When a staff code opens, in Nuki's own terms (`allowedWeekDays`, `allowedFromTime`,
    `allowedUntilTime`): a bitmask of weekdays (64 Monday ... 1 Sunday, 127 every day) and a daily
    window in the lock's local minutes (0/0: all day). Nuki applies it on the lock."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    weekDays: int = 127
    fromTime: int = 0
    untilTime: int = 0


class StaffPart(BaseModel):
    """What makes a stored booking a staff code (`core.staff`): the code of a person who keeps the
    rooms, on the locks of its rooms and the locks named, on a weekly schedule, from a date and
    until one (`openEnded`: until it is removed), never a guest's."""

    model_config = ConfigDict(extra="ignore")

    staffCodeId: str
    name: str
    roomIds: list[str] = Field(default_factory=list)
    smartlockIds: list[int] = Field(default_factory=list)
    schedule: Schedule = Field(default_factory=Schedule)
    allowedFromDate: str | None = None  # as the shop gave them (a date, or a date-time with offset)
    allowedUntilDate: str | None = None
    timezone: str = "UTC"
    openEnded: bool = False
    # A backup code (services.backup): one of a lock's pool, known to no one until given to a
    # booking (`usedBy`), removed after that booking's stay.
    kind: Literal["staff", "backup"] = "staff"
    usedBy: str | None = None
    usedAt: datetime | None = None


class BackupRequest(BaseModel):
    """`POST /bookings/{bookingId}/backup-codes`: the locks (none: each whose code is not confirmed)."""

    model_config = ConfigDict(extra="forbid")

    smartlockIds: (
        Annotated[list[Annotated[StrictInt, Field(ge=1, le=2**63 - 1)]], Field(min_length=1, max_length=5)] | None
    ) = None

    @field_validator("smartlockIds")
    @classmethod
    def _unique(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("must not repeat a lock")
        return value


class BackupCode(BaseModel):
    """A backup code a booking was given for one lock (its code there could not be confirmed in
    time, or an operator asked): the pool code's booking id and PIN."""

    model_config = ConfigDict(extra="ignore")

    smartlockId: int
    poolId: str
    pin: str
    assignedAt: datetime
    reason: str
    # Its code is on the lock as it should be (the pool code confirmed there, as its rounds last
    # found it: services.backup.BackupPools.mirror); a lock counts as covered only while it is.
    ok: bool = True

    def to_api(self) -> dict[str, Any]:
        return {
            "smartlockId": self.smartlockId,
            "pin": self.pin,
            "assignedAt": iso_utc(self.assignedAt),
            "reason": self.reason,
        }


class ActivityItem(BaseModel):
    id: str
    at: datetime
    smartlockId: int
    action: str
    trigger: str
    source: str
    success: bool
    state: str
    bookingId: str | None = None

    def to_api(self) -> dict[str, Any]:
        out = self.model_dump(mode="json", exclude={"bookingId"})
        out["at"] = iso_utc(self.at)
        return out
