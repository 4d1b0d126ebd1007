"""checkov on template.yaml: no failed check, and every skipped one explained in the template.

    python -m tools.scan_template --checkov .venv-checkov/bin/checkov      (make scan, part of make test)

A check is skipped only by a ``Metadata: checkov: skip: [{id, comment}]`` entry on the resource,
and the comment is the reason; a skip without one fails like a failed check. Prints one summary
(passed, failed, skipped per check with its reasons) and exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def summarise(report: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(summary lines, problems)."""
    results = report.get("results", {})
    summary = report.get("summary", {})
    lines = [
        f"checkov {summary.get('checkov_version')}: {summary.get('resource_count')} resources, "
        f"{summary.get('passed')} passed, {summary.get('failed')} failed, {summary.get('skipped')} skipped "
        f"(each with its reason in template.yaml), {summary.get('parsing_errors')} parsing errors"
    ]
    problems = [
        f"FAILED {r['check_id']} {r['check_name']}: {r['resource']} (template.yaml lines {r['file_line_range']})"
        for r in results.get("failed_checks", [])
    ]
    problems += [f"parsing error: {e}" for e in results.get("parsing_errors", [])]
    skipped: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in results.get("skipped_checks", []):
        reason = (r.get("check_result") or {}).get("suppress_comment") or ""
        resource = str(r["resource"]).split(".", 1)[-1]
        if not reason.strip() or reason.strip() == "No comment provided":
            problems.append(f"SKIPPED WITHOUT A REASON {r['check_id']}: {resource}")
        skipped[(r["check_id"], r["check_name"])].append(resource)
    for (check_id, name), resources in sorted(skipped.items()):
        lines.append(f"  skipped {check_id} ({name}): {len(resources)} - {', '.join(sorted(resources))}")
    return lines, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkov", default=str(ROOT / ".venv-checkov" / "bin" / "checkov"))
    parser.add_argument("--template", type=Path, default=ROOT / "template.yaml")
    args = parser.parse_args(argv)
    # --quiet leaves passed and skipped checks out of the JSON: run without it for the full picture.
    done = subprocess.run(
        [args.checkov, "-f", str(args.template), "--framework", "cloudformation", "-o", "json", "--skip-download"],
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        raw = json.loads(done.stdout)
    except ValueError:
        print(f"checkov gave no JSON (exit {done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        return 1
    report = dict(raw[0] if isinstance(raw, list) else raw)
    lines, problems = summarise(report)
    print("\n".join(lines))
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
