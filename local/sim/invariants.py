"""StayKey's promise as executable checks, judged against the ground truth of a simulated world.

These checks read what StayKey stored (the booking the shop would GET, every email SES took) and
compare it with what the Nuki sandbox holds and with what the shop asked for. They share no code
with the service's own rules: a bug in the service's idea of "what is on the lock" cannot hide
itself here. The rules (docs/invariants.md says the same in prose):

told_means_true  A booking turns `active`, and a guest email goes out, only while every lock of
                 the booking holds exactly one code with the booking's PIN (or, on a lock the
                 guest opens with the Nuki app, exactly one app authorization for the guest's
                 Nuki account user, found by the guest's email; while a guest change is
                 unanswered, the old guest's or the new one's), under its name, with no
                 `error`, enabled, with no weekday or daily-time limits nor remote access, and
                 the booking's window within 60 s. The email states what is on the locks. A booking stays
                 `active` after its code changed on a lock for at most one hot-lock check period
                 (HotCheckMinutes, 15 by default, with or without webhooks: a lock with a stay
                 starting, running or just ended is looked at that often) and 5 minutes: the
                 time StayKey needs to notice a change it was not told about. A PIN rotation
                 switches an active booking only while every lock holds the new code so, and
                 until the guest is emailed the new PIN the one they were last told is on every
                 door, enabled, and opens it during the stay.
gone_means_gone  Every code of an ended, cancelled or moved booking (and of a PIN it no longer
                 uses: after a rotation, from when the guest was told the new one; a pending
                 rotation's new PIN is one it uses) is off every lock within 15 minutes of the
                 end, of the code landing, of the lock coming back online, or of Nuki answering
                 again, whichever is last; a code of ours that appears on a lock no stay is near
                 (no booking's code goes on, is on, or came off within HOT_AFTER_MINUTES), within a
                 watcher run of the webhook that says so plus 15 minutes, else by the next full
                 sweep (ReconcileSchedule, daily by default) plus 15 minutes. A booking is
                 `revoked` only when none of its codes (a rotation's included) is on any of its locks.
foreign          A code (or app user) StayKey did not create is never changed or deleted by
                 StayKey, nor an account user it did not create, and its code is never chosen as
                 a PIN on its lock once StayKey knows it (the reconciler listed it there, or a
                 look at the account's codes found that lock right: each remembers every code it
                 lists), a rotation's new PIN included.
converges        Once faults stop, locks are online and full locks have room, every booking
                 reaches its right state (scheduled before its lead time, with nothing of it on
                 any lock, also after a change put its stay there; active during it, revoked or
                 cancelled after, its PIN rotations taken effect, but for one asked for less than
                 CONFIRM_MIN before the end, or a change the shop made then) without an operator;
                 no booking takes more than MAX_FOLLOW_UPS_PER_HOUR follow-ups in any hour
                 (waiting never spins).
visible          A booking that is not `active` by its deadline (validFrom, but never sooner than
                 CONFIRM_MIN after it was sent) is `failed` with its reason, and the
                 ProvisioningFailed metric was emitted (a PIN rotation's new code likewise: its
                 lock `failed` by the same deadline); a 401 from Nuki emits NukiTokenRejected,
                 a write Nuki refuses with 403 (a lapsed subscription) emits NukiForbidden, and a
                 code a full lock refused emits LockFull, when they first occur.
history          A duplicated, reordered, delayed or replayed webhook never moves a booking against
                 what the lock holds (checked by told_means_true and gone_means_gone at every
                 status change, whatever caused it).
attributed       Every successful entry with a guest's PIN is stored under that guest's booking
                 within ATTRIBUTION_DELAY (when polling is on, or its webhook was delivered); one
                 whose webhook was lost, within a gap-filling period (GapFillMinutes) more.
never_5xx        No shop request answers a 5xx; no function crashes (an exception other than the
                 domain's own, which its trigger retries).
nuki_spec        Every request StayKey sent, and every answer the sandbox gave, fits Nuki's spec.
ready            A lock of a booking that had a readiness problem (offline, a critical battery,
                 a critical keypad battery on a keypad lock, a lapsed subscription) throughout
                 a check (48 and 4 hours before validFrom) puts the booking `at_risk` naming the
                 lock within one readiness period; an `at_risk` booking whose locks had no
                 problem for a readiness period is `ok` again (local.sim.arrivals).
privacy          An account user StayKey created is deleted at Nuki within two purge periods
                 after the guest data of every booking of its guest expired (local.sim.arrivals).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from staykey.core.timeutil import parse_iso as parse_iso_text

if TYPE_CHECKING:
    from local.sim.world import World

WINDOW_SLACK = 60.0
GONE_WITHIN = 15 * 60.0
SWEEP_EVERY = 60.0
MAX_FOLLOW_UPS_PER_HOUR = 120
TOKEN_METRIC_WITHIN = 60.0
FORBIDDEN_METRIC_WITHIN = 60.0
LOCK_FULL_METRIC_WITHIN = 20 * 60.0
ATTRIBUTION_DELAY = 20 * 60.0
TOLD_GRACE = 120.0  # after a DEVICE_AUTHS about our code reached StayKey, it knows within this
WEBHOOK_RETRY = 360.0  # the webhook queue's visibility timeout: a failed processing comes back after it
# Metrics of causes an operator must fix; each needs an alarm in template.yaml.
OPERATOR_METRICS = (
    "NukiTokenRejected",
    "NukiForbidden",
    "LockFull",
    "ProvisioningFailed",
    "BookingsAtRisk",
    "BackupCodeUnavailable",
)
ENDED = {"revoking", "revoked", "cancelled"}
KEYPAD = 13
_AUTH_PATH = re.compile(r"^/smartlock/(\d+)/auth/([0-9a-f]{24})$")
_USER_PATH = re.compile(r"^/account/user/(\d+)$")
APP = 0
_PARSED: dict[str, datetime | None] = {}


def parse_iso(value: str | None) -> datetime | None:
    """`staykey.core.timeutil.parse_iso`, remembered by its text: the sweeps read the same stored
    dates of every booking again after every simulated minute. The answer is a function of the text
    alone and a datetime never changes, so the one remembered is the one it would give again."""
    if value is None:
        return None
    parsed = _PARSED.get(value)
    if parsed is None:
        if len(_PARSED) >= 100_000:
            _PARSED.clear()
        parsed = _PARSED[value] = parse_iso_text(value)
    return parsed


@dataclass(frozen=True)
class Violation:
    rule: str
    at: float
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] t={self.at:.1f}s {self.message}"


class Checker:
    def __init__(self, world: World) -> None:
        self.w = world
        self.violations: list[Violation] = []
        self.checks: Counter[str] = Counter()
        self.names: dict[str, str] = {}  # auth name -> booking id
        self.recorded_ids: set[str] = set()  # every Nuki id a booking item ever recorded for its code
        self.pin_since: dict[str, float] = {}  # booking -> when its current PIN was chosen
        self.provisioning_since: dict[str, float] = {}
        self.email_basis: dict[str, tuple[str, str, str, tuple[int, ...]]] = {}
        self.drift_since: dict[tuple[str, int], float] = {}
        self.full_seen: dict[str, float] = {}
        self._full_checked: set[str] = set()
        self._by_code: dict[int, dict[int, list[Any]]] | None = None  # lock -> code -> our codes, in a sweep
        self._reported: set[tuple[str, str]] = set()
        self._next_sweep = 0.0
        self._answers_checked = {401: 0, 403: 0}  # how many 401s and 403s were judged
        self._entries_checked = 0
        # PIN rotations: every PIN a rotation of the booking carried (its codes must go at the end),
        # and, between a switch and the email with the new PIN, the PIN the guest was last told.
        self.rotation_pins: dict[str, set[str]] = {}
        self.told_pin: dict[str, str] = {}
        self.rotated_from: dict[str, str] = {}
        self.pin_dropped: dict[tuple[str, str], float] = {}  # a rotation's PIN given up for another: when
        self.history: dict[str, list[str]] = {}  # booking -> its writes, compactly (for reading a failure)
        self.items: dict[str, dict[str, Any]] = {}  # booking -> its item as last written, decoded
        # booking -> (an item of it, its present locks, each lock's access): see _locks_of
        self._lock_views: dict[Any, tuple[dict[str, Any], tuple[int, ...], dict[int, str]]] = {}
        # booking -> lock -> when its stored item stopped using the lock, and how it opened it (a move
        # the shop never heard of, its answer lost with a dying invocation, is one all the same)
        self.left: dict[str, dict[int, tuple[float, str]]] = {}
        self.joined: dict[str, dict[int, float]] = {}  # booking -> lock -> when the stored booking took it
        from local.sim.arrivals import ArrivalChecks

        self.arrivals = ArrivalChecks(self)
        from local.sim.backups import BackupChecks

        self.backups = BackupChecks(self)

    # ------------------------------------------------------------------ reporting

    def violation(self, rule: str, message: str, key: str | None = None) -> None:
        if key is not None:
            if (rule, key) in self._reported:
                return
            self._reported.add((rule, key))
        self.violations.append(Violation(rule, self.w.loop.t, message))

    # ------------------------------------------------------------------ ground truth

    def _ours(self, smartlock_id: int, pin: str) -> list[Any]:
        """Codes with this PIN on the lock that StayKey made (never one someone added by hand)."""
        code = int(pin)
        if self._by_code is not None:  # within a sweep, where nothing changes: one pass per lock
            by_code = self._by_code.get(smartlock_id)
            if by_code is None:
                by_code = self._by_code[smartlock_id] = self._index(smartlock_id)
            return list(by_code.get(code, ()))
        foreign = self.w.foreign_ids
        return [a for a in self.w.auths_on(smartlock_id) if a.type == KEYPAD and a.code == code and a.id not in foreign]

    def _index(self, smartlock_id: int) -> dict[int, list[Any]]:
        foreign = self.w.foreign_ids
        by_code: dict[int, list[Any]] = {}
        for a in self.w.auths_on(smartlock_id):
            if a.type == KEYPAD and a.id not in foreign:
                by_code.setdefault(a.code, []).append(a)
        return by_code

    def _ours_named(self, smartlock_id: int, name: str, pin: str) -> list[Any]:
        """What StayKey put on the lock under a booking's name: its code, or its app authorization."""
        foreign = self.w.foreign_ids
        apps = [a for a in self.w.auths_on(smartlock_id) if a.type == APP and a.name == name and a.id not in foreign]
        return apps + [a for a in self._ours(smartlock_id, pin) if a.name == name]

    def _access(self, item: dict[str, Any], smartlock_id: int) -> str:
        return self._locks_of(item)[1].get(smartlock_id, "keypad")

    def _locks_of(self, item: dict[str, Any]) -> tuple[tuple[int, ...], dict[int, str]]:
        """The locks the booking item wants its code on (`_present`), and how each of its locks is
        opened (the first lock state of a lock says it; "keypad" if unsaid), read once per item:
        an item the checker holds is never changed (a write decodes a new one), and the sweeps
        ask again after every simulated minute. Remembered by booking, for the very item read."""
        known = self._lock_views.get(item.get("bookingId"))
        if known is not None and known[0] is item:
            return known[1], known[2]
        locks = item.get("locks", [])
        present = tuple(int(lk["smartlockId"]) for lk in locks if lk.get("desired", "present") == "present")
        access: dict[int, str] = {}
        for lock in locks:
            access.setdefault(int(lock["smartlockId"]), str(lock.get("access", "keypad")))
        self._lock_views[item.get("bookingId")] = (item, present, access)
        return present, access

    def _guest_users(self, booking_id: str) -> set[int]:
        """The guest's Nuki account user, by the guest's email; while a guest change is unanswered,
        the new guest's too (the change may have been written already: either is the guest)."""
        sb = self.w.shop.get(booking_id)
        if sb is None:
            return set()
        emails = sb.emails[-1:] + ([sb.email_sent] if sb.email_sent else [])
        return {uid for email in emails if (uid := self.w.account_user(email)) is not None}

    def _lock_problem(
        self,
        smartlock_id: int,
        pin: str,
        name: str,
        start: datetime,
        end: datetime,
        *,
        app: bool = False,
        booking_id: str = "",
        limits: tuple[int, int, int] = (127, 0, 0),
    ) -> str | None:
        """Why the PIN (or, `app`, the guest's app) would not open this lock exactly for the window
        (and, a staff code, exactly on its weekdays and daily times: `limits`); None if it would."""
        lock = self.w.sandbox._locks.get(smartlock_id)
        if lock is None:
            return "no such lock at Nuki"
        if app:
            uids = self._guest_users(booking_id)
            if not uids:
                return "the guest has no Nuki account user"
            foreign = self.w.foreign_ids
            held = [
                a
                for a in self.w.auths_on(smartlock_id)
                if a.type == APP and a.account_user_id in uids and a.name == name and a.id not in foreign
            ]
            if len(held) != 1:
                return f"{len(held)} app authorizations of the guest's account user on the lock"
        else:
            if not lock.has_keypad:
                return "the lock has no keypad"
            held = self._ours(smartlock_id, pin)
            if len(held) != 1:
                return f"{len(held)} codes with the PIN on the lock"
        auth = held[0]
        if auth.name != name:
            return f"the code with the PIN is named {auth.name!r}, not {name!r}"
        if auth.error is not None:
            return f"the lock refused the code ({auth.error})"
        if not auth.enabled:
            return "the code is disabled"
        if auth.remote_allowed:
            return "the authorization allows remote access (StayKey never asks for it)"
        window = auth.window
        if window.from_date is None or abs((window.from_date - start).total_seconds()) > WINDOW_SLACK:
            return f"the code starts at {window.from_date}, the booking at {start}"
        if window.until_date is None or abs((window.until_date - end).total_seconds()) > WINDOW_SLACK:
            return f"the code ends at {window.until_date}, the booking at {end}"
        held_limits = (
            127 if window.week_days is None else window.week_days,
            window.from_time or 0,
            window.until_time or 0,
        )
        if held_limits != limits:
            return f"the code has weekday or daily-time limits {held_limits}, not {limits}"
        return None

    @staticmethod
    def limits(item: dict[str, Any]) -> tuple[int, int, int]:
        """The weekdays and daily times a booking item's code opens on: a staff code's schedule, as
        stored (the shop's intent is checked against it apart: `local.sim.staff`), or every day."""
        schedule = (item.get("staff") or {}).get("schedule") or {}
        return (int(schedule.get("weekDays", 127)), int(schedule.get("fromTime", 0)), int(schedule.get("untilTime", 0)))

    def _present(self, item: dict[str, Any]) -> tuple[int, ...]:
        return self._locks_of(item)[0]

    def _told(self, item: dict[str, Any], why: str) -> None:
        self.checks["told_means_true"] += 1
        start, end = parse_iso(item["validFrom"]), parse_iso(item["validUntil"])
        assert start is not None
        assert end is not None
        locks = self._present(item)
        if not locks:
            self.violation("told_means_true", f"{item['bookingId']} {why} with no lock")
        for lock_id in locks:
            app = self._access(item, lock_id) == "app"
            problem = self._lock_problem(
                lock_id,
                item["pin"],
                item["authName"],
                start,
                end,
                app=app,
                booking_id=item["bookingId"],
                limits=self.limits(item),
            )
            problem = self.backups.problem(item, lock_id, problem)
            if problem is not None and not self._tampered_lately(lock_id):
                self.violation("told_means_true", f"{item['bookingId']} {why}, but on lock {lock_id}: {problem}")

    def _tampered_lately(self, lock_id: int) -> bool:
        """Someone changed our code on this lock in Nuki Web within the time StayKey has to notice
        (unless told by a webhook, up to a hot lock's check period): judged by the drift sweep instead."""
        at = self.w.tampered.get(lock_id)
        return at is not None and self.w.loop.t - at <= self.drift_grace()

    def drift_grace(self) -> float:
        """How long StayKey may take to notice a change of our code it was not told about: the codes
        of a lock with a stay starting, running or just ended (hot) are read every HotCheckMinutes,
        with or without webhooks, and the reconciler acts within minutes (as the 15-minute
        reconcile period promised before the watcher)."""
        return self.w.config.hot_check_every + 5 * 60.0

    def idle_allowance(self, lock_id: int, auth_id: str, since: float) -> float:
        """How long a code of ours that appeared on an idle lock (no stay near) may stay: a webhook
        about it is a signal the watcher acts on at its next run; without one, the next sweep."""
        cfg = self.w.config
        told = [t for t in self.w.told_auths.get((lock_id, auth_id), ()) if t >= since]
        if told:
            return told[0] - since + cfg.poll_every + GONE_WITHIN
        return cfg.reconcile_every + cfg.poll_every + GONE_WITHIN

    # ------------------------------------------------------------------ hooks: exact moments

    def on_item_write(self, table: str, pk: str, sk: str, before: Any, after: Any) -> None:
        if sk != "BOOKING" or after is None:
            return
        codec = self.w.store.codec
        new = codec.load(after)
        booking_id = new["bookingId"]
        old = self.items.get(booking_id) or (codec.load(before) if before is not None else {})
        self.items[booking_id] = new
        now = self.w.loop.t
        self.backups.on_write(new, now)
        self.names[new["authName"]] = booking_id
        ids = {lk["nukiId"] for lk in (*new.get("locks", []), *new.get("rotationCodes", [])) if lk.get("nukiId")}
        self.recorded_ids |= ids
        if self.w.taken_over & ids:
            # Recorded after all (a read from before the PIN changed, stored after): ours by our records.
            self.w.foreign_ids -= self.w.taken_over & ids
        status, was = new["status"], old.get("status")
        pins = self.rotation_pins.setdefault(booking_id, set())
        pins.update(str(lk["pin"]) for lk in new.get("rotationCodes", []) if lk.get("pin"))
        if new.get("rotation"):
            pins.add(str(new["rotation"]["pin"]))
        dropped = (old.get("rotation") or {}).get("pin")
        if dropped and dropped not in (new["pin"], (new.get("rotation") or {}).get("pin")):
            self.pin_dropped.setdefault((booking_id, str(dropped)), now)  # a 409, or the booking ended
        if old.get("pin") != new["pin"]:
            self.pin_since[booking_id] = now
            switched = (old.get("rotation") or {}).get("pin") == new["pin"]
            self.rotated_from.pop(booking_id, None)
            if switched and new.get("notifyGuest") and status not in ENDED:
                # The old PIN is one the booking no longer uses from when the guest is told the new
                # one (it keeps working until then); and it must keep working until then.
                self.pin_since[booking_id] = float("inf")
                if self.told_pin.get(booking_id) == old.get("pin"):
                    self.rotated_from[booking_id] = str(old["pin"])
            if switched and status == "active":
                self._told(new, "switched to its rotated PIN")
        self._chosen_pin(new, old)
        locks = " ".join(
            f"{lk['smartlockId'] % 1000}:{lk.get('status')}/{lk.get('op') or '-'}/{lk.get('desired', 'present')[0]}"
            + (f"!{lk['error'][:40]}" if lk.get("error") else "")
            for lk in new.get("locks", [])
        )
        if new.get("rotationCodes") or new.get("rotation"):  # a PIN rotation's codes (never a PIN)
            locks += " | rotation " + " ".join(
                f"{lk['smartlockId'] % 1000}:{lk.get('status')}/{lk.get('op') or '-'}/{lk.get('desired', 'present')[0]}"
                + ("/untilTold" if lk.get("untilTold") else "")
                + (f"!{lk['error'][:40]}" if lk.get("error") else "")
                for lk in new.get("rotationCodes", [])
            )
        self.history.setdefault(booking_id, []).append(f"{now:9.1f} v{new.get('version')} {status} [{locks}]")
        if status == "provisioning" and was != "provisioning":
            self.provisioning_since[booking_id] = now
        if status == "active" and was != "active":
            self._told(new, "turned active")
        if new.get("emailPending") and new.get("emailPending") != old.get("emailPending"):
            self.email_basis[booking_id] = (new["pin"], new["validFrom"], new["validUntil"], self._present(new))
        if status == "revoked" and was != "revoked":
            self.checks["gone_means_gone"] += 1
            for lock in new.get("locks", []):
                for pin in {new["pin"], *self.rotation_pins.get(booking_id, ())}:
                    if self._ours_named(int(lock["smartlockId"]), new["authName"], pin):
                        self.violation(
                            "gone_means_gone",
                            f"{booking_id} turned revoked with a code still on lock {lock['smartlockId']}",
                        )
        # When each lock joined the booking, as stored: the shop's record learns of a move only when
        # its answer comes back, and the checker may look in between (seed 178: a lock with a problem
        # since before the move was judged as the booking's for all that time).
        joined = self.joined.setdefault(booking_id, {})
        for lock_id in set(self._present(new)) - set(self._present(old)):
            joined[lock_id] = now
        left = self.left.setdefault(booking_id, {})
        for lock_id in set(self._present(old)) - set(self._present(new)):
            left[lock_id] = (now, self._access(old, lock_id))
        for lock_id in self._present(new):
            left.pop(lock_id, None)
        old_locks = {int(lk["smartlockId"]): lk for lk in old.get("locks", [])}
        for lock in new.get("locks", []):
            lock_id = int(lock["smartlockId"])
            if lock.get("status") == "removed" and old_locks.get(lock_id, {}).get("status") != "removed":
                self.checks["gone_means_gone"] += 1
                # The lock state's own code: its PIN (`pin`, set on a lock left during a PIN
                # rotation: the old PIN) or the booking's. A rotation's code on the same lock is a
                # lock state of its own (`rotationCodes`), removed apart; the booking turns revoked
                # only once none of its codes is on any lock (checked above). Judging this lock
                # state by the booking's present PIN took the rotation's code, still being removed,
                # for this one's (seed 112).
                pin = lock.get("pin") or new["pin"]
                if self._ours_named(lock_id, new["authName"], pin):
                    self.violation(
                        "gone_means_gone", f"{booking_id}: lock {lock_id} recorded removed while its code is on it"
                    )

    def _chosen_pin(self, new: dict[str, Any], old: dict[str, Any]) -> None:
        """foreign: a PIN put on a lock (a new booking, another PIN, a move to other locks) is not
        the code of a foreign code StayKey knows on that lock."""
        old_pins = {old.get("pin"), (old.get("rotation") or {}).get("pin")} - {None}
        for pin in {new["pin"], (new.get("rotation") or {}).get("pin")} - {None}:
            before = set(self._present(old)) if pin in old_pins else set()
            for lock_id in self._present(new):
                if lock_id in before or self._access(new, lock_id) == "app":
                    continue  # an app lock gets no PIN
                self.checks["foreign"] += 1
                known = self.w.known_foreign.get(lock_id)
                if not known:
                    continue
                code = int(pin)
                theirs = next((a for a in self.w.auths_on(lock_id) if a.id in known and a.code == code), None)
                if theirs is not None:
                    self.violation(
                        "foreign",
                        f"{new['bookingId']} chose PIN {pin} on lock {lock_id}, the code of {theirs.name!r}, "
                        "a foreign code the reconciler had listed there",
                    )

    def on_email(self, notice: Any) -> None:
        self.checks["told_means_true"] += 1
        basis = self.email_basis.get(notice.booking_id)
        item = self.w.booking_item(notice.booking_id)
        if basis is None or item is None:
            self.violation("told_means_true", f"{notice.booking_id}: an email nobody decided to send")
            return
        pin, start, end, locks = basis
        self.told_pin[notice.booking_id] = notice.pin
        if notice.pin == item["pin"]:
            self.rotated_from.pop(notice.booking_id, None)
            if self.pin_since.get(notice.booking_id) == float("inf"):
                self.pin_since[notice.booking_id] = self.w.loop.t  # told the rotated PIN: the old one goes
        if notice.pin != pin or notice.valid_from != parse_iso(start) or notice.valid_until != parse_iso(end):
            self.violation("told_means_true", f"{notice.booking_id}: the email says other than the booking decided")
        doors = {lock_id: code for lock_id, _, code in getattr(notice, "doors", ())}
        for lock_id in locks:
            app = self._access(item, lock_id) == "app"
            if lock_id in doors:  # the email names a backup code for this door: that one must open it
                given: dict[str, Any] = next(
                    (b for b in item.get("backups") or [] if int(b["smartlockId"]) == lock_id), {}
                )
                pool_id, at = str(given.get("poolId")), given.get("assignedAt")
                why = self.backups.backup_problem(lock_id, doors[lock_id], pool_id, item, at)
                if why is not None and not self._tampered_lately(lock_id):
                    self.violation("told_means_true", f"{notice.booking_id} emailed a backup code for {lock_id}: {why}")
                continue
            problem = self._lock_problem(
                lock_id,
                notice.pin,
                item["authName"],
                notice.valid_from,
                notice.valid_until,
                app=app,
                booking_id=notice.booking_id,
            )
            if problem is not None and not self._tampered_lately(lock_id):
                self.violation("told_means_true", f"{notice.booking_id} emailed, but on lock {lock_id}: {problem}")

    def on_nuki_call(self, call: Any) -> None:
        self.checks["foreign"] += 1
        targets: list[str] = []
        m = _AUTH_PATH.match(call.path)
        if m and call.method in ("POST", "DELETE"):
            targets.append(m.group(2))
        if call.path == "/smartlock/auth" and call.method == "DELETE" and isinstance(call.body, list):
            targets += [str(x) for x in call.body]
        for auth_id in targets:
            if auth_id in self.w.foreign_ids:
                self.violation("foreign", f"StayKey sent {call.method} {call.path} on a code it did not create")
        user = _USER_PATH.match(call.path)
        if user and call.method in ("POST", "DELETE") and int(user.group(1)) in self.w.foreign_users:
            self.violation("foreign", f"StayKey sent {call.method} {call.path} on an account user it did not create")

    # ------------------------------------------------------------------ sweeps: deadlines

    def after_event(self) -> None:
        if self.w.loop.t >= self._next_sweep:
            self._next_sweep = self.w.loop.t + SWEEP_EVERY
            self.sweep()

    def sweep(self) -> None:
        self._by_code = {}
        try:
            self._sweep_locks()
            self._sweep_bookings()
            self._sweep_signals()
            self.arrivals.sweep()
            self.backups.sweep()
        finally:
            self._by_code = None

    def _bookings(self) -> list[dict[str, Any]]:
        return [item for booking_id in self.w.shop if (item := self.items.get(booking_id)) is not None]

    def _unwanted_since(self, booking_id: str, lock_id: int, code: int | None) -> float | None:
        """Since when the shop's intent says this booking's code (with `code`) must be off `lock_id`."""
        if booking_id.startswith("pool~"):
            return self.backups.unwanted_since(booking_id)  # a backup code (local.sim.backups)
        sb = self.w.shop.get(booking_id)
        if sb is None:
            return 0.0  # a booking the shop never made
        since: list[float] = []
        ends = [t for t in (sb.ended_at,) if t is not None]
        if sb.valid_until is not None:
            ends.append(self.w.loop.at_time(sb.valid_until))
        if ends and min(ends) <= self.w.loop.t:
            since.append(min(ends))
        if lock_id not in sb.locks:
            since.append(sb.left_locks.get(lock_id, sb.created_at))
        item = self.w.booking_item(booking_id)
        if item is not None and code is not None and f"{code:06d}" != item["pin"]:
            rotation = item.get("rotation") or {}
            pin = f"{code:06d}"
            if (booking_id, pin) in self.pin_dropped:  # a rotation's PIN it gave up (not one it had)
                since.append(self.pin_dropped[(booking_id, pin)])
            elif rotation.get("pin") != pin:  # a pending rotation's new code is wanted
                since.append(self.pin_since.get(booking_id, sb.created_at))
        return min(since) if since else None

    def _sweep_locks(self) -> None:
        w, now = self.w, self.w.loop.t
        for lock_id in list(w.sandbox._locks):
            online = w.is_online(lock_id)
            for auth in w.auths_on(lock_id):
                if auth.id in w.foreign_ids or auth.type not in (KEYPAD, APP):
                    continue
                self.checks["gone_means_gone"] += 1
                booking_id = self.names.get(auth.name)
                landed = w.loop.at_time(max(auth.created, auth.updated))  # in its present form since
                if booking_id is None:
                    since: float | None = landed  # named like no booking of ours: an orphan
                else:
                    since = self._unwanted_since(booking_id, lock_id, auth.code)
                if auth.error is not None and (since is None or since > landed):
                    # A full lock refused a code its booking wanted when it landed: LockFull is due.
                    # (One its booking no longer wanted, ended while the code was on its way, keeps
                    # no guest out; it is only removed.)
                    self.full_seen.setdefault(auth.id, landed)
                if since is None or not online or w.nuki_down() or w.writes_refused():
                    continue
                start = max(since, landed, w.online_since.get(lock_id, 0.0), w.nuki_ok_since)
                if auth.id in w.idle_drift:  # appeared on a lock no stay was near: a signal or the sweep
                    deadline = start + self.idle_allowance(lock_id, auth.id, w.idle_drift[auth.id])
                else:
                    deadline = start + GONE_WITHIN
                if now > deadline + SWEEP_EVERY:
                    self.violation(
                        "gone_means_gone",
                        f"lock {lock_id} still holds the code of {booking_id or auth.name!r} "
                        f"{(now - max(since, landed)) / 60:.0f} min after it should have gone",
                        key=auth.id,
                    )

    def _sweep_bookings(self) -> None:
        w, now = self.w, self.w.loop.t
        lead = w.settings.provision_lead_hours * 3600
        confirm = w.settings.confirm_min_seconds
        grace = self.drift_grace()
        for item in self._bookings():
            booking_id, status = item["bookingId"], item["status"]
            valid_from = parse_iso(item["validFrom"])
            assert valid_from is not None
            if status == "active":
                for lock_id in self._present(item):
                    self.checks["told_means_true"] += 1
                    start, end = valid_from, parse_iso(item["validUntil"])
                    assert end is not None
                    app = self._access(item, lock_id) == "app"
                    problem = self._lock_problem(
                        lock_id,
                        item["pin"],
                        item["authName"],
                        start,
                        end,
                        app=app,
                        booking_id=booking_id,
                        limits=self.limits(item),
                    )
                    problem = self.backups.problem(item, lock_id, problem)
                    key = (booking_id, lock_id)
                    if problem is None:
                        self.drift_since.pop(key, None)
                        continue
                    since = max(
                        self.drift_since.setdefault(key, now), w.online_since.get(lock_id, 0.0), w.nuki_ok_since
                    )
                    ours = next((lk.get("nukiId") for lk in item["locks"] if int(lk["smartlockId"]) == lock_id), None)
                    told = [t for t in w.told_auths.get((lock_id, str(ours)), ()) if t >= self.drift_since[key]]
                    if not told:
                        allowed = grace
                    elif told[0] >= since:
                        allowed = min(grace, told[0] - since + TOLD_GRACE)
                    else:  # told while Nuki or the lock was out of reach: its processing is retried
                        allowed = min(grace, TOLD_GRACE + WEBHOOK_RETRY)
                    if w.nuki_down() or w.writes_refused() or not w.is_online(lock_id):
                        continue
                    if now - since > allowed:
                        self.violation(
                            "told_means_true",
                            f"{booking_id} stays active {((now - since) / 60):.0f} min after lock {lock_id} "
                            f"stopped holding its code as booked: {problem}",
                            key=f"{booking_id}:{lock_id}:{problem[:20]}",
                        )
            if status == "active" and booking_id in self.rotated_from:
                self._still_opens(item, self.rotated_from[booking_id])
            self._rotation_visible(item)
            if status in ("provisioning", "scheduled"):
                self.checks["visible"] += 1
                started = self.provisioning_since.get(booking_id)
                due = w.loop.at_time(valid_from)
                if started is not None:
                    due = max(due, started + confirm)
                elif status == "scheduled":
                    due = max(due, w.loop.at_time(valid_from) - lead + confirm)
                if now > due + 2 * SWEEP_EVERY:
                    self.violation(
                        "visible",
                        f"{booking_id} is still {status} {(now - due) / 60:.0f} min after its deadline "
                        "(neither active nor failed)",
                        key=booking_id,
                    )
            if status == "failed":
                self.checks["visible"] += 1
                if not item.get("statusReason"):
                    self.violation("visible", f"{booking_id} failed without a reason", key=booking_id)
                if w.metric_counts["ProvisioningFailed"] == 0:
                    self.violation("visible", f"{booking_id} failed with no ProvisioningFailed metric", key=booking_id)
        for booking_id, times in w.follow_ups.items():
            # How many are later than an hour ago: `times` is in time order (each is the loop's time
            # when it was counted), so they are the ones after the last that is not.
            recent = len(times) - bisect_right(times, now - 3600)
            self.checks["converges"] += 1
            if recent > MAX_FOLLOW_UPS_PER_HOUR:
                self.violation(
                    "converges", f"{booking_id} took {recent} follow-ups in an hour (spinning)", key=booking_id
                )
            if len(times) > 2 * MAX_FOLLOW_UPS_PER_HOUR:
                del times[: len(times) - MAX_FOLLOW_UPS_PER_HOUR - 1]

    def _still_opens(self, item: dict[str, Any], pin: str) -> None:
        """Between a rotation's switch and the email with the new PIN: the PIN the guest was last
        told is on every door of the booking, enabled and without an error, and opens it now if the
        stay is on (its own window; the new code's is the booking's)."""
        w, now = self.w, self.w.loop.now()
        start, end = parse_iso(item["validFrom"]), parse_iso(item["validUntil"])
        staying = start is not None and end is not None and start <= now <= end
        for lock_id in self._present(item):
            if self._access(item, lock_id) == "app":
                continue  # the guest's app opens it: a rotation changes only keypad codes
            self.checks["told_means_true"] += 1
            held = [a for a in self._ours(lock_id, pin) if a.name == item["authName"]]
            window = held[0].window if len(held) == 1 else None
            problem = None
            if window is None:
                problem = f"{len(held)} codes with the PIN"
            elif held[0].error is not None or not held[0].enabled:
                problem = "the code is refused or disabled"
            elif staying and (
                (window.from_date and now < window.from_date) or (window.until_date and now > window.until_date)
            ):
                # Only while the stay is on: a booking is active from its lead time before the
                # stay, when no code of it opens the door yet (the new code's window, the
                # booking's, starts later too), so an old code that does not open now is not a
                # broken promise then: the guest was told a PIN for the stay, not for before it.
                problem = "outside the code's window"
            if problem is not None and not self._tampered_lately(lock_id) and w.is_online(lock_id):
                self.violation(
                    "told_means_true",
                    f"{item['bookingId']}: the PIN its guest was last told no longer opens lock {lock_id} "
                    f"({problem}) although they were not told the rotated one yet",
                    key=f"{item['bookingId']}:told:{lock_id}",
                )

    def _rotation_visible(self, item: dict[str, Any]) -> None:
        """A rotation's new code that is not on a lock by its deadline (validFrom, but never sooner
        than CONFIRM_MIN after it was first sent) says so: the rotation is failed there, with its reason."""
        if not item.get("rotation"):
            return
        now, confirm = self.w.loop.t, self.w.settings.confirm_min_seconds
        valid_from = parse_iso(item["validFrom"])
        assert valid_from is not None
        for lock in item.get("rotationCodes", []):
            sent = parse_iso(lock.get("firstSentAt"))
            if lock.get("desired") != "present" or sent is None or lock.get("status") in ("active", "failed"):
                continue
            self.checks["visible"] += 1
            due = max(self.w.loop.at_time(valid_from), self.w.loop.at_time(sent) + confirm)
            if now > due + 2 * SWEEP_EVERY:
                self.violation(
                    "visible",
                    f"{item['bookingId']}: its PIN rotation is still pending on lock {lock['smartlockId']} "
                    f"{(now - self.w.loop.at_time(sent)) / 60:.0f} min after the new code was sent (neither on "
                    "the lock nor failed)",
                    key=f"{item['bookingId']}:rotation:{lock['smartlockId']}",
                )

    def _sweep_signals(self) -> None:
        w, now = self.w, self.w.loop.t
        for status, times, metric, within, what in (
            (401, w.token_rejected_at, "NukiTokenRejected", TOKEN_METRIC_WITHIN, "Nuki answered 401"),
            (403, w.forbidden_at, "NukiForbidden", FORBIDDEN_METRIC_WITHIN, "Nuki refused a write with 403"),
        ):
            # Each such answer is judged once its time is up: was its metric counted by then?
            while self._answers_checked[status] < len(times):
                t = times[self._answers_checked[status]]
                if now < t + within:
                    break
                self._answers_checked[status] += 1
                self.checks["visible"] += 1
                if not _metric_between(w.metric_times[metric], t - 1, t + within):
                    self.violation("visible", f"{what} and no {metric} metric followed", key=f"{status}:{t:.0f}")
        for auth_id, landed in self.full_seen.items():
            # StayKey sees a refused code when it reads the lock: not while Nuki answers nothing.
            if (
                auth_id in self._full_checked
                or w.nuki_down()
                or now < max(landed, w.nuki_ok_since) + LOCK_FULL_METRIC_WITHIN
            ):
                continue
            # Judged once, when its time is up: a metric counted later would come too late.
            self._full_checked.add(auth_id)
            self.checks["visible"] += 1
            if not _metric_between(w.metric_times["LockFull"], landed - 1, now):
                self.violation(
                    "visible", "a full lock refused our code and no LockFull metric followed", key=f"full:{auth_id}"
                )
        polling = w.config.log_polling
        # With webhooks registered, polling only fills their gaps: an entry whose webhook was lost
        # waits for the next gap-filling poll (then polling turns eager while deliveries lapse).
        gap = w.config.gap_fill_every + w.config.poll_every if w.config.webhooks else 0.0
        while self._entries_checked < len(w.entries):
            entry = w.entries[self._entries_checked]
            lost = entry.log_id in w.lost_log_ids
            if w.nuki_down() or now < max(entry.at, w.reads_ok_since) + ATTRIBUTION_DELAY + (gap if lost else 0.0):
                break  # Nuki answered nothing for a while: the poller reads it once Nuki is back
            self._entries_checked += 1
            if not polling and lost:
                continue
            self.checks["attributed"] += 1
            raw = w.ddb.partition("staykey-sim", f"LOG#{entry.log_id}").get("LOG")
            stored = w.store.codec.load(raw) if raw is not None else None
            if stored is None or stored.get("bookingId") != entry.booking_id:
                self.violation(
                    "attributed",
                    f"the guest of {entry.booking_id} opened lock {entry.smartlock_id}; the entry is "
                    + ("not stored" if stored is None else f"attributed to {stored.get('bookingId')!r}"),
                    key=entry.log_id,
                )

    # ------------------------------------------------------------------ the end of a run

    def _provision_at(self, booking_id: str, item: dict[str, Any], lead_at: float) -> float:
        """When the booking's code goes on (loop time): its `provisionAt`, which must lie within its
        share of PROVISION_SPREAD_MINUTES before its lead (`lead_at`: ProvisionLeadHours before the
        stay); the lead itself when it does not (a violation)."""
        w = self.w
        at, spread = parse_iso(item.get("provisionAt")), w.settings.provision_spread_minutes * 60
        if at is None or not lead_at - spread - 1 <= w.loop.at_time(at) <= lead_at + 1:
            self.violation("converges", f"{booking_id}'s provisionAt {item.get('provisionAt')} is not by its lead")
            return lead_at
        return w.loop.at_time(at)

    def alarms(self) -> None:
        """Every operator-fixable cause has an alarm on its metric in template.yaml."""
        from local.sim.template import alarmed_metrics

        watched = alarmed_metrics()
        for metric in OPERATOR_METRICS:
            self.checks["visible"] += 1
            if metric not in watched:
                self.violation("visible", f"no alarm in template.yaml watches the {metric} metric", key=metric)

    def final(self) -> None:
        """After the world was quiet for long enough: everything in its right state."""
        w, now = self.w, self.w.loop.t
        self.sweep()
        self.alarms()
        self.arrivals.final()
        lead = w.settings.provision_lead_hours * 3600
        for crash in w.crashes:
            self.violation("never_5xx", f"a function crashed: {crash}")
        for problem in w.link.violations[:20]:
            self.violation("nuki_spec", problem)
        for sb in w.shop.values():
            item = w.booking_item(sb.booking_id)
            if item is None:
                if sb.answered:
                    self.violation("converges", f"{sb.booking_id} was answered but is not stored")
                continue
            self.checks["converges"] += 1
            status = item["status"]
            start, end = parse_iso(item["validFrom"]), parse_iso(item["validUntil"])
            assert start is not None
            assert end is not None
            ended = min([t for t in (sb.ended_at, w.loop.at_time(end)) if t is not None])
            if ended <= now - GONE_WITHIN:
                want = {"revoked", "cancelled"}
            elif ended <= now:
                want = {"revoking", "revoked", "cancelled"}  # ended moments ago: still taking the code off
            elif sb.staff or self._provision_at(sb.booking_id, item, w.loop.at_time(start) - lead) <= now:
                want = {"active"}  # a staff code goes on at once
            else:
                want = {"scheduled"}
            # A change the shop made in the last minutes of the run (it may, in the quiet hours too:
            # seed 64, a new guest email 22 s before the end) has had no time to land: its writes
            # have CONFIRM_MIN, as a new code's have (the `visible` rule judges them by then).
            fresh = status == "provisioning" and sb.changed_at > now - w.settings.confirm_min_seconds
            if status not in want and not (want == {"active"} and fresh):
                self.violation(
                    "converges",
                    f"{sb.booking_id} is {status} ({item.get('statusReason')}), should be {'/'.join(sorted(want))}",
                )
            if status == "scheduled":
                # Before its lead nothing of it is on a lock (a far-future stay takes no slot), also
                # after a change put a stay that was on the locks beyond its lead (seed 112).
                for lock_id in sorted(w.sandbox._locks):
                    self.checks["converges"] += 1
                    if any(a.name == item["authName"] and a.id not in w.foreign_ids for a in w.auths_on(lock_id)):
                        self.violation("converges", f"{sb.booking_id} is scheduled, and its code is on lock {lock_id}")
            if status not in ENDED and set(self._present(item)) != set(sb.locks):
                self.violation(
                    "converges", f"{sb.booking_id} uses locks {self._present(item)}, its room has {sb.locks}"
                )
            rotation = item.get("rotation")
            requested = parse_iso((rotation or {}).get("requestedAt"))
            # A rotation the shop or an operator asked for in the last minutes of the run (they may,
            # in the quiet hours too) has had no time to take effect: it is judged like a new code,
            # which has CONFIRM_MIN to land (the deadline `_rotation_visible` gives it).
            recent = requested is not None and w.loop.at_time(requested) > now - w.settings.confirm_min_seconds
            if status not in ENDED and rotation and not recent:
                self.violation("converges", f"{sb.booking_id}'s PIN rotation never took effect")


def _metric_between(times: list[float], lo: float, hi: float) -> bool:
    """Whether a metric was counted at a time in [lo, hi] (`times` in the order counted)."""
    at = bisect_left(times, lo)
    return at < len(times) and times[at] <= hi


__all__ = ["Checker", "Violation"]
