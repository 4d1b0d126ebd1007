"""Stopping the local stack's processes on SIGINT and SIGTERM.

A signal handler runs on the main thread between two bytecodes, possibly while that thread holds
a `threading.Event`'s own lock inside `Event.wait`; `Event.set()` in the handler then waits for
that lock for good. The quick-start test found it: now and then `make local` did not stop on
SIGTERM and left its env file behind. So the handler only notes the signal in a plain list, and
the loops sleep and look at it."""

from __future__ import annotations

import signal
from types import FrameType


def stop_on_signals() -> list[int]:
    """SIGINT and SIGTERM noted in the list returned (empty until one comes)."""
    received: list[int] = []

    def note(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)

    signal.signal(signal.SIGINT, note)
    signal.signal(signal.SIGTERM, note)
    return received


__all__ = ["stop_on_signals"]
