"""Issue 15's guests as Nuki account users, found by an adversarial review: which account user is
ours, and when it goes. Each test failed before its fix.

* a creation attempt that failed left a marker that made StayKey adopt (and later delete) the
  account user someone else created for that email afterwards (foreign untouched);
* a new booking took an account user whose deletion was already decided, and lost it;
* a PATCH that shortened the stay left the account user's purge at the old end;
* an account user created by an invocation that died before recording it, whose booking ended
  first, was never deleted (it is now, found by the purge, but only when its creation time proves
  it came from our attempt);
* a user the purge recovered (created by an invocation that died) was recorded for the booking
  but the booking never learnt it, so a shorter stay left that user's purge at the old end;
* the email Nuki answered was never compared with the guest's (another person's user was taken);
* a new guest email on an app lock while the account user cannot be had left the lock without a
  deadline (simulator seed 32: provisioning long after its deadline, neither active nor failed).

The ownership rules run against a Nuki whose account users the test controls (their creation
time above all: the sandbox stamps wall time, the tests' StayKey runs on a fixed clock); the
booking paths run against the sandbox (tests/functional/access/conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from staykey.core.commands import new_booking
from staykey.core.models import Booking, BookingIn, BookingStatus, Guest, LockStatus, Room
from staykey.core.timeutil import FixedClock
from staykey.nuki import AccountUser, AccountUserCreate
from staykey.nuki import errors as nuki_errors
from staykey.services.accounts import AccountUserBusy, AccountUsers
from staykey.settings import load_settings
from staykey.store import Store
from staykey.store.keys import iso
from tests.functional.access.conftest import DOOR, Rig, later, stay_body

APP_ROOM = {"name": "Room 12", "smartlockIds": [DOOR], "timezone": "Europe/Berlin", "access": {str(DOOR): "app"}}
EMAIL = "ada@example.org"


class Died(BaseException):
    """The invocation died (timeout, out of memory): nothing after it ran."""


@dataclass
class AccountsNuki:
    """Nuki's account users, as far as `AccountUsers` uses them, with creation times the test sets."""

    clock: FixedClock
    users: dict[int, AccountUser] = field(default_factory=dict)
    next_id: int = 3000001
    create_fails: list[BaseException] = field(default_factory=list)  # raised by the next creations
    die_after_create: bool = False
    answer_email: str | None = None  # the email Nuki's creation answer carries (None: the one asked for)
    extra_in_lookup: list[AccountUser] = field(default_factory=list)  # what an unfiltered lookup adds
    deletes: list[int] = field(default_factory=list)

    def add(self, email: str, at: datetime, operation_id: str | None = None) -> AccountUser:
        user = AccountUser(
            account_user_id=self.next_id, email=email, name="Someone", creation_date=at, operation_id=operation_id
        )
        self.users[user.account_user_id] = user
        self.next_id += 1
        return user

    def find_account_users(self, email: str) -> list[AccountUser]:
        mine = [u for u in self.users.values() if u.email.casefold() == email.casefold()]
        return self.extra_in_lookup + mine

    def create_account_user(self, body: AccountUserCreate) -> AccountUser:
        if self.create_fails:
            raise self.create_fails.pop(0)
        user = self.add(body.email, self.clock.now())
        if self.die_after_create:
            raise Died("the function died before it could record the account user")
        if self.answer_email is not None:
            return user.model_copy(update={"email": self.answer_email})
        return user

    def list_account_users(self, offset: int = 0, limit: int = 100) -> list[AccountUser]:
        return list(self.users.values())[offset : offset + limit]

    def delete_account_user(self, account_user_id: int) -> None:
        """Queued, as Nuki does: the user shows an operationId until `apply_deletes`."""
        self.deletes.append(account_user_id)
        if account_user_id in self.users:
            self.users[account_user_id] = self.users[account_user_id].model_copy(update={"operation_id": "op"})

    def apply_deletes(self) -> None:
        self.users = {k: u for k, u in self.users.items() if u.operation_id is None}


