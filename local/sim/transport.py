"""The real `NukiClient` talking to the in-process Nuki sandbox, on virtual time.

A `requests` transport adapter: the client builds and sends real HTTP requests (URL, headers, JSON
body), and gets real `requests.Response` objects back; in between, instead of a socket, the
sandbox's own request entry point (`local.nuki_sandbox.server.serve`: latency, fault injection, the
request log, Nuki's routes) answers. Each call takes virtual time (the sim's latency), during which
other fibers run. Every request and every answer is checked against Nuki's spec
(`local.nuki_spec`) when `validate` is on; a violation is recorded, not raised, so a run reports
all of them.

The session (`SimSession`) prepares each request with requests' own `PreparedRequest` (the URL and
its query, the headers merged with the session's, the body, the client's auth hook) and hands it to
the adapter, as `requests.Session` does, but leaves out the machinery a call into the sandbox never
uses and that cost more than the sandbox's answer: cookie jars (Nuki sets none), environment
settings (no proxies, no .netrc), redirects (the client follows none) and response hooks.

An injected timeout answers nothing: the client sees a read timeout (after its own timeout, or the
sandbox's hold, whichever is shorter), and the write may or may not have been applied, as with a
real lost answer.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.hooks import default_hooks
from requests.models import PreparedRequest
from requests.structures import CaseInsensitiveDict

from local.nuki_sandbox.model import encode_json
from local.nuki_sandbox.server import serve
from local.nuki_sandbox.state import NukiSandbox
from local.sim.loop import Loop

JSON_CONTENT_TYPE = "application/json; charset=UTF-8"


@dataclass
class CallRecord:
    """One request StayKey sent to Nuki (for the invariants and the figures)."""

    at: float
    method: str
    path: str
    status: int | None
    body: Any = None
    fault: bool = False
    by: str = ""  # the invocation that made it (the loop's current fiber: "lifecycle:B1-3", "log-poller", ...)


@dataclass
class NukiLink:
    """What the transport needs from the world, and what it tells it."""

    sandbox: NukiSandbox
    loop: Loop
    latency: Callable[[], float]
    validate: float = 1.0  # the share of calls judged by Nuki's spec (1: every call)
    violations: list[str] = field(default_factory=list)
    calls: list[CallRecord] = field(default_factory=list)
    # Called with each call before its answer goes back; may raise `Killed` (an invocation dying
    # after Nuki applied the request, before the caller could record it).
    after_call: Callable[[CallRecord], None] | None = None
    injected: Callable[[str, str], int | None] | None = None  # (method, path) -> a status to answer instead
    # Its own RNG: how many calls are judged must not change what the world does.
    sampler: random.Random = field(default_factory=lambda: random.Random(0))


class SandboxAdapter(BaseAdapter):
    def __init__(self, link: NukiLink) -> None:
        super().__init__()
        self.link = link

    def send(  # type: ignore[override]
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | None = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        link = self.link
        split = urlsplit(request.url or "")
        method = (request.method or "GET").upper()
        body = request.body if isinstance(request.body, bytes) else (request.body or "").encode()
        headers = dict(request.headers)
        judged = link.validate >= 1.0 or (link.validate > 0 and link.sampler.random() < link.validate)
        if judged:
            from local.nuki_spec import validate_request

            problems = validate_request(
                method, split.path, parse_qs(split.query, keep_blank_values=True), body or None, headers
            )
            link.violations += [f"request {method} {split.path}: {p}" for p in problems]
        link.loop.sleep(link.latency())
        injected = link.injected(method, split.path) if link.injected is not None else None
        raw: bytes | None = None  # the answer's JSON, when judged (encoded once for both)
        record = CallRecord(link.loop.t, method, split.path, None, _json_or_none(body), by=link.loop.current)
        if injected is not None:
            record.status, record.fault = injected, True
            reply_headers: tuple[tuple[str, str], ...] = (("Retry-After", "1"),) if injected == 429 else ()
            reply_status, reply_body = injected, _fault_body(injected)
        else:
            reply = serve(
                link.sandbox,
                method,
                split.path,
                split.query,
                body,
                headers.get("Authorization"),
                sleep=link.loop.sleep,
            )
            if reply is None:  # the sandbox held the request (its timeout fault) and answered nothing
                link.calls.append(record)
                if link.after_call is not None:
                    link.after_call(record)
                raise requests.ReadTimeout("simulated: the answer never came")
            record.status = reply.status
            reply_status, reply_body, reply_headers = reply.status, reply.body, reply.headers
            if judged and reply.status < 500 and reply.status not in (429, 423):
                from local.nuki_spec import validate_response

                raw = b"" if reply_body is None else encode_json(reply_body)
                problems = validate_response(method, split.path, reply.status, raw)
                link.violations += [f"answer {method} {split.path} {reply.status}: {p}" for p in problems]
        link.calls.append(record)
        if link.after_call is not None:
            link.after_call(record)
        response = requests.Response()
        response.status_code = reply_status
        response.headers = CaseInsensitiveDict(dict(reply_headers))
        if reply_body is None or reply_status == 204:
            content = b""
        else:
            content = raw if raw is not None else encode_json(reply_body)
        if content:
            response.headers["Content-Type"] = JSON_CONTENT_TYPE
        response.headers["Content-Length"] = str(len(content))
        response._content = content
        response.encoding = "utf-8"
        response.url = request.url or ""
        response.request = request
        response.reason = ""
        return response

    def close(self) -> None:
        pass


def _json_or_none(body: bytes | None) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _fault_body(status: int) -> dict[str, Any]:
    return {"detailMessage": f"simulated {status}", "stackTrace": [], "suppressedExceptions": []}


class SimSession(requests.Session):
    """A `requests.Session` for the in-process sandbox (see the module's docstring): the same
    prepared request, without cookies, environment settings, redirects and hooks. A call that
    would need any of them goes through `requests.Session.request` unchanged."""

    def __init__(self) -> None:
        super().__init__()
        self._prepared_urls: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
        self._prepared_headers: dict[tuple[tuple[Any, ...], tuple[Any, ...]], CaseInsensitiveDict[Any]] = {}

    def request(  # type: ignore[override]
        self,
        method: str,
        url: str,
        params: Any = None,
        data: Any = None,
        headers: Mapping[str, str | None] | None = None,
        cookies: Any = None,
        files: Any = None,
        auth: Any = None,
        timeout: Any = None,
        allow_redirects: bool = True,
        proxies: Any = None,
        hooks: Any = None,
        stream: bool | None = None,
        verify: Any = None,
        cert: Any = None,
        json: Any = None,
    ) -> requests.Response:
        general = cookies or files or hooks or proxies or stream or cert or json is not None
        if general or allow_redirects or self.cookies or self.auth or self.params or self.hooks != default_hooks():
            return super().request(
                method,
                url,
                params=params,
                data=data,
                headers=headers,
                cookies=cookies,
                files=files,
                auth=auth,
                timeout=timeout,
                allow_redirects=allow_redirects,
                proxies=proxies,
                hooks=hooks,
                stream=stream,
                verify=verify,
                cert=cert,
                json=json,
            )
        prepared = PreparedRequest()
        prepared.prepare_method(method.upper())
        self._prepare_url(prepared, url, params or {})
        self._prepare_headers(prepared, headers or {})
        prepared.prepare_body(data or {}, None, None)
        prepared.prepare_auth(auth, url)
        prepared.prepare_hooks(default_hooks())
        adapter = self.get_adapter(prepared.url or url)
        return adapter.send(prepared, timeout=timeout, verify=True if verify is None else verify)

    def _prepare_url(self, prepared: PreparedRequest, url: str, params: Any) -> None:
        """`prepared.prepare_url(url, params)`, remembered: its answer (`prepared.url`, or an
        exception) depends on nothing but the URL and the query's names and values, and a season
        sends the same few thousand URLs again and again (each prepared anew was a twentieth of its
        time, most of it urllib3's URL parser). Query values that are not strings (lists, numbers)
        are prepared every time."""
        key = _url_key(url, params)
        if key is None:
            prepared.prepare_url(url, params)
            return
        known = self._prepared_urls.get(key)
        if known is None:
            prepared.prepare_url(url, params)
            self._prepared_urls[key] = known = prepared.url or ""
        prepared.url = known

    def _prepare_headers(self, prepared: PreparedRequest, headers: Mapping[str, Any]) -> None:
        """`prepared.prepare_headers` of the session's headers merged with the request's, remembered
        by both (names and values, in order): what it makes (each header checked, in the same order)
        depends on nothing else, and a season sends a handful of header sets. Each request gets a
        copy of its own, as prepare_headers makes a new one."""
        key = (tuple(self.headers.items()), tuple(headers.items()))
        try:
            known = self._prepared_headers.get(key)
        except TypeError:  # a value that is not hashable: prepared every time
            prepared.prepare_headers(_merged(self.headers, headers))
            return
        if known is None:
            prepared.prepare_headers(_merged(self.headers, headers))
            self._prepared_headers[key] = known = prepared.headers.copy()
        prepared.headers = known.copy()


def _merged(session: Mapping[str, Any], headers: Mapping[str, Any]) -> CaseInsensitiveDict[Any]:
    """The session's headers with the request's over them (None: left out), as requests merges them."""
    merged = CaseInsensitiveDict(session)
    for name, value in headers.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


def _url_key(url: Any, params: Any) -> tuple[str, tuple[tuple[str, str], ...]] | None:
    if type(url) is not str or not isinstance(params, dict):
        return None
    query = tuple(params.items())
    if not all(type(k) is str and type(v) is str for k, v in query):
        return None
    return url, query


def session_for(link: NukiLink) -> requests.Session:
    session = SimSession()
    session.trust_env = False  # no proxies or .netrc from this machine's environment
    adapter = SandboxAdapter(link)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = "staykey-nuki"
    return session


__all__ = ["CallRecord", "NukiLink", "SandboxAdapter", "SimSession", "session_for"]
