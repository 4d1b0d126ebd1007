"""A seeded season's trace as one hash: every Nuki request StayKey sent (time, method, path,
status), every booking write as the invariants saw it, every email. A refactor that is meant to
change nothing must leave every seed's digest as it was (`python -m local.sim.digest 1 2 3 ...`)."""

from __future__ import annotations

import hashlib
import sys

from local.sim.scenario import Season


def digest(seed: int, stays: int = 30, days: float = 1.0, rotations: bool = False) -> str:
    """Without PIN rotations by default: the season as it was before them (seasons with rotations
    differ from the first rotation on; `--rotations` digests those). Without staff codes: the
    season as it was before them."""
    season = Season(seed, stays=stays, days=days, validate=0.0, rotations=rotations, staff=False)
    result = season.run()
    world = season.world
    h = hashlib.sha256()
    for call in world.link.calls:
        h.update(f"{call.at:.3f} {call.method} {call.path} {call.status}\n".encode())
    for booking_id in sorted(world.checker.history):
        seen = ""
        for line in world.checker.history[booking_id]:
            # What the booking was, write by write, without the write's number: a refactor may save
            # in fewer rounds; what the shop could read must not change.
            at, _version, state = line.split(None, 2)
            if state != seen:
                h.update(f"{booking_id} {at} {state}\n".encode())
                seen = state
    for sent in world.mailer.sent:
        n = sent.notice
        h.update(f"{sent.at:.3f} {n.booking_id} {n.pin} {n.valid_from} {n.valid_until} {n.updated}\n".encode())
    h.update(f"{sorted(result.violations)}".encode())
    return h.hexdigest()[:16]


def main(argv: list[str]) -> int:
    small = "--small" in argv
    rotations = "--rotations" in argv
    for raw in [a for a in argv if a not in ("--small", "--rotations")] or ["1"]:
        if small:
            print(raw, digest(int(raw), stays=10, days=0.3, rotations=rotations), flush=True)
        else:
            print(raw, digest(int(raw), rotations=rotations), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
