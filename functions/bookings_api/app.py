"""GET /bookings: find bookings (filters and cursor pages, see staykey.services.search);
GET, PATCH and DELETE /bookings/{bookingId}: read, change and cancel a booking;
POST /bookings/{bookingId}/resend-email and /retry: tell the guest again, try a failed booking again;
POST /bookings/{bookingId}/rotate-pin: give the booking a new PIN (202; it takes effect once confirmed);
POST /bookings/{bookingId}/backup-codes: give the guest backup codes (services.backup);
GET /bookings/{bookingId}/activity: what the guest's code did on the locks, newest first;
/staff-codes...: the codes of the people who keep the rooms (staykey.services.staff): list, create,
read, change, remove, rotate the PIN, retry, activity."""

from __future__ import annotations

import re
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from staykey import wiring
from staykey.core.models import ID_PATTERN, BookingPatch, RotatePinRequest
from staykey.edge.http import make_resolver, parse_body, parse_optional_body, respond
from staykey.edge.pagination import Query
from staykey.errors import NotFound
from staykey.observability import logger, tracer

app = make_resolver()


def _booking_id(raw: str) -> str:
    if not re.match(ID_PATTERN, raw):
        raise NotFound(f"booking {raw!r} does not exist")
    logger.append_keys(booking_id=raw)
    return raw


def _query(allowed: tuple[str, ...], repeatable: tuple[str, ...] = ()) -> Query:
    event = app.current_event
    return Query(event.query_string_parameters, event.multi_value_query_string_parameters, allowed, repeatable)


@app.get("/bookings")
def list_bookings() -> Any:
    from staykey.services.search import LIMIT_DEFAULT, LIMIT_MAX, PARAMETERS, BookingFilter

    q = _query(PARAMETERS, repeatable=("status",))
    limit = q.limit(LIMIT_DEFAULT, LIMIT_MAX)
    page = wiring.search().search(BookingFilter.from_query(q), limit, q.get("cursor"))
    return respond(200, page.to_api())


@app.post("/bookings/<bookingId>/resend-email")
def resend_email(bookingId: str) -> Any:
    return respond(200, wiring.bookings().resend_email(_booking_id(bookingId)).to_api())


@app.post("/bookings/<bookingId>/retry")
def retry_booking(bookingId: str) -> Any:
    return respond(200, wiring.bookings().retry(_booking_id(bookingId)).to_api())


@app.post("/bookings/<bookingId>/rotate-pin")
def rotate_pin(bookingId: str) -> Any:
    booking_id = _booking_id(bookingId)
    parse_optional_body(app, RotatePinRequest)
    return respond(202, wiring.bookings().rotate_pin(booking_id).to_api())


@app.post("/bookings/<bookingId>/backup-codes")
def give_backup_codes(bookingId: str) -> Any:
    """A backup code for each lock named (or each whose code is not confirmed), from its pool."""
    from staykey.core.parts import BackupRequest
    from staykey.services.backup import BACKUP_REASON_OPERATOR

    booking_id = _booking_id(bookingId)
    request = parse_optional_body(app, BackupRequest)
    locks = request.smartlockIds if request is not None else None
    return respond(200, wiring.backup_pools().assign(booking_id, locks, BACKUP_REASON_OPERATOR).to_api())


@app.get("/bookings/<bookingId>")
def get_booking(bookingId: str) -> Any:
    return respond(200, wiring.bookings().get(_booking_id(bookingId)).to_api())


@app.patch("/bookings/<bookingId>")
def patch_booking(bookingId: str) -> Any:
    booking_id = _booking_id(bookingId)
    change = parse_body(app, BookingPatch)
    return respond(200, wiring.bookings().patch(booking_id, change).to_api())


@app.delete("/bookings/<bookingId>")
def cancel_booking(bookingId: str) -> Any:
    return respond(200, wiring.bookings().cancel(_booking_id(bookingId)).to_api())


