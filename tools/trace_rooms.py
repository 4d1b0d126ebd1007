"""Which rooms a shop request passes through, and how often control comes back into a room.

    python -m tools.trace_rooms           a table: PATCH of an active booking, early checkout
    python -m tools.trace_rooms --json    the same as JSON, with the callback edges and entries per room

A *room* is one module of our code: a file under ``layers/common/staykey`` (``staykey.store.bookings``;
a package's ``__init__.py`` is the package, ``staykey.nuki``) or a handler module
(``functions/<name>/app.py``, ``functions.<name>.app``). Every other frame (pydantic, boto3,
botocore, requests, Powertools, moto, the standard library, code generated into ``<string>``) is
*transparent*: it is not a room, but a call that goes through it is followed back into our code. A
function of room A that pydantic calls while validating for room B counts as a call B -> A.

What is counted, over one traced call (``sys.setprofile`` on the calling thread: the sandbox's
HTTP and webhook threads are not traced; Python 3.11 has no ``sys.monitoring``). For each call of
a function of a room (an ordinary call, or the first start of a generator or coroutine; resuming
one is counted apart as a *resume* and nothing else), the *caller room* is the room of the nearest
frame of a room below it on the stack, skipping transparent frames:

- **rooms visited**: the rooms with at least one call, in the order they were first entered;
- **entries**: calls with no room below (the traced call itself);
- **transitions**: calls whose room differs from the caller room, one module to another (A -> B);
  calls within a room are not counted;
- **callbacks** (returns): transitions into a room that is already on the stack below the caller
  room, so control comes back into a room while one of its frames still waits for a call into
  another room to return (A -> B -> A; the store running a closure of the lifecycle, a service
  passed a thunk that builds another service). Every callback is also a transition. A room entered
  again *after* the call into another room has returned (A -> B, back in A, A -> C) is not a
  callback;
- **re-entries**: entries and transitions into a room that had already been entered in this call,
  on the stack or not (entries + transitions - rooms visited; the looser "how often it returns").

The scenario runs the real code path against in-process AWS (moto ``mock_aws``, tables, queues and
secrets as template.yaml declares them) and the Nuki sandbox (``local.nuki_sandbox`` on a free
port, ``NUKI_API_URL`` pointed at it), through the Lambda handlers with API Gateway and SQS events:
a webhook registered with ``tools.register_webhook`` (as in production), rooms with two locks each
(PUT /rooms/{id}), bookings that started five minutes ago (POST /bookings), made active by
delivering the sandbox's DEVICE_AUTHS webhooks (POST /webhooks/nuki, then the webhook queue's
consumer) and, if a booking is still short of active, its due follow-up (the lifecycle queue's
consumer). Then a warm-up of each request on another booking in the same state (imports, caches
and lazily built services are then as in a warm container) and the traced one: PATCH
/bookings/{id} moving checkOut a day later, and POST /bookings/{id}/checkout. Only the handler
call is traced.

Set-up goes through HTTP-level events and the handlers (a follow-up's ``seq`` is read with
``wiring.store().get_booking``, the same in both layouts), so the tool runs on the tree before the
layer was restructured (``staykey.services.lifecycle``) as well as after; the helpers that moved
(the in-process AWS builder, the API Gateway events) are imported from either place. Logs are at
WARNING (a level changes what Powertools does, not which of our functions run); EMF metric lines
are swallowed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import io
import json
import os
import sys
import threading
import time
import types
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LAYER = ROOT / "layers" / "common"

_GENERATOR_FLAGS = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR

Classify = Callable[[str], "str | None"]

# ------------------------------------------------------------------------------------ measuring


@dataclass
class Rooms:
    """What one traced call did, room by room (see the module docstring for the definitions)."""

    visited: list[str] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    entered: Counter[str] = field(default_factory=Counter)
    entries: int = 0
    transitions: int = 0
    callbacks: int = 0
    callback_edges: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    resumes: int = 0
    imports: list[str] = field(default_factory=list)

    @property
    def reentries(self) -> int:
        """Entries and transitions into a room that had been entered before in this call."""
        return self.entries + self.transitions - len(self.visited)

    def to_json(self) -> dict[str, Any]:
        return {
            "rooms": len(self.visited),
            "visited": list(self.visited),
            "entries": self.entries,
            "transitions": self.transitions,
            "reentries": self.reentries,
            "callbacks": self.callbacks,
            "resumes": self.resumes,
            "calls": sum(self.calls.values()),
            "callsByRoom": dict(self.calls),
            "enteredByRoom": dict(self.entered),
            "callbackEdges": [
                {"from": src, "to": dst, "function": fn, "count": n}
                for (src, dst, fn), n in self.callback_edges.most_common()
            ],
            "importsDuringTrace": list(self.imports),
        }


class RoomTracer:
    """A ``sys.setprofile`` hook that counts rooms, transitions and callbacks on this thread.

    `classify` names the room of a code object's file (None: transparent). The stack is read from
    the frame's ``f_back`` chain at each call of a room's function, so exceptions, generators and
    transparent frames need no bookkeeping of our own.
    """

    def __init__(self, classify: Classify) -> None:
        self.classify = classify
        self.result = Rooms()
        self._rooms: dict[str, str | None] = {}
        self._started: dict[int, types.FrameType] = {}  # generator frames, kept alive: ids stay unique
        self._previous: Any = None

    def room(self, filename: str) -> str | None:
        try:
            return self._rooms[filename]
        except KeyError:
            room = self._rooms[filename] = self.classify(filename)
            return room

    def __enter__(self) -> RoomTracer:
        self._previous = sys.getprofile()
        sys.setprofile(self._profile)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.setprofile(self._previous)
        self._started.clear()

    def _profile(self, frame: types.FrameType, event: str, arg: object) -> None:
        if event != "call":
            return
        code = frame.f_code
        room = self.room(code.co_filename)
        if room is None:
            return
        if code.co_flags & _GENERATOR_FLAGS:
            if id(frame) in self._started:
                self.result.resumes += 1
                return
            self._started[id(frame)] = frame
        self._count(room, code, frame.f_back)

    def _count(self, room: str, code: types.CodeType, below: types.FrameType | None) -> None:
        r = self.result
        if room not in r.calls:
            r.visited.append(room)
        r.calls[room] += 1
        if code.co_name == "<module>":
            r.imports.append(room)
        caller = None
        while below is not None:
            caller = self.room(below.f_code.co_filename)
            if caller is not None:
                break
            below = below.f_back
        if caller is None:
            r.entries += 1
            r.entered[room] += 1
            return
        if caller == room:
            return
        r.transitions += 1
        r.entered[room] += 1
        assert below is not None
        frame = below.f_back
        while frame is not None:
            if self.room(frame.f_code.co_filename) == room:
                r.callbacks += 1
                r.callback_edges[(caller, room, code.co_qualname)] += 1
                return
            frame = frame.f_back


def measure(call: Callable[[], Any], classify: Classify) -> tuple[Any, Rooms]:
    """Run `call` with the tracer on; its result and what it did, room by room."""
    tracer = RoomTracer(classify)
    with tracer:
        result = call()
    return result, tracer.result


def classify_staykey(filename: str, root: Path = ROOT) -> str | None:
    """A file of the layer or a handler module: its room (module name); anything else: None."""
    path = Path(filename)
    if path.suffix != ".py" or not path.is_relative_to(root):
        return None
    layer = root / "layers" / "common"
    if path.is_relative_to(layer / "staykey"):
        names = path.relative_to(layer).with_suffix("").parts
        return ".".join(names[:-1] if names[-1] == "__init__" else names)
    rel = path.relative_to(root).parts
    if len(rel) == 3 and rel[0] == "functions" and rel[2] == "app.py":
        return f"functions.{rel[1]}.app"
    return None


# ------------------------------------------------------------------------------------ the scenario

NUKI_TOKEN = "trace-nuki-token"  # noqa: S105 - the sandbox's token for this run only
WEBHOOK_SECRET = "trace-webhook-secret-0123456789abcdef"  # noqa: S105 - replaced by the registration's
# What the handlers read besides the queues and Nuki's URL: the benchmarks' in-process environment
# (bench.common, the same in both layouts), logs at WARNING, loopback calls never through a proxy.
QUIET = {"POWERTOOLS_LOG_LEVEL": "WARNING", "NO_PROXY": "127.0.0.1,localhost"}
REQUESTS = ("PATCH /bookings/{id} (checkOut)", "POST /bookings/{id}/checkout")


def _paths() -> None:
    for path in (str(LAYER), str(ROOT)):
        if path in sys.path:
            sys.path.remove(path)
        sys.path.insert(0, path)


def _import_first(*names: str) -> types.ModuleType:
    """The first of `names` that imports (a helper that moved between versions of the tree)."""
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError(f"none of {names} imports")


def _context() -> Any:
    """The parts of a Lambda context that Powertools reads."""
    return types.SimpleNamespace(
        function_name="staykey-trace",
        memory_limit_in_mb=256,
        invoked_function_arn="arn:aws:lambda:eu-central-1:123456789012:function:staykey-trace",
        aws_request_id=str(uuid.uuid4()),
        get_remaining_time_in_millis=lambda: 30_000,
    )


def _handler(name: str) -> Callable[[dict[str, Any], Any], Any]:
    handler: Callable[[dict[str, Any], Any], Any] = importlib.import_module(f"functions.{name}.app").lambda_handler
    return handler


class _Receiver(BaseHTTPRequestHandler):
    """Where the sandbox posts its webhooks: 204, nothing kept (the sandbox records every delivery)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def _receiver() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/webhooks/nuki"
    finally:
        server.shutdown()
        server.server_close()


