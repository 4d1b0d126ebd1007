"""The HTTP server: stdlib ``ThreadingHTTPServer``, one daemon thread per connection.

Nuki routes go through latency, fault injection and the request log, then ``api.handle_api``;
``/_sim`` routes go straight to ``control.handle_control``.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

from local.nuki_sandbox.api import handle_api
from local.nuki_sandbox.control import handle_control
from local.nuki_sandbox.model import Reply, encode_json, nuki_error_body
from local.nuki_sandbox.state import DEFAULT_SYNC_DELAY_SECONDS, DEFAULT_TOKEN, FaultDecision, NukiSandbox

JSON_CONTENT_TYPE = "application/json; charset=UTF-8"
MAX_BODY_BYTES = 1 << 20


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a request held by a timeout fault must not delay stop()
    allow_reuse_address = True
    request_queue_size = 128  # concurrency tests open many connections at once

    def __init__(self, address: tuple[str, int], sandbox: NukiSandbox, verbose: bool = False) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, SandboxRequestHandler)
        self.sandbox = sandbox
        self.verbose = verbose


class SandboxRequestHandler(BaseHTTPRequestHandler):
    server: SandboxHTTPServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in two writes; without this, Nagle + delayed ACK add ~40 ms a call.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def version_string(self) -> str:
        return "nuki-sandbox"

    def do_GET(self) -> None:
        self._handle("GET")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def log_message(self, format: str, *args: object) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise ValueError("body too large")
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self, method: str) -> None:
        split = urlsplit(self.path)
        try:
            raw = self._read_body()
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            self._send(Reply(500, nuki_error_body(f"nuki sandbox failure: {type(exc).__name__}: {exc}")))
            return
        reply = serve(self.server.sandbox, method, split.path, split.query, raw, self.headers.get("Authorization"))
        if reply is None:
            self.close_connection = True  # no answer at all: the client sees the connection drop
        else:
            self._send(reply)

    def _send(self, reply: Reply) -> None:
        body = b"" if reply.body is None else encode_json(reply.body)
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        if reply.status != HTTPStatus.NO_CONTENT:
            if reply.body is not None:
                self.send_header("Content-Type", JSON_CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and reply.status != HTTPStatus.NO_CONTENT:
            self.wfile.write(body)


def serve(
    sandbox: NukiSandbox,
    method: str,
    path: str,
    query_string: str,
    raw: bytes,
    authorization: str | None,
    sleep: Callable[[float], None] = time.sleep,
) -> Reply | None:
    """One request, as the HTTP server answers it: ``/_sim`` control routes straight through; Nuki
    routes with latency, fault injection and the request log. None: no answer at all (an injected
    timeout, which may still have been applied: ``FaultDecision.apply_anyway``). In-process callers
    (the simulator) pass their own ``sleep``."""
    record = None
    try:
        if path == "/_sim" or path.startswith("/_sim/"):
            return handle_control(sandbox, method, path, raw)
        record, latency, fault = sandbox.begin_request(method, path, query_string)
        if latency > 0:
            sleep(latency)
        query = parse_qs(query_string, keep_blank_values=True)
        reply: Reply | None
        if fault is not None and fault.kind == "timeout":
            if fault.apply_anyway:
                handle_api(sandbox, method, path, query, raw, authorization)
            sleep(fault.hold_seconds)
            reply = None
        elif fault is not None:
            reply = _fault_reply(fault)
        else:
            reply = handle_api(sandbox, method, path, query, raw, authorization)
    except Exception as exc:  # a sandbox bug must show, not hang the client
        traceback.print_exc(file=sys.stderr)
        reply = Reply(500, nuki_error_body(f"nuki sandbox failure: {type(exc).__name__}: {exc}"))
    if record is not None:
        sandbox.finish_request(record, reply.status if reply is not None else None)
    return reply


def _fault_reply(fault: FaultDecision) -> Reply:
    try:
        phrase = HTTPStatus(fault.status).phrase
    except ValueError:
        phrase = "Injected fault"
    headers = (("Retry-After", "1"),) if fault.status == HTTPStatus.TOO_MANY_REQUESTS else ()
    return Reply(fault.status, nuki_error_body(phrase), headers)


@dataclass
class RunningSandbox:
    """A sandbox serving HTTP on a background thread. ``stop()`` (or ``with``) shuts it down."""

    sandbox: NukiSandbox
    server: SandboxHTTPServer
    thread: threading.Thread
    _stopped: bool = field(default=False, repr=False)

    @property
    def host(self) -> str:
        return str(self.server.server_address[0])

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        host = self.host
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
        self.sandbox.close()

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_sandbox(
    host: str = "127.0.0.1",
    port: int = 0,
    token: str = DEFAULT_TOKEN,
    sync_delay: float = DEFAULT_SYNC_DELAY_SECONDS,
    latency: float = 0.0,
    verbose: bool = False,
) -> RunningSandbox:
    """Serve a fresh sandbox on ``host:port`` (port 0: any free port; read it from ``.url``)."""
    sandbox = NukiSandbox(token=token, sync_delay=sync_delay, latency=latency)
    server = SandboxHTTPServer((host, port), sandbox, verbose=verbose)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.name = "nuki-sandbox-http"
    thread.start()
    return RunningSandbox(sandbox=sandbox, server=server, thread=thread)
