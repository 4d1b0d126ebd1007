"""Staff codes (issue 16): the keypad codes of the people who keep the rooms. Recurring access,
not a stay: a name, the locks of some rooms (and locks named directly), a weekly schedule in Nuki's
own terms (`allowedWeekDays`, `allowedFromTime`, `allowedUntilTime`, applied by the lock) and
optional first and last dates.

A staff code is stored as a booking (`Booking.staff` set, its id `staff~<staffCodeId>`, which no
shop booking id can be): the engine that puts a guest's code on the locks, confirms it, repairs
it and takes it off again does the same for it, with its PIN claimed on each lock (so no guest is
ever given it) and its own name on the locks. It has no guest, no email, no shop event, no
readiness check, and it is in no booking list. What differs is here: what the shop sends, the
window, the commands, the answer.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StrictInt, ValidationInfo, field_validator, model_validator

from staykey.core import commands
from staykey.core.models import (
    ID_PATTERN,
    Booking,
    BookingStatus,
    LockState,
    LockStatus,
    Schedule,
    StaffPart,
    StayPoint,
    Strict,
    clean_text,
    stay_point_json,
)
from staykey.core.pins import AUTH_NAME_PREFIX, MAX_AUTH_NAME, auth_name
from staykey.core.timeutil import iana_zone, iso_utc, local_to_utc, zone
from staykey.errors import ValidationFailed

STAFF_PREFIX = "staff~"
POOL_PREFIX = "pool~"  # a lock's backup codes (services.backup): `pool~<smartlockId>.<serial>`
# Where a staff code with no last date ends on the lock: Nuki's update needs an end (a full
# restriction set, forum 40095), so "until it is removed" is written as this far instant.
OPEN_END = datetime(2100, 1, 1, tzinfo=UTC)
MAX_STAFF_LOCKS = 50
MAX_STAFF_ROOMS = 50
ALL_WEEK_DAYS = 127
STAFF_ROOM = "~staff"  # the `roomId` of a staff code's booking item (no room's id can be it)

Name = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(clean_text)]
RoomIds = Annotated[list[Annotated[str, Field(pattern=ID_PATTERN)]], Field(max_length=MAX_STAFF_ROOMS)]
LockIds = Annotated[list[Annotated[StrictInt, Field(ge=1, le=2**63 - 1)]], Field(max_length=MAX_STAFF_LOCKS)]
WeekDays = Annotated[StrictInt, Field(ge=1, le=ALL_WEEK_DAYS)]
Minutes = Annotated[StrictInt, Field(ge=0, le=1439)]


def _zone(value: str) -> str:
    iana_zone(value)
    return value


Zone = Annotated[str, Field(max_length=64), AfterValidator(_zone)]


def _unique(value: list[Any]) -> list[Any]:
    if len(set(value)) != len(value):
        raise ValueError("must not repeat an id")
    return value


def _times(from_time: int | None, until_time: int | None) -> None:
    """A daily window: all day (0/0), or an end after its start on the same day."""
    start, end = from_time or 0, until_time or 0
    if (start, end) != (0, 0) and end <= start:
        raise ValueError(
            f"must be after allowedFromTime ({start // 60:02d}:{start % 60:02d}), or both 0 for all day "
            "(a window over midnight is two staff codes)"
        )


def _addressable(value: str) -> str:
    if set(value) == {"."}:
        raise ValueError("must not be only dots (no client can address /staff-codes/. or /staff-codes/..)")
    return value


class StaffCodeIn(Strict):
    """`POST /staff-codes`: a new staff code."""

    staffCodeId: Annotated[str, Field(pattern=ID_PATTERN), AfterValidator(_addressable)]
    name: Name
    roomIds: RoomIds = Field(default_factory=list)
    smartlockIds: LockIds = Field(default_factory=list)
    allowedWeekDays: WeekDays = ALL_WEEK_DAYS
    allowedFromTime: Minutes = 0
    # Checked with allowedFromTime even when left out (0: a window that would end at midnight).
    allowedUntilTime: Minutes = Field(default=0, validate_default=True)
    allowedFromDate: StayPoint | None = None
    allowedUntilDate: StayPoint | None = None
    timezone: Zone | None = None

    @field_validator("roomIds", "smartlockIds")
    @classmethod
    def _ids_unique(cls, value: list[Any]) -> list[Any]:
        return _unique(value)

    @field_validator("allowedUntilTime")
    @classmethod
    def _until_time(cls, value: int, info: ValidationInfo) -> int:
        if "allowedFromTime" in info.data:
            _times(info.data["allowedFromTime"], value)
        return value

    def request_hash(self) -> str:
        """What makes two requests "the same": the body, normalised."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def schedule(self) -> Schedule:
        return Schedule(weekDays=self.allowedWeekDays, fromTime=self.allowedFromTime, untilTime=self.allowedUntilTime)