@app.get("/bookings/<bookingId>/activity")
def get_booking_activity(bookingId: str) -> Any:
    from staykey.services.activity import ACTIVITY_LIMIT_DEFAULT, ACTIVITY_LIMIT_MAX

    booking_id = _booking_id(bookingId)
    q = _query(("limit", "cursor"))
    limit = q.limit(ACTIVITY_LIMIT_DEFAULT, ACTIVITY_LIMIT_MAX)
    items, cursor = wiring.activity().page_for_booking(booking_id, limit, q.get("cursor"))
    return respond(200, {"items": [item.to_api() for item in items], "nextCursor": cursor})


# ------------------------------------------------------------------ staff codes (core.staff)

STAFF_PAGE_DEFAULT, STAFF_PAGE_MAX = 50, 100


def _staff_id(raw: str) -> str:
    if not re.match(ID_PATTERN, raw):
        raise NotFound(f"staff code {raw!r} does not exist")
    logger.append_keys(staff_code_id=raw)
    return raw


def _staff(code: Any) -> dict[str, Any]:
    from staykey.core.staff import to_api

    return to_api(code)


@app.get("/staff-codes")
def list_staff_codes() -> Any:
    from staykey.edge.pagination import decode_cursor, encode_cursor

    q = _query(("limit", "cursor"))
    limit = q.limit(STAFF_PAGE_DEFAULT, STAFF_PAGE_MAX)
    after = decode_cursor(q.get("cursor"), {"staff": True}, re.compile(ID_PATTERN.strip("^$")))
    codes, last = wiring.staff_codes().page(limit, after)
    cursor = encode_cursor(last, {"staff": True}) if last is not None else None
    return respond(200, {"items": [_staff(c) for c in codes], "nextCursor": cursor})


@app.post("/staff-codes")
def create_staff_code() -> Any:
    from staykey.core.staff import StaffCodeIn

    request = parse_body(app, StaffCodeIn)
    logger.append_keys(staff_code_id=request.staffCodeId)
    code, created = wiring.staff_codes().create(request)
    return respond(201 if created else 200, _staff(code))


@app.get("/staff-codes/<staffCodeId>")
def get_staff_code(staffCodeId: str) -> Any:
    return respond(200, _staff(wiring.staff_codes().get(_staff_id(staffCodeId))))


@app.patch("/staff-codes/<staffCodeId>")
def patch_staff_code(staffCodeId: str) -> Any:
    from staykey.core.staff import StaffCodePatch

    staff_code_id = _staff_id(staffCodeId)
    change = parse_body(app, StaffCodePatch)
    return respond(200, _staff(wiring.staff_codes().patch(staff_code_id, change)))


@app.delete("/staff-codes/<staffCodeId>")
def remove_staff_code(staffCodeId: str) -> Any:
    return respond(200, _staff(wiring.staff_codes().remove(_staff_id(staffCodeId))))


@app.post("/staff-codes/<staffCodeId>/rotate-pin")
def rotate_staff_pin(staffCodeId: str) -> Any:
    staff_code_id = _staff_id(staffCodeId)
    parse_optional_body(app, RotatePinRequest)
    return respond(202, _staff(wiring.staff_codes().rotate_pin(staff_code_id)))


@app.post("/staff-codes/<staffCodeId>/retry")
def retry_staff_code(staffCodeId: str) -> Any:
    return respond(200, _staff(wiring.staff_codes().retry(_staff_id(staffCodeId))))


@app.get("/staff-codes/<staffCodeId>/activity")
def get_staff_activity(staffCodeId: str) -> Any:
    from staykey.services.activity import ACTIVITY_LIMIT_DEFAULT, ACTIVITY_LIMIT_MAX

    code = wiring.staff_codes().get(_staff_id(staffCodeId))
    q = _query(("limit", "cursor"))
    limit = q.limit(ACTIVITY_LIMIT_DEFAULT, ACTIVITY_LIMIT_MAX)
    items, cursor = wiring.activity().page_for_booking(code.bookingId, limit, q.get("cursor"), known=True)
    return respond(200, {"items": [item.to_api() for item in items], "nextCursor": cursor})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
