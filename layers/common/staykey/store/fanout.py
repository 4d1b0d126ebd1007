"""Reads that do not depend on each other, sent at once.

A console page needs a handful of DynamoDB reads (rooms, locks, a key range of bookings, their
guests ...); one after another they cost the sum of their round trips, at once about the longest.
`gather(f, g, ...)` runs the calls on a small shared thread pool (boto3's clients are thread-safe)
and returns their results in order; the first call runs in the calling thread, and a call made
from a pool thread runs its own calls inline (no pool thread ever waits for another: no deadlock,
however deeply pages nest their reads). An exception in any call is raised, after every call has
finished. Nothing is cached: each call reads the table as it is.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar, overload

WORKERS = 8
A = TypeVar("A")
B = TypeVar("B")
C = TypeVar("C")
D = TypeVar("D")
E = TypeVar("E")

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_inside = threading.local()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="staykey-read")
        return _pool


def _in_pool(call: Callable[[], Any]) -> Any:
    _inside.active = True
    try:
        return call()
    finally:
        _inside.active = False


@overload
def gather(a: Callable[[], A], b: Callable[[], B], /) -> tuple[A, B]: ...
@overload
def gather(a: Callable[[], A], b: Callable[[], B], c: Callable[[], C], /) -> tuple[A, B, C]: ...
@overload
def gather(a: Callable[[], A], b: Callable[[], B], c: Callable[[], C], d: Callable[[], D], /) -> tuple[A, B, C, D]: ...
@overload
def gather(
    a: Callable[[], A], b: Callable[[], B], c: Callable[[], C], d: Callable[[], D], e: Callable[[], E], /
) -> tuple[A, B, C, D, E]: ...
@overload
def gather(*calls: Callable[[], Any]) -> tuple[Any, ...]: ...
def gather(*calls: Callable[[], Any]) -> tuple[Any, ...]:
    """The results of `calls`, in order, the calls made at once."""
    return tuple(each(calls))


def each(calls: Sequence[Callable[[], A]]) -> list[A]:
    """`gather` for a list of calls of one type."""
    if len(calls) <= 1 or getattr(_inside, "active", False):
        return [call() for call in calls]
    pool = _executor()
    futures: list[Future[A]] = [pool.submit(_in_pool, call) for call in calls[1:]]
    try:
        first = calls[0]()
    except BaseException:
        for future in futures:
            future.exception()  # wait: no read is left running behind the caller's back
        raise
    return [first, *(future.result() for future in futures)]
