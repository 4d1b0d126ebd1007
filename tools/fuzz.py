"""Fuzz the shop API: schemathesis runs openapi.yaml against a local stack, every route (and the
Nuki webhook receiver of openapi-nuki-webhook.yaml, merged in for the run).

    python -m tools.fuzz                       # make fuzz: its own local stack, >= 1,000 cases
    python -m tools.fuzz --max-examples 5      # a short run

Schemathesis runs its four phases: the spec's examples, coverage (boundary and just-invalid values
for every parameter and property, unexpected methods), fuzzing (positive and negative data) and
stateful sequences along the spec's links (createBooking -> get, patch, checkout, cancel,
activity). It sends the shop's API key where the spec asks for one. Every response is checked:
no 5xx, status code, content type and body as openapi.yaml says, schema-invalid data refused,
schema-valid data accepted (a 422 only for a rule JSON Schema cannot state, see
`tools.fuzz_hooks`), a created booking readable through its link, no route open without its key.

Two checks are off, each for a reason that is the documented API's (docs/shop-api.md), not a gap:
``unsupported_method`` (API Gateway REST answers an undeclared method with 403 "Missing
Authentication Token", not 405) and ``use_after_free`` (``DELETE /bookings/{id}`` cancels: the
booking stays readable, with status ``cancelled``).

To get past "no such room" the fuzzer is given, through schemathesis dictionaries, the ids of rooms
and bookings that exist (rooms on sandbox locks that share an entrance; bookings scheduled,
active, cancelled and checked out), the sandbox's lock ids, a room id to create, real IANA
zones, names without control characters, and check-in and check-out points around today that
mostly make a stay; it mixes them into what it generates. Its copy of the spec (`combined_spec`)
spells the stay points' month and day so that schemathesis can draw them (`with_drawable_dates`,
the same strings valid) and has a working request as the example of PUT /rooms and POST /bookings
(`with_request_examples`), so the examples and the coverage phase create rooms and bookings too.
About half of the webhook bodies are signed with the stack's secret.

A crash is a 5xx answer, or an unhandled exception in any function (the functions' log), or an SQS
record a function failed (the dispatcher's log): `FuzzResult.crashes` lists them with the request.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "openapi.yaml"
WEBHOOK_SPEC = ROOT / "openapi-nuki-webhook.yaml"  # Nuki's route: fuzzed too, from its own spec
# The fuzz's own sandbox locks (far from the e2e tests' 18_000_001...).
FUZZ_LOCKS = (19_000_001, 19_000_002, 19_000_003, 19_000_099)
ZONES = ("Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "Pacific/Chatham", "UTC")
DISABLED_CHECKS = {
    "unsupported_method": "API Gateway REST answers an undeclared method with 403 Missing Authentication Token",
    "use_after_free": "DELETE /bookings/{id} cancels; the booking stays readable with status cancelled",
}


@dataclass
class FuzzFixtures:
    rooms: list[str]
    locks: list[int]
    bookings: list[str]


@dataclass
class FuzzResult:
    cases: int  # test cases schemathesis generated and ran
    requests: int  # HTTP exchanges with the gateway
    statuses: Counter[int]
    failures: list[dict[str, Any]]  # schemathesis' failure groups (code, title, count, operations)
    server_errors: list[dict[str, Any]]  # every 5xx answer with its request
    crashes: list[str]  # function exceptions and failed SQS records in the stack's logs
    pins: set[str]
    seconds: float
    exit_code: int
    output: str
    report: dict[str, Any] = field(default_factory=dict)
    # "POST /bookings" -> its statuses, the phases its 201s came in, its 4xx answers (300 characters)
    operations: dict[str, Counter[int]] = field(default_factory=dict)
    creations: dict[str, Counter[str]] = field(default_factory=dict)
    refusals: dict[str, Counter[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.failures and not self.server_errors and not self.crashes

    def created(self, operation: str) -> int:
        """How many times `operation` (e.g. "POST /bookings") answered 201."""
        return self.operations.get(operation, Counter())[201]

    def reach(self, *operations: str, refusals: int = 3) -> str:
        """What `operations` answered: their statuses and most common refusals (is the fuzz deep?)."""
        lines = []
        for operation in operations:
            counts = self.operations.get(operation, Counter())
            codes = ", ".join(f"{status}: {n}" for status, n in sorted(counts.items())) or "never called"
            phases = ", ".join(f"{phase} {n}" for phase, n in self.creations.get(operation, Counter()).items())
            lines.append(f"  {operation}: {codes}" + (f" (201s in {phases})" if phases else ""))
            for answer, n in self.refusals.get(operation, Counter()).most_common(refusals):
                lines.append(f"    {n} x {answer[:240]}")
        return "\n".join(lines)

    def summary(self) -> str:
        codes = ", ".join(f"{status}: {n}" for status, n in sorted(self.statuses.items()))
        lines = [
            f"fuzz: {self.cases} test cases, {self.requests} requests in {self.seconds:.0f}s",
            f"  statuses: {codes}",
            f"  5xx answers: {len(self.server_errors)}",
            f"  failed checks: {sum(int(f.get('count', 0)) for f in self.failures)}",
            f"  crashes in the stack's logs: {len(self.crashes)}",
        ]
        lines += self.reach("PUT /rooms/{roomId}", "POST /bookings", refusals=0).splitlines()
        for failure in self.failures:
            lines.append(f"  - {failure.get('code')} {failure.get('title')}: {failure.get('operations')}")
        for error in self.server_errors[:10]:
            lines.append(f"  - {error.get('status')} {json.dumps(error.get('request'))[:300]}")
        lines += [f"  - {crash[:300]}" for crash in self.crashes[:10]]
        return "\n".join(lines)


# ---------------------------------------------------------------------- fixtures the fuzzer gets


def prepare(gateway_url: str, nuki_url: str, api_key: str, http: requests.Session) -> FuzzFixtures:
    """Sandbox locks, two rooms sharing an entrance, and bookings in four states."""
    for lock in FUZZ_LOCKS:
        r = http.post(f"{nuki_url}/_sim/smartlocks", json={"smartlockId": lock, "name": f"Fuzz {lock}"}, timeout=30)
        if r.status_code not in (201, 409):
            raise RuntimeError(f"sandbox lock {lock}: {r.status_code} {r.text}")
    headers = {"x-api-key": api_key}
    entrance = FUZZ_LOCKS[-1]
    rooms = {"fuzz-a": [FUZZ_LOCKS[0], entrance], "fuzz-b": [FUZZ_LOCKS[1], entrance], "fuzz-c": [FUZZ_LOCKS[2]]}
    for room_id, locks in rooms.items():
        room = {"name": f"Fuzz {room_id}", "smartlockIds": locks, "timezone": "Europe/Berlin"}
        r = http.put(f"{gateway_url}/rooms/{room_id}", json=room, headers=headers, timeout=60)
        if r.status_code not in (200, 201):
            raise RuntimeError(f"room {room_id}: {r.status_code} {r.text}")
    today = datetime.now(UTC).date()
    now = datetime.now(UTC).replace(microsecond=0)
    stays = {
        "fuzz-scheduled": ((today + timedelta(days=40)).isoformat(), (today + timedelta(days=42)).isoformat()),
        "fuzz-active": (now.isoformat(), (now + timedelta(days=2)).isoformat()),
        "fuzz-cancelled": ((today + timedelta(days=20)).isoformat(), (today + timedelta(days=21)).isoformat()),
        "fuzz-revoked": (now.isoformat(), (now + timedelta(days=1)).isoformat()),
    }
    for booking_id, (check_in, check_out) in stays.items():
        body: dict[str, object] = {
            "bookingId": booking_id,
            "roomId": "fuzz-a",
            "guest": {"name": "Ada Lovelace", "email": "ada@example.org"},
            "checkIn": check_in,
            "checkOut": check_out,
        }
        r = http.post(f"{gateway_url}/bookings", json=body, headers=headers, timeout=60)
        if r.status_code not in (200, 201, 409):
            raise RuntimeError(f"booking {booking_id}: {r.status_code} {r.text}")
    http.delete(f"{gateway_url}/bookings/fuzz-cancelled", headers=headers, timeout=60)
    http.post(f"{gateway_url}/bookings/fuzz-revoked/checkout", headers=headers, timeout=60)
    return FuzzFixtures(rooms=list(rooms), locks=list(FUZZ_LOCKS), bookings=list(stays))


def _stay_point(today: date, now: datetime, *, days: int = 0, hours: int | None = None, offset: str = "Z") -> str:
    if hours is None:
        return (today + timedelta(days=days)).isoformat()
    return (now + timedelta(hours=hours)).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%S") + offset


def check_in_points(today: date, now: datetime) -> list[str]:
    """Where the fuzz's stays start: yesterday to a month ahead, as dates and as date-times with an
    offset; and one more than three years away (refused)."""
    points = [_stay_point(today, now, days=d) for d in (-1, 0, 1, 2, 5, 30, 1100)]
    return points + [_stay_point(today, now, hours=h, offset=o) for h, o in ((-2, "Z"), (1, "Z"), (5, "+05:30"))]


def check_out_points(today: date, now: datetime) -> list[str]:
    """Where they end: most after every start point and within a year of it, so that a check-in and a
    check-out drawn from the two lists make a stay more often than not (drawn from one list of
    points, one pair in three did); and some that do not (yesterday; 400 days ahead, too long a stay
    from most starts)."""
    points = [_stay_point(today, now, days=d) for d in (3, 9, 31, 120, 365, -1, 400)]
    return points + [_stay_point(today, now, hours=h, offset=o) for h, o in ((30, "-03:00"), (80, "+14:00"))]


# PUT /rooms/fuzz-new creates a room: tools.fuzz_hooks sends each such request to a new id.
NEW_ROOM = "fuzz-new"
# Room and guest names without control characters (the rule is in the schema's description only,
# so half of the generated names are refused, and the booking with them).
NAMES = ("Ada Lovelace", "Zoë Ødegård-Łukasiewicz", "O'Brien", "李小龍", "Fuzz")


def _toml_list(values: list[Any]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def write_config(workdir: Path, api_key: str, fixtures: FuzzFixtures, *, max_examples: int, seed: int) -> Path:
    now = datetime.now(UTC)
    checks = "\n".join(f"[checks.{name}]\nenabled = false  # {why}" for name, why in DISABLED_CHECKS.items())
    text = f"""# written by tools/fuzz.py
