"""``make bench``: every benchmark in one run, one table, ``bench/RESULTS.md``.

    python -m bench.run            # all of them (about 8 minutes on 2 cores)
    python -m bench.run --quick    # fewer repetitions, 100 locks: a smoke run (not for RESULTS.md)
    python -m bench.run --only imports,handlers

Each measurement runs in a fresh process (`bench.common.main`), one after the other, so they do not
compete for the CPU. Nothing here asserts a time: the figures are reported, the goals are shown next
to them. The "Optimisations" section shows ``bench/ab.json`` (`bench.ab`: the code before the
optimisations and this tree, side by side in one run) and the counts of ``bench/before.json`` (the
full run made before the optimisations) next to this run's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import cost
from bench.common import ROOT, machine

MODULES = ("stack_runs", "handlers", "imports", "reconcile_scale", "season", "console", "fleet")
HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
BEFORE = HERE / "before.json"
AB = HERE / "ab.json"


def measure(module: str, quick: bool, tmp: Path) -> dict[str, Any]:
    out = tmp / f"{module}.json"
    args = [sys.executable, "-m", f"bench.{module}", "--out", str(out)] + (["--quick"] if quick else [])
    print(f"bench: {module} ...", file=sys.stderr, flush=True)
    started = time.monotonic()
    subprocess.run(args, cwd=str(ROOT), check=True)
    print(f"bench: {module} done in {time.monotonic() - started:.0f}s", file=sys.stderr, flush=True)
    return dict(json.loads(out.read_text(encoding="utf-8")))


def _s(x: float) -> str:
    return f"{x:.2f} s"


def _ms(x: float) -> str:
    return f"{x:.1f} ms"


def _usd(x: float) -> str:
    return f"${x:.3f}" if x < 10 else f"${x:,.0f}"


def rows(r: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(measurement, StayKey, next to it, goal) for the one table."""
    out: list[tuple[str, str, str, str]] = []
    stack = r.get("stack_runs")
    if stack:
        hook, poll = stack["webhooks"], stack["polling"]
        delay = stack["sync_delay_for_calls_s"]
        n = hook["happy_path"]["nuki_calls_per_booking"]
        out.append(
            (
                f"1. Nuki calls per booking, create → active → revoked (sync delay {delay:g} s), webhooks",
                f"{n:g}",
                f"forum method: {stack['naive']['nuki_calls']} (no removal check)",
                f"≤ 3 {'✓' if n <= 3 else '✗'}",
            )
        )
        out.append(
            (
                "1. … without webhooks (read-backs only)",
                f"{poll['happy_path']['nuki_calls_per_booking']:g}",
                f"forum method: {stack['naive']['nuki_calls']}",
                "",
            )
        )
        for key, with_hook in hook["time_to_active"].items():
            without = poll["time_to_active"][key]
            ok = "✓" if with_hook["within_goal"] else "✗"
            out.append(
                (
                    f"2. POST /bookings → active, sync delay {with_hook['delay_s']:g} s "
                    f"(median of {len(with_hook['samples_s'])})",
                    f"{_s(with_hook['median_s'])} = {with_hook['ratio']:.2f} x delay",
                    f"without webhooks: {_s(without['median_s'])} = {without['ratio']:.2f} x",
                    f"≤ {_s(with_hook['goal_s'])} {ok}",
                )
            )
    handlers = r.get("handlers")
    if handlers:
        for key, label in (
            ("create_booking", "create booking"),
            ("get_booking", "get booking"),
            ("device_logs_webhook", "one DEVICE_LOGS webhook (receiver + processor)"),
        ):
            h = handlers[key]
            out.append(
                (
                    f"3. Handler: {label}, median / p95 (moto, zero-latency sandbox)",
                    f"{_ms(h['median_ms'])} / {_ms(h['p95_ms'])}",
                    f"own code (without moto): {_ms(h['own_median_ms'])} / {_ms(h['own_p95_ms'])}; "
                    f"{h['aws_calls']} AWS + {h['nuki_calls']} Nuki calls",
                    "",
                )
            )
    imports = r.get("imports")
    if imports:
        local, lam = imports["settings"]["local"], imports["settings"]["lambda"]
        floor = local["import boto3"]["median_ms"]
        names = [k for k in local if k != "import boto3"]
        worst = max(names, key=lambda k: local[k]["median_ms"])
        out.append(
            (
                f"4. Cold import, median of {imports['runs']}, tracing off: slowest function ({worst}); "
                "boto3 loads on the first AWS call",
                _ms(local[worst]["median_ms"]),
                f"import boto3: {_ms(floor)}",
                "close to the floor",
            )
        )
        out.append(
            (
                "4. … median over the 10 functions; and with Tracing: Active, as Lambda's init runs it",
                _ms(sorted(local[k]["median_ms"] for k in names)[len(names) // 2]),
                f"in Lambda (tracer on): {_ms(sorted(lam[k]['median_ms'] for k in names)[len(names) // 2])}, "
                f"boto3 {_ms(lam['import boto3']['median_ms'])}",
                "",
            )
        )
    if handlers:
        i = handlers["ingestion"]
        out.append(
            (
                "5. DEVICE_LOGS ingestion, one receiver + one processor, in-process with moto",
                f"{i['end_to_end_per_s']:.0f} deliveries/s",
                f"own code (without moto): {i['own_per_s']:.0f}/s; {i['aws_calls_per_delivery']:g} AWS calls each",
                "",
            )
        )
    rec = r.get("reconcile_scale")
    if rec:
        peak = rec["peak_concurrent_nuki_calls"]
        out.append(
            (
                f"6. Reconcile {rec['locks']:,} locks x {rec['codes_per_lock']} codes, Nuki at "
                f"{rec['latency_s'] * 1000:.0f} ms/call, concurrency {rec['concurrency']}",
                f"{_s(rec['wall_s'])}, {rec['nuki_calls']:,} Nuki calls, peak {peak} at once",
                f"Nuki-latency floor {_s(rec['floor_s'])}; Lambda model {_s(rec['lambda_model_wall_s'])}",
                f"≤ {rec['concurrency']} at once {'✓' if peak <= rec['concurrency'] else '✗'}",
            )
        )
    console = r.get("console")
    if console:
        pages = console["pages"]
        worst = max(p["median_ms"] for p in pages.values())
        heaviest = max(p["bytes"] for p in pages.values()) + console["static_bytes"]
        out.append(
            (
                f"8. console page, server time (median of {console['repeat']}; {console['bookings']:,} bookings, "
                f"{console['locks']} locks, local stack)",
                ", ".join(f"{name} {p['median_ms']:.0f} ms" for name, p in pages.items()),
                f"size with its script and style: at most {heaviest / 1024:.0f} KB",
                f"≤ 300 ms {'✓' if worst <= 300 else '✗'}; ≤ 100 KB {'✓' if heaviest <= 100 * 1024 else '✗'}",
            )
        )
    if stack:
        with_hooks = cost.price(cost.per_booking(stack["webhooks"]["happy_path"]))
        without = cost.price(cost.per_booking(stack["polling"]["happy_path"]))
        out.append(
            (
                f"7. AWS cost per 1,000 bookings ({cost.REGION}, on-demand prices as of {cost.PRICES_AS_OF[:4]})",
                f"{_usd(with_hooks['total'])} with webhooks",
                f"without webhooks: {_usd(without['total'])}",
                "",
            )
        )
        if rec:
            fixed = cost.fixed_per_lock_month(rec)
            metric = next(v for k, v in fixed.items() if k.startswith("KeypadCodes"))
            out.append(
                (
                    "7. … plus, per 1,000 locks and month: reconcile every 15 min / per-lock KeypadCodes metric",
                    _usd(sum(v for k, v in fixed.items() if k.startswith("reconcile"))),
                    f"per-lock metric: {_usd(metric)}",
                    "",
                )
            )
    season = r.get("season")
    if season:
        p95, idle = season["post_bookings_p95_s"], season["idle_cpu_percent_total"]
        out.append(
            (
                f"8. A season on make local's stack: {season['bookings']:,} bookings one after the other "
                f"({season['rooms']} rooms sharing an entrance), POST /bookings median / p95 / max",
                f"{_s(season['post_bookings_median_s'])} / {_s(p95)} / {_s(season['post_bookings_max_s'])}",
                "before issue 13: 3-6 s from ~55 bookings, 504 (29 s) from ~120",
                f"p95 ≤ 1 s {'✓' if p95 <= 1 else '✗'}",
            )
        )
        out.append(
            (
                f"8. … then idle, CPU over {season['idle_window_s']:g} s (moto + runtime + sandbox), moto's memory",
                f"{idle:.1f} % of a core; moto {season['moto_rss_mb']:.0f} MB",
                "before issue 13: a whole core and 1.1 GB at ~120 bookings",
                f"< 5 % {'✓' if idle < 5 else '✗'}",
            )
        )
    fleet = r.get("fleet")
    if fleet:
        from bench import fleet as fleet_bench

        out += fleet_bench.rows(fleet)
    return out


def table(r: dict[str, Any]) -> str:
    lines = ["| measurement | StayKey | next to it | goal |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows(r)]
    return "\n".join(lines)


def _fmt_machine(m: dict[str, Any]) -> str:
    load = f", load average {m['load_at_start']} at start" if "load_at_start" in m else ""
    return f"{m['cpu']}, {m['cores']} cores ({m['arch']}), {m['os']}, Python {m['python']}, {m['date']}{load}"


def details(r: dict[str, Any]) -> str:
    """The figures behind the table, for RESULTS.md."""
    parts: list[str] = []
    stack = r.get("stack_runs")
    if stack:
        parts.append("### 1. Nuki calls by route (all bookings of the run)\n")
        for mode in ("webhooks", "polling"):
            hp = stack[mode]["happy_path"]
            parts.append(
                f"- {mode} ({hp['bookings']} bookings, {hp['keypad_entries_per_booking']} keypad entries each): "
                f"`{json.dumps(hp['nuki_calls_by_route'])}`; median to active {hp['median_to_active_s']} s with "
                f"{hp['bookings']} bookings at once; waited {hp['waited_for_rest_s']} s for the last delayed read-backs"
            )
        naive = stack["naive"]
        parts.append(
            f"- forum method: `{json.dumps(naive['nuki_calls_by_route'])}`, "
            f"code seen after {naive['seconds_to_seen']} s"
        )
        parts.append("\n### 2. POST /bookings → active, every sample (s)\n")
        parts.append("| sync delay | webhooks | without webhooks | goal |\n|---|---|---|---|")
        for key, h in stack["webhooks"]["time_to_active"].items():
            p = stack["polling"]["time_to_active"][key]
            parts.append(f"| {h['delay_s']:g} s | {h['samples_s']} | {p['samples_s']} | {h['goal_s']} s |")
    handlers = r.get("handlers")
    if handlers:
        parts.append("\n### 3. AWS calls per invocation\n")
        for key in ("create_booking", "get_booking", "device_logs_webhook"):
            parts.append(f"- {key}: `{json.dumps(handlers[key]['aws_calls_by_operation'])}`")
    imports = r.get("imports")
    if imports:
        parts.append("\n### 4. Cold import per function, median ms (local: tracing off; lambda: as Lambda's init)\n")
        parts.append("| module | local | lambda |\n|---|---|---|")
        for name, v in imports["settings"]["local"].items():
            parts.append(f"| {name} | {v['median_ms']} | {imports['settings']['lambda'][name]['median_ms']} |")
    rec = r.get("reconcile_scale")
    if rec:
        parts.append("\n### 6. Reconcile at scale\n")
        keep = ("cpu_s", "cpu_ms_per_lock", "dynamodb_calls_by_operation", "dynamodb_rru_per_lock", "actions")
        parts.append("```json\n" + json.dumps({k: rec[k] for k in keep}, indent=1) + "\n```")
    if stack:
        parts.append("\n### 7. Usage per booking (measured) and cost per 1,000 bookings\n")
        for mode in ("webhooks", "polling"):
            usage = cost.per_booking(stack[mode]["happy_path"])
            parts.append(f"**{mode}**: usage per booking\n\n```json\n{json.dumps(usage, indent=1)}\n```\n")
            parts.append("| service | $ per 1,000 bookings |\n|---|---|")
            parts += [f"| {k} | {v:.4f} |" for k, v in cost.price(usage).items()]
            parts.append("")
        if rec:
            parts.append("Per 1,000 locks and month, whatever the bookings:\n\n| item | $ |\n|---|---|")
            parts += [f"| {k} | {v:.2f} |" for k, v in cost.fixed_per_lock_month(rec).items()]
        parts.append(f"\nPrices ({cost.REGION}, as of {cost.PRICES_AS_OF}):\n")
        parts.append("```json\n" + json.dumps(cost.PRICES, indent=1) + "\n```")
    console = r.get("console")
    if console:
        parts.append(console_details(console))
    if r.get("fleet"):
        from bench import fleet as fleet_bench

        parts.append(fleet_bench.details(r["fleet"]))
    season = r.get("season")
    if season:
        parts.append("\n### 8. The season, per hundred bookings (POST /bookings, s)\n")
        parts.append("| bookings | median | p95 | max |\n|---|---|---|---|")
        parts += [f"| {b['bookings']} | {b['median_s']} | {b['p95_s']} | {b['max_s']} |" for b in season["blocks"]]
        parts.append(
            f"\nAnswers: `{json.dumps(season['statuses'])}`; loading took {season['load_s']} s. Idle CPU by "
            f"process (% of a core): `{json.dumps(season['idle_cpu_percent_of_a_core'])}`; runtime "
            f"{season['runtime_rss_mb']:.0f} MB."
        )
    return "\n".join(parts)


def console_details(console: dict[str, Any]) -> str:
    """Each console page: the time from request to last byte (median, worst), its size, and the CPU
    time per request of the runtime and the moto server."""
    lines = [
        f"\n### 8. Console pages ({console['bookings']:,} bookings, {console['locks']} locks, "
        f"{console['repeat']} requests each; load average {console.get('load_at_start', '?')} at start)\n",
        "| page | median ms | worst ms | bytes | CPU ms per request: runtime | moto server |",
        "|---|---|---|---|---|---|",
    ]
    for name, p in console["pages"].items():
        cpu = p.get("cpu_ms") or {}
        lines.append(
            f"| {name} | {p['median_ms']:.0f} | {p['max_ms']:.0f} | {p['bytes']:,} "
            f"| {cpu.get('runtime', '-')} | {cpu.get('moto', '-')} |"
        )
    return "\n".join(lines)


def optimisations(r: dict[str, Any]) -> str:
    """Before → after: the side-by-side run of `bench.ab` (ab.json) for timings, and the run made
    before the optimisations (before.json) for counts, which do not depend on the machine's load."""
    lines = ["## Optimisations: before → after", ""]
    if AB.exists():
        ab = json.loads(AB.read_text(encoding="utf-8"))
        lines += [
            f"Timings side by side in one run (`python -m bench.ab`, before = commit {ab['before_ref']}, "
            f"medians of {ab['runs']}): {_fmt_machine(ab['machine'])}.",
            "",
            "| cold import (ms) | local: before | local: after | Lambda init: before | Lambda init: after |",
            "|---|---|---|---|---|",
        ]
        imp = ab["imports"]
        for name in imp["local"]["after"]:
            lines.append(
                f"| {name} | {imp['local']['before'][name]} | {imp['local']['after'][name]} "
                f"| {imp['lambda']['before'][name]} | {imp['lambda']['after'][name]} |"
            )
        rec = ab["reconcile_100_locks"]
        lines += ["", "| reconcile, 100 locks x 150 codes | before | after |", "|---|---|---|"]
        for key in rec["after"]:
            lines.append(f"| {key} | {rec['before'][key]} | {rec['after'][key]} |")
        lines.append("")
    if BEFORE.exists():
        before = json.loads(BEFORE.read_text(encoding="utf-8"))
        lines += [
            f"Counts (before: `bench/before.json`, {_fmt_machine(before['machine'])}):",
            "",
            "| count | before | after |",
            "|---|---|---|",
        ]
        b_h, a_h = before.get("handlers"), r.get("handlers")
        if b_h and a_h:
            for key in ("create_booking", "get_booking", "device_logs_webhook"):
                lines.append(f"| AWS calls per {key} | {b_h[key]['aws_calls']} | {a_h[key]['aws_calls']} |")
        b_rec, a_rec = before.get("reconcile_scale"), r.get("reconcile_scale")
        if b_rec and a_rec:
            lines.append(
                f"| DynamoDB calls per reconciled lock | {b_rec['dynamodb_calls'] / b_rec['locks']:g} "
                f"| {a_rec['dynamodb_calls'] / a_rec['locks']:g} |"
            )
        b_s, a_s = before.get("stack_runs"), r.get("stack_runs")
        if b_s and a_s:
            for mode in ("webhooks", "polling"):
                b_u, a_u = cost.per_booking(b_s[mode]["happy_path"]), cost.per_booking(a_s[mode]["happy_path"])
                lines.append(
                    f"| DynamoDB read / write units per booking ({mode}) | {b_u['rru']:.1f} / {b_u['wru']:.1f} "
                    f"| {a_u['rru']:.1f} / {a_u['wru']:.1f} |"
                )
    return "\n".join(lines) if len(lines) > 2 else ""


def write_results(r: dict[str, Any], notes: str) -> None:
    text = "\n".join(
        [
            "# StayKey benchmarks: the latest run",
            "",
            "Written by `make bench` (`python -m bench.run`); what each figure means and how it is measured is in",
            "the docstring of its module in `bench/`. No test asserts a time.",
            "",
            f"Machine: {_fmt_machine(r['machine'])}. The whole run took {r['seconds']:.0f} s.",
            "",
            table(r),
            "",
            optimisations(r),
            "",
            "## The figures behind the table",
            "",
            details(r),
            "",
            notes,
        ]
    )
    RESULTS.write_text(text.rstrip() + "\n", encoding="utf-8")


NOTES = HERE / "NOTES.md"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions; RESULTS.md is not written")
    parser.add_argument("--only", help="comma-separated: " + ",".join(MODULES))
    parser.add_argument("--save", type=Path, help="also write the raw results (JSON) here")
    parser.add_argument("--render", type=Path, help="only write RESULTS.md again from results saved with --save")
    args = parser.parse_args()
    if args.render:
        write_results(json.loads(args.render.read_text(encoding="utf-8")), NOTES.read_text(encoding="utf-8"))
        print(f"written: {RESULTS.relative_to(ROOT)}")
        return 0
    chosen = [m for m in MODULES if not args.only or m in args.only.split(",")]
    started = time.monotonic()
    results: dict[str, Any] = {"machine": machine(), "quick": args.quick}
    with tempfile.TemporaryDirectory(prefix="staykey-bench-") as tmp:
        for module in chosen:
            results[module] = measure(module, args.quick, Path(tmp))
    results["seconds"] = time.monotonic() - started
    if args.save:
        args.save.write_text(json.dumps(results, indent=1), encoding="utf-8")
    print()
    print(f"StayKey benchmarks: {_fmt_machine(results['machine'])}; {results['seconds']:.0f} s")
    print()
    print(table(results))
    if not args.quick and not args.only:
        write_results(results, NOTES.read_text(encoding="utf-8") if NOTES.exists() else "")
        print(f"\nwritten: {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
