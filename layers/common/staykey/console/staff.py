"""The console's staff codes (issue 16): the codes of the people who keep the rooms, through
`services.staff.StaffCodes`, the service the shop API's /staff-codes uses.

GET /console/staff-codes: the list, a page at a time, and the form for a new one (POSTed to the same
path: its errors beside its fields, nothing created while there is one); GET
/console/staff-codes/{id}: one, with its locks, its activity and what operators did to it; its
actions (rotate PIN, retry, remove, reveal PIN) confirmed first (GET .../confirm/{action}), then
POSTed with the session's CSRF token. Every action, a refused one too, is written to the audit log
under the staff code's booking id (`staff~<id>`); the PIN appears only in the answer to "reveal PIN",
never in a log.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import Response

from staykey.console import staffform
from staykey.console.staffform import StaffForm
from staykey.console.web import Redirect, Refused, Web, booking_id_from_path
from staykey.core import staff as core_staff
from staykey.core.models import ENDED, ID_PATTERN, Booking, BookingStatus
from staykey.edge.pagination import decode_cursor, encode_cursor
from staykey.errors import Conflict, NotFound, StayKeyError, ValidationFailed
from staykey.observability import logger
from staykey.services.audit import Audit, AuditEntry
from staykey.store import fanout

ACTIONS = {
    "rotate-pin": (
        "Rotate PIN",
        "A new PIN goes on every lock beside the old one; once all have it, the old one goes.",
    ),
    "retry": ("Retry", "Every failed lock is tried again."),
    "remove": ("Remove", "The staff code is removed from every lock: its PIN stops opening the doors."),
    "reveal-pin": ("Reveal PIN", "The PIN is shown to you once, and this is written to the audit log."),
}
"""The actions on a staff code the console offers: title, explanation."""
AUDITED = {"rotate-pin": "rotate_pin", "retry": "retry", "remove": "staff_code_remove", "reveal-pin": "reveal_pin"}
CREATE = "staff_code_create"
PAGE = 50
ACTIVITY_PAGE = 50
_CURSOR_FILTERS = {"staff": True}  # the shop API's list pages by the same cursor
_ID = re.compile(ID_PATTERN.strip("^$"))


def record(
    audit: Audit, actor: str, action: str, outcome: str = "ok", *, booking_id: str | None, detail: str | None = None
) -> AuditEntry:
    """An audit entry about a staff code (its booking id: `staff~<staffCodeId>`)."""
    return audit.record(actor, action, outcome, booking_id=booking_id, detail=detail)


class StaffPages:
    def __init__(self, web: Web) -> None:
        self.web = web
        app = web.app
        app.get("/console/staff-codes")(self.staff_list)
        app.post("/console/staff-codes")(self.create)
        app.get("/console/staff-codes/<staff_code_id>")(self.one)
        app.get("/console/staff-codes/<staff_code_id>/confirm/<action>")(self.confirm)
        app.post("/console/staff-codes/<staff_code_id>/<action>")(self.act)

    # ------------------------------------------------------------------ pages

    def staff_list(self) -> Response[str]:
        self.web.prepare()
        self.web.session()
        return self.list_page(StaffForm())

    def one(self, staff_code_id: str) -> Response[str]:
        self.web.prepare()
        self.web.session()
        return self.code_page(booking_id_from_path(staff_code_id))

    def confirm(self, staff_code_id: str, action: str) -> Response[str]:
        web = self.web
        web.prepare()
        web.session()
        if action not in ACTIONS:
            return web.error(404, "Page not found.")
        code = self.load(booking_id_from_path(staff_code_id))
        title, explanation = ACTIONS[action]
        row = staffform.row(code, {}, web.req.language)
        return web.render("staff_confirm.html", c=row.api, action=action, title=title, explanation=explanation)

    # ------------------------------------------------------------------ actions

    def act(self, staff_code_id: str, action: str) -> Response[str]:
        web = self.web
        web.prepare()
        if action not in ACTIONS:
            return web.error(404, "Page not found.")
        operator, _ = web.post_session()
        sid = booking_id_from_path(staff_code_id)
        service = self.service()
        code = self.load(sid)
        audit, actor = web.s.audit, operator.username
        if action == "reveal-pin":
            entry = record(audit, actor, AUDITED[action], booking_id=code.bookingId)
            logger.info("PIN revealed to an operator", staff_code_id=sid, operator=actor)
            return self.code_page(sid, revealed=code.pin, result=entry)
        calls: dict[str, Callable[[str], Any]] = {
            "rotate-pin": service.rotate_pin,
            "retry": service.retry,
            "remove": service.remove,
        }
        try:
            calls[action](sid)
            outcome, detail = "ok", None
        except StayKeyError as exc:
            outcome, detail = "refused", exc.message[:300]
        entry = record(audit, actor, AUDITED[action], outcome, booking_id=code.bookingId, detail=detail)
        logger.info("console action", staff_code_id=sid, action=action, outcome=outcome, operator=actor)
        raise Redirect(web.req.url(f"/console/staff-codes/{sid}", result=entry.id))

    def create(self) -> Response[str]:
        web = self.web
        web.prepare()
        operator, _ = web.post_session(staffform.MAX_FORM_FIELDS)
        service = self.service()
        form, request = staffform.read(web.form_lists(staffform.MAX_FORM_FIELDS))
        sid = str(form.values["staffCodeId"])
        booking_id = core_staff.booking_id(sid) if _ID.fullmatch(sid) else None
        code, created = None, False
        if request is not None:
            try:
                code, created = service.create(request)
            except ValidationFailed as exc:
                form.add(exc.details, exc.message)
            except Conflict as exc:
                form.add([{"field": "staffCodeId", "message": exc.message}])
            except StayKeyError as exc:  # Nuki or the store out of reach: said above the form
                form.add(None, exc.message)
        actor = operator.username
        if code is None:
            record(web.s.audit, actor, CREATE, "refused", booking_id=booking_id, detail=form.summary()[:300])
            logger.info("console action", staff_code_id=sid, action="create", outcome="refused", operator=actor)
            return self.list_page(form, status=422)
        again = None if created else "it existed already, made by the same request"
        entry = record(web.s.audit, actor, CREATE, booking_id=code.bookingId, detail=again)
        logger.info("console action", staff_code_id=sid, action="create", outcome="ok", operator=actor)
        raise Redirect(web.req.url(f"/console/staff-codes/{sid}", result=entry.id))

    # ------------------------------------------------------------------ reading

    def service(self) -> Any:
        """The staff codes' service, or a 404 page where the console has none."""
        factory = self.web.s.staff_codes
        if factory is None:
            raise Refused(404, "Page not found.")
        return factory()

    def load(self, staff_code_id: str) -> Booking:
        """The staff code, or a 404 page."""
        try:
            code: Booking = self.service().get(staff_code_id)
        except NotFound:
            raise Refused(404, "Page not found.") from None
        return code

    def list_page(self, form: StaffForm, status: int = 200) -> Response[str]:
        web = self.web
        service = self.service()
        q = web.query(("cursor",))
        after = decode_cursor(q.get("cursor") or None, _CURSOR_FILTERS, _ID)
        (codes, last), room_list = fanout.gather(lambda: service.page(PAGE, after), web.s.store.list_rooms)
        rooms = {room.roomId: room for room in room_list}
        return web.render(
            "staff_codes.html",
            status=status,
            rows=[staffform.row(code, rooms, web.req.language) for code in codes],
            cursor=encode_cursor(last, _CURSOR_FILTERS) if last is not None else None,
            paged=bool(q.get("cursor")),
            rooms=sorted(room_list, key=lambda r: r.name),
            days=staffform.DAYS,
            form=form,
        )

    def code_page(
        self, staff_code_id: str, *, revealed: str | None = None, result: AuditEntry | None = None
    ) -> Response[str]:
        web = self.web
        s = web.s
        q = web.query(("cursor", "result"))
        booking_id = core_staff.booking_id(staff_code_id)
        code, entries, (items, cursor), room_list = fanout.gather(
            lambda: self.load(staff_code_id),
            lambda: s.audit.for_booking(booking_id),
            lambda: s.activity.page_for_booking(booking_id, ACTIVITY_PAGE, q.get("cursor") or None, known=True),
            s.store.list_rooms,
        )
        if result is None:
            wanted = q.get("result")
            result = next((entry for entry in entries if entry.id == wanted), None)
        rooms = {room.roomId: room for room in room_list}
        ended = code.status in ENDED
        available = {
            "rotate-pin": not ended,
            "retry": code.status == BookingStatus.FAILED,
            "remove": not ended,
            "reveal-pin": not ended,
        }
        return web.render(
            "staff_code.html",
            row=staffform.row(code, rooms, web.req.language),
            rotation=code.rotation_api(),
            revealed=revealed,
            result=result,
            entries=entries,
            items=items,
            cursor=cursor,
            lock_rooms={lk: room for room in room_list for lk in room.smartlockIds},
            actions=ACTIONS,
            available=available,
        )


__all__ = ["ACTIONS", "StaffPages", "record"]
