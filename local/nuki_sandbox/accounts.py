"""Account users in the sandbox (``/account/user``, spec 4.18.0) and what the guest does with an app
authorization (type 0) at the door.

Where Nuki's behaviour is not documented, the sandbox decides (docs/nuki-sandbox.md says so too):

* an email is an account user's key, compared without case: a ``PUT /account/user`` for an email
  the account has already is a 400 (``Invalid email address or name supplied``, the only refusal
  the spec declares for it; its message never echoes the address);
* ``GET /account/user`` filters by ``email`` (exact, without case) and pages with ``offset`` and
  ``limit`` (default 100, at most 100; larger asks get 100), oldest first;
* ``GET /account/user/{id}`` of an id the account does not have answers 401, the only other status
  the spec declares for it;
* ``DELETE /account/user/{id}`` is asynchronous, as the spec says: 204, the user shows
  ``operationId`` until it is gone one sync delay later, and a second delete meanwhile is a 423;
  an id the account does not have is a 204 (nothing to delete). Its authorizations stay on the
  locks (whoever made them removes them);
* an app authorization (type 0) needs an ``accountUserId`` the account has (400 otherwise);
* the guest opens a lock with the app (``POST /_sim/smartlocks/{id}/app``): it works for an
  account user's applied, enabled type-0 authorization inside its window (the phone talks to the
  lock over Bluetooth, so on an offline lock too) and logs action 1 (unlock), trigger 5 (app),
  source 0, with ``authId`` (the auth's id), ``accountUserId`` and ``name``; otherwise state 9
  (rejected), with the account user and no auth.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from local.nuki_sandbox.model import (
    JSON,
    ControlError,
    NukiError,
    bad_param,
    format_date,
    locked,
    nuki_error_body,
    unauthorized,
)

if TYPE_CHECKING:
    import threading

ACCOUNT_USER_PAGE = 100
FIRST_ACCOUNT_USER_ID = 3000001
APP = 0
LANGUAGES = ("en", "de", "es", "fr", "it", "nl", "cs", "sk")


def invalid_user() -> NukiError:
    # The spec's words for PUT /account/user's 400; never the address itself.
    return NukiError(400, nuki_error_body("Invalid email address or name supplied"))


@dataclass
class AccountUser:
    account_user_id: int
    account_id: int
    email: str
    name: str
    language: str
    created: datetime
    updated: datetime
    deleting: str | None = None  # operationId while a delete is pending
    delete_due: float | None = None

    def to_json(self) -> dict[str, JSON]:
        out: dict[str, JSON] = {
            "accountUserId": self.account_user_id,
            "accountId": self.account_id,
            "type": 0,
            "email": self.email,
            "name": self.name,
            "language": self.language,
            "creationDate": format_date(self.created),
            "updateDate": format_date(self.updated),
        }
        if self.deleting is not None:
            out["operationId"] = self.deleting
        return out


class _Host(Protocol):
    """What the account users need of the sandbox they live in."""

    _wake: threading.Condition

    def _now(self) -> datetime: ...

    def _monotonic(self) -> float: ...

    def _new_id(self) -> str: ...

    def _delay(self) -> float: ...


class AccountUsers:
    """The account's users; guarded by the sandbox's lock (every method is called under it)."""

    def __init__(self, host: _Host, account_id: int) -> None:
        self.host = host
        self.account_id = account_id
        self.users: dict[int, AccountUser] = {}
        self.next_id = FIRST_ACCOUNT_USER_ID
        # The users being deleted (`delete` gave them a delete_due; `apply_due` removes them): the
        # sandbox's clock asks for the next due one after every event of a simulated season.
        self._deleting: dict[int, AccountUser] = {}
        # The first user of each folded email (`by_email`), made again after any change of the users
        # or their emails (create, an email updated, apply_due): the simulator's checker asks after
        # every simulated minute for each guest on an app lock.
        self._emails: dict[str, AccountUser] | None = None

    def by_email(self, email: str) -> AccountUser | None:
        if self._emails is None:
            self._emails = {}
            for user in self.users.values():
                self._emails.setdefault(user.email.casefold(), user)
        return self._emails.get(email.strip().casefold())

    def create(self, body: dict[str, JSON]) -> JSON:
        email, name = str(body["email"]).strip(), str(body["name"]).strip()
        if "@" not in email or email.startswith("@") or email.endswith("@") or not name:
            raise invalid_user()
        if "type" in body:
            raise bad_param("type", body["type"])  # "only allowed for caretakers"
        if self.by_email(email) is not None:
            raise invalid_user()
        now = self.host._now()
        user = AccountUser(
            self.next_id, self.account_id, email, name, str(body.get("language") or "en"), created=now, updated=now
        )
        self.next_id += 1
        self.users[user.account_user_id] = user
        self._emails = None
        return user.to_json()

    def listing(self, email: str | None, offset: int, limit: int) -> list[JSON]:
        users = sorted(self.users.values(), key=lambda u: u.account_user_id)
        if email is not None:
            users = [u for u in users if u.email.casefold() == email.strip().casefold()]
        limit = min(max(1, limit), ACCOUNT_USER_PAGE)
        return [u.to_json() for u in users[max(0, offset) : max(0, offset) + limit]]

    def get(self, account_user_id: int) -> JSON:
        user = self.users.get(account_user_id)
        if user is None:
            raise unauthorized()
        return user.to_json()

    def update(self, account_user_id: int, body: dict[str, JSON]) -> JSON:
        user = self.users.get(account_user_id)
        if user is None:
            raise unauthorized()
        if user.deleting is not None:
            raise locked()
        email = body.get("email")
        if isinstance(email, str):
            other = self.by_email(email)
            if other is not None and other is not user:
                raise NukiError(409, nuki_error_body("Email address already exists"))
            user.email = email.strip()
            self._emails = None
        if isinstance(body.get("name"), str):
            user.name = str(body["name"]).strip()
        if isinstance(body.get("language"), str):
            user.language = str(body["language"])
        user.updated = self.host._now()
        return user.to_json()

    def delete(self, account_user_id: int) -> None:
        user = self.users.get(account_user_id)
        if user is None:
            return  # nothing to delete: 204
        if user.deleting is not None:
            raise locked()
        user.deleting = self.host._new_id()
        user.delete_due = self.host._monotonic() + self.host._delay()
        self._deleting[account_user_id] = user
        self.host._wake.notify_all()

    def next_due(self) -> float | None:
        due = [u.delete_due for u in self._deleting.values() if u.delete_due is not None]
        return min(due) if due else None

    def apply_due(self, now: float) -> None:
        for user in [u for u in self._deleting.values() if u.delete_due is not None and u.delete_due <= now]:
            del self.users[user.account_user_id]
            del self._deleting[user.account_user_id]
            self._emails = None

    def control_add(self, email: str, name: str, language: str = "en") -> JSON:
        """An account user someone added in Nuki Web (for tests: one StayKey did not create)."""
        if language not in LANGUAGES:
            raise ControlError(400, f"language must be one of {list(LANGUAGES)}")
        return self.create({"email": email, "name": name, "language": language})


__all__ = ["ACCOUNT_USER_PAGE", "APP", "LANGUAGES", "AccountUser", "AccountUsers", "invalid_user"]