def a_booking(booking_id: str, now: datetime) -> Booking:
    room = Room(
        roomId="room-12",
        name="Room 12",
        smartlockIds=[DOOR],
        timezone="Europe/Berlin",
        access={str(DOOR): "app"},
        createdAt=now,
        updatedAt=now,
    )
    request = BookingIn.model_validate(
        {
            "bookingId": booking_id,
            "roomId": "room-12",
            "guest": {"name": "Ada Lovelace", "email": EMAIL, "locale": "en"},
            "checkIn": "2026-11-27",
            "checkOut": "2026-11-29",
        }
    )
    window = (datetime(2026, 11, 27, 14, 0, tzinfo=now.tzinfo), datetime(2026, 11, 29, 10, 0, tzinfo=now.tzinfo))
    b = new_booking(request, room, window, "482917", 0, timedelta(days=1), now)
    b.guest = Guest(**request.guest.model_dump())
    return b


@pytest.fixture
def world(aws: dict[str, str], clock: FixedClock) -> tuple[AccountUsers, AccountsNuki, Store]:
    settings = load_settings()
    store = Store(settings.table_name)
    nuki = AccountsNuki(clock)
    return AccountUsers(settings, store, lambda: nuki, clock), nuki, store  # type: ignore[arg-type,return-value]


def after_retention(accounts: AccountUsers, b: Booking) -> datetime:
    return accounts.purge_at(b) + timedelta(hours=1)


# -- 1. foreign untouched: a failed attempt proves nothing about a user created later


def test_a_failed_creation_never_makes_a_user_someone_else_created_later_ours(world: Any, clock: FixedClock) -> None:
    accounts, nuki, store = world
    b = a_booking("B-1001", clock.now())
    # Nuki cannot be reached for the creation: the attempt is noted, and may have landed
    nuki.create_fails.append(nuki_errors.NukiUnavailable("PUT /account/user failed: HTTP 503", status=503))
    with pytest.raises(nuki_errors.NukiError):
        accounts.ensure(b)
    # Two hours later someone adds the guest in Nuki Web; then StayKey tries again
    clock.advance(hours=2)
    foreign = nuki.add(EMAIL, clock.now())
    assert accounts.ensure(b) == foreign.account_user_id
    assert store.get_account_user(foreign.account_user_id)["created"] is False  # found, not ours
    # The purge settles the attempt (it created nothing) and never deletes the guest's user
    clock.set(after_retention(accounts, b) + timedelta(days=2))
    report = accounts.purge()
    assert report.recovered == []
    assert report.deleted == []
    assert nuki.deletes == []
    assert store.account_user_attempts(EMAIL) == {}


def test_a_refused_creation_is_no_proof_even_for_a_user_created_at_once(world: Any, clock: FixedClock) -> None:
    accounts, nuki, store = world
    b = a_booking("B-1001", clock.now())
    nuki.create_fails.append(nuki_errors.NukiAuthError("PUT /account/user failed: HTTP 403", status=403))
    with pytest.raises(nuki_errors.NukiError):
        accounts.ensure(b)
    assert store.account_user_attempts(EMAIL) == {}  # Nuki answered no at once: nothing landed
    foreign = nuki.add(EMAIL, clock.now())  # the operator adds the guest in the same minute
    assert accounts.ensure(b) == foreign.account_user_id
    assert store.get_account_user(foreign.account_user_id)["created"] is False


# -- 2. a user whose deletion is under way is never taken by a new booking


def test_a_new_booking_never_takes_an_account_user_whose_deletion_was_decided(world: Any, clock: FixedClock) -> None:
    accounts, nuki, store = world
    first = a_booking("B-1001", clock.now())
    user_id = accounts.ensure(first)
    clock.set(after_retention(accounts, first))
    assert accounts.purge().deleted == [user_id]
    # Nuki does not show the deletion yet (or the delete was decided and its call failed)
    nuki.users[user_id] = nuki.users[user_id].model_copy(update={"operation_id": None})
    # The guest books again meanwhile: the round waits, it does not take the user
    second = a_booking("B-1002", clock.now())
    with pytest.raises(AccountUserBusy):
        accounts.ensure(second)
    assert store.get_account_user(user_id)["bookings"] == ["B-1001"]
    # Once Nuki deleted it and the purge confirmed it, the guest gets a new account user
    nuki.apply_deletes()
    nuki.users.pop(user_id)
    clock.advance(minutes=20)
    assert accounts.purge().confirmed == [user_id]
    again = accounts.ensure(second)
    assert again != user_id
    assert store.get_account_user(again)["bookings"] == ["B-1002"]


def test_a_user_nuki_is_deleting_is_never_taken(world: Any, clock: FixedClock) -> None:
    accounts, nuki, _ = world
    nuki.add(EMAIL, clock.now() - timedelta(days=3), operation_id="6adb722f0000000056000099")
    with pytest.raises(AccountUserBusy):
        accounts.ensure(a_booking("B-1002", clock.now()))


