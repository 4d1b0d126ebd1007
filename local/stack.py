"""The local stack: the whole system on one machine, without AWS or Nuki (docs/local-stack.md).

Parts, each on its own port (settings from the environment, defaults as docs/local-stack.md lists):

* moto server (`local.aws.MotoServer`, a subprocess) on ``LOCAL_AWS_PORT`` (5000), with the
  template's table, schedule group, queues, topics, secrets and SES sender;
* the Nuki sandbox (`local.nuki_sandbox`, in this process) on ``LOCAL_NUKI_PORT`` (4010), accepting
  ``NUKI_API_TOKEN`` (``local-nuki-token``) with ``NUKI_SIM_SYNC_DELAY_SECONDS`` (2) of asynchrony;
* the runtime (`local.runtime`, a subprocess): the template's functions behind the local API Gateway
  on ``LOCAL_GATEWAY_PORT`` (3000, key ``LOCAL_API_KEY`` = ``local-dev-key``) and the dispatcher
  that fires schedules and feeds queues to them. Functions call Nuki at ``NUKI_API_URL`` (default
  the sandbox).

At start the gateway's ``/webhooks/nuki`` is registered with the sandbox through the operators'
command, ``python -m tools.register_webhook --url http://127.0.0.1:$LOCAL_GATEWAY_PORT/webhooks/nuki``
(when the template has that route and the tool exists). Every subprocess runs in its own process
group and gets SIGTERM if this process dies; `LocalStack.stop` (Ctrl-C or SIGTERM for
``make local``) stops them all and joins every thread.

Use it from code (end-to-end tests, benchmarks, the demo)::

    with LocalStack(StackConfig.from_env(gateway_port=0, nuki_port=0, aws_port=0, sync_delay=0.3)) as stack:
        requests.get(f"{stack.gateway_url}/health")

Port 0 picks a free port, so tests never collide with a running ``make local``. ``env`` adds
settings for the functions that the template does not set (``NUKI_TIMEOUT_SECONDS``,
``CONFIRM_BACKOFF_SECONDS``, ...); ``parameters`` overrides template parameters as
``sam deploy --parameter-overrides`` would (also ``LOCAL_PARAMETER_OVERRIDES="Key=Value ..."``).

``python -m local.stack`` (``make local``) runs it in the foreground: its Nuki sandbox starts with
the README quick start's locks (``LOCAL_SANDBOX_LOCKS``), it writes ``export API=... KEY=...
NUKI=...`` to ``.local-stack/env`` (``LOCAL_ENV_FILE``; removed at stop) and prints each guest email
that moto's SES accepts (read from the runtime's outbox file, `local.observe`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from local import cfn, nuki_spec
from local.aws import (
    DEFAULT_REGION,
    DEFAULT_STACK_NAME,
    LocalAwsError,
    LocalResources,
    MotoServer,
    create_operator,
    create_resources,
    local_aws_environment,
    merged_environment,
    parse_parameter_overrides,
    spawn,
    stop_process,
)
from local.kit.signals import stop_on_signals
from local.nuki_sandbox import RunningSandbox, start_sandbox
from local.observe import OutboxTail, read_outbox

WEBHOOK_PATH = "/webhooks/nuki"
REGISTER_TOOL = cfn.ROOT / "tools" / "register_webhook.py"


class StackError(RuntimeError):
    pass


@dataclass
class StackConfig:
    host: str = "127.0.0.1"
    gateway_port: int = 3000
    nuki_port: int = 4010
    aws_port: int = 5000
    api_key: str = "local-dev-key"
    nuki_token: str = "local-nuki-token"  # noqa: S105 - the sandbox's documented local token
    sync_delay: float = 2.0
    nuki_api_url: str | None = None  # None: the sandbox
    stack_name: str = DEFAULT_STACK_NAME
    region: str = DEFAULT_REGION
    parameters: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # more environment for the functions
    log_dir: Path | None = None  # None: a temporary directory, removed at stop
    runtime_log_to_terminal: bool = False  # the gateway's and dispatcher's lines on stderr
    function_logs_to_terminal: bool = False
    register_webhook: bool = True
    # Locks the sandbox starts with: (smartlockId, name), each with a keypad and an active Smart
    # Hosting subscription. `make local` starts with the README quick start's two (LOCAL_SANDBOX_LOCKS).
    sandbox_locks: tuple[tuple[int, str], ...] = ()
    env_file: Path | None = None  # written once the stack runs: export API=... KEY=... NUKI=...
    operator_username: str = "operator@example.org"
    operator_password: str | None = None  # None: a new random one each start, printed by make local

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> StackConfig:
        """The documented variables (LOCAL_GATEWAY_PORT, ..., docs/local-stack.md) from `environ`, then `overrides`."""
        e = os.environ if environ is None else environ
        config = cls(
            gateway_port=int(e.get("LOCAL_GATEWAY_PORT", "3000")),
            nuki_port=int(e.get("LOCAL_NUKI_PORT", "4010")),
            aws_port=int(e.get("LOCAL_AWS_PORT", "5000")),
            api_key=e.get("LOCAL_API_KEY", "local-dev-key"),
            nuki_token=e.get("NUKI_API_TOKEN", "local-nuki-token"),
            sync_delay=float(e.get("NUKI_SIM_SYNC_DELAY_SECONDS", "2")),
            nuki_api_url=e.get("NUKI_API_URL") or None,
            stack_name=e.get("LOCAL_STACK_NAME", DEFAULT_STACK_NAME),
            region=e.get("AWS_DEFAULT_REGION", DEFAULT_REGION),
            parameters=parse_parameter_overrides(e.get("LOCAL_PARAMETER_OVERRIDES", "")),
            operator_username=e.get("LOCAL_OPERATOR_USERNAME", "operator@example.org"),
            operator_password=e.get("LOCAL_OPERATOR_PASSWORD") or None,
        )
        return replace(config, **overrides)


def _wait_for(predicate: Any, timeout: float, what: str, alive: Any = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if alive is not None and not alive():
            raise StackError(f"{what}: the process exited")
        time.sleep(0.05)
    raise StackError(f"{what}: not ready within {timeout:g}s")


class LocalStack:
    def __init__(self, config: StackConfig | None = None) -> None:
        self.config = config or StackConfig.from_env()
        self.moto: MotoServer | None = None
        self.sandbox: RunningSandbox | None = None
        self.runtime: subprocess.Popen[bytes] | None = None
        self.resources: LocalResources | None = None
        self.gateway_port = 0
        self.webhook = "not registered"
        self.operator: tuple[str, str] | None = None  # the console's local operator (username, password)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._files: list[IO[bytes]] = []
        self.log_dir = Path()
        self._started = False

    # ------------------------------------------------------------------ where things are

    @property
    def gateway_url(self) -> str:
        return f"http://{self.config.host}:{self.gateway_port}"

    @property
    def nuki_url(self) -> str:
        """The sandbox (its Nuki routes and its /_sim control routes)."""
        assert self.sandbox is not None
        return self.sandbox.url

    @property
    def nuki_api_url(self) -> str:
        """Where the functions send Nuki calls (NUKI_API_URL, default the sandbox)."""
        return self.config.nuki_api_url or self.nuki_url

    @property
    def aws_endpoint(self) -> str:
        assert self.moto is not None
        return self.moto.endpoint

    @property
    def functions_log(self) -> Path:
        return self.log_dir / "functions.log"

    @property
    def runtime_log(self) -> Path:
        return self.log_dir / "runtime.log"

    @property
    def outbox(self) -> Path:
        """Every email SES (moto) accepted from the functions, one JSON line each (`local.observe`)."""
        return self.log_dir / "ses-outbox.jsonl"

    def sent_emails(self) -> list[dict[str, Any]]:
        """Emails SES (moto) accepted, oldest first: ``{id, source, destinations, subject, body, ...}``."""
        return read_outbox(self.outbox)

    def environment(self) -> dict[str, str]:
        """The functions' environment (also for tools run against the local stack)."""
        assert self.resources is not None
        merged, _ = merged_environment(self.resources)
        return {
            **os.environ,
            **self.config.env,
            **local_aws_environment(self.aws_endpoint, self.config.region),
            "POWERTOOLS_TRACE_DISABLED": "true",
            "PYTHONUNBUFFERED": "1",
            # The shop's webhook endpoints may be http on loopback here (a receiver on this
            # machine); a deployed stack never sets this and refuses them (docs/events.md).
            "WEBHOOK_ALLOW_LOOPBACK": "true",
            "WEBHOOK_RESOLVE": "hosts",  # endpoint hosts from /etc/hosts, never DNS
            **self.config.env,
            **merged,
        }

    # ------------------------------------------------------------------ life

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> LocalStack:
        if self._started:
            return self
        self._started = True
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        c = self.config
        if c.log_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="staykey-local-")
            self.log_dir = Path(self._tmp.name)
        else:
            self.log_dir = c.log_dir
            self.log_dir.mkdir(parents=True, exist_ok=True)
            # A new stack's SES has sent nothing yet: an outbox left by an earlier run would show its
            # emails as this run's (make demo run twice saw the first run's email before activation).
            self.outbox.unlink(missing_ok=True)

        if not nuki_spec.SPEC_PATH.is_file():
            # The sandbox judges every request by Nuki's spec; without it each Nuki call would be a 500.
            raise StackError(
                f"the Nuki sandbox needs Nuki's Web API spec at {nuki_spec.SPEC_PATH} (vendored in third_party/nuki); "
                "set NUKI_SPEC_PATH to a copy of nuki-web-api-swagger-4.18.0.json"
            )
        self.moto = MotoServer(host=c.host, port=c.aws_port, log_path=self.log_dir / "moto.log").start()
        try:
            self.sandbox = start_sandbox(host=c.host, port=c.nuki_port, token=c.nuki_token, sync_delay=c.sync_delay)
        except OSError as exc:
            raise StackError(f"the Nuki sandbox cannot listen on {c.host}:{c.nuki_port}: {exc}") from exc
        # The parameter the template passes the functions as NUKI_API_URL.
        parameters = {"NukiApiUrl": self.nuki_api_url, **c.parameters}
        self.resources = create_resources(
            self.aws_endpoint,
            nuki_token=c.nuki_token,
            stack_name=c.stack_name,
            region=c.region,
            parameters=parameters,
        )
        self._create_operator()
        resources_file = self.log_dir / "resources.json"
        resources_file.write_text(self.resources.to_json(), encoding="utf-8")
        self._start_runtime(resources_file)
        assert self.sandbox is not None
        for smartlock_id, name in c.sandbox_locks:
            self.sandbox.sandbox.add_smartlock(smartlock_id=smartlock_id, name=name)
        if c.register_webhook:
            self._register_webhook()
        if c.env_file is not None:
            c.env_file.parent.mkdir(parents=True, exist_ok=True)
            c.env_file.write_text(self.exports() + "\n", encoding="utf-8")

    def exports(self) -> str:
        """``export API=... KEY=... NUKI=...``: what a shell needs for the README's quick start."""
        return f"export API={self.gateway_url} KEY={self.config.api_key} NUKI={self.nuki_url}"

    def _create_operator(self) -> None:
        """A console operator in the template's user pool (an admin's job when deployed)."""
        assert self.resources is not None
        pools = list(self.resources.of_type("AWS::Cognito::UserPool").values())
        if not pools:
            return
        import secrets as pysecrets

        password = self.config.operator_password or f"StayKey-{pysecrets.token_hex(6)}-Op1"
        create_operator(self.aws_endpoint, pools[0], self.config.operator_username, password, self.config.region)
        self.operator = (self.config.operator_username, password)

    @property
    def console_url(self) -> str:
        return f"{self.gateway_url}/console"

    def _start_runtime(self, resources_file: Path) -> None:
        c = self.config
        ready = self.log_dir / "runtime-ready.json"
        ready.unlink(missing_ok=True)
        stdout: IO[bytes] | None = None if c.function_logs_to_terminal else self.functions_log.open("ab")
        stderr: IO[bytes] | None = None if c.runtime_log_to_terminal else self.runtime_log.open("ab")
        self._files += [f for f in (stdout, stderr) if f is not None]
        env = {**self.environment(), "LOCAL_API_KEY": c.api_key}
        self.runtime = spawn(
            [
                sys.executable,
                "-m",
                "local.runtime",
                "--resources",
                str(resources_file),
                "--host",
                c.host,
                "--port",
                str(c.gateway_port),
                "--ready-file",
                str(ready),
                "--outbox",
                str(self.outbox),
            ],
            env,
            stdout,
            stderr,
        )
        runtime = self.runtime
        try:
            _wait_for(ready.exists, 60, "the local runtime (gateway, dispatcher)", lambda: runtime.poll() is None)
        except StackError as exc:
            raise StackError(f"{exc}; see {self.runtime_log} and {self.functions_log}") from None
        self.gateway_port = int(json.loads(ready.read_text(encoding="utf-8"))["gatewayPort"])

    def _register_webhook(self) -> None:
        if not any(r.path == WEBHOOK_PATH for r in cfn.routes()):
            self.webhook = f"not registered: template.yaml has no {WEBHOOK_PATH} route yet"
            return
        if not REGISTER_TOOL.exists():
            self.webhook = "not registered: tools/register_webhook.py does not exist yet"
            return
        url = f"{self.gateway_url}{WEBHOOK_PATH}"
        done = subprocess.run(
            [sys.executable, "-m", "tools.register_webhook", "--url", url],
            env=self.environment(),
            cwd=str(cfn.ROOT),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise StackError(
                f"python -m tools.register_webhook --url {url} failed ({done.returncode}):\n"
                f"{done.stdout}\n{done.stderr}".strip()
            )
        self.webhook = f"registered: {url}"

    def stop(self) -> None:
        stop_process(self.runtime)
        self.runtime = None
        if self.sandbox is not None:
            self.sandbox.stop()
            self.sandbox = None
        if self.moto is not None:
            self.moto.stop()
        for f in self._files:
            f.close()
        self._files.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def runtime_log_tail(self, lines: int = 40) -> str:
        """The end of the runtime's and the functions' logs (for a failing test's report)."""
        out = []
        for path in (self.runtime_log, self.functions_log):
            if path.exists():
                text = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
                out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)


