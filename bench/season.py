"""8. A season on `make local`'s stack: 1,000 bookings, then the stack idle.

The local stack as ``make local`` runs it (webhook registered, the template's rate events on, the
default sync delay), on free ports. 20 rooms, each with a door of its own and all sharing one
entrance lock. Then `SEASON` bookings are loaded one after the other, as a shop would over a season:
each room gets the next stay after its last one (2 to 6 nights, a day or two apart, from today
on), so the first few are provisioned at once and most are ``scheduled`` (two schedules each, a
PIN reserved on two locks). Each ``POST /bookings`` is timed from sending to the answer.

Then the stack is left alone: after `SETTLE` seconds, the CPU time of every process of the stack
(moto server, the runtime with the functions, gateway and dispatcher, and this process, which
holds the Nuki sandbox) is read from /proc over `IDLE_WINDOW` seconds, as a share of one core;
and moto's resident memory.

Before issue 13 the stack's email watcher read moto's whole model dump every second and the
dispatcher listed every schedule five times a second: POST /bookings took 3-6 s from about 55
bookings and answered 504 (29 s) from about 120, and the idle stack held a whole core. Goals:
p95 ≤ 1 s with 1,000 bookings loaded, idle under 5 % of a core.
"""

from __future__ import annotations

import os
import random
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from bench.common import main, median, percentile

SEASON = 1000
ROOMS = 20
SETTLE = 20.0
IDLE_WINDOW = 30.0
DOORS = range(21_000_001, 21_000_001 + ROOMS)
ENTRANCE = 21_000_099
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its reaped children, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # after the name: state(0) ... utime(11) stime(12) cutime(13) cstime(14)
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / CLK_TCK


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def stays(n: int, today: date, rng: random.Random) -> list[tuple[int, date, date]]:
    """`n` stays over the rooms, each room's next stay after its last: (room index, in, out)."""
    free = [today + timedelta(days=rng.randint(0, 2)) for _ in range(ROOMS)]
    out = []
    for i in range(n):
        room = i % ROOMS
        check_in = free[room]
        check_out = check_in + timedelta(days=rng.randint(2, 6))
        free[room] = check_out + timedelta(days=rng.randint(0, 1))
        out.append((room, check_in, check_out))
    return out


def run(quick: bool) -> dict[str, Any]:
    from local.stack import LocalStack, StackConfig

    season = 200 if quick else SEASON
    config = StackConfig.from_env(environ={}, gateway_port=0, nuki_port=0, aws_port=0)
    rng = random.Random(13)
    with LocalStack(config) as stack, requests.Session() as http:
        http.trust_env = False
        key = {"x-api-key": stack.config.api_key}
        for lock in [*DOORS, ENTRANCE]:
            r = http.post(f"{stack.nuki_url}/_sim/smartlocks", json={"smartlockId": lock}, timeout=30)
            assert r.status_code == 201, r.text
        for i, door in enumerate(DOORS):
            room = {"name": f"Room {i + 1}", "smartlockIds": [door, ENTRANCE], "timezone": "Europe/Berlin"}
            r = http.put(f"{stack.gateway_url}/rooms/season-{i + 1}", json=room, headers=key, timeout=60)
            assert r.status_code in (200, 201), r.text

        seconds: list[float] = []
        statuses: dict[int, int] = {}
        started = time.monotonic()
        for n, (room, check_in, check_out) in enumerate(stays(season, datetime.now(UTC).date(), rng)):
            body = {
                "bookingId": f"S-{n:05d}",
                "roomId": f"season-{room + 1}",
                "guest": {"name": f"Guest {n}", "email": f"guest{n}@example.org"},
                "checkIn": check_in.isoformat(),
                "checkOut": check_out.isoformat(),
            }
            sent = time.monotonic()
            r = http.post(f"{stack.gateway_url}/bookings", json=body, headers=key, timeout=60)
            seconds.append(time.monotonic() - sent)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        load_s = time.monotonic() - started

        blocks = []
        for start in range(0, season, 100):
            block = seconds[start : start + 100]
            blocks.append(
                {
                    "bookings": f"{start + 1}-{start + len(block)}",
                    "median_s": round(median(block), 3),
                    "p95_s": round(percentile(block, 95), 3),
                    "max_s": round(max(block), 3),
                }
            )

        time.sleep(SETTLE)
        assert stack.moto is not None
        assert stack.moto.proc is not None
        assert stack.runtime is not None
        pids = {"moto server": stack.moto.proc.pid, "runtime": stack.runtime.pid, "sandbox (this process)": os.getpid()}
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        time.sleep(IDLE_WINDOW)
        idle = {name: (cpu_seconds(pid) - before[name]) / IDLE_WINDOW * 100 for name, pid in pids.items()}
        return {
            "bookings": season,
            "rooms": ROOMS,
            "statuses": statuses,
            "load_s": round(load_s, 1),
            "post_bookings_median_s": round(median(seconds), 3),
            "post_bookings_p95_s": round(percentile(seconds, 95), 3),
            "post_bookings_max_s": round(max(seconds), 3),
            "blocks": blocks,
            "idle_window_s": IDLE_WINDOW,
            "idle_cpu_percent_of_a_core": {k: round(v, 2) for k, v in idle.items()},
            "idle_cpu_percent_total": round(sum(idle.values()), 2),
            "moto_rss_mb": round(rss_mb(stack.moto.proc.pid), 0),
            "runtime_rss_mb": round(rss_mb(stack.runtime.pid), 0),
        }


if __name__ == "__main__":
    main(run)
