"""The console's actions on a booking (POST /console/bookings/{id}/{action}, a verified session and
its CSRF token): each goes through the service the shop API uses and is written to the audit log
with its outcome; "reveal PIN" answers with the booking page showing the PIN and the booking's
backup codes, and is audited too; "give backup code" asks `services.backup` for one on each keypad
lock the code is not confirmed on (its 409s, such as no code ready, are the action's refusal)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import Response

from staykey.console.auth import Operator
from staykey.console.pages import ACTIONS, Pages, backup_locks
from staykey.console.web import Redirect, Web, booking_id_from_path
from staykey.errors import Conflict, StayKeyError
from staykey.observability import logger


class Actions:
    def __init__(self, web: Web, pages: Pages) -> None:
        self.web = web
        self.pages = pages
        web.app.post("/console/bookings/<booking_id>/<action>")(self.act)

    def act(self, booking_id: str, action: str) -> Response[str]:
        web = self.web
        web.prepare()
        if action not in ACTIONS or (action == "give-backup-code" and web.s.backup_pools is None):
            return web.error(404, "Page not found.")
        operator, _ = web.post_session()
        return self.carry_out(booking_id_from_path(booking_id), action, operator)

    def carry_out(self, booking_id: str, action: str, operator: Operator) -> Response[str]:
        s, pages = self.web.s, self.pages
        bookings = s.bookings()
        audit_action = action.replace("-", "_")
        if action == "reveal-pin":
            b = pages.load_booking(booking_id)
            entry = s.audit.record(operator.username, "reveal_pin", booking_id=booking_id)
            logger.info("PIN revealed to an operator", booking_id=booking_id, operator=operator.username)
            return pages.booking_page(booking_id, operator, revealed=b.pin, result=entry)
        calls: dict[str, Callable[[str], Any]] = {
            "checkout": bookings.checkout,
            "cancel": bookings.cancel,
            "resend-email": bookings.resend_email,
            "retry": bookings.retry,
            "rotate-pin": bookings.rotate_pin,
            "give-backup-code": self.give_backup_code,
        }
        pages.load_booking(booking_id)
        call = calls[action]
        try:
            call(booking_id)
            outcome, detail = "ok", None
        except StayKeyError as exc:
            outcome, detail = "refused", exc.message[:300]
        entry = s.audit.record(operator.username, audit_action, outcome, booking_id=booking_id, detail=detail)
        logger.info("console action", booking_id=booking_id, action=action, outcome=outcome, operator=operator.username)
        raise Redirect(self.web.req.url(f"/console/bookings/{booking_id}", result=entry.id))

    def give_backup_code(self, booking_id: str) -> Any:
        from staykey.services.backup import BACKUP_REASON_OPERATOR

        pools = self.web.s.backup_pools
        assert pools is not None
        wanted = backup_locks(self.pages.load_booking(booking_id))
        if not wanted:
            raise Conflict("every keypad lock of the booking has its code confirmed or a backup code")
        return pools().assign(booking_id, wanted, BACKUP_REASON_OPERATOR)