class Scenario:
    """Moto, the sandbox and the handlers, set up through the events Lambda would get."""

    def __init__(self, sandbox: Any, urls: dict[str, str]) -> None:
        self.sandbox = sandbox  # local.nuki_sandbox.NukiSandbox
        self.urls = urls
        self.api = _import_first("local.kit.apigw", "tests.apigw")
        self.rooms: dict[str, list[int]] = {}
        self.relayed: set[int] = set()
        self.follow_ups = 0

    def http(self, handler: str, method: str, path: str, resource: str, body: Any = None) -> tuple[int, Any]:
        answer = _handler(handler)(self.api.api_event(method, path, body, resource=resource), _context())
        return int(answer["statusCode"]), json.loads(answer["body"]) if answer.get("body") else None

    def sqs(self, handler: str, bodies: list[str], queue: str) -> None:
        now = str(int(time.time() * 1000))
        records = [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "trace",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": now},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:eu-central-1:123456789012:staykey-trace-{queue}",
                "awsRegion": "eu-central-1",
            }
            for body in bodies
        ]
        answer = _handler(handler)({"Records": records}, _context())
        if answer != {"batchItemFailures": []}:
            raise RuntimeError(f"{handler} failed records: {answer}")

    def add_room(self, room_id: str, locks: list[int]) -> None:
        for lock_id in locks:
            self.sandbox.add_smartlock(smartlock_id=lock_id, name=f"Door {lock_id}")
        body = {"name": f"Room {room_id}", "smartlockIds": locks, "timezone": "Europe/Berlin"}
        status, answer = self.http("rooms_api", "PUT", f"/rooms/{room_id}", "/rooms/{roomId}", body)
        if status not in (200, 201):
            raise RuntimeError(f"PUT /rooms/{room_id}: {status} {answer}")
        self.rooms[room_id] = locks

    def create(self, booking_id: str, room_id: str) -> None:
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
        body = {
            "bookingId": booking_id,
            "roomId": room_id,
            "guest": {"name": "Ada Lovelace", "email": "ada@example.org", "locale": "en"},
            "checkIn": start.isoformat(),
            "checkOut": (start + timedelta(days=2)).isoformat(),
        }
        status, answer = self.http("booking_created", "POST", "/bookings", "/bookings", body)
        if status not in (200, 201):
            raise RuntimeError(f"POST /bookings: {status} {answer}")

    def booking(self, booking_id: str) -> dict[str, Any]:
        status, answer = self.http("bookings_api", "GET", f"/bookings/{booking_id}", "/bookings/{bookingId}")
        if status != 200:
            raise RuntimeError(f"GET /bookings/{booking_id}: {status} {answer}")
        return dict(answer)

    def relay_webhooks(self) -> int:
        """The sandbox's deliveries not yet relayed: POST /webhooks/nuki, then the webhook queue's
        consumer with what the receiver queued."""
        self.sandbox.wait_for_deliveries(10.0)
        fresh = [d for d in self.sandbox.deliveries() if d["id"] not in self.relayed]
        for delivery in fresh:
            self.relayed.add(int(delivery["id"]))
            raw = str(delivery["body"]).encode()
            headers = {
                "Content-Type": "application/json; charset=UTF-8",
                "X-Nuki-Signature-SHA256": delivery["signature"],
            }
            event = self.api.api_event("POST", "/webhooks/nuki", raw_body=raw, headers=headers)
            answer = _handler("nuki_webhook")(event, _context())
            if answer["statusCode"] != 200:
                raise RuntimeError(f"POST /webhooks/nuki: {answer}")
        self.drain("webhooks", "webhook_processor")
        return len(fresh)

    def drain(self, queue: str, handler: str) -> None:
        import boto3

        sqs = boto3.client("sqs")
        while True:
            got = sqs.receive_message(QueueUrl=self.urls[queue], MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return
            self.sqs(handler, [m["Body"] for m in got], queue)
            for m in got:
                sqs.delete_message(QueueUrl=self.urls[queue], ReceiptHandle=m["ReceiptHandle"])

    def follow_up(self, booking_id: str) -> None:
        """The booking's due follow-up, as the lifecycle queue delivers it when its delay is over."""
        from staykey import wiring

        stored = wiring.store().get_booking(booking_id)
        if stored is None:
            raise RuntimeError(f"no booking {booking_id}")
        body = json.dumps({"bookingId": booking_id, "seq": stored.checkSeq})
        self.sqs("provision", [body], "lifecycle")
        self.follow_ups += 1

    def activate(self, booking_ids: Sequence[str], rounds: int = 10) -> None:
        waiting = list(booking_ids)
        for _ in range(rounds):
            for locks in self.rooms.values():
                for lock_id in locks:
                    self.sandbox.sync(lock_id)
            self.relay_webhooks()
            waiting = [b for b in waiting if self.booking(b)["status"] != "active"]
            if not waiting:
                return
            for booking_id in waiting:
                self.follow_up(booking_id)
        raise RuntimeError(f"not active after {rounds} rounds: {[(b, self.booking(b)['status']) for b in waiting]}")

    def patch(self, booking_id: str) -> Callable[[], tuple[int, Any]]:
        check_out = self.booking(booking_id)["checkOut"]
        later = (datetime.fromisoformat(check_out.replace("Z", "+00:00")) + timedelta(days=1)).isoformat()
        path = f"/bookings/{booking_id}"
        return lambda: self.http("bookings_api", "PATCH", path, "/bookings/{bookingId}", {"checkOut": later})

    def checkout(self, booking_id: str) -> Callable[[], tuple[int, Any]]:
        path = f"/bookings/{booking_id}/checkout"
        return lambda: self.http("checkout", "POST", path, "/bookings/{bookingId}/checkout")


@contextlib.contextmanager
def scenario() -> Iterator[Scenario]:
    """Moto and the sandbox, the webhook registered, the environment the handlers read."""
    _paths()
    from bench.common import in_process_environment

    in_process_environment()
    os.environ.update(QUIET)
    from moto import mock_aws

    from local.nuki_sandbox import start_sandbox

    inprocess_aws = _import_first("local.kit.inprocess_aws", "tests.inprocess_aws")
    with start_sandbox(port=0, token=NUKI_TOKEN, sync_delay=0.0) as running, mock_aws(), _receiver() as hook_url:
        env = os.environ
        urls = inprocess_aws.create_local_aws(
            env["TABLE_NAME"], env["SCHEDULE_GROUP_NAME"], env["SENDER_EMAIL"], NUKI_TOKEN, WEBHOOK_SECRET
        )
        os.environ.update(
            {
                "NUKI_API_URL": running.url,
                "LIFECYCLE_QUEUE_URL": urls["lifecycle"],
                "WEBHOOK_QUEUE_URL": urls["webhooks"],
            }
        )
        from staykey import wiring

        if not str(Path(wiring.__file__).resolve()).startswith(str(LAYER)):
            raise RuntimeError(f"staykey imported from {wiring.__file__}, not from {LAYER}")
        wiring.reset()
        from tools import register_webhook

        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            if register_webhook.main(["--url", hook_url]) != 0:
                raise RuntimeError("tools.register_webhook failed")
        try:
            yield Scenario(running.sandbox, urls)
        finally:
            wiring.reset()


def run(setup: dict[str, Any] | None = None) -> dict[str, Rooms]:
    """Set up, warm up, and trace one PATCH and one early checkout of an active booking. `setup`,
    if given, gets how the bookings were made active (webhooks relayed, follow-ups run)."""
    with scenario() as s:
        names = ("warm-patch", "patch", "warm-checkout", "checkout")
        for i, name in enumerate(names):
            s.add_room(f"room-{name}", [17_300_001 + 2 * i, 17_300_002 + 2 * i])
            s.create(f"B-{name}", f"room-{name}")
        s.activate([f"B-{name}" for name in names])
        if setup is not None:
            setup.update(bookings=len(names), webhooksRelayed=len(s.relayed), followUps=s.follow_ups)
        out: dict[str, Rooms] = {}
        for label, make, name in ((REQUESTS[0], s.patch, "patch"), (REQUESTS[1], s.checkout, "checkout")):
            status, _ = make(f"B-warm-{name}")()
            if status != 200:
                raise RuntimeError(f"warm-up {label}: {status}")
            (status, answer), rooms = measure(make(f"B-{name}"), classify_staykey)
            if status != 200:
                raise RuntimeError(f"{label}: {status} {answer}")
            out[label] = rooms
        return out


# ------------------------------------------------------------------------------------ output


def table(results: dict[str, Rooms]) -> str:
    """The counts, one row a request; then each request's rooms in the order it entered them."""
    rows = [("request", "rooms visited", "transitions", "callbacks (returns)", "re-entries")]
    rows += [
        (label, str(len(r.visited)), str(r.transitions), str(r.callbacks), str(r.reentries))
        for label, r in results.items()
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join([row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)])
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for label, r in results.items():
        lines += ["", f"{label}: {len(r.visited)} rooms"]
        lines += [f"  {room}  ({r.calls[room]} calls, entered {r.entered[room]}x)" for room in r.visited]
        for (src, dst, fn), n in r.callback_edges.most_common():
            lines.append(f"  callback: {src} -> {dst} ({fn}) {n}x")
        if r.imports:
            lines.append(f"  imported during the trace (not warm): {', '.join(r.imports)}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.trace_rooms",
        description="Rooms a PATCH and an early checkout pass through, transitions and callbacks.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    setup: dict[str, Any] = {}
    with contextlib.redirect_stdout(io.StringIO()):  # EMF metric lines
        results = run(setup)
    if args.json:
        requests = {label: r.to_json() for label, r in results.items()}
        print(json.dumps({"root": str(ROOT), "setup": setup, "requests": requests}, indent=2))
    else:
        print(table(results))
        print(f"\nset-up: {json.dumps(setup)}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
