"""Account users and app authorizations (spec 4.18.0): a Nuki account user is a person known to the
Nuki account by email (``/account/user``); an app authorization (``type`` 0) gives that person the
right to open a lock with the Nuki app, and Nuki invites them by email to accept it.

An account user's email and name are personal data: they stay out of every ``repr``, and
validation errors never echo input values (the base classes hide input in errors).
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import Field, model_validator

from staykey.nuki.models import (
    ALL_WEEK_DAYS,
    AuthWindowCreate,
    NukiModel,
    NukiRequestModel,
    UtcDatetime,
    WriteDatetime,
    check_window,
)

APP_AUTH_TYPE: Final = 0
# The names of authorizations that are not keypad codes: "max 32 chars" (SmartlockAuthCreate.name).
AUTH_NAME_MAX_LENGTH = 32
# AccountUserCreate.language: the languages Nuki's app and its invitation emails speak.
NUKI_LANGUAGES: Final = ("en", "de", "es", "fr", "it", "nl", "cs", "sk")
NukiLanguage = Literal["en", "de", "es", "fr", "it", "nl", "cs", "sk"]


def nuki_language(locale: str) -> str | None:
    """The Nuki language of a locale (``de-AT`` -> ``de``); None when Nuki does not speak it."""
    lang = locale.replace("_", "-").split("-")[0].lower()
    return lang if lang in NUKI_LANGUAGES else None


class AccountUser(NukiModel):
    """``AccountUser``: a person of the Nuki account, by email."""

    account_user_id: int
    account_id: int | None = None
    type: int | None = None
    email: str = Field(repr=False)
    name: str = Field(default="", repr=False)
    language: str | None = None
    operation_id: str | None = None
    creation_date: UtcDatetime | None = None
    update_date: UtcDatetime | None = None


class AccountUserCreate(NukiRequestModel):
    """Body of ``PUT /account/user`` (``AccountUserCreate``). ``type`` is for caretakers only: not sent."""

    email: str = Field(min_length=3, max_length=254, repr=False)
    name: str = Field(min_length=1, max_length=200, repr=False)
    language: NukiLanguage | None = None


class AppAuthCreate(AuthWindowCreate):
    """Body of an app authorization's creation (``SmartlockAuthCreate`` with ``type`` 0): the account
    user may open the lock with the Nuki app within the window; Nuki invites them by email."""

    name: str = Field(min_length=1, max_length=AUTH_NAME_MAX_LENGTH)
    account_user_id: int = Field(ge=1, le=2**31 - 1)
    type: Literal[0] = APP_AUTH_TYPE


class AppAuthUpdate(NukiRequestModel):
    """Body of ``POST /smartlock/{smartlockId}/auth/{id}`` for an app authorization: the full
    restriction set, as for keypad codes (Nuki clears what an update leaves out), and no code."""

    name: str = Field(min_length=1, max_length=AUTH_NAME_MAX_LENGTH)
    account_user_id: int = Field(ge=1, le=2**31 - 1)
    allowed_from: WriteDatetime = Field(alias="allowedFromDate")
    allowed_until: WriteDatetime = Field(alias="allowedUntilDate")
    allowed_week_days: int = Field(ge=0, le=ALL_WEEK_DAYS)
    allowed_from_time: int = Field(ge=0, le=1439)
    allowed_until_time: int = Field(ge=0, le=1439)
    enabled: bool
    remote_allowed: bool

    @model_validator(mode="after")
    def _window(self) -> AppAuthUpdate:
        check_window(self.allowed_from, self.allowed_until)
        return self


__all__ = [
    "APP_AUTH_TYPE",
    "AUTH_NAME_MAX_LENGTH",
    "NUKI_LANGUAGES",
    "AccountUser",
    "AccountUserCreate",
    "AppAuthCreate",
    "AppAuthUpdate",
    "NukiLanguage",
    "nuki_language",
]