# ---------------------------------------------------------------------- make local


class EmailWatcher:
    """Prints each email SES accepted, as it arrives: reads what was added to the stack's outbox
    file since the last look (never anything that grows with the season)."""

    def __init__(self, stack: LocalStack, interval: float = 1.0) -> None:
        self.stack = stack
        self.interval = interval
        self._stop = threading.Event()
        self._tail = OutboxTail(stack.outbox)
        self._thread = threading.Thread(target=self._run, name="email-watcher", daemon=True)

    def start(self) -> EmailWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                emails = self._tail.new()
            except (OSError, ValueError):
                continue
            for email in emails:
                stamp = datetime.now().strftime("%H:%M:%S.%f")[:-3]
                print(f"{stamp} email   accepted by SES (moto):\n{format_email(email)}", flush=True)


def html_to_text(html: str) -> str:
    import html as html_lib
    import re

    text = re.sub(r"(?i)<br\s*/?>|</p>|</tr>|</h\d>", "\n", html)
    text = re.sub(r"(?i)</td>", "  ", text)
    text = re.sub(r"<[^>]+>", "", text)
    lines = [html_lib.unescape(line).strip() for line in text.splitlines()]
    return "\n".join(line for line in lines if line)


def format_email(email: dict[str, Any], indent: str = "    ") -> str:
    to = ", ".join((email.get("destinations") or {}).get("ToAddresses", []))
    body = str(email.get("body", ""))
    text = html_to_text(body) if "<" in body else body
    lines = [f"From: {email.get('source')}", f"To: {to}", f"Subject: {email.get('subject')}", "", *text.splitlines()]
    return "\n".join(indent + line for line in lines)


