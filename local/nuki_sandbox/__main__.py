"""``python -m local.nuki_sandbox``: serve the Nuki sandbox in the foreground until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import os
import time

from local.kit.signals import stop_on_signals
from local.nuki_sandbox.server import start_sandbox
from local.nuki_sandbox.state import DEFAULT_SYNC_DELAY_SECONDS, DEFAULT_TOKEN


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m local.nuki_sandbox", description="Nuki Web API sandbox")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("LOCAL_NUKI_PORT", "4010")),
        help="port (default $LOCAL_NUKI_PORT or 4010; 0 picks a free one)",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("NUKI_API_TOKEN", DEFAULT_TOKEN),
        help="the Bearer token to accept (default $NUKI_API_TOKEN or local-nuki-token)",
    )
    parser.add_argument(
        "--sync-delay",
        type=float,
        default=float(os.environ.get("NUKI_SIM_SYNC_DELAY_SECONDS", str(DEFAULT_SYNC_DELAY_SECONDS))),
        help="seconds before a write shows in reads (default $NUKI_SIM_SYNC_DELAY_SECONDS or 2)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    stopping = stop_on_signals()  # a plain list, not an Event (see local.kit.signals)
    running = start_sandbox(
        host=args.host, port=args.port, token=args.token, sync_delay=args.sync_delay, verbose=args.verbose
    )
    print(f"nuki sandbox listening on {running.url} (sync delay {args.sync_delay:g}s)", flush=True)
    try:
        while not stopping:
            time.sleep(0.5)
    finally:
        running.stop()
    print("nuki sandbox stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
