"""``make demo``: a guest's stay on two Nuki locks, end to end, on this machine.

It starts the local stack (`local.stack`), then acts as the shop (the HTTP API with its key), as
the guest (keypad entries on the sandbox's locks) and as the rental company's setup (two locks in
the Nuki sandbox), and prints a timeline of what happens as it happens: the PIN reserved, the code
sent to Nuki, Nuki's webhooks, the code confirmed on each lock, the guest's email (from moto's
SES), a keypad entry with the PIN and one with a wrong code, the booking's activity, early
checkout and the code removed from both locks. The shop registers a webhook endpoint of its own (a
small HTTP receiver on loopback in this process): every event arrives there as it happens, signed,
and is verified with `standardwebhooks` as a shop would; at the end ``GET /events`` is read too.
Every step is checked; the demo exits 0 when all of them checked out and 1 naming the step that
did not.

Only HTTP (the shop API, the sandbox's routes) and the stack's outbox of the emails SES accepted.
Ports come from the environment as for ``make local``; unset ones are chosen free, so the demo also
runs next to a ``make local``. Logs of the run stay in ``.local-stack/demo/``.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from local import cfn
from local.event_receiver import EventReceiver
from local.stack import LocalStack, StackConfig, html_to_text

ROOM_DOOR = 17000001
ENTRANCE = 17000099
LOCK_NAMES = {ROOM_DOOR: "Room 12 door", ENTRANCE: "Entrance"}
ROOM_ID = "room-12"
STEP_TIMEOUT = 30.0


class DemoFailed(Exception):
    def __init__(self, step: str, detail: str) -> None:
        super().__init__(f"{step}: {detail}")
        self.step = step
        self.detail = detail


class Demo:
    def __init__(self, stack: LocalStack, out: Callable[[str], None] = print) -> None:
        self.stack = stack
        self.out = out
        self.http = requests.Session()
        self.http.trust_env = False  # loopback only; never through a proxy from the environment
        self.headers = {"x-api-key": stack.config.api_key}
        self.t0 = time.monotonic()
        self.booking_id = f"B-DEMO-{datetime.now(UTC):%H%M%S}"
        self.steps: list[str] = []
        # Nuki calls before the story (the webhook registration at start) are not part of it.
        self._requests_seen = len(self.sim("GET", "/_sim/requests").json())
        self._deliveries_seen = 0
        self._booking: dict[str, Any] | None = None
        self._locks: dict[int, str] = {}
        # The shop's own webhook endpoint, on loopback in this process: events arrive signed and
        # are verified with standardwebhooks, as a shop's receiver verifies them.
        self.receiver = EventReceiver(
            on_event=lambda r: self.say(f"StayKey -> Shop     event {EventReceiver.describe(r.event)}  (signature ok)")
        ).start()

    # ------------------------------------------------------------------ output

    def say(self, text: str, detail: str = "") -> None:
        stamp = f"+{time.monotonic() - self.t0:4.1f}s"
        self.out(f"  {stamp}  {text}")
        if detail:
            self.out(textwrap.indent(detail, " " * 12))

    def passed(self, step: str) -> None:
        self.steps.append(step)

    # ------------------------------------------------------------------ HTTP

    def api(self, method: str, path: str, body: Any = None) -> requests.Response:
        return self.http.request(method, self.stack.gateway_url + path, json=body, headers=self.headers, timeout=60)

    def sim(self, method: str, path: str, body: Any = None) -> requests.Response:
        return self.http.request(method, self.stack.nuki_url + path, json=body, timeout=30)

    def expect(self, step: str, response: requests.Response, *statuses: int) -> Any:
        if response.status_code not in statuses:
            raise DemoFailed(
                step, f"{response.request.method} {response.url} answered {response.status_code}: {response.text[:300]}"
            )
        return response.json() if response.content else None

    # ------------------------------------------------------------------ watching

    def observe(self) -> None:
        """Print what happened since the last look: Nuki calls, webhooks, booking and lock states."""
        for call in self.sim("GET", "/_sim/requests").json()[self._requests_seen :]:
            self._requests_seen += 1
            what = ""
            if call["method"] == "PUT" and call["path"] == "/smartlock/auth":
                what = "the keypad code for the locks"
            elif call["method"] == "GET" and call["path"].endswith("/auth"):
                what = "read back the lock's codes"
            elif call["method"] == "DELETE" and "/auth" in call["path"]:
                what = "remove the code"
            elif call["method"] == "POST" and call["path"].endswith("/sync"):
                what = "ask the lock to sync"
            status = call["status"] if call["status"] is not None else "no answer"
            self.say(
                f"StayKey -> Nuki    {call['method']} {call['path']} -> {status}" + (f"  ({what})" if what else "")
            )
        for delivery in self.sim("GET", "/_sim/webhooks/deliveries").json()[self._deliveries_seen :]:
            if delivery["status"] == "pending":
                break
            self._deliveries_seen += 1
            payload = delivery.get("payload") or {}
            about = ""
            if delivery["feature"] == "DEVICE_AUTHS":
                auth = payload.get("smartlockAuth") or {}
                change = "removed from" if payload.get("deleted") else "now on"
                about = f"code {change} lock {auth.get('smartlockId')}"
            elif delivery["feature"] == "DEVICE_LOGS":
                log = payload.get("smartlockLog") or {}
                about = f"keypad entry on lock {log.get('smartlockId')}"
            answer = delivery["attempts"][-1]["status"] if delivery["attempts"] else "-"
            self.say(f"Nuki -> StayKey    webhook {delivery['feature']} ({about}) -> {answer}")
        if self._booking is None:
            return
        booking = self.expect("read the booking", self.api("GET", f"/bookings/{self.booking_id}"), 200)
        for lock in booking["locks"]:
            lock_id = lock["smartlockId"]
            if self._locks.get(lock_id) != lock["status"]:
                self._locks[lock_id] = lock["status"]
                note = {
                    "active": "code confirmed on the lock",
                    "removed": "code confirmed gone",
                    "failed": lock.get("error", ""),
                }
                self.say(
                    f"lock {lock_id} ({LOCK_NAMES.get(lock_id, '?')}): {lock['status']}  "
                    f"{note.get(lock['status'], '')}".rstrip()
                )
        if booking["status"] != self._booking["status"]:
            self.say(f"booking {self.booking_id}: {self._booking['status']} -> {booking['status']}")
        self._booking = booking

    def wait(self, step: str, done: Callable[[], bool], timeout: float = STEP_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.observe()
            if done():
                self.passed(step)
                return
            if time.monotonic() > deadline:
                status = self._booking["status"] if self._booking else "?"
                raise DemoFailed(step, f"not reached within {timeout:g}s (booking {status}, locks {self._locks})")
            time.sleep(0.1)

    def emails_to(self, address: str) -> list[dict[str, Any]]:
        return [e for e in self.stack.sent_emails() if address in (e.get("destinations") or {}).get("ToAddresses", [])]

    def codes_on(self, lock_id: int) -> list[int]:
        state = self.sim("GET", f"/_sim/smartlocks/{lock_id}").json()
        return [a["code"] for a in state["auths"] if a.get("code") is not None]

    # ------------------------------------------------------------------ the story

    def run(self) -> None:
        guest = {"name": "Ada Lovelace", "email": "ada@example.org", "locale": "en"}

        step = "add two locks to the Nuki sandbox"
        for lock_id, name in LOCK_NAMES.items():
            self.expect(step, self.sim("POST", "/_sim/smartlocks", {"smartlockId": lock_id, "name": name}), 201)
        self.say(
            f"Nuki sandbox: lock {ROOM_DOOR} ({LOCK_NAMES[ROOM_DOOR]}) and lock {ENTRANCE} "
            f"({LOCK_NAMES[ENTRANCE]}), each with a keypad"
        )
        self.passed(step)

        step = "register the shop's webhook endpoint"
        registered = self.expect(
            step,
            self.api(
                "POST", "/webhook-endpoints", {"url": self.receiver.url, "eventTypes": ["*"], "description": "demo"}
            ),
            201,
        )
        self.receiver.secret = registered["secret"]
        self.say(
            f"Shop -> POST /webhook-endpoints {self.receiver.url}: every event type",
            f"endpoint {registered['id']}; signing secret whsec_... (shown once, kept in Secrets Manager)",
        )
        self.passed(step)

        step = "create the room"
        room = {
            "name": "Room 12",
            "smartlockIds": [ROOM_DOOR, ENTRANCE],
            "timezone": "Europe/Berlin",
            "checkInTime": "15:00",
            "checkOutTime": "11:00",
        }
        self.expect(step, self.api("PUT", f"/rooms/{ROOM_ID}", room), 200, 201)
        self.say(f"Shop -> PUT /rooms/{ROOM_ID}: Room 12 has the room door and the shared entrance")
        self.passed(step)

        step = "book a stay starting now (PIN reserved)"
        now = datetime.now(UTC).replace(microsecond=0)
        body = {
            "bookingId": self.booking_id,
            "roomId": ROOM_ID,
            "guest": guest,
            "checkIn": now.isoformat(),
            "checkOut": (now + timedelta(days=2)).isoformat(),
        }
        booking = self.expect(step, self.api("POST", "/bookings", body), 201)
        pin = str(booking["pin"])
        if len(pin) != 6 or booking["status"] not in ("provisioning", "active"):
            raise DemoFailed(step, f"unexpected booking {booking}")
        self.say(
            f"Shop -> POST /bookings {self.booking_id} for {guest['name']}, {body['checkIn']} for two nights",
            f"PIN {pin} reserved; status {booking['status']}",
        )
        self._booking = booking
        self._locks = {lk["smartlockId"]: lk["status"] for lk in booking["locks"]}
        self.passed(step)

        step = "code confirmed on each lock; no email before"
        deadline = time.monotonic() + STEP_TIMEOUT
        while True:
            # The outbox first, then the booking: an email seen before a read that still shows the
            # booking short of active was sent before every lock had the code.
            emailed = bool(self.emails_to(guest["email"]))
            self.observe()
            assert self._booking is not None
            if self._booking["status"] == "active":
                break
            if emailed:
                raise DemoFailed(step, "the guest was emailed before the code was confirmed on every lock")
            if self._booking["status"] == "failed" or time.monotonic() > deadline:
                raise DemoFailed(step, f"booking {self._booking['status']}: {self._booking.get('statusReason')}")
            time.sleep(0.1)
        if not all(lk["status"] == "active" for lk in self._booking["locks"]):
            raise DemoFailed(step, f"active with locks {self._booking['locks']}")
        for lock_id in LOCK_NAMES:
            if int(pin) not in self.codes_on(lock_id):
                raise DemoFailed(step, f"the sandbox has no code {pin} on lock {lock_id}")
        self.passed(step)

        step = "the guest's email"
        deadline = time.monotonic() + STEP_TIMEOUT
        while not (emails := self.emails_to(guest["email"])):
            if time.monotonic() > deadline:
                raise DemoFailed(step, "no email to the guest in moto's SES")
            time.sleep(0.2)
        email = emails[-1]
        text = html_to_text(str(email.get("body", "")))
        if f"{pin[:3]} {pin[3:]}" not in text:
            raise DemoFailed(step, "the email does not show the PIN")
        self.say(f'Email to {guest["email"]} (moto SES): "{email["subject"]}"', text)
        self.passed(step)

        step = "the guest opens the room door with the PIN"
        entry = self.expect(step, self.sim("POST", f"/_sim/smartlocks/{ROOM_DOOR}/keypad", {"code": int(pin)}), 200)
        if not entry.get("success"):
            raise DemoFailed(step, f"the keypad refused the PIN: {entry}")
        self.say(f"Guest types {pin} at the {LOCK_NAMES[ROOM_DOOR]}: the door opens")
        self.passed(step)

        step = "a wrong code does not open the entrance"
        wrong = pin[::-1] if pin[::-1] != pin else "918273"
        entry = self.expect(step, self.sim("POST", f"/_sim/smartlocks/{ENTRANCE}/keypad", {"code": int(wrong)}), 200)
        if entry.get("success"):
            raise DemoFailed(step, f"the keypad accepted the wrong code {wrong}")
        self.say(f"Someone types {wrong} at the {LOCK_NAMES[ENTRANCE]}: refused")
        self.passed(step)

        if any(r.path == "/bookings/{bookingId}/activity" for r in cfn.routes()):
            step = "the booking's activity shows the guest's entry"
            found: list[dict[str, Any]] = []

            def entry_recorded() -> bool:
                found[:] = self.expect(step, self.api("GET", f"/bookings/{self.booking_id}/activity"), 200)["items"]
                return any(i.get("success") and i.get("smartlockId") == ROOM_DOOR for i in found)

            self.wait(step, entry_recorded)
            lines = "\n".join(
                f"{i['at']}  lock {i['smartlockId']}  {i['action']} by {i['trigger']} "
                f"({i.get('source')}): {'ok' if i['success'] else 'refused'}"
                for i in found
            )
            self.say(f"Shop -> GET /bookings/{self.booking_id}/activity", lines)
            booking = self.expect(step, self.api("GET", f"/bookings/{self.booking_id}"), 200)
            if not booking.get("firstEntryAt"):
                raise DemoFailed(step, "firstEntryAt is not set after the guest's entry")
            self.say(f"firstEntryAt {booking['firstEntryAt']}: the guest has checked in")
        else:
            self.say("(the activity step is skipped: template.yaml has no GET /bookings/{bookingId}/activity yet)")

        step = "early checkout removes the code from both locks"
        booking = self.expect(step, self.api("POST", f"/bookings/{self.booking_id}/checkout"), 200)
        self.say(f"Shop -> POST /bookings/{self.booking_id}/checkout: {booking['status']}")
        self.wait(step, lambda: self._booking is not None and self._booking["status"] == "revoked")
        for lock_id in LOCK_NAMES:
            if int(pin) in self.codes_on(lock_id):
                raise DemoFailed(step, f"code {pin} is still on lock {lock_id}")
        entry = self.expect(step, self.sim("POST", f"/_sim/smartlocks/{ROOM_DOOR}/keypad", {"code": int(pin)}), 200)
        if entry.get("success"):
            raise DemoFailed(step, "the PIN still opens the room door after checkout")
        self.say(f"Checked on both locks: code {pin} is gone, and it no longer opens the {LOCK_NAMES[ROOM_DOOR]}")

        step = "the shop's endpoint got every event, signed, and GET /events has the same ones"
        journey = ["booking.provisioning", "booking.active", "guest.checked_in", "access.entry", "booking.revoked"]
        if not self.receiver.wait_for(journey, STEP_TIMEOUT):
            raise DemoFailed(step, f"events received: {self.receiver.types()}")
        if self.receiver.rejected:
            raise DemoFailed(step, f"{self.receiver.rejected} deliveries did not verify")
        received = {r.event["id"] for r in self.receiver.events}
        pulled: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = self.expect(step, self.api("GET", "/events" + (f"?after={cursor}" if cursor else "")), 200)
            pulled += page["items"]
            cursor = page["next"]
            if not page["hasMore"]:
                break
        ours = [e for e in pulled if (e.get("data") or {}).get("bookingId") == self.booking_id]
        if not {e["id"] for e in ours} <= received:
            raise DemoFailed(step, "GET /events has events the endpoint did not get")
        if any(pin in json.dumps(e) for e in pulled):
            raise DemoFailed(step, "an event carries the PIN")
        self.say(
            f"Shop -> GET /events: {len(pulled)} events, {len(ours)} of them this booking's (below), the same ids as"
            " delivered; none carries the PIN or guest data",
            "\n".join(EventReceiver.describe(e) for e in ours),
        )
        self.passed(step)


def main() -> int:
    started = time.monotonic()
    print("StayKey demo: a guest's stay on two Nuki locks, run on this machine")
    print("  AWS is a moto server, Nuki is the Nuki sandbox, and every function of template.yaml runs")
    print("  behind a local API Gateway, fed by a local scheduler and queue poller.\n")
    overrides: dict[str, Any] = {"log_dir": Path(cfn.ROOT / ".local-stack" / "demo")}
    for variable, key in (
        ("LOCAL_GATEWAY_PORT", "gateway_port"),
        ("LOCAL_NUKI_PORT", "nuki_port"),
        ("LOCAL_AWS_PORT", "aws_port"),
    ):
        if not os.environ.get(variable):
            overrides[key] = 0
    config = StackConfig.from_env(**overrides)
    stack = LocalStack(config)
    try:
        stack.start()
    except Exception as exc:
        print(f"FAILED at step 'start the local stack': {exc}", file=sys.stderr)
        return 1
    try:
        print(
            f"Local stack up in {time.monotonic() - started:.1f}s: shop API {stack.gateway_url}, Nuki sandbox "
            f"{stack.nuki_url} (sync delay {config.sync_delay:g}s), moto {stack.aws_endpoint}"
        )
        print(f"Nuki webhook: {stack.webhook}\n")
        demo = Demo(stack)
        try:
            demo.run()
        except DemoFailed as exc:
            print(f"\nFAILED at step '{exc.step}': {exc.detail}", file=sys.stderr)
            print(f"Logs: {stack.runtime_log} and {stack.functions_log}", file=sys.stderr)
            return 1
        except (requests.RequestException, KeyError, ValueError) as exc:
            step = f"after '{demo.steps[-1]}'" if demo.steps else "at the first step"
            print(f"\nFAILED {step}: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        finally:
            demo.receiver.stop()
        print(
            f"\nEvery step checked out ({len(demo.steps)} steps) in {time.monotonic() - started:.1f}s, set-up included."
        )
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    raise SystemExit(main())
