"""The simulator's rules for readiness and for the guests' Nuki account users, judged against what
the sandbox was told (the world's lock health and account users), never against StayKey's own idea.

ready    A lock of a booking that had a readiness problem (offline, a critical battery, a critical
         keypad battery on a lock the guest opens with the keypad, a lapsed Smart Hosting
         subscription) throughout the time since a check fell due (48 and 4 hours before
         validFrom, or since the booking or its lock came, whichever is later) puts the booking
         `at_risk`, naming that lock, within a readiness period (and some slack); and a booking
         `at_risk` whose locks had no problem at all for a readiness period is `ok` again by then.
         Nuki must have answered throughout (an outage leaves the check for the next run).
privacy  An account user StayKey created (every one but those someone else added) is gone from
         Nuki within two purge periods after every booking of its guest ended and its guest data
         expired (GUEST_DATA_RETENTION_DAYS).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from local.sim.invariants import parse_iso

if TYPE_CHECKING:
    from local.sim.invariants import Checker

SLACK = 300.0  # an invocation's Nuki calls, the loop's scheduling
LIVE = ("scheduled", "provisioning", "active", "failed")


class ArrivalChecks:
    def __init__(self, checker: Checker) -> None:
        self.c = checker
        self.w = checker.w

    def sweep(self) -> None:
        w = self.w
        period = w.config.readiness_every + SLACK
        marks = [m.total_seconds() for m in w.settings.readiness_offsets]
        for booking_id, sb in w.shop.items():
            item = self.c.items.get(booking_id)
            if item is None or item["status"] not in LIVE or sb.staff:
                continue  # a staff code has no arrival
            start, end = parse_iso(item["validFrom"]), parse_iso(item["validUntil"])
            assert start is not None
            assert end is not None
            begins, ends = w.loop.at_time(start), w.loop.at_time(end)
            if w.loop.t >= ends:
                continue
            present = self.c._present(item)
            readiness = item.get("readiness") or {}
            named = {int(r["smartlockId"]) for r in readiness.get("reasons", [])}
            if w.loop.t < begins:
                self._raised(booking_id, item, sb, begins, marks, period, present, readiness, named)
            if readiness.get("status") == "at_risk":
                self._cleared(booking_id, item, sb, present, period)

    def _raised(
        self,
        booking_id: str,
        item: dict[str, Any],
        sb: Any,
        begins: float,
        marks: list[float],
        period: float,
        present: tuple[int, ...],
        readiness: dict[str, Any],
        named: set[int],
    ) -> None:
        w, now = self.w, self.w.loop.t
        due = [begins - m for m in marks if begins - m <= now]
        if not due:
            return
        since = max(max(due), sb.created_at, sb.dates_changed_at)
        for lock_id in present:
            stored = self.c.joined.get(booking_id, {}).get(lock_id, 0.0)
            t0 = max(since, sb.joined.get(lock_id, sb.created_at), stored)
            if now < t0 + period or w.nuki_ok_since > t0 or w.nuki_down():
                continue
            throughout, _ = w.at_risk(lock_id, self.c._access(item, lock_id), t0, now)
            if not throughout:
                continue
            self.c.checks["ready"] += 1
            if readiness.get("status") != "at_risk" or lock_id not in named:
                self.c.violation(
                    "ready",
                    f"{booking_id}: lock {lock_id} has had a readiness problem since {t0:.0f}s and the booking is "
                    f"{readiness.get('status') or 'unchecked'}, not at risk naming it",
                    key=f"{booking_id}:{lock_id}:{t0:.0f}",
                )

    def _cleared(self, booking_id: str, item: dict[str, Any], sb: Any, present: tuple[int, ...], period: float) -> None:
        w, now = self.w, self.w.loop.t
        t0 = now - period
        if w.nuki_ok_since > t0 or w.nuki_down():
            return
        if any(w.at_risk(lock_id, self.c._access(item, lock_id), t0, now)[1] for lock_id in present):
            return
        # A lock the booking left (a move) had its problem until it was left: gone from then on. The
        # booking as stored says which it left: the shop's record misses a move whose answer was lost
        # with a dying invocation (seed 8: the booking checked until its move, judged without it).
        left = {lock_id: (at, self.c._access(item, lock_id)) for lock_id, at in sb.left_locks.items()}
        left.update(self.c.left.get(booking_id, {}))
        left = {lock_id: seen for lock_id, seen in left.items() if seen[0] > t0 and lock_id not in present}
        if any(w.at_risk(lock_id, access, t0, at)[1] for lock_id, (at, access) in left.items()):
            return
        self.c.checks["ready"] += 1
        self.c.violation(
            "ready",
            f"{booking_id} is still at risk {period / 60:.0f} min after the last problem on its locks was gone",
            key=f"{booking_id}:cleared:{int(now // period)}",
        )

    def final(self) -> None:
        """Privacy: the account users StayKey created are gone once their guests' data is."""
        w, now = self.w, self.w.loop.t
        retention = w.settings.guest_data_retention_days * 86400.0
        margin = 2 * w.config.purge_every + 15 * 60.0
        for user in w.sandbox.account_users():
            uid, email = int(user["accountUserId"]), str(user["email"])
            if uid in w.foreign_users:
                continue
            related = [sb for sb in w.shop.values() if email in sb.emails and self.c.items.get(sb.booking_id)]
            if not related:
                continue
            expiries: list[float] = []
            for sb in related:
                item = self.c.items[sb.booking_id]
                end = parse_iso(item["validUntil"])
                assert end is not None
                if item["status"] not in ("revoked", "cancelled"):
                    break  # a booking of theirs has not ended: the account user stays
                expiries.append(w.loop.at_time(end) + retention)
            else:
                self._gone(uid, related[0].booking_id, max(expiries), now, margin)

    def _gone(self, uid: int, booking_id: str, expired: float, now: float, margin: float) -> None:
        self.c.checks["privacy"] += 1
        if now > expired + margin:
            self.c.violation(
                "privacy",
                f"the Nuki account user of {booking_id}'s guest is still at Nuki "
                f"{(now - expired) / 3600:.1f} h after the guest data of every booking of theirs expired",
                key=f"user:{uid}",
            )


__all__ = ["ArrivalChecks"]
