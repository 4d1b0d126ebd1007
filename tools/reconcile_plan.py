"""What the reconciler would do, per lock and per drift class, without doing it.

    python -m tools.reconcile_plan                     every lock: a readable plan; nothing changes
    python -m tools.reconcile_plan --lock 17000001     only this lock (repeat the option for more)
    python -m tools.reconcile_plan --json              the plan as JSON
    python -m tools.reconcile_plan --apply             compute the same plan and carry it out now

The plan and a run come from one function (`Reconciler.plan_lock`; a run is `execute(plan_lock())`),
so the plan shows the actions the next run takes, as long as nothing changes in between (a guest's
booking, a code someone adds in Nuki Web).

Configuration: the environment, as the functions read it (TABLE_NAME, NUKI_TOKEN_SECRET_NAME,
NUKI_API_URL; --apply also LIFECYCLE_QUEUE_URL, RECONCILE_QUEUE_URL, SCHEDULE_* ...), or
`--stack NAME`: the environment of the deployed `NAME-reconcile-lock` function. AWS credentials and
region as for the AWS CLI. PINs are never printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "layers" / "common") not in sys.path:
    sys.path.insert(0, str(ROOT / "layers" / "common"))

if TYPE_CHECKING:
    from staykey.core.drift import LockPlan
    from staykey.services.reconciler import Reconciler

# Entries that need no attention are shown as one count per lock.
_COLLAPSED = {("ok", "none"): "as the bookings say", ("foreign", "none"): "of others, known; left alone"}


def _stack_environment(stack: str) -> dict[str, str]:
    import boto3

    config = boto3.client("lambda").get_function_configuration(FunctionName=f"{stack}-reconcile-lock")
    return dict(config.get("Environment", {}).get("Variables", {}))


def _reconciler() -> Reconciler:
    from staykey import wiring

    wiring.reset()
    return wiring.reconciler()


def render_text(plans: Sequence[LockPlan], *, applied: bool, limit: int) -> str:
    lines: list[str] = []
    when = plans[0].at.strftime("%Y-%m-%dT%H:%M:%SZ") if plans else "-"
    if applied:
        lines.append(f"StayKey reconcile run at {when}")
    else:
        lines.append(f"StayKey reconcile plan at {when} (nothing was changed; --apply carries it out)")
    order = {drift: i for i, drift in enumerate(_drift_order())}
    totals: Counter[str] = Counter()
    drifts: Counter[str] = Counter()
    states: Counter[str] = Counter()
    for plan in plans:
        states[plan.state] += 1
        lines.append("")
        if plan.state == "offline":
            lines.append(f"lock {plan.smartlock_id}: offline, skipped this round")
            continue
        if plan.state != "online":
            lines.append(f"lock {plan.smartlock_id}: unreachable, skipped this round ({plan.reason})")
            continue
        where = "" if plan.in_room else "; in no room any more"
        lines.append(
            f"lock {plan.smartlock_id}: {plan.code_count} keypad codes (ours {plan.ours}, "
            f"foreign {plan.foreign}), Nuki's limit {limit}{where}"
        )
        collapsed: Counter[tuple[str, str]] = Counter()
        indexed = sorted(enumerate(plan.actions), key=lambda item: (order.get(item[1].drift.value, 99), item[0]))
        for index, action in indexed:
            key = (action.drift.value, action.do.value)
            if action.drift.value not in ("ok", "foreign", "pending"):  # core.drift.QUIET
                drifts[action.drift.value] += 1
            if key in _COLLAPSED:
                collapsed[key] += 1
                continue
            totals[action.do.value] += action.do.value != "none"
            outcome = f"  -> {plan.outcomes[index]}" if applied and index < len(plan.outcomes) else ""
            auth = f"auth {action.auth_id}" if action.auth_id else "-"
            lines.append(
                f"  {action.drift.value:<13} {action.do.value:<9} {action.booking_id or '-':<20} "
                f"{auth:<30} {action.note}{outcome}"
            )
        for key, n in sorted(collapsed.items()):
            lines.append(f"  {key[0]:<13} {n} {'code' if n == 1 else 'codes'} {_COLLAPSED[key]}")
    lines.append("")
    summary = ", ".join(f"{state} {n}" for state, n in sorted(states.items())) or "none"
    acts = ", ".join(f"{do} {n}" for do, n in sorted(totals.items()) if n) or "none"
    found = ", ".join(f"{d} {n}" for d, n in sorted(drifts.items())) or "none"
    lines.append(f"summary: {len(plans)} locks ({summary}); actions: {acts}; drift: {found}")
    return "\n".join(lines) + "\n"


def _drift_order() -> list[str]:
    from staykey.core.drift import Drift

    return [d.value for d in Drift]


def main(argv: Sequence[str] | None = None, reconciler: Reconciler | None = None, out: IO[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.reconcile_plan", description=__doc__.split("\n\n")[0])
    parser.add_argument("--lock", type=int, action="append", dest="locks", metavar="SMARTLOCK_ID")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.add_argument("--apply", action="store_true", help="carry the plan out now")
    parser.add_argument("--stack", help="read the configuration of this deployed stack")
    parser.add_argument("--concurrency", type=int, default=4, help="locks read at once (default 4)")
    args = parser.parse_args(argv)
    out = out or sys.stdout
    if args.stack:
        for key, value in _stack_environment(args.stack).items():
            os.environ.setdefault(key, value)
    from staykey.observability import logger

    with contextlib.suppress(Exception):  # logs go to stderr; stdout is for the plan
        logger.registered_handler.setStream(sys.stderr)  # type: ignore[attr-defined]
    rec = reconciler or _reconciler()
    failed = 0
    # Metrics (EMF lines) and anything else printed while working go to stderr too.
    with contextlib.redirect_stdout(sys.stderr):
        if args.apply:
            plans = []
            from staykey.services.reconciler import ReconcileIncomplete

            rooms = rec.room_locks()
            for lock_id in sorted(set(args.locks)) if args.locks else rec.locks():
                try:
                    plans.append(rec.reconcile_lock(lock_id, room_locks=rooms))
                except ReconcileIncomplete as exc:
                    failed += 1
                    print(f"lock {lock_id}: {exc}", file=sys.stderr)
        else:
            plans = rec.plan_locks(args.locks, concurrency=max(1, args.concurrency))
    if args.json:
        doc: dict[str, Any] = {"applied": bool(args.apply), "locks": [plan.to_dict() for plan in plans]}
        out.write(json.dumps(doc, indent=2) + "\n")
    else:
        out.write(render_text(plans, applied=args.apply, limit=rec.settings.max_codes_per_lock))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
