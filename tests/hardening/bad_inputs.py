"""The table of bad inputs and the answer each gets (see the docstring of test_bad_inputs.py).

One list, used twice: through the Lambda handlers with moto (tests/hardening/test_bad_inputs.py,
where "changes nothing" is checked on the whole table, the schedules, the queues, Nuki and mail)
and over HTTP against the local stack (tests/e2e/test_hardening_bad_inputs_http.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ROOM_ID = "room-hard"
NEW_ROOM_ID = "room-new"
BOOKING_ID = "B-hard-1"
LOCKS = [17000001, 17000099]
WEBHOOK_MAX_BODY_BYTES = 64 * 1024  # settings.webhook_max_body_bytes default
API_MAX_BODY_BYTES = 64 * 1024  # staykey.edge.http.MAX_BODY_BYTES

ROOM = {"name": "Room Hard", "smartlockIds": LOCKS, "timezone": "Europe/Berlin"}
GUEST = {"name": "Ada Lovelace", "email": "ada@example.org", "locale": "en"}


def booking(booking_id: str = "B-bad", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "bookingId": booking_id,
        "roomId": ROOM_ID,
        "guest": dict(GUEST),
        "checkIn": "2026-12-01",
        "checkOut": "2026-12-03",
    }
    body.update(changes)
    return body


def guest(**changes: Any) -> dict[str, Any]:
    return booking(guest={**GUEST, **changes})


def room(**changes: Any) -> dict[str, Any]:
    return {**ROOM, **changes}


@dataclass(frozen=True)
class Bad:
    """One row: a request and the answer it must get. `names` is the field `errors[]` must name
    (422) or a fragment of the message (other statuses)."""

    id: str
    method: str
    path: str
    status: int
    names: str
    body: Any = None
    raw: bytes | None = None  # sent as it is instead of `body`
    signed: bool = False  # webhook rows: signed with the webhook secret

    def payload(self) -> bytes | None:
        if self.raw is not None:
            return self.raw
        if self.body is None:
            return None
        import json

        return json.dumps(self.body, ensure_ascii=False).encode("utf-8")


def endpoint(**changes: Any) -> dict[str, Any]:
    return {"url": "https://93.184.216.34/staykey", "eventTypes": ["booking.active"], **changes}


POST, PUT, PATCH, GET = "POST", "PUT", "PATCH", "GET"
DEEP = b'{"x":' + b"[" * 1000 + b"]" * 1000 + b"}"
W = "/webhook-endpoints"
B, R, P = "/bookings", f"/rooms/{NEW_ROOM_ID}", f"/bookings/{BOOKING_ID}"

BAD_INPUTS: list[Bad] = [
    # -- not JSON, not an object
    Bad("broken-json", POST, B, 400, "not valid JSON", raw=b'{"bookingId": "B-1",'),
    Bad("json-array", POST, B, 400, "must be a JSON object", raw=b'["B-1"]'),
    Bad("empty-body", POST, B, 400, "needs a JSON body", raw=b""),
    Bad("not-utf8", POST, B, 400, "not UTF-8", raw=b'{"bookingId": "\xff\xfe"}'),
    # 1,000 nested arrays in 2 KB: json.loads gave up with RecursionError, a 500 (found by an adversarial run)
    Bad("deeply-nested", POST, B, 400, "nested too deeply", raw=DEEP),
    Bad("patch-deeply-nested", PATCH, P, 400, "nested too deeply", raw=DEEP),
    Bad("room-deeply-nested", PUT, R, 400, "nested too deeply", raw=DEEP),
    Bad("endpoint-deeply-nested", POST, W, 400, "nested too deeply", raw=DEEP),
    Bad("room-broken-json", PUT, R, 400, "not valid JSON", raw=b"{name: Room}"),
    # -- wrong types
    Bad("name-is-a-number", POST, B, 422, "guest.name", guest(name=42)),
    Bad("notify-is-a-string", POST, B, 422, "notifyGuest", booking(notifyGuest="yes")),
    Bad("guest-is-a-string", POST, B, 422, "guest", booking(guest="Ada Lovelace")),
    Bad("check-in-is-a-number", POST, B, 422, "checkIn", booking(checkIn=20261201)),
    Bad("minutes-is-a-string", PUT, R, 422, "accessBeforeMinutes", room(accessBeforeMinutes="30")),
    # -- unknown fields
    Bad("unknown-field", POST, B, 422, "colour", booking(colour="blue")),
    Bad("unknown-guest-field", POST, B, 422, "guest.phone", guest(phone="+49 30 1234")),
    Bad("unknown-room-field", PUT, R, 422, "floor", room(floor=3)),
    Bad("unknown-patch-field", PATCH, P, 422, "pin", {"pin": "483726"}),
    # -- empty and huge strings
    Bad("empty-booking-id", POST, B, 422, "bookingId", booking(booking_id="")),
    Bad("empty-name", POST, B, 422, "guest.name", guest(name="")),
    Bad("blank-name", POST, B, 422, "guest.name", guest(name="   ")),
    Bad("empty-email", POST, B, 422, "guest.email", guest(email="")),
    Bad("name-201-chars", POST, B, 422, "guest.name", guest(name="A" * 201)),
    Bad("name-10000-chars", POST, B, 422, "guest.name", guest(name="A" * 10_000)),
    Bad("booking-id-65-chars", POST, B, 422, "bookingId", booking(booking_id="B" * 65)),
    Bad("email-255-chars", POST, B, 422, "guest.email", guest(email="a" * 243 + "@example.org")),
    Bad("body-over-64-kib", POST, B, 413, "larger than", guest(name="A" * (API_MAX_BODY_BYTES + 1))),
    Bad("empty-room-name", PUT, R, 422, "name", room(name="")),
    # -- control characters (non-Latin names are accepted: see ACCEPTED_NAMES)
    Bad("name-with-nul", POST, B, 422, "guest.name", guest(name="Ada\u0000Lovelace")),
    Bad("name-with-newline", POST, B, 422, "guest.name", guest(name="Ada\nLovelace")),
    Bad("name-with-escape", POST, B, 422, "guest.name", guest(name="Ada\u001b[31mLovelace")),
    Bad("name-with-bidi-override", POST, B, 422, "guest.name", guest(name="Ada\u202eecalevoL")),
    Bad("name-with-zero-width-space", POST, B, 422, "guest.name", guest(name="Ada\u200bLovelace")),
    # Python's own messages named its internals ("offset must be a timedelta strictly between ...",
    # "Invalid isoformat string"); fullwidth digits passed the \\d of the shape check
    Bad("stay-offset-24h", POST, B, 422, "checkIn", booking(checkIn="2027-01-10T15:00:00+24:00")),
    Bad("stay-february-30", POST, B, 422, "checkIn", booking(checkIn="2027-02-30")),
    Bad("stay-fullwidth-digits", POST, B, 422, "checkIn", booking(checkIn="\uff12\uff10\uff12\uff17-01-10")),
    Bad("name-with-line-separator", POST, B, 422, "guest.name", guest(name="Ada\u2028Lovelace")),
    Bad("name-with-paragraph-separator", POST, B, 422, "guest.name", guest(name="Ada\u2029Lovelace")),
    Bad("room-name-with-tab", PUT, R, 422, "name", room(name="Room\t12")),
    Bad("email-not-an-address", POST, B, 422, "guest.email", guest(email="ada at example.org")),
    # Issue 15 (adversarial): an address with a control or invisible character was taken, a Nuki
    # account user created for it and the guest "emailed" at it (looks like another guest's address)
    Bad("email-with-nul", POST, B, 422, "guest.email", guest(email="ada\u0000@example.org")),
    Bad("email-with-zero-width-space", POST, B, 422, "guest.email", guest(email="ada\u200b@example.org")),
    Bad("email-with-bidi-override", POST, B, 422, "guest.email", guest(email="\u202eada@example.org")),
    Bad("email-with-escape", POST, B, 422, "guest.email", guest(email="ada\u001b@example.org")),
    Bad(
        "patch-email-with-zero-width-joiner",
        PATCH,
        P,
        422,
        "guest.email",
        {"guest": {**GUEST, "email": "ada\u200d@example.org"}},
    ),
    # -- locks
    Bad("six-locks", PUT, R, 422, "smartlockIds", room(smartlockIds=[1, 2, 3, 4, 5, 6])),
    Bad("no-lock", PUT, R, 422, "smartlockIds", room(smartlockIds=[])),
    Bad("lock-repeated", PUT, R, 422, "smartlockIds", room(smartlockIds=[17000001, 17000001])),
    Bad("lock-id-zero", PUT, R, 422, "smartlockIds.0", room(smartlockIds=[0])),
    Bad("lock-id-negative", PUT, R, 422, "smartlockIds.0", room(smartlockIds=[-17000001])),
    Bad("lock-id-fraction", PUT, R, 422, "smartlockIds.0", room(smartlockIds=[17000001.5])),
    Bad("lock-id-string", PUT, R, 422, "smartlockIds.0", room(smartlockIds=["17000001"])),
    Bad("lock-id-boolean", PUT, R, 422, "smartlockIds.0", room(smartlockIds=[True])),
    Bad("lock-id-over-int64", PUT, R, 422, "smartlockIds.0", room(smartlockIds=[2**63])),
    Bad("locks-not-a-list", PUT, R, 422, "smartlockIds", room(smartlockIds=17000001)),
    # -- zones, times, ids
    Bad("unknown-zone", PUT, R, 422, "timezone", room(timezone="Mars/Olympus")),
    Bad("zone-database-directory", PUT, R, 422, "timezone", room(timezone="Europe")),
    Bad("zone-path-traversal", PUT, R, 422, "timezone", room(timezone="../../etc/passwd")),
    Bad("zone-lowercase", PUT, R, 422, "timezone", room(timezone="europe/berlin")),
    # files of the zone database that are not a place's zone (the host's own, the "not set" zone)
    Bad("zone-host-localtime", PUT, R, 422, "timezone", room(timezone="localtime")),
    Bad("zone-factory", PUT, R, 422, "timezone", room(timezone="Factory")),
    Bad("zone-posixrules", PUT, R, 422, "timezone", room(timezone="posixrules")),
    Bad("zone-right", PUT, R, 422, "timezone", room(timezone="right/UTC")),
    Bad("check-in-time-25h", PUT, R, 422, "checkInTime", room(checkInTime="25:00")),
    Bad("room-id-bad-characters", PUT, "/rooms/room%20one", 422, "roomId", room()),
    # -- the stay
    Bad("date-time-without-offset", POST, B, 422, "checkIn", booking(checkIn="2026-12-01T15:00:00")),
    Bad("not-a-date", POST, B, 422, "checkIn", booking(checkIn="tomorrow")),
    Bad("impossible-date", POST, B, 422, "checkOut", booking(checkOut="2026-02-30")),
    Bad("year-zero", POST, B, 422, "checkIn", booking(checkIn="0000-01-01")),
    Bad("check-out-decades-away", POST, B, 422, "checkOut", booking(checkOut="2056-12-03")),
    Bad("stay-decades-away", POST, B, 422, "checkIn", booking(checkIn="2056-12-01", checkOut="2056-12-03")),
    Bad("check-out-before-check-in", POST, B, 422, "checkOut", booking(checkIn="2026-12-03", checkOut="2026-12-01")),
    Bad("check-out-in-the-past", POST, B, 422, "checkOut", booking(checkIn="2026-11-01", checkOut="2026-11-03")),
    Bad("unknown-room", POST, B, 404, "does not exist", booking(roomId="no-such-room")),
    Bad("patch-nothing", PATCH, P, 422, "(body)", {}),
    Bad("patch-null", PATCH, P, 422, "(body)", {"checkIn": None}),
    Bad("patch-decades-away", PATCH, P, 422, "checkOut", {"checkOut": "2060-01-01"}),
    # -- paths and queries
    Bad("booking-id-with-markup", GET, "/bookings/%3Cscript%3E", 404, "does not exist"),
    Bad("lock-id-not-a-number", GET, "/locks/abc/activity", 404, "does not exist"),
    Bad("lock-id-zero-in-path", GET, "/locks/0/activity", 404, "does not exist"),
    Bad("activity-limit-not-a-number", GET, f"/bookings/{BOOKING_ID}/activity?limit=ten", 422, "limit"),
    Bad("activity-limit-too-big", GET, f"/bookings/{BOOKING_ID}/activity?limit=100000", 422, "limit"),
    # -- webhook endpoints and the event feed (docs/events.md); no host names: a lookup must not leave the machine
    Bad("endpoint-broken-json", POST, W, 400, "not valid JSON", raw=b'{"url": '),
    Bad("endpoint-no-url", POST, W, 422, "url", {"eventTypes": ["*"]}),
    Bad("endpoint-url-private", POST, W, 422, "url", endpoint(url="https://10.0.0.7/hooks")),
    Bad("endpoint-url-link-local", POST, W, 422, "url", endpoint(url="https://169.254.169.254/latest/meta-data")),
    Bad("endpoint-url-ipv6-private", POST, W, 422, "url", endpoint(url="https://[fd12::1]/hooks")),
    Bad("endpoint-url-not-https", POST, W, 422, "url", endpoint(url="http://93.184.216.34/hooks")),
    Bad("endpoint-url-ftp", POST, W, 422, "url", endpoint(url="ftp://93.184.216.34/hooks")),
    Bad("endpoint-url-credentials", POST, W, 422, "url", endpoint(url="https://shop:pw@93.184.216.34/hooks")),
    Bad("endpoint-url-not-a-string", POST, W, 422, "url", endpoint(url=["https://93.184.216.34/"])),
    Bad("endpoint-unknown-type", POST, W, 422, "eventTypes.0", endpoint(eventTypes=["booking.exploded"])),
    Bad("endpoint-no-types", POST, W, 422, "eventTypes", endpoint(eventTypes=[])),
    Bad("endpoint-own-secret", POST, W, 422, "secret", endpoint(secret="whsec_mine")),
    Bad("endpoint-unknown-id", GET, f"{W}/ep_01JDQ8Z5K3N2T7W9XG4HB6C1VE", 404, "does not exist"),
    Bad("endpoint-id-with-markup", PATCH, f"{W}/%3Cscript%3E", 404, "does not exist", {"enabled": False}),
    Bad("endpoint-rotate-unknown", POST, f"{W}/ep_01JDQ8Z5K3N2T7W9XG4HB6C1VE/rotate-secret", 404, "does not exist"),
    Bad("events-cursor-not-ours", GET, "/events?after=12345", 422, "after"),
    Bad("events-limit-too-big", GET, "/events?limit=1000", 422, "limit"),
    Bad("events-limit-not-a-number", GET, "/events?limit=ten", 422, "limit"),
    Bad("events-unknown-parameter", GET, "/events?since=yesterday", 422, "since"),
    Bad("events-limit-twice", GET, "/events?limit=1&limit=2", 422, "limit"),
    # -- the list and lock routes, and the booking actions (issue 13)
    Bad("list-unknown-parameter", GET, "/bookings?roomid=room-hard", 422, "roomid"),
    Bad("list-bad-status", GET, "/bookings?status=checkedout", 422, "status"),
    Bad("list-date-without-time", GET, "/bookings?from=2026-12-01", 422, "from"),
    Bad("list-range-backwards", GET, "/bookings?from=2026-12-05T00:00:00Z&to=2026-12-01T00:00:00Z", 422, "to"),
    Bad("list-bad-updated-since", GET, "/bookings?updatedSince=yesterday", 422, "updatedSince"),
    # Date-times UTC puts before year 1 or after 9999 (were a 500, found by the fuzzer).
    Bad("list-since-before-year-one", GET, "/bookings?updatedSince=0001-01-01T00:00:00%2B01:00", 422, "updatedSince"),
    Bad("list-to-after-year-9999", GET, "/bookings?to=9999-12-31T23:59:59-01:00", 422, "to"),
    Bad("list-limit-too-big", GET, "/bookings?limit=101", 422, "limit"),
    Bad("list-forged-cursor", GET, "/bookings?cursor=eyJ2IjoxLCJxIjoiMCIsImsiOiJ4In0", 422, "cursor"),
    Bad("list-cursor-not-base64", GET, "/bookings?cursor=%25%25", 422, "cursor"),
    Bad("list-guest-with-control", GET, "/bookings?guest=Ada%1B", 422, "guest"),
    Bad("rooms-bad-cursor", GET, "/rooms?cursor=abc", 422, "cursor"),
    Bad("locks-bad-limit", GET, "/locks?limit=-1", 422, "limit"),
    Bad("lock-id-not-a-number-detail", GET, "/locks/abc", 404, "does not exist"),
    Bad("activity-bad-cursor", GET, f"/bookings/{BOOKING_ID}/activity?cursor=e30", 422, "cursor"),
    Bad("resend-email-not-active", POST, f"/bookings/{BOOKING_ID}/resend-email", 409, "confirmed"),
    Bad("retry-not-failed", POST, f"/bookings/{BOOKING_ID}/retry", 409, "only a failed booking"),
    Bad("retry-unknown-booking", POST, "/bookings/B-nope/retry", 404, "does not exist"),
    Bad("rotate-pin-unknown-booking", POST, "/bookings/B-nope/rotate-pin", 404, "does not exist"),
    Bad("rotate-pin-a-pin-of-its-own", POST, f"/bookings/{BOOKING_ID}/rotate-pin", 422, "pin", {"pin": "482913"}),
    Bad("rotate-pin-broken-json", POST, f"/bookings/{BOOKING_ID}/rotate-pin", 400, "not valid JSON", raw=b'{"pin"'),
    Bad("rotate-pin-not-an-object", POST, f"/bookings/{BOOKING_ID}/rotate-pin", 400, "JSON object", raw=b"[]"),
    # -- the webhook
    Bad(
        "webhook-over-64-kib",
        POST,
        "/webhooks/nuki",
        413,
        "larger than",
        raw=b'{"feature": "DEVICE_LOGS", "pad": "' + b"x" * WEBHOOK_MAX_BODY_BYTES + b'"}',
        signed=True,
    ),
    Bad("webhook-unsigned", POST, "/webhooks/nuki", 401, "signature", raw=b'{"feature": "DEVICE_LOGS"}'),
]

# Names from every script are accepted as sent (NFC-normalised); only control and invisible
# formatting characters are refused.
ACCEPTED_NAMES = [
    "Ada Lövelace",
    "李小龍",
    "محمد بن موسى الخوارزمي",
    "Ελένη Παπαδοπούλου",
    "Ñandú O'Brien-Smith",
    "Amélie Poulain",
    "Zoë 🙂",
    "क" * 200,  # 200 code points, as long as a name may be
]
