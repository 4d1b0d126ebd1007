"""Configuration items: CONFIG / {name} (the webhook registration)."""

from __future__ import annotations

from typing import Any

from staykey.store.table import Table


class ConfigItems(Table):
    # -- config ----------------------------------------------------------------------------

    def get_config(self, name: str) -> dict[str, Any] | None:
        return self._get("CONFIG", name, consistent=False)

    def put_config(self, name: str, **fields: Any) -> None:
        self._put({"pk": "CONFIG", "sk": name, **fields})

    def delete_config(self, name: str) -> None:
        self._delete("CONFIG", name)