def test_the_purge_decides_a_deletion_only_if_no_booking_took_the_user_meanwhile(world: Any, clock: FixedClock) -> None:
    accounts, _, store = world
    user_id = accounts.ensure(a_booking("B-1001", clock.now()))
    read = store.get_account_user(user_id)
    store.record_account_user(user_id, "B-1002", created=False, purge_at=clock.now() + timedelta(days=40))
    assert store.mark_account_user_deleting(read, clock.now()) is False  # B-1002 came between
    assert not store.get_account_user(user_id).get("deleteSentAt")


# -- 4. an account user created by an invocation that died is found and purged


def test_an_account_user_created_by_an_invocation_that_died_is_found_and_deleted(world: Any, clock: FixedClock) -> None:
    accounts, nuki, store = world
    b = a_booking("B-1001", clock.now())
    nuki.die_after_create = True
    with pytest.raises(Died):
        accounts.ensure(b)
    (created,) = nuki.users.values()
    # The booking is cancelled before any round asks for the account user again; the next purge
    # finds the user (created within our attempt) and records it as ours for the booking
    clock.advance(hours=1)
    report = accounts.purge()
    assert report.recovered == [created.account_user_id]
    item = store.get_account_user(created.account_user_id)
    assert item["created"] is True
    assert item["bookings"] == ["B-1001"]
    # ... so it goes once the guest data expired, without an operator
    clock.set(after_retention(accounts, b))
    assert accounts.purge().deleted == [created.account_user_id]
    assert nuki.deletes == [created.account_user_id]


def test_a_user_created_outside_every_attempt_is_not_ours_even_after_a_death(world: Any, clock: FixedClock) -> None:
    accounts, nuki, store = world
    b = a_booking("B-1001", clock.now())
    nuki.create_fails.append(Died("the function died before Nuki answered"))
    with pytest.raises(Died):
        accounts.ensure(b)
    clock.advance(minutes=30)
    foreign = nuki.add(EMAIL, clock.now())  # someone else's, half an hour later
    clock.advance(hours=1)
    assert accounts.purge().recovered == []
    assert store.get_account_user(foreign.account_user_id) is None
    clock.set(after_retention(accounts, b) + timedelta(days=2))
    accounts.purge()
    assert nuki.deletes == []


# -- 8. the email Nuki answers is the guest's, or the answer is not taken


def test_a_lookup_answering_another_persons_user_is_not_the_guests(world: Any, clock: FixedClock) -> None:
    accounts, nuki, store = world
    other = AccountUser(account_user_id=2999999, email="mallory@example.org", name="M", creation_date=clock.now())
    nuki.extra_in_lookup = [other]  # Nuki ignored the filter
    user_id = accounts.ensure(a_booking("B-1001", clock.now()))
    assert user_id != other.account_user_id
    assert nuki.users[user_id].email == EMAIL
    assert store.get_account_user(other.account_user_id) is None


def test_a_creation_answered_with_another_email_is_not_recorded(world: Any, clock: FixedClock) -> None:
    accounts, nuki, store = world
    nuki.answer_email = "mallory@example.org"
    with pytest.raises(nuki_errors.NukiError):
        accounts.ensure(a_booking("B-1001", clock.now()))
    assert all(store.get_account_user(uid) is None for uid in nuki.users)


# -- 3. a shorter stay brings the purge forward (the shop's PATCH, through the handler)


def test_a_patch_that_shortens_the_stay_brings_the_account_users_purge_forward(rig: Rig) -> None:
    rig.add_lock(DOOR, keypad=False)
    assert rig.api("PUT", "/rooms/room-12", APP_ROOM)[0] == 201
    assert rig.api("POST", "/bookings", stay_body())[0] == 201
    rig.settle()
    user_id = rig.booking().account.accountUserId
    assert user_id is not None
    status, body = rig.api("PATCH", "/bookings/B-1001", {"checkOut": "2026-11-28"})
    assert status == 200, body
    rig.settle()
    shorter = rig.booking()
    assert shorter.validUntil.date().isoformat() == "2026-11-28"
    rig.at(shorter.validUntil + timedelta(minutes=5))
    rig.bookings.expire("B-1001")
    rig.settle()
    rig.at(rig.accounts.purge_at(shorter) + timedelta(minutes=10))
    assert rig.accounts.purge().deleted == [user_id]


