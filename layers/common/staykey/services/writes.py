"""The sync engine's Nuki writes: a round's plan sent to Nuki, and what Nuki answered, per lock.

Every failure lands in the `Outcome`, none escapes, so a booking never stays marked "in flight"
for a write that was never sent: refusals (400, 403, 422: the lock fails, with Nuki's reason),
transient trouble (429, 5xx, 423, timeouts after the client's own retries, and 401, which is
account-wide and alarmed by the client's hook: tried again later), codes that vanished (403/404 on
an id we hold: create again, or count as removed) and conflicts (409: if the code is ours, an
earlier attempt arrived; if it is someone else's, another PIN is chosen).

Nuki answers 403 both for an id it does not know and for a write it refuses (no subscription, no
permission). After a 403 on a code addressed by its id the writer looks: a code still on the lock
was refused (`NukiForbidden`, the operator's fix), not vanished.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from staykey.core.models import Booking
from staykey.core.round import Outcome, Plan
from staykey.core.timeutil import Clock
from staykey.nuki import errors as nuki_errors
from staykey.observability import count, logger
from staykey.services.accounts import AccountUserBusy, AccountUsers
from staykey.store import Store

if TYPE_CHECKING:
    from staykey.nuki import NukiClient, SmartlockAuth

_reason = nuki_errors.describe


def _refused(exc: BaseException) -> bool:
    """Nuki refused this request for good: a bad request, or no right to this lock (403).

    A 401 is account-wide (a rotated or revoked token): every booking would fail for good if we
    took it as final, so it is retried like an outage, with its own metric and alarm.
    """
    if isinstance(exc, nuki_errors.NukiAuthError):
        return exc.status != 401
    return isinstance(exc, nuki_errors.NukiInvalidRequest | nuki_errors.NukiRefused)


def _forbidden(exc: BaseException) -> bool:
    return isinstance(exc, nuki_errors.NukiAuthError) and exc.status == 403


def _gone(exc: BaseException) -> bool:
    """The auth we addressed by its id does not exist (Nuki answers 403 or 404 for unknown ids)."""
    return isinstance(exc, nuki_errors.NukiNotFound) or (
        isinstance(exc, nuki_errors.NukiAuthError) and exc.status == 403
    )


def still_there(nuki: NukiClient, lock_id: int, nuki_id: str) -> bool:
    """Whether the code with this id is on the lock, after Nuki answered 403 to a write of it (Nuki
    answers 403 for an id it does not know, and for a write it refuses). If the look fails as well,
    the code counts as gone, as it did before: the next read decides."""
    try:
        nuki.get_auth(lock_id, nuki_id)
    except Exception:
        return False
    return True


class NukiWriter:
    def __init__(
        self, store: Store, nuki: Callable[[], NukiClient], clock: Clock, accounts: AccountUsers | None = None
    ) -> None:
        self.store = store
        self._nuki = nuki
        self.clock = clock
        if accounts is None:
            from staykey.settings import get_settings

            accounts = AccountUsers(get_settings(), store, nuki, clock)
        self.accounts = accounts

    @property
    def nuki(self) -> NukiClient:
        return self._nuki()

    def execute(self, b: Booking, plan: Plan) -> Outcome:
        """Send the plan's writes; what Nuki answered, per lock."""
        out = Outcome()
        if plan.account_user:
            self._account_user(b, out)
        if plan.creates:
            self._create(b, plan, out)
        if plan.app_creates:
            self._create_app(b, plan, out)
        for lock_id, nuki_id in plan.updates:
            self._update(b, plan, lock_id, nuki_id, out)
        self._delete(b, plan.deletes, out)
        for lock_id, nuki_id in plan.resend_deletes:
            with contextlib.suppress(Exception):
                self.nuki.sync(lock_id)
            self._delete(b, [(lock_id, nuki_id)], out)
        for lock_id, nuki_id in plan.stale:
            # An earlier attempt of ours that landed late under our name: remove the duplicate. Sent
            # once, unanswered (the next complete look sends it again), but a refusal (403, the code
            # still there) is the operator's to fix, alarmed as every refused write is.
            try:
                self.nuki.delete_auth(lock_id, nuki_id)
                logger.info("duplicate of our code removed", booking_id=b.bookingId, smartlock_id=lock_id)
            except Exception as exc:
                if _forbidden(exc) and still_there(self.nuki, lock_id, nuki_id):
                    count("NukiForbidden")
                    logger.error(
                        "Nuki refused to remove a duplicate of our code (403)",
                        booking_id=b.bookingId,
                        smartlock_id=lock_id,
                    )
        if plan.rotation is not None and plan.rotation.writes():
            # A PIN rotation's codes: another PIN, answered apart (Outcome.rotation).
            out.rotation = self.execute(b, plan.rotation)
        return out

    def _account_user(self, b: Booking, out: Outcome) -> None:
        """The guest's Nuki account user, found or created (services.accounts)."""
        try:
            out.account_user = self.accounts.ensure(b)
        except ValueError:  # no guest data: nobody to create
            out.account_user_failed = ("the guest's data (their email) is no longer kept", True)
        except AccountUserBusy as exc:  # being deleted: tried again, a new one once it is gone
            out.account_user_failed = (str(exc), False)
        except Exception as exc:
            out.account_user_failed = (_reason(exc), _refused(exc))
            logger.warning("the guest's Nuki account user could not be had", booking_id=b.bookingId, error=_reason(exc))

    def _create(self, b: Booking, plan: Plan, out: Outcome) -> None:
        from staykey.nuki import KeypadCodeCreate

        assert plan.valid_from is not None
        assert plan.valid_until is not None
        groups: dict[int | None, list[int]] = {}
        for lock_id in plan.creates:
            lock = b.lock(lock_id)
            groups.setdefault(lock.sentUser if lock is not None else None, []).append(lock_id)
        for user, lock_ids in groups.items():
            try:
                body = KeypadCodeCreate(
                    name=b.authName,
                    code=int(plan.pin),
                    allowed_from=plan.valid_from,
                    allowed_until=plan.valid_until,
                    account_user_id=user,
                    **_limits(plan),
                )
            except ValueError:  # pydantic's ValidationError is one; its message never holds the PIN
                out.failed.update(dict.fromkeys(lock_ids, ("the stay is too short for Nuki (under a second)", None)))
                continue
            try:
                self.nuki.create_keypad_code(lock_ids, body)
                logger.info(
                    "code sent to locks", booking_id=b.bookingId, smartlock_ids=lock_ids, linked=user is not None
                )
            except nuki_errors.NukiCodeConflict as exc:
                self._classify_conflict(b, lock_ids, plan.pin, out, exc, plan.resent)
            except Exception as exc:
                self._failure(exc, lock_ids, out)

    def _create_app(self, b: Booking, plan: Plan, out: Outcome) -> None:
        """App authorizations (type 0) for the guest's account user: Nuki invites them by email."""
        from staykey.nuki import AppAuthCreate

        assert plan.valid_from is not None
        assert plan.valid_until is not None
        user = b.account.accountUserId
        if user is None:  # never planned without one; should it happen, it is tried again
            out.transient.update(dict.fromkeys(plan.app_creates, "the guest's Nuki account user is not known yet"))
            return
        try:
            body = AppAuthCreate(
                name=b.authName, account_user_id=user, allowed_from=plan.valid_from, allowed_until=plan.valid_until
            )
        except ValueError:
            out.failed.update(
                dict.fromkeys(plan.app_creates, ("the stay is too short for Nuki (under a second)", None))
            )
            return
        try:
            self.nuki.create_app_auth(plan.app_creates, body)
            logger.info("app authorization sent to locks", booking_id=b.bookingId, smartlock_ids=plan.app_creates)
        except nuki_errors.NukiCodeConflict as exc:
            if not exc.after_ambiguous_retry:  # else: our earlier attempt arrived; the read-back confirms it
                out.failed.update(dict.fromkeys(plan.app_creates, (_reason(exc), 409)))
        except Exception as exc:
            self._failure(exc, plan.app_creates, out)

    def _update(self, b: Booking, plan: Plan, lock_id: int, nuki_id: str, out: Outcome) -> None:
        from staykey.nuki import AppAuthUpdate, SmartlockAuthUpdate

        assert plan.valid_from is not None
        assert plan.valid_until is not None
        lock = b.lock(lock_id)
        user = lock.sentUser if lock is not None else None
        # Always the full restriction set: Nuki clears what an update leaves out (forum 40095).
        restrictions = {
            "name": b.authName,
            "allowed_from": plan.valid_from,
            "allowed_until": plan.valid_until,
            **_limits(plan),
            "enabled": True,
            "remote_allowed": False,
        }
        body: SmartlockAuthUpdate | AppAuthUpdate
        if lock is not None and lock.access == "app":
            if user is None:
                out.transient[lock_id] = "the guest's Nuki account user is not known yet"
                return
            body = AppAuthUpdate(account_user_id=user, **restrictions)
        else:
            body = SmartlockAuthUpdate(code=int(plan.pin), account_user_id=user, **restrictions)
        try:
            self.nuki.update_auth(lock_id, nuki_id, body)
            logger.info("code update sent", booking_id=b.bookingId, smartlock_id=lock_id)
        except nuki_errors.NukiCodeConflict as exc:
            self._classify_conflict(b, [lock_id], plan.pin, out, exc)
        except Exception as exc:
            if _gone(exc) and not (_forbidden(exc) and still_there(self.nuki, lock_id, nuki_id)):
                out.vanished.append(lock_id)  # someone deleted our code: create it again
            else:
                self._failure(exc, [lock_id], out)

    def _delete(self, b: Booking, targets: Sequence[tuple[int, str]], out: Outcome) -> None:
        if not targets:
            return
        wanted = set(targets)
        if len(targets) > 1 and any(s.retries for s in b.slots() if (s.smartlockId, s.nukiId) in wanted):
            # A removal tried before goes lock by lock: Nuki refuses a bulk delete as a whole when one
            # of its codes has another change still pending (423: an update waiting for an offline
            # lock), and one lock held back the others' removal (a cancelled guest's PIN kept opening
            # a healthy door until the next hot check). Not at once on the first refusal: each call
            # is retried by the client, and a shop's cancellation waits for this one.
            for target in targets:
                self._delete(b, [target], out)
            return
        try:
            if len(targets) == 1:
                self.nuki.delete_auth(targets[0][0], targets[0][1])
            else:
                self.nuki.delete_auths([nuki_id for _, nuki_id in targets])
            logger.info("code removal sent", booking_id=b.bookingId, smartlock_ids=[t[0] for t in targets])
        except Exception as exc:
            if not _gone(exc):
                self._failure(exc, [lock_id for lock_id, _ in targets], out)
            elif len(targets) > 1:
                # A bulk delete is refused as a whole when one id is unknown: delete one by one.
                for target in targets:
                    self._delete(b, [target], out)
            elif _forbidden(exc) and still_there(self.nuki, *targets[0]):
                # Refused, not gone: the operator's fix, alarmed now. The removal is tried again as
                # one Nuki could not take (every two minutes at most), so the code goes soon after.
                lock_id = targets[0][0]
                count("NukiForbidden")
                logger.error("Nuki refused to remove a code (403)", booking_id=b.bookingId, smartlock_id=lock_id)
                out.transient[lock_id] = _reason(exc)
            # else: the code is gone already; the read-back confirms it

    def _failure(self, exc: BaseException, lock_ids: Sequence[int], out: Outcome) -> None:
        reason = _reason(exc)
        if _refused(exc):
            status = exc.status if isinstance(exc, nuki_errors.NukiError) else None
            if status == 403:
                count("NukiForbidden")
            out.failed.update(dict.fromkeys(lock_ids, (reason, status)))
            return
        if not isinstance(exc, nuki_errors.NukiError):  # a 401 is counted by the client's hook (nuki_calls)
            logger.warning("Nuki call failed unexpectedly; will retry", error=type(exc).__name__)
        out.transient.update(dict.fromkeys(lock_ids, reason))

    def _classify_conflict(
        self,
        b: Booking,
        lock_ids: Sequence[int],
        pin: str,
        out: Outcome,
        exc: nuki_errors.NukiCodeConflict,
        resent: Sequence[int] = (),
    ) -> None:
        """409: the code exists on a lock. Ours (an earlier attempt arrived) or someone else's?

        We read the locks back. A holder under another name is someone else's code: remember it
        and choose another PIN. Our own name means an earlier attempt of ours arrived: the write
        counts as sent. No visible holder: if an earlier attempt of this very request may have
        reached Nuki (`after_ambiguous_retry`), it is ours still pending; otherwise nothing of this
        request was applied and the holder is invisible to us (someone's pending code), so we
        choose another PIN all the same, within the bounded number of choices.
        """
        holders: dict[int, SmartlockAuth | None] = {}
        for lock_id in lock_ids:
            try:
                auths = self.nuki.list_auths(lock_id, types=(13,))
            except nuki_errors.NukiError as err:
                out.transient[lock_id] = _reason(err)
                continue
            holders[lock_id] = next((a for a in auths if a.code is not None and f"{a.code:06d}" == pin), None)
        foreign = {lock_id: h for lock_id, h in holders.items() if h is not None and h.name != b.authName}
        for lock_id, holder in foreign.items():
            self.store.release_code(lock_id, pin, b.bookingId)
            self.store.record_foreign_code(lock_id, pin, holder.name, holder.id, self.clock.now())
            out.foreign_conflict[lock_id] = holder.id
            logger.info(
                "code taken by someone else on a lock; choosing another", booking_id=b.bookingId, smartlock_id=lock_id
            )
        unseen = [lock_id for lock_id, h in holders.items() if h is None]
        if exc.after_ambiguous_retry:
            return  # our earlier attempt may be pending: confirm it by read-back
        if not foreign and unseen and all(lock_id in resent for lock_id in unseen):
            # A create sent again (the first seemed lost) meets a code with its PIN nobody can see: the
            # first one, still pending on a lock that was offline, as likely as anyone's. It is not
            # forgotten (Hypothesis example, seed 13518 with staff codes: it landed after the booking
            # had written it off and stayed on a lock the booking then left, for hours): the
            # read-backs go on, and confirm it once it lands.
            return
        if foreign or len(unseen) == len(holders):
            # The request was refused as a whole: nothing of it is on the locks we did not see it on.
            out.unsent += unseen
            if not foreign and unseen:
                out.foreign_conflict[unseen[0]] = None


def _limits(plan: Plan) -> dict[str, int]:
    """A write's weekday and daily-time limits: a staff code's schedule, or none (every day, all day)."""
    s = plan.schedule
    if s is None:
        return {"allowed_week_days": 127, "allowed_from_time": 0, "allowed_until_time": 0}
    return {"allowed_week_days": s.weekDays, "allowed_from_time": s.fromTime, "allowed_until_time": s.untilTime}


__all__ = ["NukiWriter"]
