"""In-memory stand-ins for the lifecycle queue, SES, the reconcile queue and the webhook queue: each
keeps what it would send, for tests and benchmarks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from staykey.adapters.mail import GuestNotice
from staykey.adapters.reconcile_queue import LockJob


class ListJobQueue:
    """In-memory queue for unit tests and benchmarks."""

    def __init__(self) -> None:
        self.jobs: list[tuple[dict[str, Any], float]] = []

    def send(self, job: dict[str, Any], delay_seconds: float) -> None:
        self.jobs.append((job, delay_seconds))

    def drain(self) -> list[dict[str, Any]]:
        jobs = [job for job, _ in self.jobs]
        self.jobs.clear()
        return jobs


class ListMailer:
    """Keeps what it would send; for unit tests and benchmarks."""

    def __init__(self) -> None:
        self.sent: list[GuestNotice] = []

    def send(self, notice: GuestNotice) -> str:
        self.sent.append(notice)
        return f"local-{len(self.sent)}"


class ListLockQueue:
    """In-memory queue for tests and the command line."""

    def __init__(self) -> None:
        self.messages: list[tuple[LockJob, float]] = []

    def send(self, jobs: Sequence[LockJob], delay_seconds: float = 0) -> None:
        self.messages += [(job, delay_seconds) for job in jobs]

    def drain(self) -> list[LockJob]:
        jobs = [job for job, _ in self.messages]
        self.messages.clear()
        return jobs


class ListWebhookInbox:
    """In-memory inbox for unit tests."""

    def __init__(self) -> None:
        self.bodies: list[str] = []

    def put(self, body: str) -> None:
        self.bodies.append(body)


__all__ = ["ListJobQueue", "ListLockQueue", "ListMailer", "ListWebhookInbox"]
