"""The console's pages (GET, a verified session each): Today, the bookings (a filtered list, one
booking with its timeline, the confirmation of an action), the locks (all, and one with what was
not a guest's on it), the activity across locks, the audit log."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.event_handler import Response

from staykey.console.auth import Operator
from staykey.console.web import Refused, Web, booking_id_from_path
from staykey.core.models import ID_PATTERN, BookingStatus, LockStatus
from staykey.core.timeutil import zone
from staykey.edge.pagination import Query
from staykey.errors import NotFound, StayKeyError
from staykey.services.search import BookingFilter

ACTIONS = {
    "checkout": ("Early checkout", "The PIN stops working now and is removed from every lock."),
    "cancel": ("Cancel booking", "The booking is cancelled and its code removed from every lock."),
    "resend-email": ("Re-send email", "The guest gets the email with their code again."),
    "retry": ("Retry", "Every failed lock is tried again."),
    "rotate-pin": (
        "Rotate PIN",
        "A new PIN goes on every lock beside the old one; once all have it, the guest is told and the old one goes.",
    ),
    "reveal-pin": ("Reveal PIN", "The PIN is shown to you once, and this is written to the audit log."),
    "give-backup-code": (
        "Give backup code",
        "Each keypad lock the guest's code is not confirmed on gets one of its backup codes for this booking.",
    ),
}
"""The actions on a booking the console offers (`console.actions` carries them out): title, explanation."""
TRANSITIONAL = {BookingStatus.PROVISIONING, BookingStatus.REVOKING}


class Pages:
    def __init__(self, web: Web) -> None:
        self.web = web
        app = web.app
        app.get("/console/today")(self.today)
        app.get("/console/bookings")(self.bookings)
        app.get("/console/bookings/<booking_id>")(self.booking)
        app.get("/console/bookings/<booking_id>/timeline")(self.booking_timeline)
        app.get("/console/bookings/<booking_id>/confirm/<action>")(self.confirm)
        app.get("/console/locks")(self.locks)
        app.get("/console/locks/<lock_id>")(self.lock)
        app.get("/console/activity")(self.activity)
        app.get("/console/audit")(self.audit)

    # ------------------------------------------------------------------ routes

    def today(self) -> Response[str]:
        web = self.web
        web.prepare()
        web.session()
        now = web.s.clock.now()
        return web.render("today.html", today=web.s.views.today(now), statuses=BookingStatus)

    def bookings(self) -> Response[str]:
        self.web.prepare()
        self.web.session()
        return self.bookings_page()

    def booking(self, booking_id: str) -> Response[str]:
        self.web.prepare()
        operator = self.web.session()
        return self.booking_page(booking_id_from_path(booking_id), operator)

    def booking_timeline(self, booking_id: str) -> Response[str]:
        self.web.prepare()
        self.web.session()
        page = self.booking_view(booking_id_from_path(booking_id))
        b = page.booking
        return self.web.render("timeline.html", b=b, events=page.events, transitional=b.status in TRANSITIONAL)

    def confirm(self, booking_id: str, action: str) -> Response[str]:
        web = self.web
        web.prepare()
        web.session()
        if action not in ACTIONS:
            return web.error(404, "Page not found.")
        b = self.load_booking(booking_id_from_path(booking_id))
        title, explanation = ACTIONS[action]
        return web.render("confirm.html", b=b, action=action, title=title, explanation=explanation)

    def locks(self) -> Response[str]:
        web = self.web
        web.prepare()
        web.session()
        return web.render("locks.html", locks=web.s.views.all_locks())

    def lock(self, lock_id: str) -> Response[str]:
        from staykey.services.locks import lock_id_from_path

        web = self.web
        web.prepare()
        web.session()
        q = web.query(("cursor",))
        try:
            view, items, cursor = web.s.views.lock(lock_id_from_path(lock_id), q.get("cursor"))
        except NotFound:
            return web.error(404, "Page not found.")
        return web.render("lock.html", lock=view, items=items, cursor=cursor)

    def activity(self) -> Response[str]:
        web = self.web
        web.prepare()
        web.session()
        q = web.query(("lock", "booking", "failed", "cursor"))
        lock_raw, booking_raw = q.get("lock") or None, q.get("booking") or None
        lock_id = int(lock_raw) if lock_raw and lock_raw.isdigit() and len(lock_raw) < 19 else None
        booking_id = booking_raw if booking_raw and re.fullmatch(ID_PATTERN, booking_raw) else None
        failed = q.get("failed") == "1"
        items, cursor = web.s.activity.feed(
            50, q.get("cursor"), smartlock_id=lock_id, booking_id=booking_id, failed_only=failed
        )
        rooms = {lk: room for room in web.s.store.list_rooms() for lk in room.smartlockIds}
        return web.render(
            "activity.html",
            items=items,
            cursor=cursor,
            rooms=rooms,
            lock=lock_id,
            booking=booking_id,
            failed=failed,
        )

    def audit(self) -> Response[str]:
        web = self.web
        web.prepare()
        web.session()
        q = web.query(("cursor",))
        entries, cursor = web.s.audit.recent(50, q.get("cursor"))
        return web.render("audit.html", entries=entries, cursor=cursor)

    # ------------------------------------------------------------------ one booking

    def load_booking(self, booking_id: str) -> Any:
        """The booking, or a 404 page."""
        try:
            return self.web.s.bookings().get(booking_id)
        except StayKeyError:
            raise Refused(404, "Page not found.") from None

    def booking_view(self, booking_id: str) -> Any:
        """The booking, its room, audit entries and timeline (console.views), or a 404."""
        page = self.web.s.views.booking(booking_id, self.web.s.clock.now())
        if page is None:
            raise Refused(404, "Page not found.")
        return page

    def booking_page(
        self, booking_id: str, operator: Operator, *, revealed: str | None = None, result: Any = None, status: int = 200
    ) -> Response[str]:
        page = self.booking_view(booking_id)
        b = page.booking
        if result is None:
            wanted = self.web.app.current_event.get_query_string_value(name="result")
            result = next((entry for entry in page.audit if entry.id == wanted), None)
        return self.web.render(
            "booking.html",
            status=status,
            b=b,
            room=page.room,
            events=page.events,
            revealed=revealed,
            result=result,
            transitional=b.status in TRANSITIONAL,
            actions=ACTIONS,
            available=_available(b, room=page.room, backups=self.web.s.backup_pools is not None),
        )

    # ------------------------------------------------------------------ the bookings list

    def bookings_page(self) -> Response[str]:
        web = self.web
        q = web.query(("room", "status", "from", "to", "guest", "cursor"))
        tz = zone(web.s.settings.console_timezone)
        room = q.get("room") or None
        status = q.get("status") or None
        guest = (q.get("guest") or "").strip() or None
        errors: list[str] = []
        start = end = None
        try:
            start = _local_date(q.get("from"), tz)
            end = _local_date(q.get("to"), tz, next_day=True)
        except ValueError as exc:  # a filter that is not a day: said on the page, no list
            errors.append(str(exc))
        params: dict[str, Any] = {}
        if room:
            params["roomId"] = room
        if status:
            params["status"] = status
        if start:
            params["from"] = start.isoformat()
        if end:
            params["to"] = end.isoformat()
        if guest:
            params["guest"] = guest
        page_items: list[Any] = []
        next_cursor = None
        try:
            if not errors:
                f = BookingFilter.from_query(Query(params, None, list(params)))
                page = web.s.search.search(f, 50, q.get("cursor") or None)
                page_items, next_cursor = page.items, page.next_cursor
        except StayKeyError as exc:
            errors = [f"{d['field']}: {d['message']}" for d in exc.details] or [exc.message]
        rooms = sorted(web.s.store.list_rooms(), key=lambda r: r.name)
        form = {"room": room or "", "status": status or "", "from": q.get("from") or "", "to": q.get("to") or ""}
        form["guest"] = guest or ""
        return web.render(
            "bookings.html",
            status=422 if errors else 200,
            bookings=page_items,
            cursor=next_cursor,
            rooms=rooms,
            statuses=[s.value for s in BookingStatus],
            form=form,
            errors=errors,
            paged=bool(q.get("cursor")),
        )


def _local_date(raw: str | None, tz: Any, next_day: bool = False) -> datetime | None:
    """A day of the filter form in the console's zone, as the UTC instant it starts (`next_day`:
    the instant it ends). None: no filter. ValueError naming the filter: not such a day."""
    if not raw:
        return None
    name = "to" if next_day else "from"
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
            raise ValueError
        day = datetime.strptime(raw, "%Y-%m-%d")
        if next_day:
            day += timedelta(days=1)
        return day.replace(tzinfo=tz).astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: a day at the calendar's edge, in a zone
        raise ValueError(f"{name}: {raw[:40]!r} is not a day from 0002-01-01 to 9999-12-30 (YYYY-MM-DD)") from None


def backup_locks(b: Any) -> list[int]:
    """The booking's keypad locks its code is not confirmed on and it has no backup code for: the
    locks "Give backup code" asks one for (services.backup.BackupPools.assign)."""
    given = {g.smartlockId for g in b.backups}
    return [
        lk.smartlockId
        for lk in b.locks
        if lk.desired == "present"
        and lk.access == "keypad"
        and not (lk.status == LockStatus.ACTIVE and lk.op is None)
        and lk.smartlockId not in given
    ]


def _available(b: Any, room: Any = None, backups: bool = False) -> dict[str, bool]:
    ended = b.status in (BookingStatus.REVOKING, BookingStatus.REVOKED, BookingStatus.CANCELLED)
    pooled = backups and room is not None and room.backupCodes and b.status != BookingStatus.SCHEDULED
    return {
        "checkout": not ended,
        "cancel": not ended,
        "resend-email": b.status == BookingStatus.ACTIVE and b.notifyGuest and b.guest is not None,
        "retry": b.status == BookingStatus.FAILED,
        "rotate-pin": not ended,
        "reveal-pin": True,
        "give-backup-code": bool(pooled) and not ended and bool(backup_locks(b)),
    }
