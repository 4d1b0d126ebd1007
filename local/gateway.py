"""The local API Gateway: HTTP in, API Gateway REST proxy events (payload 1.0) to the functions
`template.yaml` wires, their proxy results back out as HTTP.

Routes are the functions' ``Api`` events (`local.cfn.routes`), never a second list. What it does as
API Gateway does, for a shop developer who integrates here and deploys later:

* API key: a route needs ``x-api-key`` equal to ``LOCAL_API_KEY`` unless its event says
  ``Auth: {ApiKeyRequired: false}``; otherwise ``403 {"message": "Forbidden"}``.
* An unknown path, or a method the path does not have: ``403 {"message": "Missing Authentication
  Token"}``, which is what a REST API answers (it does not say 404/405, so as not to reveal which
  resources exist). The local gateway adds a header ``x-local-gateway-error`` that says what was
  not found; API Gateway does not.
* A body over ``LOCAL_GATEWAY_MAX_BODY_BYTES`` (default 10 MiB, API Gateway's payload limit):
  ``413 {"message": "Request Too Long"}``.
* The event: ``resource`` (the template path), ``path``, ``httpMethod``, ``headers`` and
  ``multiValueHeaders``, ``queryStringParameters`` and ``multiValueQueryStringParameters`` (None
  when absent), ``pathParameters`` (URL-decoded), ``stageVariables`` None, ``requestContext``
  (stage, resourcePath, requestId, identity with sourceIp, userAgent and apiKey, ...), ``body``
  (text; base64 with ``isBase64Encoded: true`` when it is not UTF-8).
* A function error or a malformed proxy result: ``502 {"message": "Internal server error"}``; a
  function that runs past 29 s (the integration timeout): ``504 {"message": "Endpoint request
  timed out"}``.
* Answers carry ``x-amzn-RequestId`` and ``x-amz-apigw-id``.

Not modelled: usage-plan throttling and quotas, CORS, binary media types, the stage prefix in the
path (the local base URL is the stage's root: ``http://127.0.0.1:3000``).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from local import cfn
from local.lambdas import Function, FunctionError, Functions

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
INTEGRATION_TIMEOUT_SECONDS = 29.0


@dataclass(frozen=True)
class CompiledRoute:
    route: cfn.Route
    pattern: re.Pattern[str]
    literal_segments: int

    @classmethod
    def of(cls, route: cfn.Route) -> CompiledRoute:
        parts = []
        literals = 0
        for segment in route.path.strip("/").split("/") if route.path.strip("/") else []:
            greedy = re.fullmatch(r"\{(\w+)\+\}", segment)
            param = re.fullmatch(r"\{(\w+)\}", segment)
            if greedy:
                parts.append(f"(?P<{greedy.group(1)}>.+)")
            elif param:
                parts.append(f"(?P<{param.group(1)}>[^/]+)")
            else:
                parts.append(re.escape(segment))
                literals += 1
        return cls(route, re.compile("/" + "/".join(parts)), literals)


class Router:
    def __init__(self, routes: list[cfn.Route]) -> None:
        # The most specific resource wins: more literal segments, then no greedy parameter.
        self.routes = sorted(
            (CompiledRoute.of(r) for r in routes),
            key=lambda c: (-c.literal_segments, "+}" in c.route.path, c.route.path),
        )

    def match(self, method: str, path: str) -> tuple[cfn.Route | None, dict[str, str], bool]:
        """(route, path parameters, whether the path exists with another method)."""
        path_exists = False
        normalized = path if path == "/" else path.rstrip("/")
        for compiled in self.routes:
            m = compiled.pattern.fullmatch(normalized)
            if m is None:
                continue
            if compiled.route.method in (method, "ANY"):
                return compiled.route, {k: unquote(v) for k, v in m.groupdict().items()}, True
            path_exists = True
        return None, {}, path_exists


@dataclass
class GatewayConfig:
    api_key: str
    stage: str = "dev"
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    integration_timeout: float = INTEGRATION_TIMEOUT_SECONDS
    access_log: Callable[[str], None] | None = None


class GatewayServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], functions: Functions, config: GatewayConfig) -> None:
        super().__init__(address, GatewayHandler)
        self.functions = functions
        self.config = config
        self.router = Router(cfn.routes())
        self.executor = ThreadPoolExecutor(max_workers=32, thread_name_prefix="gateway-invoke")

    def server_close(self) -> None:
        super().server_close()
        self.executor.shutdown(wait=False, cancel_futures=True)


def _json(status: int, body: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    return status, [("Content-Type", "application/json")], json.dumps(body).encode()


class GatewayHandler(BaseHTTPRequestHandler):
    server: GatewayServer
    protocol_version = "HTTP/1.1"

    def version_string(self) -> str:
        return "staykey-local-gateway"

    def log_message(self, format: str, *args: object) -> None:
        pass  # one access-log line per request instead (see _handle)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_OPTIONS(self) -> None:
        self._handle()

    def __getattr__(self, name: str) -> Any:
        # Any other method (TRACE, CONNECT, a made-up one) goes the same way: no route has it, so
        # it gets 403 "Missing Authentication Token" as from API Gateway, never http.server's 501.
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)

    def _handle(self) -> None:
        started = time.monotonic()
        request_id = str(uuid.uuid4())
        function: Function | None = None
        status, body = 500, b""
        headers: list[tuple[str, str]] = []
        try:
            status, headers, body, function = self._dispatch(request_id)
        except Exception as exc:  # the gateway itself must never hang a client
            print(f"local gateway: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            status, headers, body = _json(500, {"message": "Internal server error"})
        self._send(status, headers, body, request_id)
        log = self.server.config.access_log
        if log is not None:
            target = f" -> {function.logical_id}" if function else ""
            log(
                f"{self.command} {urlsplit(self.path).path} {status}{target} "
                f"({(time.monotonic() - started) * 1000:.0f} ms)"
            )

    def _read_body(self) -> bytes | None:
        """The body, or None when it is larger than the limit (the rest is not read)."""
        limit = self.server.config.max_body_bytes
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                total += size
                if total > limit:
                    self.close_connection = True
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > limit:
            self.close_connection = True
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self, request_id: str) -> tuple[int, list[tuple[str, str]], bytes, Function | None]:
        config = self.server.config
        split = urlsplit(self.path)
        path = split.path or "/"
        raw = self._read_body()
        if raw is None:
            return (*_json(413, {"message": "Request Too Long"}), None)
        route, params, path_exists = self.server.router.match(self.command, path)
        if route is None:
            status, headers, body = _json(403, {"message": "Missing Authentication Token"})
            reason = f"no method {self.command} on {path}" if path_exists else f"no resource {path}"
            return status, [*headers, ("x-local-gateway-error", reason)], body, None
        api_key = self.headers.get("x-api-key")
        if route.api_key_required and api_key != config.api_key:
            return (*_json(403, {"message": "Forbidden"}), None)
        function = self.server.functions[route.function]
        event = self._event(route, path, split.query, params, raw, request_id)
        future = self.server.executor.submit(function.invoke, event, request_id)
        try:
            result = future.result(timeout=min(config.integration_timeout, float(function.timeout)))
        except FutureTimeout:
            return (*_json(504, {"message": "Endpoint request timed out"}), function)
        except FunctionError:
            return (*_json(502, {"message": "Internal server error"}), function)
        try:
            return (*_proxy_response(result), function)
        except (TypeError, ValueError, KeyError, binascii.Error) as exc:
            print(f"local gateway: malformed Lambda proxy response from {function.name}: {exc}", file=sys.stderr)
            return (*_json(502, {"message": "Internal server error"}), function)

    def _event(
        self, route: cfn.Route, path: str, query: str, params: dict[str, str], raw: bytes, request_id: str
    ) -> dict[str, Any]:
        config = self.server.config
        headers: dict[str, str] = {}
        multi_headers: dict[str, list[str]] = {}
        for name, value in self.headers.items():
            headers[name] = value
            multi_headers.setdefault(name, []).append(value)
        pairs = parse_qsl(query, keep_blank_values=True)
        multi_query: dict[str, list[str]] = {}
        for key, value in pairs:
            multi_query.setdefault(key, []).append(value)
        try:
            body: str | None = raw.decode("utf-8") if raw else None
            is_b64 = False
        except UnicodeDecodeError:
            body, is_b64 = base64.b64encode(raw).decode("ascii"), True
        now = datetime.now(UTC)
        source_ip = self.client_address[0]
        return {
            "resource": route.path,
            "path": path,
            "httpMethod": self.command,
            "headers": headers or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": params or None,
            "stageVariables": None,
            "requestContext": {
                "accountId": self.server.functions.resources.account_id,
                "apiId": "local",
                "domainName": headers.get("Host", "127.0.0.1"),
                "domainPrefix": "127",
                "extendedRequestId": request_id,
                "httpMethod": self.command,
                "identity": {
                    "accessKey": None,
                    "accountId": None,
                    "apiKey": self.headers.get("x-api-key") if route.api_key_required else None,
                    "apiKeyId": "local-api-key" if route.api_key_required else None,
                    "caller": None,
                    "sourceIp": source_ip,
                    "user": None,
                    "userAgent": self.headers.get("User-Agent"),
                    "userArn": None,
                },
                "path": f"/{config.stage}{path}",
                "protocol": self.request_version,
                "requestId": request_id,
                "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "requestTimeEpoch": int(now.timestamp() * 1000),
                "resourceId": "local",
                "resourcePath": route.path,
                "stage": config.stage,
            },
            "body": body,
            "isBase64Encoded": is_b64,
        }

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes, request_id: str) -> None:
        self.send_response(status)
        names = {name.lower() for name, _ in headers}
        for name, value in headers:
            if name.lower() in ("content-length", "connection", "transfer-encoding"):
                continue
            self.send_header(name, value)
        if "x-amzn-requestid" not in names:
            self.send_header("x-amzn-RequestId", request_id)
        self.send_header("x-amz-apigw-id", request_id[:16])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)


def _proxy_response(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """A Lambda proxy integration result as HTTP; raises on a malformed one."""
    if not isinstance(result, dict):
        raise TypeError("the result is not an object")
    status = int(result["statusCode"])
    if not 100 <= status <= 599:
        raise ValueError(f"statusCode {status}")
    headers: list[tuple[str, str]] = []
    single = result.get("headers") or {}
    multi = result.get("multiValueHeaders") or {}
    for name, values in multi.items():
        headers += [(str(name), str(v)) for v in values]
    for name, value in single.items():
        if name not in multi:
            headers.append((str(name), str(value)))
    raw = result.get("body")
    if raw is None:
        body = b""
    elif result.get("isBase64Encoded"):
        body = base64.b64decode(str(raw), validate=True)
    else:
        body = str(raw).encode("utf-8")
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
    return status, headers, body


@dataclass
class RunningGateway:
    server: GatewayServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_gateway(
    functions: Functions, config: GatewayConfig, host: str = "127.0.0.1", port: int = 0
) -> RunningGateway:
    server = GatewayServer((host, port), functions, config)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.name = "local-gateway"
    thread.start()
    return RunningGateway(server, thread)
