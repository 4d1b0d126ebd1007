"""Codes on locks: the claims (ours and others', LOCK#{id} / CODE#{pin}) and the attribution index
of our auths' ids (LOCK#{id} / AUTH#..., AUTHID#...)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from staykey.core.timeutil import iso_utc
from staykey.store.table import Table
from staykey.store.types import CodeItem


class CodeItems(Table):
    # -- codes on locks --------------------------------------------------------------------

    def codes_on_lock(self, smartlock_id: int) -> list[CodeItem]:
        return [
            CodeItem(
                smartlock_id=smartlock_id,
                pin=item["sk"].removeprefix("CODE#"),
                owner=item.get("owner", "booking"),
                booking_id=item.get("bookingId"),
                auth_name=item.get("authName"),
                nuki_id=item.get("nukiId"),
            )
            for item in self._query(f"LOCK#{smartlock_id}", "CODE#")
        ]

    def claims_on_lock(self, smartlock_id: int) -> list[CodeItem]:
        """Every claim on a lock in one query: codes (CODE#, ours and others') and app access (CODEAPP#)."""
        out = []
        for item in self._query(f"LOCK#{smartlock_id}", "CODE"):
            app = str(item["sk"]).startswith("CODEAPP#")
            out.append(
                CodeItem(
                    smartlock_id=smartlock_id,
                    pin="" if app else str(item["sk"]).removeprefix("CODE#"),
                    owner="app" if app else item.get("owner", "booking"),
                    booking_id=item.get("bookingId"),
                    auth_name=item.get("authName"),
                    nuki_id=item.get("nukiId"),
                )
            )
        return out

    def release_app_claim(self, smartlock_id: int, booking_id: str) -> bool:
        return self._delete(f"LOCK#{smartlock_id}", f"CODEAPP#{booking_id}", "bookingId = :b", {":b": booking_id})

    def known_codes(self, smartlock_ids: Iterable[int]) -> set[str]:
        return {code.pin for lock_id in smartlock_ids for code in self.codes_on_lock(lock_id)}

    def record_foreign_code(
        self, smartlock_id: int, pin: str, name: str | None, nuki_id: str | None, now: datetime
    ) -> bool:
        """Remember a code someone else put on a lock, so we never choose it there."""
        return self._put(
            {
                "pk": f"LOCK#{smartlock_id}",
                "sk": f"CODE#{pin}",
                "owner": "foreign",
                "authName": name,
                "nukiId": nuki_id,
                "smartlockId": smartlock_id,
                "seenAt": iso_utc(now),
            },
            "attribute_not_exists(pk) OR #o = :f",
            {"#o": "owner"},
            {":f": "foreign"},
        )

    def forget_foreign_code(self, smartlock_id: int, pin: str) -> bool:
        return self._delete(f"LOCK#{smartlock_id}", f"CODE#{pin}", "#o = :f", {":f": "foreign"}, {"#o": "owner"})

    def release_code(self, smartlock_id: int, pin: str, booking_id: str) -> bool:
        return self._delete(f"LOCK#{smartlock_id}", f"CODE#{pin}", "bookingId = :b", {":b": booking_id})

    # -- attribution indexes ---------------------------------------------------------------

    def index_auth(
        self,
        smartlock_id: int,
        booking_id: str,
        nuki_id: str | None,
        auth_id: int | None,
        expires_at: datetime,
    ) -> None:
        ttl = int(expires_at.timestamp())
        if nuki_id:
            self._put(
                {
                    "pk": f"LOCK#{smartlock_id}",
                    "sk": f"AUTH#{nuki_id}",
                    "bookingId": booking_id,
                    "expiresAt": ttl,
                }
            )
        if auth_id is not None:
            self._put(
                {
                    "pk": f"LOCK#{smartlock_id}",
                    "sk": f"AUTHID#{auth_id}",
                    "bookingId": booking_id,
                    "expiresAt": ttl,
                }
            )

    def booking_id_for_auth(self, smartlock_id: int, auth_ref: str) -> str | None:
        """A log's authId is the auth's 24-hex id or its numeric authId: try both indexes."""
        for sk in (f"AUTH#{auth_ref}", f"AUTHID#{auth_ref}"):
            item = self._get(f"LOCK#{smartlock_id}", sk, consistent=False)
            if item:
                return str(item["bookingId"])
        return None