class StaffCodePatch(Strict):
    """`PATCH /staff-codes/{id}`: any of the fields; `allowedFromDate`/`allowedUntilDate` null
    for none (from its creation; until it is removed)."""

    name: Name | None = None
    roomIds: RoomIds | None = None
    smartlockIds: LockIds | None = None
    allowedWeekDays: WeekDays | None = None
    allowedFromTime: Minutes | None = None
    allowedUntilTime: Minutes | None = None
    allowedFromDate: StayPoint | None = None
    allowedUntilDate: StayPoint | None = None
    timezone: Zone | None = None

    @field_validator("roomIds", "smartlockIds")
    @classmethod
    def _ids_unique(cls, value: list[Any] | None) -> list[Any] | None:
        return value if value is None else _unique(value)

    @model_validator(mode="after")
    def _something(self) -> StaffCodePatch:
        if not self.model_fields_set:
            raise ValueError("give at least one field to change")
        for key in self.model_fields_set - {"allowedFromDate", "allowedUntilDate"}:
            if getattr(self, key) is None:
                raise ValueError(f"{key} must not be null")
        return self

    def applied_to(self, part: StaffPart) -> StaffPart:
        """The staff code's part after this change (times checked together: one may be new)."""
        given = self.model_fields_set
        schedule = Schedule(
            weekDays=self.allowedWeekDays if "allowedWeekDays" in given else part.schedule.weekDays,
            fromTime=self.allowedFromTime if "allowedFromTime" in given else part.schedule.fromTime,
            untilTime=self.allowedUntilTime if "allowedUntilTime" in given else part.schedule.untilTime,
        )
        try:
            _times(schedule.fromTime, schedule.untilTime)
        except ValueError as exc:
            raise ValidationFailed(
                "the schedule cannot exist", details=[{"field": "allowedUntilTime", "message": str(exc)}]
            ) from None
        out = part.model_copy(deep=True)
        out.schedule = schedule
        for key in ("name", "roomIds", "smartlockIds", "timezone"):
            if key in given:
                setattr(out, key, getattr(self, key))
        for key in ("allowedFromDate", "allowedUntilDate"):
            if key in given:
                value = getattr(self, key)
                setattr(out, key, None if value is None else stay_point_json(value))
        return out


def booking_id(staff_code_id: str) -> str:
    return STAFF_PREFIX + staff_code_id


def staff_auth_name(staff_code_id: str, attempt: int = 0) -> str:
    """Its name on the locks: `SK S:<staffCodeId>` when that fits Nuki's 20 characters (`:` is in
    no booking id, so no booking's name is ever it), else a booking id's hashed form."""
    name = f"{AUTH_NAME_PREFIX}S:{staff_code_id}"
    if attempt == 0 and len(name) <= MAX_AUTH_NAME:
        return name
    return auth_name(booking_id(staff_code_id), attempt)


def is_staff(booking_id: str) -> bool:
    return booking_id.startswith(STAFF_PREFIX)


def is_pool(booking_id: str) -> bool:
    return booking_id.startswith(POOL_PREFIX)


def new_pool_code(smartlock_id: int, serial: int, pin: str, name_attempt: int, now: datetime) -> Booking:
    """One of a lock's backup codes (services.backup): every day, all day, from now until it is
    removed, under a name of its own, known to no one until a booking is given it."""
    key = f"{smartlock_id}.{serial:04d}"
    part = StaffPart(staffCodeId=key, name=f"backup code {serial}", smartlockIds=[smartlock_id], kind="backup")
    code = new_staff_code(part, [smartlock_id], pin, name_attempt, now, "")
    code.bookingId = POOL_PREFIX + key
    name = f"{AUTH_NAME_PREFIX}P:{key}"
    code.authName = (
        name if name_attempt == 0 and len(name) <= MAX_AUTH_NAME else auth_name(code.bookingId, name_attempt)
    )
    return code


def part_of(request: StaffCodeIn, zone_name: str) -> StaffPart:
    return StaffPart(
        staffCodeId=request.staffCodeId,
        name=request.name,
        roomIds=list(request.roomIds),
        smartlockIds=list(request.smartlockIds),
        schedule=request.schedule(),
        allowedFromDate=None if request.allowedFromDate is None else stay_point_json(request.allowedFromDate),
        allowedUntilDate=None if request.allowedUntilDate is None else stay_point_json(request.allowedUntilDate),
        timezone=zone_name,
        openEnded=request.allowedUntilDate is None,
    )


def _instant(text: str, tz_name: str, end: bool) -> datetime:
    """A date (its start in the zone; a last date: the end of that day) or a date-time, in UTC."""
    value = commands.stay_point(text)
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    day = value + timedelta(days=1) if end else value
    return local_to_utc(day, time(0, 0), zone(tz_name))