# -- seed 32: a new guest on an app lock while the account user cannot be had


def test_a_new_guest_whose_account_user_cannot_be_had_fails_by_the_deadline(rig: Rig, monkeypatch: Any) -> None:
    rig.add_lock(DOOR, keypad=False)
    assert rig.api("PUT", "/rooms/room-12", APP_ROOM)[0] == 201
    assert rig.api("POST", "/bookings", stay_body())[0] == 201
    rig.settle()
    assert rig.booking().status == BookingStatus.ACTIVE

    def unavailable(*_: Any, **__: Any) -> Any:
        raise nuki_errors.NukiUnavailable("GET /account/user failed: HTTP 503", status=503)

    monkeypatch.setattr(rig.nuki, "find_account_users", unavailable)
    guest = {"name": "Grace Hopper", "email": "grace@example.org", "locale": "en"}
    assert rig.api("PATCH", "/bookings/B-1001", {"guest": guest})[0] == 200
    rig.settle(until_quiet=False)
    (lock,) = rig.booking().locks
    assert lock.status == LockStatus.PENDING
    assert lock.retryAt is not None, "the lock waits without a retry time: its deadline never comes"
    # Past its deadline the booking fails, saying why, instead of staying provisioning for good
    rig.at(rig.booking().validFrom + timedelta(hours=1))
    rig.sync.process("B-1001", read_back=True)
    rig.settle(until_quiet=False)
    failed = rig.booking()
    assert failed.status == BookingStatus.FAILED
    assert "account user" in (failed.locks[0].error or "")


# -- adversarial (after the merge): the booking's former account user follows the stay too


@pytest.mark.parametrize("together", [True, False])
def test_a_shorter_stay_brings_the_former_guests_account_user_purge_forward(rig: Rig, together: bool) -> None:
    """A new guest email leaves the former guest's account user (ours) listing the booking; a
    shorter stay, in the same PATCH or a later one, must bring its purge forward as well: it holds
    the former guest's email at Nuki, and StayKey keeps their data no longer than the stay's."""
    rig.add_lock(DOOR, keypad=False)
    assert rig.api("PUT", "/rooms/room-12", APP_ROOM)[0] == 201
    assert rig.api("POST", "/bookings", stay_body())[0] == 201
    rig.settle()
    former = rig.booking().account.accountUserId
    assert former is not None
    guest = {"name": "Grace Hopper", "email": "grace@example.org", "locale": "en"}
    if together:
        status, body = rig.api("PATCH", "/bookings/B-1001", {"guest": guest, "checkOut": "2026-11-28"})
        assert status == 200, body
        rig.settle()
    else:
        assert rig.api("PATCH", "/bookings/B-1001", {"guest": guest})[0] == 200
        rig.settle()
        status, body = rig.api("PATCH", "/bookings/B-1001", {"checkOut": "2026-11-28"})
        assert status == 200, body
        rig.settle()
    shorter = rig.booking()
    current = shorter.account.accountUserId
    assert current is not None
    assert current != former
    rig.at(shorter.validUntil + timedelta(minutes=5))
    rig.bookings.expire("B-1001")
    rig.settle()
    rig.at(rig.accounts.purge_at(shorter) + timedelta(minutes=10))
    assert sorted(rig.accounts.purge().deleted) == sorted([former, current])


@pytest.mark.parametrize(
    ("guest_email", "others"),
    [
        ("straße@example.org", "STRASSE@example.org"),  # casefold: ß is ss; another mailbox
        ("\u212aim@example.org", "kim@example.org"),  # the Kelvin sign lowers to k; another address
    ],
)
def test_only_the_ascii_case_of_an_email_is_ignored(
    world: Any, clock: FixedClock, guest_email: str, others: str
) -> None:
    """Adversarial (issue 15, rule 8): "the same email, case-insensitive" folded more than case
    (Python's casefold: ß as ss), so a lookup answering another person's user with an address that
    only folds to the guest's was taken: the guest's app authorization would go to their Nuki
    account. Only ASCII letters' case is ignored (what mail providers do); the rest must match."""
    accounts, nuki, store = world
    other = AccountUser(account_user_id=2999999, email=others, name="M", creation_date=clock.now())
    nuki.extra_in_lookup = [other]
    b = a_booking("B-1001", clock.now())
    assert b.guest is not None
    b.guest = b.guest.model_copy(update={"email": guest_email})
    user_id = accounts.ensure(b)
    assert user_id != other.account_user_id
    assert nuki.users[user_id].email == guest_email
    assert store.get_account_user(other.account_user_id) is None


