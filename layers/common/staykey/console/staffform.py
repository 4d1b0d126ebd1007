"""What the console shows of a staff code (core.staff) and reads from its form: the weekly schedule
as people say it ("Mon-Fri 08:00-12:00", with en dashes), a row of the list, and the create form's fields read into
a `StaffCodeIn`, with each error beside the field it names (the service's `details` and pydantic's
alike), nothing created while there is one."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from staykey.console import i18n
from staykey.core.models import Booking, Room
from staykey.core.parts import Schedule
from staykey.core.staff import OPEN_END, StaffCodeIn, to_api
from staykey.edge.http import validation_details

# Nuki's weekday bits (allowedWeekDays), Monday first.
DAYS = (("Mon", 64), ("Tue", 32), ("Wed", 16), ("Thu", 8), ("Fri", 4), ("Sat", 2), ("Sun", 1))
EVERY_DAY = 127
DASH = "\u2013"  # an en dash, as the console's pages write ranges
# The form's fields, by the name the shop API gives them; an error naming another goes above the form.
FIELDS = (
    "staffCodeId",
    "name",
    "roomIds",
    "allowedWeekDays",
    "allowedFromTime",
    "allowedUntilTime",
    "allowedFromDate",
    "allowedUntilDate",
)
# The create form's most fields: one per room chosen (core.staff.MAX_STAFF_ROOMS), one per day, the rest.
MAX_FORM_FIELDS = 50 + len(DAYS) + len(FIELDS) + 1
_TIME = re.compile(r"([01]\d|2[0-3]):([0-5]\d)(:00)?")


def clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def days_text(mask: int, language: str) -> str:
    """The weekdays of a mask: runs of three or more as "Mon-Fri" (an en dash), the others one by one."""
    if mask & EVERY_DAY == EVERY_DAY:
        return i18n.translate(language, "every day")
    chosen = [n for n, (_, bit) in enumerate(DAYS) if mask & bit]
    runs: list[list[int]] = []
    for n in chosen:
        if runs and runs[-1][-1] == n - 1:
            runs[-1].append(n)
        else:
            runs.append([n])

    def name(n: int) -> str:
        return i18n.translate(language, DAYS[n][0])

    parts = []
    for run in runs:
        if len(run) >= 3:
            parts.append(f"{name(run[0])}{DASH}{name(run[-1])}")
        else:
            parts += [name(n) for n in run]
    return ", ".join(parts) or "-"


def schedule_text(schedule: Schedule, language: str) -> str:
    """A weekly schedule as people say it: "Mon-Fri 08:00-12:00" (en dashes), "every day (all day)"."""
    days = days_text(schedule.weekDays, language)
    if (schedule.fromTime, schedule.untilTime) == (0, 0):
        return f"{days} ({i18n.translate(language, 'all day')})"
    return f"{days} {clock(schedule.fromTime)}{DASH}{clock(schedule.untilTime)}"


@dataclass
class StaffRow:
    """A staff code as the console shows it: the stored code, its API shape (statuses `removing`
    and `removed`, per-lock states), its schedule in words, its rooms."""

    code: Booking
    api: dict[str, Any]
    schedule: str
    rooms: list[Room | str]

    @property
    def open_end(self) -> bool:
        return self.code.validUntil == OPEN_END


def row(code: Booking, rooms: dict[str, Room], language: str) -> StaffRow:
    assert code.staff is not None
    part = code.staff
    return StaffRow(code, to_api(code), schedule_text(part.schedule, language), [rooms.get(r, r) for r in part.roomIds])


@dataclass
class StaffForm:
    """The create form as the operator filled it in, and its errors by field ("": the form's)."""

    values: dict[str, Any] = field(
        default_factory=lambda: {
            **dict.fromkeys(FIELDS, ""),
            "roomIds": [],
            "allowedWeekDays": [bit for _, bit in DAYS],
        }
    )
    errors: dict[str, list[str]] = field(default_factory=dict)

    def add(self, details: list[dict[str, Any]] | None, message: str = "") -> None:
        """Errors as the service names them (`details`: field and message); none named: `message`."""
        for d in details or []:
            name = str(d.get("field") or "").split(".")[0]
            text = str(d.get("message") or "is not valid")
            key = name if name in FIELDS else ""
            self.errors.setdefault(key, []).append(text if key or not name else f"{name}: {text}")
        if not details and message:
            self.errors.setdefault("", []).append(message)

    def summary(self) -> str:
        return "; ".join(f"{key}: {m}" if key else m for key, messages in self.errors.items() for m in messages)


def read(raw: dict[str, list[str]]) -> tuple[StaffForm, StaffCodeIn | None]:
    """The form's fields as a new staff code (None while any field is wrong, each error named)."""
    form = StaffForm()

    def one(key: str) -> str:
        return (raw.get(key) or [""])[-1].strip()

    values = form.values
    for key in ("staffCodeId", "name", "allowedFromTime", "allowedUntilTime", "allowedFromDate", "allowedUntilDate"):
        values[key] = one(key)
    values["roomIds"] = [r for r in dict.fromkeys(v.strip() for v in raw.get("roomIds", [])) if r]
    bits = {bit for _, bit in DAYS}
    days = [int(v) for v in raw.get("allowedWeekDays", []) if v.isdigit() and int(v) in bits]
    values["allowedWeekDays"] = sorted(set(days), reverse=True)
    if len(days) != len(raw.get("allowedWeekDays", [])):
        form.add([{"field": "allowedWeekDays", "message": "is not a day of the week"}])
    elif not days:
        form.add([{"field": "allowedWeekDays", "message": "choose at least one day"}])
    body: dict[str, Any] = {
        "staffCodeId": values["staffCodeId"],
        "name": values["name"],
        "roomIds": values["roomIds"],
        "allowedWeekDays": sum(set(days)) or EVERY_DAY,  # none: said above, not twice
    }
    for key in ("allowedFromTime", "allowedUntilTime"):
        text = values[key]
        match = _TIME.fullmatch(text)
        if match:
            body[key] = int(match.group(1)) * 60 + int(match.group(2))
        elif text:
            form.add([{"field": key, "message": "is not a time of day (HH:MM)"}])
    for key in ("allowedFromDate", "allowedUntilDate"):
        if values[key]:
            body[key] = values[key]
    try:
        request = StaffCodeIn.model_validate(body)
    except ValidationError as exc:
        form.add([d for d in validation_details(exc) if d["field"].split(".")[0] not in form.errors])
        return form, None
    return form, (None if form.errors else request)


__all__ = ["DAYS", "MAX_FORM_FIELDS", "StaffForm", "StaffRow", "read", "row", "schedule_text"]
