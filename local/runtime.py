"""The local Lambda runtime process: the template's functions, the gateway in front of them and the
dispatcher behind them, in one process that `local.stack` starts.

``python -m local.runtime --resources resources.json --port 3000 --ready-file ready.json``

It sets one environment for every function (`local.aws.merged_environment`: Globals and each
function's variables resolved against the local resources; these override the process
environment, as a Lambda's configuration would), imports every handler, starts the gateway and the
dispatcher, writes ``{"gatewayPort": ..., "pid": ...}`` to the ready file and runs until SIGTERM or
SIGINT, or until the process that started it is gone. The function's own output (Powertools JSON
logs, EMF metrics, error traces) goes to stdout; the gateway's and dispatcher's one-line records go
to stderr.

Settings (environment): ``LOCAL_API_KEY``, ``LOCAL_FUNCTION_CONCURRENCY`` (4),
``LOCAL_GATEWAY_MAX_BODY_BYTES`` (10 MiB), ``LOCAL_POLL_INTERVAL_SECONDS`` (0.1),
``LOCAL_ASYNC_RETRY_DELAYS`` (``1,2``), ``LOCAL_SQS_RETRY_VISIBILITY_SECONDS`` (unset: the queue's
visibility timeout), ``LOCAL_RATE_EVENTS`` (``on``), ``LOCAL_RATE_EVENTS_SPEEDUP`` (1),
``LOCAL_SCHEDULE_RESYNC_SECONDS`` (0: schedules are listed at start only; the functions' own
schedule writes are heard as they happen, see `local.dispatcher`). ``--outbox`` appends every email
SES accepts to a file (`local.observe.SesOutbox`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

from local import cfn
from local.aws import LocalResources, merged_environment
from local.kit.signals import stop_on_signals

DEFAULT_API_KEY = "local-dev-key"


def stamp() -> str:
    return datetime.now().strftime("%H:%M:%S.%f")[:-3]


def make_log(prefix: str) -> Callable[[str], None]:
    def log(message: str) -> None:
        print(f"{stamp()} {prefix} {message}", file=sys.stderr, flush=True)

    return log


def _floats(raw: str) -> tuple[float, ...]:
    return tuple(float(x) for x in raw.replace(" ", "").split(",") if x)


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.runtime")
    parser.add_argument("--resources", required=True, type=Path, help="JSON written by local.aws.LocalResources")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000, help="gateway port (0: a free one)")
    parser.add_argument("--ready-file", type=Path, help="written once the gateway and dispatcher run")
    parser.add_argument("--outbox", type=Path, help="append each email SES accepts here (JSON lines)")
    args = parser.parse_args(argv)
    env = dict(environ if environ is not None else os.environ)

    resources = LocalResources.from_json(args.resources.read_text(encoding="utf-8"))
    merged, conflicts = merged_environment(resources)
    for conflict in conflicts:
        print(f"{stamp()} runtime warning: functions disagree on {conflict}", file=sys.stderr, flush=True)
    os.environ.update(merged)
    # The layers' code, where Lambda puts it on the path (/opt/python); the functions are imported
    # as functions.<name>.app from the repository root.
    for layer in cfn.resources("AWS::Serverless::LayerVersion").values():
        content = str(cfn.ROOT / str(layer["Properties"]["ContentUri"]).strip("/"))
        if content not in sys.path:
            sys.path.insert(0, content)
    if str(cfn.ROOT) not in sys.path:
        sys.path.insert(0, str(cfn.ROOT))

    # Imported only now: the handlers and the staykey layer read the environment at import.
    from local.dispatcher import Dispatcher, DispatcherConfig
    from local.gateway import DEFAULT_MAX_BODY_BYTES, GatewayConfig, start_gateway
    from local.lambdas import DEFAULT_CONCURRENCY, Functions
    from local.observe import SesOutbox, default_events

    # Before any function makes a client: the hooks through which the runtime hears of the
    # functions' emails and schedule writes (local.observe), instead of polling moto for them.
    events = default_events()
    if args.outbox is not None:
        SesOutbox(args.outbox).install(events)
    functions = Functions(resources, int(env.get("LOCAL_FUNCTION_CONCURRENCY", DEFAULT_CONCURRENCY)))
    functions.load_all()
    stage = resources.parameters.get("Stage", "dev")
    gateway = start_gateway(
        functions,
        GatewayConfig(
            api_key=env.get("LOCAL_API_KEY", DEFAULT_API_KEY),
            stage=stage,
            max_body_bytes=int(env.get("LOCAL_GATEWAY_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)),
            access_log=make_log("gateway"),
        ),
        host=args.host,
        port=args.port,
    )
    retry_visibility = env.get("LOCAL_SQS_RETRY_VISIBILITY_SECONDS")
    poll = float(env.get("LOCAL_POLL_INTERVAL_SECONDS", "0.1"))
    dispatcher = Dispatcher(
        functions,
        DispatcherConfig(
            poll_interval=poll,
            schedule_poll_interval=1.0,
            schedule_resync=float(env.get("LOCAL_SCHEDULE_RESYNC_SECONDS", "0")),
            async_retry_delays=_floats(env.get("LOCAL_ASYNC_RETRY_DELAYS", "1,2")),
            sqs_retry_visibility=int(retry_visibility) if retry_visibility else None,
            rate_events=env.get("LOCAL_RATE_EVENTS", "on").lower() not in ("off", "0", "false", "no"),
            rate_speedup=float(env.get("LOCAL_RATE_EVENTS_SPEEDUP", "1")),
        ),
        make_log("dispatch"),
    )
    dispatcher.observe(events)
    dispatcher.start()

    stopping = stop_on_signals()  # a plain list, not an Event (see local.kit.signals)
    parent = os.getppid()
    if args.ready_file is not None:
        tmp = args.ready_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"gatewayPort": gateway.port, "pid": os.getpid()}), encoding="utf-8")
        tmp.replace(args.ready_file)
    log = make_log("runtime")
    log(
        f"{len(functions.by_logical)} functions, {len(gateway.server.router.routes)} routes on port {gateway.port}, "
        f"{len(dispatcher.mappings)} queue mapping(s), {len(dispatcher.stream_mappings)} stream mapping(s), "
        f"{len(dispatcher.rate_events)} rate event(s)"
    )
    while not stopping:
        time.sleep(0.5)
        if os.getppid() != parent:
            log("the process that started the runtime is gone; stopping")
            break
    gateway.stop()
    dispatcher.stop()
    log("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
