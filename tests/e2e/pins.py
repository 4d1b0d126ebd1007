"""Every PIN the end-to-end suite was given, and every log the local stacks wrote.

`LEDGER.record_response` is a `requests` response hook on the suite's session (tests/e2e/conftest.py):
it keeps the PIN of every booking any answer carried, whatever the test. Tests that talk to a
stack some other way (the fuzzer's subprocess) add their PINs and their stack's log directory.
At the end of the session `no_pin_in_any_log` (conftest) searches every log line for every PIN.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any


def pins_in(value: Any) -> set[str]:
    """The `pin` of every booking in a decoded JSON answer."""
    if isinstance(value, dict):
        found = {value["pin"]} if isinstance(value.get("pin"), str) else set()
        for item in value.values():
            if isinstance(item, dict | list):
                found |= pins_in(item)
        return found
    if isinstance(value, list):
        return {pin for item in value for pin in pins_in(item)}
    return set()


class PinLedger:
    def __init__(self) -> None:
        self.pins: set[str] = set()
        self.log_sources: list[Path] = []
        self._lock = threading.Lock()

    def add(self, pins: set[str]) -> None:
        with self._lock:
            self.pins |= pins

    def add_logs(self, path: Path) -> None:
        with self._lock:
            if path not in self.log_sources:
                self.log_sources.append(path)

    def record_response(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        if "json" in response.headers.get("Content-Type", "") and '"pin"' in response.text:
            with contextlib.suppress(ValueError):
                self.add(pins_in(response.json()))
        return response


LEDGER = PinLedger()