# -- adversarial (issue 15): a user the purge recovers follows the stay like every other


def _creation_dies_once(rig: Rig, monkeypatch: Any) -> None:
    """The next account-user creation lands at Nuki, and the invocation dies before it records it
    (the sandbox dates account users by the test's clock, as our attempts are)."""
    real = rig.nuki.create_account_user
    monkeypatch.setattr(rig.sandbox.sandbox, "_now", rig.clock.now)

    def create(body: AccountUserCreate) -> AccountUser:
        real(body)
        monkeypatch.setattr(rig.nuki, "create_account_user", real)
        raise Died("the function died before it could record the account user")

    monkeypatch.setattr(rig.nuki, "create_account_user", create)


@pytest.mark.parametrize("recovered_first", [True, False])
def test_a_shorter_stay_brings_a_recovered_account_users_purge_forward(
    rig: Rig, monkeypatch: Any, recovered_first: bool
) -> None:
    """The purge records a user our attempt created after the invocation died (the guest's email
    changed since, so no round finds it again): the booking must know it, so that a shorter stay
    brings its purge forward, before or after the recovery."""
    rig.add_lock(DOOR, keypad=False)
    assert rig.api("PUT", "/rooms/room-12", APP_ROOM)[0] == 201
    _creation_dies_once(rig, monkeypatch)
    with pytest.raises(Died):  # the booking's first round, in the request
        rig.api("POST", "/bookings", stay_body())
    (lost,) = [int(u["accountUserId"]) for u in rig.account_users()]
    assert rig.booking().account.every_user() == []
    guest = {"name": "Grace Hopper", "email": "grace@example.org", "locale": "en"}
    assert rig.api("PATCH", "/bookings/B-1001", {"guest": guest})[0] == 200
    rig.settle()
    current = rig.booking().account.accountUserId
    assert current is not None
    assert current != lost

    def shorten() -> None:
        status, body = rig.api("PATCH", "/bookings/B-1001", {"checkOut": "2026-11-28"})
        assert status == 200, body
        rig.settle()

    if not recovered_first:
        shorten()
    rig.at(later(rig, hours=1))
    assert rig.accounts.purge().recovered == [lost]
    if recovered_first:
        shorten()
    shorter = rig.booking()
    assert shorter.validUntil.date().isoformat() == "2026-11-28"
    assert rig.store.get_account_user(lost)["stays"] == {"B-1001": iso(rig.accounts.purge_at(shorter))}
    rig.at(shorter.validUntil + timedelta(minutes=5))
    rig.bookings.expire("B-1001")
    rig.settle()
    rig.at(rig.accounts.purge_at(shorter) + timedelta(minutes=10))
    assert sorted(rig.accounts.purge().deleted) == sorted([lost, current])


def test_a_stay_changed_while_the_purge_records_a_recovered_user_is_not_lost(world: Any, clock: FixedClock) -> None:
    """A PATCH (the booking first, then the account users it names) between the purge's reading of
    the booking and its recording of the user: the user still takes the stay's new expiry."""
    accounts, nuki, store = world
    b = a_booking("B-1001", clock.now())
    assert b.guest is not None
    store.create_booking(b, b.guest, accounts.purge_at(b), [])
    nuki.die_after_create = True
    with pytest.raises(Died):
        accounts.ensure(b)
    (created,) = nuki.users.values()
    clock.advance(hours=1)
    shorter_until = b.validUntil - timedelta(days=1)
    real_get = store.get_account_user
    patched: list[Booking] = []

    def get_account_user(account_user_id: int) -> Any:
        if not patched:  # the shop's PATCH lands now: the stay ends a day earlier

            def shorten(booking: Booking) -> None:
                booking.validUntil = shorter_until

            after = store.update_booking("B-1001", shorten)
            patched.append(after)
            for user_id in after.account.every_user():
                store.restay_account_user(user_id, "B-1001", accounts.purge_at(after))
        return real_get(account_user_id)

    store.get_account_user = get_account_user  # type: ignore[method-assign]
    assert accounts.purge().recovered == [created.account_user_id]
    assert patched
    item = real_get(created.account_user_id)
    assert item["stays"] == {"B-1001": iso(accounts.purge_at(patched[0]))}
