"""AWS clients built on first use, so that nothing connects (or even imports boto3) at import time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class LazyClient:
    """`client = LazyClient("sqs")` on a class: `self.client` is the client passed to the
    constructor as `self._client`, or a boto3 client made on first use (AWS_ENDPOINT_URL honoured),
    handed to `prepare` first if given (a client passed in is used as it is)."""

    def __init__(self, service: str, prepare: Callable[[Any], None] | None = None) -> None:
        self.service = service
        self.attr = "_client"
        self.prepare = prepare

    def __set_name__(self, owner: type, name: str) -> None:
        self.attr = f"_{name}"

    def __get__(self, obj: object, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        client = obj.__dict__.get(self.attr)
        if client is None:
            import boto3

            client = boto3.client(self.service)  # type: ignore[call-overload]
            if self.prepare is not None:
                self.prepare(client)
            obj.__dict__[self.attr] = client
        return client