DEFAULT_SANDBOX_LOCKS = "17000001=Room 12 door,17000099=Entrance"
ENV_FILE = cfn.ROOT / ".local-stack" / "env"


def parse_sandbox_locks(raw: str) -> tuple[tuple[int, str], ...]:
    """``17000001=Room 12 door,17000099=Entrance`` (LOCAL_SANDBOX_LOCKS; empty: none)."""
    out = []
    for part in raw.split(","):
        if not part.strip():
            continue
        lock_id, _, name = part.partition("=")
        try:
            out.append((int(lock_id), name.strip() or f"Smart Lock {lock_id.strip()}"))
        except ValueError:
            raise StackError(f"LOCAL_SANDBOX_LOCKS: {part!r} is not <smartlockId>=<name>") from None
    return tuple(out)


def banner(stack: LocalStack) -> str:
    c = stack.config
    assert stack.resources is not None
    gw = stack.gateway_url
    tables = ", ".join(stack.resources.of_type("AWS::DynamoDB::Table").values())
    logs = "this terminal" if c.function_logs_to_terminal else str(stack.functions_log)
    locks = ", ".join(f"{lock_id} ({name})" for lock_id, name in c.sandbox_locks) or "none"
    env_file = f"written to {c.env_file}" if c.env_file else "not written"
    operator = f"{stack.operator[0]} / {stack.operator[1]}" if stack.operator else "(no user pool in the template)"
    return f"""
StayKey local stack is running. Ctrl-C stops it.

  {"shop API + " + WEBHOOK_PATH:<27} {gw}    x-api-key: {c.api_key}
  Nuki sandbox                {stack.nuki_url}    Bearer {c.nuki_token}, sync delay {c.sync_delay:g}s, /_sim/...
  sandbox locks               {locks}; each with a keypad and an active Smart Hosting subscription
  functions call Nuki at      {stack.nuki_api_url}
  local AWS (moto server)     {stack.aws_endpoint}    table {tables}, dashboard {stack.aws_endpoint}/moto-api/
  Nuki webhook                {stack.webhook}
  operator console            {stack.console_url}    sign in: {operator}
  function logs               {logs}
  guest emails                printed here as SES accepts them, kept in {stack.outbox}

For a shell (the README's quick start; {env_file}):

  {stack.exports()}

then, for example:

  curl -s -X PUT "$API/rooms/room-12" -H "x-api-key: $KEY" -H 'Content-Type: application/json' \\
       -d '{{"name": "Room 12", "smartlockIds": [17000001, 17000099], "timezone": "Europe/Berlin"}}'
  curl -s "$API/rooms" -H "x-api-key: $KEY"

The whole walkthrough (a booking that turns active, the guest at the door) is the README's quick start;
the reference is docs/ (docs/local-stack.md for this stack, docs/nuki-sandbox.md for the sandbox).
"""


