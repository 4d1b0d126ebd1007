"""`python -m local.sim`: simulated seasons across many seeds, in parallel, and one table.

    python -m local.sim --stays 10000            # seeds 1, 2, ... until 10,000 stays are simulated
    python -m local.sim --seed 4242 --explain B4242-7   # one seed again, and one booking's story

Exit status 1 when any invariant was violated; each violation names its seed, and the seed replays
it exactly (`--seed N`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from typing import Any


def _one(args: tuple[int, int, float, float, bool]) -> dict[str, Any]:
    from local.sim.scenario import run_seed

    seed, stays, days, validate, rotations = args
    result = run_seed(seed, stays=stays, days=days, validate=validate, rotations=rotations)
    return {
        "seed": result.seed,
        "stays": result.stays,
        "violations": result.violations,
        "checks": sum(result.checks.values()),
        "simulated": result.simulated_seconds,
        "wall": result.wall_seconds,
        "cpu": result.cpu_seconds,
        "nuki": result.nuki_calls,
        "profile": result.profile,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.sim", description=__doc__.split("\n")[0])
    parser.add_argument("--stays", type=int, default=10_000, help="simulate seasons until this many stays")
    parser.add_argument("--per-seed", type=int, default=40, help="stays in one seed's season")
    parser.add_argument("--days", type=float, default=1.0, help="length of one season (simulated days)")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--seed", type=int, help="run only this seed")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--minutes", type=float, default=0, help="stop starting seeds after this long (0: no limit)")
    parser.add_argument("--validate", type=float, default=0.1, help="share of Nuki calls judged by Nuki's spec")
    parser.add_argument("--explain", nargs="*", default=[], help="with --seed: print these bookings' stories")
    parser.add_argument(
        "--no-rotations", action="store_true", help="leave PIN rotations out (the seasons as before them)"
    )
    args = parser.parse_args(argv)

    if args.seed is not None:
        from local.sim.scenario import Season
        from local.sim.world import explain

        season = Season(
            args.seed, stays=args.per_seed, days=args.days, validate=args.validate, rotations=not args.no_rotations
        )
        result = season.run()
        for violation in result.violations:
            print(violation)
        for booking_id in args.explain:
            print(f"--- {booking_id}")
            print(explain(season.world, booking_id, limit=400))
        print(
            f"seed {args.seed}: {result.stays} stays, {sum(result.checks.values())} checks, "
            f"{len(result.violations)} violations, {result.simulated_seconds / 86400:.2f} simulated days, "
            f"{result.wall_seconds:.1f} s ({result.profile})"
        )
        return 1 if result.violations else 0

    began = time.perf_counter()
    deadline = began + args.minutes * 60 if args.minutes else None
    totals: Counter[str] = Counter()
    by_rule: Counter[str] = Counter()
    first_seed: dict[str, int] = {}
    failed_seeds: list[int] = []
    seeds = iter(range(args.first_seed, args.first_seed + 10**9))
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        running = set()

        def submit() -> None:
            seed = next(seeds)
            running.add(pool.submit(_one, (seed, args.per_seed, args.days, args.validate, not args.no_rotations)))

        planned = 0
        while planned < args.stays and len(running) < args.jobs * 2:
            submit()
            planned += args.per_seed
        while running:
            done = next(iter(running))
            for future in list(running):
                if future.done():
                    done = future
                    break
            else:
                time.sleep(0.05)
                continue
            running.remove(done)
            out = done.result()
            totals["stays"] += out["stays"]
            totals["seeds"] += 1
            totals["checks"] += out["checks"]
            totals["violations"] += len(out["violations"])
            totals["simulated"] += int(out["simulated"])
            totals["nuki"] += out["nuki"]
            if out["violations"]:
                failed_seeds.append(out["seed"])
                for violation in out["violations"]:
                    rule = violation.split("]")[0].strip("[")
                    by_rule[rule] += 1
                    first_seed.setdefault(rule, out["seed"])
                print(f"seed {out['seed']} {out['profile']}:", file=sys.stderr)
                for violation in out["violations"][:5]:
                    print(f"    {violation[:300]}", file=sys.stderr)
            if planned < args.stays and (deadline is None or time.perf_counter() < deadline):
                submit()
                planned += args.per_seed
    wall = time.perf_counter() - began
    print()
    print("| stays | seeds | invariant checks | violations | simulated days | wall | stays per second |")
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {totals['stays']:,} | {totals['seeds']} | {totals['checks']:,} | {totals['violations']} | "
        f"{totals['simulated'] / 86400:,.1f} | {wall:.0f} s | {totals['stays'] / wall:.1f} |"
    )
    if by_rule:
        print()
        for rule, n in by_rule.most_common():
            print(f"  {rule}: {n} violations (first in seed {first_seed[rule]})")
        print(f"  failing seeds: {' '.join(map(str, failed_seeds[:40]))}")
    return 1 if totals["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
