"""The simulator's rules for backup codes (issue 16), judged against the sandbox's locks.

told_means_true  A booking given a backup code for a lock (`backups`) counts that lock as open to
                 its guest only while exactly one code with the backup PIN is on the lock, under
                 its pool code's name, with no error, enabled, every day and all day, and valid
                 from before the stay to after it; the guest's email names that code for that door.
backup_in_time   A guest whose code is not on a lock of a room with backup codes at validFrom holds
                 a working backup code for it then, whenever that lock had one ready (on the lock,
                 given to nobody) a readiness period after the booking could first be given one
                 (BACKUP_DEADLINE_HOURS before validFrom, its creation, or the change that moved it
                 into the room or its stay nearer) and up to a readiness period before validFrom.
gone_means_gone  A backup code is wanted until the booking it was given to ends (then it must be
                 off the lock within 15 minutes, as every code of the booking), or until StayKey
                 itself removes it from the pool.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from local.sim.invariants import WINDOW_SLACK, parse_iso

if TYPE_CHECKING:
    from local.sim.invariants import Checker

KEYPAD = 13
SLACK = 300.0
POOL = "pool~"


class BackupChecks:
    def __init__(self, checker: Checker) -> None:
        self.c = checker
        self.w = checker.w
        self.pools: dict[str, dict[str, Any]] = {}  # pool id -> its item as last written
        self.pool_ended: dict[str, float] = {}  # pool id -> when StayKey ended it
        self.ready_at: dict[int, list[float]] = {}  # lock -> sweeps at which it had a ready backup code
        self.judged: set[tuple[str, int]] = set()

    # ------------------------------------------------------------------ hooks

    def on_write(self, new: dict[str, Any], now: float) -> None:
        booking_id = str(new["bookingId"])
        if not booking_id.startswith(POOL):
            return
        self.pools[booking_id] = new
        if new["status"] in ("revoking", "revoked") and booking_id not in self.pool_ended:
            self.pool_ended[booking_id] = now

    def unwanted_since(self, pool_id: str) -> float | None:
        """Since when a backup code must be off its lock: its booking's end, or StayKey ending it."""
        item = self.pools.get(pool_id)
        if item is None:
            return 0.0
        since = [self.pool_ended[pool_id]] if pool_id in self.pool_ended else []
        user = (item.get("staff") or {}).get("usedBy")
        sb = self.w.shop.get(str(user)) if user else None
        if sb is not None:
            lock_id = int(item["locks"][0]["smartlockId"])
            if lock_id in sb.left_locks:  # the booking moved off the lock: its backup code there goes
                since.append(sb.left_locks[lock_id])
            ends = [t for t in (sb.ended_at,) if t is not None]
            if sb.valid_until is not None:
                ends.append(self.w.loop.at_time(sb.valid_until))
            since += [min(ends)] if ends and min(ends) <= self.w.loop.t else []
        return min(since) if since else None

    # ------------------------------------------------------------------ a lock open to the guest

    def problem(self, item: dict[str, Any], lock_id: int, own: str | None) -> str | None:
        """`own` (why the booking's code does not open the lock), unless the booking holds a backup
        code for the lock that does: then None."""
        if own is None:
            return None
        given = next((b for b in item.get("backups") or [] if int(b["smartlockId"]) == lock_id), None)
        if given is None:
            return own
        why = self.backup_problem(lock_id, str(given["pin"]), str(given["poolId"]), item, given.get("assignedAt"))
        return None if why is None else f"{own}; and its backup code: {why}"

    def backup_problem(
        self, lock_id: int, pin: str, pool_id: str, item: dict[str, Any], given_at: str | None = None
    ) -> str | None:
        """Why the backup code does not open the lock for the stay: from the stay's start (or, given
        once it began, from when it was given) to its end; None if it does."""
        pool = self.pools.get(pool_id)
        if pool is None:
            return f"no backup code {pool_id} was ever made"
        held = [a for a in self.c._ours(lock_id, pin) if a.name == pool["authName"]]
        if len(held) != 1:
            return f"{len(held)} codes with the backup PIN on the lock"
        auth = held[0]
        window = auth.window
        start, end = parse_iso(item["validFrom"]), parse_iso(item["validUntil"])
        assert start is not None
        assert end is not None
        given = parse_iso(given_at)
        start = max(start, given) if given is not None else start
        if auth.error is not None:
            return f"the lock refused it ({auth.error})"
        if not auth.enabled or auth.remote_allowed:
            return "disabled, or with remote access"
        if window.from_date is None or (window.from_date - start).total_seconds() > WINDOW_SLACK:
            return f"it starts at {window.from_date}, after the stay's {start}"
        if window.until_date is None or (end - window.until_date).total_seconds() > WINDOW_SLACK:
            return f"it ends at {window.until_date}, before the stay's {end}"
        if (window.week_days or 127, window.from_time or 0, window.until_time or 0) != (127, 0, 0):
            return "it has weekday or daily-time limits"
        return None

    # ------------------------------------------------------------------ sweeps

    def sweep(self) -> None:
        now = self.w.loop.t
        ready: set[int] = set()
        for pool_id, pool in self.pools.items():
            staff = pool.get("staff") or {}
            if pool["status"] != "active" or staff.get("usedBy") or pool_id in self.pool_ended:
                continue
            lock_id = int(pool["locks"][0]["smartlockId"])
            if not self.backup_problem(lock_id, str(pool["pin"]), pool_id, _forever(pool)):
                ready.add(lock_id)
        for lock_id in ready:
            self.ready_at.setdefault(lock_id, []).append(now)
        self._in_time(now)

    def _in_time(self, now: float) -> None:
        w = self.w
        deadline = w.settings.backup_deadline_hours * 3600.0
        period = w.config.readiness_every
        for sb in w.shop.values():
            if sb.staff or sb.valid_from is None or sb.ended_at is not None or not w.backup_rooms.get(sb.room_id):
                continue
            begins = w.loop.at_time(sb.valid_from)
            if not begins <= now < begins + 120.0:
                continue
            item = self.c.items.get(sb.booking_id)
            if item is None or item["status"] in ("revoking", "revoked", "cancelled"):
                continue
            for lock_id in self.c._present(item):
                if (sb.booking_id, lock_id) in self.judged or self.c._access(item, lock_id) != "keypad":
                    continue
                self.judged.add((sb.booking_id, lock_id))
                self.c.checks["backup_in_time"] += 1
                start, end = parse_iso(item["validFrom"]), parse_iso(item["validUntil"])
                assert start is not None
                assert end is not None
                own = self.c._lock_problem(lock_id, item["pin"], item["authName"], start, end)
                if own is None or self.problem(item, lock_id, own) is None:
                    continue
                # Ready at a sweep a readiness period after the booking could first be given one
                # (its deadline, its creation, the change that moved it into its room or onto the
                # lock, or moved its start earlier; a later check-out or start does not): a run came
                # meanwhile and left a code unused. A code that
                # was ready before went to a booking that asked first (a pool of 3, an offline lock
                # that cannot be refilled, five guests: seed 123).
                joined = max(sb.room_changed_at, sb.joined.get(lock_id, 0.0))
                eligible = max(begins - deadline, sb.created_at, joined, sb.start_earlier_at)
                lo, hi = eligible + period, begins - period - SLACK
                had = [t for t in self.ready_at.get(lock_id, ()) if lo <= t <= hi]
                if had:
                    self.c.violation(
                        "backup_in_time",
                        f"{sb.booking_id} begins without a working code on lock {lock_id} ({own}) though a "
                        f"backup code was ready there {(begins - had[0]) / 60:.0f} min before",
                        key=f"{sb.booking_id}:{lock_id}",
                    )


def _forever(pool: dict[str, Any]) -> dict[str, Any]:
    """A pool code judged for any stay: valid over its own window."""
    return {"validFrom": pool["validFrom"], "validUntil": pool["validUntil"]}


__all__ = ["BackupChecks"]