def main(argv: list[str] | None = None) -> int:
    del argv
    stopping = stop_on_signals()  # a plain list, not an Event (see local.kit.signals)
    try:
        locks = parse_sandbox_locks(os.environ.get("LOCAL_SANDBOX_LOCKS", DEFAULT_SANDBOX_LOCKS))
    except StackError as exc:
        print(f"the local stack did not start: {exc}", file=sys.stderr)
        return 1
    config = StackConfig.from_env(
        log_dir=Path(os.environ.get("LOCAL_LOG_DIR", str(cfn.ROOT / ".local-stack" / "logs"))),
        runtime_log_to_terminal=True,
        function_logs_to_terminal=os.environ.get("LOCAL_FUNCTION_LOGS", "file") == "terminal",
        sandbox_locks=locks,
        env_file=Path(os.environ.get("LOCAL_ENV_FILE", str(ENV_FILE))),
    )
    stack = LocalStack(config)
    print("starting the local stack ...", flush=True)
    try:
        stack.start()
    except (StackError, LocalAwsError) as exc:
        print(f"the local stack did not start: {exc}", file=sys.stderr)
        return 1
    watcher = EmailWatcher(stack).start()
    try:
        print(banner(stack), flush=True)
        while not stopping:
            time.sleep(0.5)
            if not stopping and (stack.runtime is None or stack.runtime.poll() is not None):
                print("the local runtime exited; stopping", file=sys.stderr)
                return 1
    finally:
        print("stopping ...", flush=True)
        if config.env_file is not None:
            # First: its addresses are about to go, and whoever stopped us may look right away.
            config.env_file.unlink(missing_ok=True)
        watcher.stop()
        stack.stop()
        print("stopped.", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