seed = {seed}
request-timeout = 40
color = false

[generation]
max-examples = {max_examples}
database = "none"

[cache]
directory = {json.dumps(str(workdir / "cache"))}

[auth.openapi.apiKey]
api_key = {json.dumps(api_key)}

[phases.stateful]
max-steps = 12

{checks}

[checks.positive_data_acceptance]
# 422 too: the custom check refusals_name_rules_the_schema_cannot_state judges every 422.
expected-statuses = ["2xx", 401, 403, 404, 409, 413, 422, 429]

[dictionaries.rooms]
values = {_toml_list(fixtures.rooms)}

[dictionaries.rooms-to-put]
values = {_toml_list([NEW_ROOM, *fixtures.rooms])}

[dictionaries.bookings]
values = {_toml_list(fixtures.bookings)}

[dictionaries.locks]
values = {_toml_list(fixtures.locks)}

[dictionaries.zones]
values = {_toml_list(list(ZONES))}

[dictionaries.check-ins]
values = {_toml_list(check_in_points(now.date(), now))}

[dictionaries.check-outs]
values = {_toml_list(check_out_points(now.date(), now))}

[dictionaries.names]
values = {_toml_list(list(NAMES))}

[parameters]
"path.roomId" = {{ dictionary = "rooms", probability = 0.5 }}
"path.bookingId" = {{ dictionary = "bookings", probability = 0.5 }}
"body.roomId" = {{ dictionary = "rooms", probability = 0.7 }}
"body.timezone" = {{ dictionary = "zones", probability = 0.7 }}
"body.smartlockIds[*]" = {{ dictionary = "locks", probability = 0.8 }}
"body.name" = {{ dictionary = "names", probability = 0.5 }}
"body.guest.name" = {{ dictionary = "names", probability = 0.5 }}
"body.checkIn" = {{ dictionary = "check-ins", probability = 0.8 }}
"body.checkOut" = {{ dictionary = "check-outs", probability = 0.8 }}

