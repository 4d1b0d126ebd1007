"""`python -m local.sim`: simulated seasons across many seeds, in worker processes, and one table.

    python -m local.sim --stays 10000            # seeds 1, 2, ... until 10,000 stays are simulated
    python -m local.sim --seed 4242 --explain B4242-7   # one seed again, and one booking's story

The seeds are fixed before the first one runs (`--first-seed`, and as many as `--stays` needs at
`--per-seed` stays each); the workers (`--jobs`, one per core by default) take them in any order and
the results are merged by seed, so the same seeds give the same table, whatever the number of
workers (only the wall time and the rate differ).

Exit status 1 when any invariant was violated; each violation names its seed, and the seed replays
it exactly (`--seed N`).
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import os
import sys
import time
from collections import Counter
from typing import Any

# Stays in one seed's season: 80 stays on the six rooms in a simulated day (and the three quiet
# hours after it). The periodic functions (the reconciler every 15 minutes, the log poller every 5,
# on every lock) cost the same per simulated hour however many stays there are, and they were most
# of a season's time at 40 stays a day; at 120 the locks hold so many codes that each read costs
# more (docs/simulator.md, "Figures").
PER_SEED = 80


def _one(args: tuple[int, int, float, float, bool]) -> dict[str, Any]:
    from local.sim.scenario import run_seed

    seed, stays, days, validate, rotations = args
    result = run_seed(seed, stays=stays, days=days, validate=validate, rotations=rotations)
    gc.collect()  # what the season left in cycles, before the next one (see _fewer_collections)
    return {
        "seed": result.seed,
        "stays": result.stays,
        "violations": result.violations,
        "checks": sum(result.checks.values()),
        "simulated": result.simulated_seconds,
        "cpu": result.cpu_seconds,
        "nuki": result.nuki_calls,
        "profile": result.profile,
    }


def _fewer_collections() -> None:
    """The cyclic garbage collector less often: a season allocates millions of short-lived dicts
    (items, JSON, models) that reference counting frees, and with the default thresholds the
    collector walked the young ones every 700 allocations and everything the workers imported
    (frozen here, before they fork) in each full collection, a few percent of a season's time.
    Nothing the simulator or the services do depends on when garbage is collected (no finalizers,
    no weak references), so a seed's events are the same (`local.sim.digest`)."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.sim", description=__doc__.split("\n")[0])
    parser.add_argument("--stays", type=int, default=10_000, help="simulate seasons until this many stays")
    parser.add_argument("--per-seed", type=int, default=PER_SEED, help="stays in one seed's season")
    parser.add_argument("--days", type=float, default=1.0, help="length of one season (simulated days)")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--seed", type=int, help="run only this seed")
    parser.add_argument("--jobs", type=int, default=_workers(), help="worker processes (default: one per core)")
    parser.add_argument("--validate", type=float, default=0.1, help="share of Nuki calls judged by Nuki's spec")
    parser.add_argument(
        "--no-rotations", action="store_true", help="leave PIN rotations out (the seasons as before them)"
    )
    parser.add_argument("--explain", nargs="*", default=[], help="with --seed: print these bookings' stories")
    args = parser.parse_args(argv)

    if args.seed is not None:
        from local.sim.scenario import Season
        from local.sim.world import explain

        _fewer_collections()

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
    count = -(-args.stays // args.per_seed)
    seeds = range(args.first_seed, args.first_seed + count)
    tasks = [(seed, args.per_seed, args.days, args.validate, not args.no_rotations) for seed in seeds]
    jobs = max(1, min(args.jobs, len(tasks)))
    # Imported before the workers fork, so each starts with the services, the sandbox and the
    # simulator loaded instead of compiling them again.
    import local.sim.scenario  # noqa: F401

    _fewer_collections()
    results: dict[int, dict[str, Any]] = {}
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        for out in pool.imap_unordered(_one, tasks, chunksize=1):
            results[out["seed"]] = out
            done = len(results)
            if done % max(1, len(tasks) // 10) == 0 or done == len(tasks):
                print(
                    f"  {done}/{len(tasks)} seeds, {sum(r['stays'] for r in results.values()):,} stays, "
                    f"{sum(len(r['violations']) for r in results.values())} violations, "
                    f"{time.perf_counter() - began:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
    wall = time.perf_counter() - began

    totals: Counter[str] = Counter()
    by_rule: Counter[str] = Counter()
    first_seed: dict[str, int] = {}
    failed_seeds: list[int] = []
    for seed in seeds:
        out = results[seed]
        totals["stays"] += out["stays"]
        totals["seeds"] += 1
        totals["checks"] += out["checks"]
        totals["violations"] += len(out["violations"])
        totals["simulated"] += int(out["simulated"])
        totals["nuki"] += out["nuki"]
        totals["cpu"] += out["cpu"]
        if out["violations"]:
            failed_seeds.append(seed)
            for violation in out["violations"]:
                rule = violation.split("]")[0].strip("[")
                by_rule[rule] += 1
                first_seed.setdefault(rule, seed)
            print(f"seed {seed} {out['profile']}:", file=sys.stderr)
            for violation in out["violations"][:5]:
                print(f"    {violation[:300]}", file=sys.stderr)
    print()
    print(
        "| stays | seeds | invariant checks | violations | simulated days | Nuki calls | workers | wall "
        "| stays per second |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {totals['stays']:,} | {totals['seeds']} ({seeds.start}-{seeds.stop - 1}) | {totals['checks']:,} "
        f"| {totals['violations']} | {totals['simulated'] / 86400:,.1f} | {totals['nuki']:,} | {jobs} "
        f"| {wall:.0f} s | {totals['stays'] / wall:.1f} |"
    )
    print(f"\n(CPU {totals['cpu']:.0f} s in all, {totals['cpu'] / max(1, totals['stays']):.3f} s per stay)")
    if by_rule:
        print()
        for rule, n in by_rule.most_common():
            print(f"  {rule}: {n} violations (first in seed {first_seed[rule]})")
        print(f"  failing seeds: {' '.join(map(str, failed_seeds[:40]))}")
    return 1 if totals["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