def window(part: StaffPart, created: datetime, now: datetime) -> tuple[datetime, datetime]:
    """validFrom and validUntil (UTC): from its first date (its creation without one) to the end of
    its last date (OPEN_END without one); ValidationFailed naming the field if that cannot be."""
    start = created.replace(second=0, microsecond=0)
    if part.allowedFromDate is not None:
        start = _instant(part.allowedFromDate, part.timezone, end=False)
    end = OPEN_END if part.allowedUntilDate is None else _instant(part.allowedUntilDate, part.timezone, end=True)
    details = []
    if start - now > timedelta(days=3 * 366):
        details.append({"field": "allowedFromDate", "message": "is more than three years away"})
    elif part.allowedUntilDate is not None:
        problem = None
        if end <= start and part.allowedFromDate is not None:
            problem = f"must be after allowedFromDate ({iso_utc(end)} is not after {iso_utc(start)})"
        elif end <= now:
            problem = f"is in the past ({iso_utc(end)})"  # also without a first date (helper-32, F9)
        elif end - start > timedelta(days=3 * 366):
            problem = "may be at most three years after allowedFromDate (leave it out for no end)"
        if problem:
            details.append({"field": "allowedUntilDate", "message": problem})
    if details:
        raise ValidationFailed("the staff code's dates do not make a valid window", details=details)
    return start, end


def new_staff_code(
    part: StaffPart, locks: list[int], pin: str, name_attempt: int, now: datetime, request_hash: str
) -> Booking:
    """A staff code's booking: its PIN reserved, on its way to the locks at once (Nuki applies its
    first date)."""
    valid_from, valid_until = window(part, now, now)
    bid = booking_id(part.staffCodeId)
    return Booking(
        bookingId=bid,
        roomId=STAFF_ROOM,
        status=BookingStatus.PROVISIONING,
        pin=pin,
        pinHistory=[pin],
        authName=staff_auth_name(part.staffCodeId, name_attempt),
        validFrom=valid_from,
        validUntil=valid_until,
        checkIn=stay_point_json(valid_from),
        checkOut=stay_point_json(valid_until),
        timezone=part.timezone,
        notifyGuest=False,
        locks=[LockState(smartlockId=i) for i in locks],
        createdAt=now,
        updatedAt=now,
        provisionAt=now,
        requestHash=request_hash,
        staff=part,
    )


def change(
    b: Booking,
    change: StaffCodePatch,
    locks: tuple[int, ...] | None,
    pin: str | None,
    rotation_pin: str | None,
    now: datetime,
) -> commands.Claims:
    """A PATCH applied to the staff code as read now: its new name, schedule or dates, and its
    locks (`locks`; None: the ones it has) with `commands.patch` moving its codes. Its PIN stays
    (`pin`: another, when its own was someone else's on a new lock), and so does a rotation's
    (`rotation_pin` likewise)."""
    assert b.staff is not None
    part = change.applied_to(b.staff)
    valid_from, valid_until = window(part, b.createdAt, now)
    present = tuple(lk.smartlockId for lk in b.locks if lk.desired == "present")
    resolved = commands.Change(
        check_in=valid_from,
        check_out=valid_until,
        valid_from=valid_from,
        valid_until=valid_until,
        room=None,
        locks=present if locks is None else locks,
        pin=pin or b.pin,
        lead=timedelta(0),
        rotation_pin=rotation_pin or (b.rotation.pin if b.rotation else None),
    )
    out = commands.patch(b, resolved, now)
    b.staff = part  # a new schedule differs from what was sent: the engine sends it (core.decide)
    b.timezone = part.timezone
    return out


def staff_status(status: str) -> str:
    """A staff code's status as it is answered: a booking's, but removing and removed for its end."""
    return {"revoking": "removing", "revoked": "removed"}.get(status, status)


def _lock_api(lock: LockState) -> dict[str, Any]:
    """A lock of the staff code: one it is leaving (a change of rooms) says so (helper-32, F8)."""
    out = lock.to_api()
    if lock.desired == "absent":
        out["status"] = "removing"
    return out


def to_api(b: Booking) -> dict[str, Any]:
    """A staff code as the shop reads it."""
    part = b.staff
    assert part is not None
    booking = b.to_api()
    status = booking["status"]
    return {
        "staffCodeId": part.staffCodeId,
        "name": part.name,
        "status": staff_status(status),
        "pin": b.pin,
        "roomIds": part.roomIds,
        "smartlockIds": part.smartlockIds,
        "allowedWeekDays": part.schedule.weekDays,
        "allowedFromTime": part.schedule.fromTime,
        "allowedUntilTime": part.schedule.untilTime,
        "allowedFromDate": part.allowedFromDate,
        "allowedUntilDate": part.allowedUntilDate,
        "timezone": part.timezone,
        "validFrom": booking["validFrom"],
        "validUntil": None if part.allowedUntilDate is None else booking["validUntil"],
        "locks": [_lock_api(lk) for lk in b.locks if lk.status != LockStatus.REMOVED or lk.desired == "present"],
        "pinRotation": booking["pinRotation"],
        "statusReason": "its last date passed" if b.statusReason == "stay ended" else b.statusReason,
        "createdAt": booking["createdAt"],
        "updatedAt": booking["updatedAt"],
    }


__all__ = [
    "OPEN_END",
    "POOL_PREFIX",
    "STAFF_PREFIX",
    "StaffCodeIn",
    "StaffCodePatch",
    "booking_id",
    "change",
    "is_pool",
    "is_staff",
    "new_pool_code",
    "new_staff_code",
    "part_of",
    "staff_status",
    "to_api",
    "window",
]