# PUT /rooms: a new room (201) or one of the fixtures' (replaced, 200); without this the path is
# mostly a room the fuzz has seen in an answer (schemathesis reuses them), seldom a new one.
[[operations]]
include-name = "PUT /rooms/{{roomId}}"
parameters = {{ "path.roomId" = {{ dictionary = "rooms-to-put", probability = 0.8 }} }}
"""
    path = workdir / "schemathesis.toml"
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------- the run


# A date or date-time string with a pattern in openapi.yaml (the stay points) spells month and day
# as [0-9]{2} and leaves their range to `format`. Schemathesis draws such a string from the format's
# generator (years 0001-9999, which a years-2000-2200 pattern refuses ~98% of the time), then from
# the pattern filtered by the format (months and days 00-99, refused ~96% of the time): most draws
# of a booking body were rejected, and the stateful phase drops a whole scenario for one rejected
# draw, so it almost never booked. The fuzz's copy spells month and day as the format takes them:
# the same strings are valid (schemathesis asserts formats), and what the pattern draws is a date.
LOOSE_MONTH_DAY = "-[0-9]{2}-[0-9]{2}"
MONTH_DAY = "-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"


def with_drawable_dates(value: Any) -> tuple[Any, int]:
    """`value` (a spec or a part of one) with each date / date-time pattern's month and day spelled
    as `MONTH_DAY`, and how many patterns changed."""
    if isinstance(value, list):
        parts = [with_drawable_dates(v) for v in value]
        return [v for v, _ in parts], sum(n for _, n in parts)
    if not isinstance(value, dict):
        return value, 0
    out: dict[str, Any] = {}
    changed = 0
    for key, item in value.items():
        out[key], n = with_drawable_dates(item)
        changed += n
    pattern = out.get("pattern")
    if out.get("format") in ("date", "date-time") and isinstance(pattern, str) and LOOSE_MONTH_DAY in pattern:
        out["pattern"] = pattern.replace(LOOSE_MONTH_DAY, MONTH_DAY, 1)
        changed += 1
    return out, changed


EXAMPLE_ROOM = "fuzz-example"


def with_request_examples(spec: dict[str, Any], fixtures: FuzzFixtures, today: date) -> dict[str, Any]:
    """`spec` with a request that works for PUT /rooms/{roomId} (a new room on the fuzz's sandbox locks)
    and POST /bookings (a stay in a room of the fixtures, weeks ahead). The examples phase sends
    them, and the coverage phase builds its boundary values on them. From openapi.yaml alone the
    example booking was in room "0" with check-out on the check-in day (StayPoint's one example for
    both) and the coverage phase's stays were in 2000: every positive case there was refused."""
    room_put = spec["paths"]["/rooms/{roomId}"]["put"]
    room_put["requestBody"]["content"]["application/json"]["example"] = {
        "name": "Fuzz example",
        "smartlockIds": [fixtures.locks[2], fixtures.locks[-1]],
        "timezone": "Europe/Berlin",
        "checkInTime": "15:00",
        "checkOutTime": "11:00",
        "accessBeforeMinutes": 30,
        "accessAfterMinutes": 30,
    }
    # The path's roomId for this operation alone (an operation's parameter overrides the path's).
    room_put["parameters"] = [{**spec["components"]["parameters"]["roomId"], "example": EXAMPLE_ROOM}]
    spec["paths"]["/bookings"]["post"]["requestBody"]["content"]["application/json"]["example"] = {
        "bookingId": "fuzz-example",
        "roomId": fixtures.rooms[0],
        "guest": {"name": "Ada Lovelace", "email": "ada@example.org", "locale": "en"},
        "checkIn": (today + timedelta(days=50)).isoformat(),
        "checkOut": (today + timedelta(days=53)).isoformat(),
        "notifyGuest": True,
    }
    return spec


def combined_spec(workdir: Path, fixtures: FuzzFixtures | None = None) -> Path:
    """openapi.yaml with the Nuki webhook receiver's operation from openapi-nuki-webhook.yaml, as one
    document for one schemathesis run (the webhook's components renamed ``NukiWebhook...``), its date
    patterns made drawable (`with_drawable_dates`: the same strings valid) and, given the fixtures,
    requests that work as the examples of the operations that create (`with_request_examples`)."""
    import yaml

    shop: dict[str, Any] = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    webhook: dict[str, Any] = yaml.safe_load(WEBHOOK_SPEC.read_text(encoding="utf-8"))
    prefix = "#/components/schemas/"

    def renamed(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: (prefix + "NukiWebhook" + v[len(prefix) :] if k == "$ref" and v.startswith(prefix) else renamed(v))
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [renamed(v) for v in value]
        return value

    for name, schema in (webhook.get("components", {}).get("schemas") or {}).items():
        shop["components"]["schemas"]["NukiWebhook" + name] = renamed(schema)
    for path, item in webhook["paths"].items():
        item = renamed(item)
        for op in item.values():
            if isinstance(op, dict) and "responses" in op:
                op.setdefault("security", webhook.get("security", []))
        shop["paths"][path] = item
    shop["tags"] = [*shop.get("tags", []), *webhook.get("tags", [])]
    shop, _ = with_drawable_dates(shop)
    if fixtures is not None:
        shop = with_request_examples(shop, fixtures, datetime.now(UTC).date())
    out = workdir / "openapi-fuzz.json"
    out.write_text(json.dumps(shop, indent=1), encoding="utf-8")
    return out


def _log_size(path: Path | None) -> int:
    return path.stat().st_size if path is not None and path.exists() else 0


def crashes_in_logs(functions_log: Path | None, runtime_log: Path | None, offsets: tuple[int, int]) -> list[str]:
    """Unhandled exceptions in functions and failed SQS records since `offsets` (log sizes)."""
    found: list[str] = []
    for path, offset, markers in (
        (functions_log, offsets[0], ('"errorType"', '"level":"ERROR"', "Traceback (most recent call last)")),
        (runtime_log, offsets[1], ("records failed", "failed a batch", "SQS batch:", "Traceback", " failed (")),
    ):
        if path is None or not path.exists():
            continue
        with path.open("rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", "replace")
        found += [line for line in text.splitlines() if any(m in line for m in markers)]
    return found


def run_schemathesis(
    gateway_url: str,
    api_key: str,
    fixtures: FuzzFixtures,
    *,
    max_examples: int,
    seed: int,
    workdir: Path,
    webhook_secret: str | None = None,
    workers: int = 1,
    max_time: float | None = None,
    functions_log: Path | None = None,
    runtime_log: Path | None = None,
) -> FuzzResult:
    workdir.mkdir(parents=True, exist_ok=True)
    config = write_config(workdir, api_key, fixtures, max_examples=max_examples, seed=seed)
    record = workdir / "exchanges.jsonl"
    record.unlink(missing_ok=True)
    report_dir = workdir / "report"
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "run",
        str(combined_spec(workdir, fixtures)),
        "--url",
        gateway_url,
        "--checks",
        "all",
        "--exclude-checks",
        ",".join(DISABLED_CHECKS),
        "--workers",
        str(workers),
        "--report",
        "json",
        "--report-dir",
        str(report_dir),
        "--no-color",
    ]
    if max_time is not None:
        command += ["--max-time", str(int(max_time))]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tools.fuzz_hooks",
        "STAYKEY_FUZZ_RECORD": str(record),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "NO_PROXY": "127.0.0.1,localhost",
    }
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(proxy, None)
    if webhook_secret:
        env["STAYKEY_FUZZ_WEBHOOK_SECRET"] = webhook_secret
    offsets = (_log_size(functions_log), _log_size(runtime_log))
    started = time.monotonic()
    done = subprocess.run(command, cwd=str(ROOT), env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    time.sleep(2)  # let queued follow-ups of the last requests run before the logs are read
    reports = sorted(report_dir.glob("*.json"), key=lambda p: p.stat().st_mtime)
    report: dict[str, Any] = json.loads(reports[-1].read_text(encoding="utf-8")) if reports else {}
    # One exchange a line: split at "\n" only (JSON escapes it; an answer may hold U+2028 or U+0085,
    # which splitlines() also splits at).
    lines = record.read_text(encoding="utf-8").split("\n") if record.exists() else []
    exchanges = [json.loads(line) for line in lines if line]
    operations: dict[str, Counter[int]] = {}
    creations: dict[str, Counter[str]] = {}
    refusals: dict[str, Counter[str]] = {}
    for e in exchanges:
        operation = f"{e['method']} {e['path']}"
        operations.setdefault(operation, Counter())[int(e["status"])] += 1
        if int(e["status"]) == 201:
            creations.setdefault(operation, Counter())[str(e.get("phase"))] += 1
        if "answer" in e:
            refusals.setdefault(operation, Counter())[f"{e['status']} {e['answer']}"] += 1
    return FuzzResult(
        cases=int((report.get("test_cases") or {}).get("generated", 0)),
        requests=len(exchanges),
        statuses=Counter(int(e["status"]) for e in exchanges),
        failures=list(report.get("failures") or []),
        server_errors=[e for e in exchanges if int(e["status"]) >= 500],
        crashes=crashes_in_logs(functions_log, runtime_log, offsets),
        pins={pin for e in exchanges for pin in e.get("pins", [])},
        seconds=seconds,
        exit_code=done.returncode,
        output=done.stdout + done.stderr,
        report=report,
        operations=operations,
        creations=creations,
        refusals=refusals,
    )


def webhook_secret(environment: dict[str, str]) -> str | None:
    """The local stack's registered webhook secret (moto's Secrets Manager)."""
    import boto3

    client = boto3.client(
        "secretsmanager",
        endpoint_url=environment.get("AWS_ENDPOINT_URL"),
        region_name=environment.get("AWS_DEFAULT_REGION", "eu-central-1"),
        aws_access_key_id=environment.get("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=environment.get("AWS_SECRET_ACCESS_KEY", "testing"),
    )
    try:
        return str(client.get_secret_value(SecretId=environment["NUKI_WEBHOOK_SECRET_NAME"])["SecretString"])
    except Exception:
        return None


def fuzz_stack(stack: Any, *, max_examples: int, seed: int, workdir: Path, workers: int = 1) -> FuzzResult:
    """Prepare `stack` (a started `local.stack.LocalStack`) and fuzz it."""
    with requests.Session() as http:
        http.trust_env = False
        fixtures = prepare(stack.gateway_url, stack.nuki_url, stack.config.api_key, http)
    return run_schemathesis(
        stack.gateway_url,
        stack.config.api_key,
        fixtures,
        max_examples=max_examples,
        seed=seed,
        workdir=workdir,
        webhook_secret=webhook_secret(stack.environment()),
        workers=workers,
        functions_log=stack.functions_log,
        runtime_log=stack.runtime_log,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-examples", type=int, default=60, help="cases per operation and phase")
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--min-cases", type=int, default=1000, help="fail when fewer cases ran")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the config, report and exchanges here")
    args = parser.parse_args(argv)

    from local.stack import LocalStack, StackConfig

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="staykey-fuzz-"))
    config = StackConfig.from_env(
        environ={}, gateway_port=0, nuki_port=0, aws_port=0, sync_delay=0.4, log_dir=workdir / "logs"
    )
    print(f"fuzz: starting a local stack (logs in {workdir / 'logs'}) ...", flush=True)
    with LocalStack(config) as stack:
        result = fuzz_stack(stack, max_examples=args.max_examples, seed=args.seed, workdir=workdir)
        from tools.pin_scan import pins_in_logs

        leaks = pins_in_logs(result.pins, [stack.log_dir])
    print(result.output[-6000:])
    print(result.summary())
    print(f"  PINs issued: {len(result.pins)}; PINs found in the stack's logs: {len(leaks)}")
    print(f"  report, config and exchanges: {workdir}")
    if result.cases < args.min_cases:
        print(f"fuzz: only {result.cases} cases ran (at least {args.min_cases} wanted)", file=sys.stderr)
        return 1
    return 0 if result.ok and not leaks else 1


if __name__ == "__main__":
    raise SystemExit(main())
