"""A Nuki sandbox in a process of its own, filled in bulk through its Python API (150,000 codes
through the HTTP control routes would take minutes), for the reconcile benchmark.

``python -m bench.sandbox_server --spec spec.json --ready ready.json --latency 0.05``

The spec is ``{"locks": {"<smartlockId>": [{"name", "code", "from", "until"}, ...]}}``; every code is
put on its lock as the Nuki app would (applied at once). The ready file gets ``{"url", "ids":
{"<smartlockId>": {"<code>": [id, authId]}}}`` once the sandbox serves. It runs until its standard
input closes (the benchmark holds the pipe), so it never outlives the benchmark.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path

from bench.common import ROOT

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main() -> int:
    from local.nuki_sandbox import start_sandbox
    from local.nuki_sandbox.state import AuthDraft, Window

    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--ready", type=Path, required=True)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--token", default="local-nuki-token")
    args = parser.parse_args()
    spec = json.loads(args.spec.read_text(encoding="utf-8"))
    with start_sandbox(port=0, token=args.token, sync_delay=0.0, latency=args.latency) as running:
        sandbox = running.sandbox
        ids: dict[str, dict[str, list[object]]] = {}
        for lock_id, codes in spec["locks"].items():
            sandbox.add_smartlock(smartlock_id=int(lock_id), name=f"Entrance {lock_id}")
            ids[lock_id] = {}
            for code in codes:
                window = Window(
                    from_date=datetime.fromisoformat(code["from"]) if code.get("from") else None,
                    until_date=datetime.fromisoformat(code["until"]) if code.get("until") else None,
                    week_days=127,
                    from_time=0,
                    until_time=0,
                )
                draft = AuthDraft(name=code["name"], type=13, remote_allowed=False, window=window, code=code["code"])
                auth = sandbox.add_foreign_auth(int(lock_id), draft)
                ids[lock_id][str(code["code"])] = [auth["id"], auth["authId"]]
        tmp = args.ready.with_suffix(".tmp")
        tmp.write_text(json.dumps({"url": running.url, "ids": ids}), encoding="utf-8")
        tmp.replace(args.ready)
        sys.stdin.read()  # until the benchmark closes the pipe (or dies)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
