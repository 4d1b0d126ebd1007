"""The functions of `template.yaml`, run in this process as Lambda would run them.

Each `Function` is one ``AWS::Serverless::Function``: its handler (``CodeUri`` + ``Handler``), its
name and ARN in the local stack, its timeout, its asynchronous-invocation settings
(``EventInvokeConfig``, ``DeadLetterQueue``) and a small pool of "containers". A container is one
loaded copy of the handler module and runs one invocation at a time, as a Lambda execution
environment does: the handlers keep per-invocation state in module globals (the Powertools
resolver's ``current_event``, the batch processor), so two invocations must never share a copy.
The first container imports ``functions.<name>.app`` normally; further ones (up to
``LOCAL_FUNCTION_CONCURRENCY``, default 4) load the same file under another module name. The
shared layer (``staykey``) is imported once and shared, as are its caches (`staykey.wiring`,
`staykey.settings.get_settings`): all functions run with one merged environment (see
`local.aws.merged_environment`).

Events and results go through JSON on the way in and out, as they would through the Lambda API.

Known differences from Lambda: a function that runs past its ``Timeout`` is not stopped (it
finishes, and the invocation counts as failed); memory is not limited; and because the
Powertools ``Logger`` is one object shared by every function in the process, a log line written
while two functions run at once may carry the other function's context keys (function_name,
request id).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import queue
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from local import cfn
from local.aws import LocalResources

DEFAULT_CONCURRENCY = 4


class FunctionError(Exception):
    """The handler raised (or timed out): Lambda's ``errorType`` / ``errorMessage``."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.error_message = message


class LambdaContext:
    """The context object the Python runtime passes (the attributes Powertools reads, and more)."""

    def __init__(self, fn: Function, request_id: str) -> None:
        self.function_name = fn.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = fn.arn
        self.memory_limit_in_mb = fn.memory
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{fn.name}"
        self.log_stream_name = f"local/{fn.logical_id}"
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + fn.timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class AsyncConfig:
    """How Lambda treats an asynchronous invocation that fails (EventInvokeConfig, DeadLetterQueue)."""

    maximum_retry_attempts: int = 2
    maximum_event_age_seconds: int = 21600
    dead_letter_arn: str | None = None


@dataclass
class Function:
    logical_id: str
    definition: cfn.FunctionDef
    name: str
    arn: str
    timeout: int
    memory: int
    async_config: AsyncConfig
    max_concurrency: int = DEFAULT_CONCURRENCY
    _idle: queue.LifoQueue[Any] = field(default_factory=queue.LifoQueue, repr=False)
    _created: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def load(self) -> None:
        """Import the handler now (the first container), so a broken function fails at start."""
        with self._lock:
            if self._created == 0:
                self._idle.put(self._new_container(0))
                self._created = 1

    def _new_container(self, index: int) -> Any:
        module: ModuleType
        if index == 0:
            module = importlib.import_module(self.definition.module)
        else:
            path = cfn.ROOT / (self.definition.module.replace(".", "/") + ".py")
            name = f"{self.definition.module}__container{index}"
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:  # pragma: no cover
                raise ImportError(f"cannot load {path}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        return getattr(module, self.definition.handler)

    def use_handler(self, handler: Callable[[Any, Any], Any]) -> None:
        """Run `handler` instead of the template's (one container): tests of the local stack."""
        with self._lock:
            self._idle = queue.LifoQueue()
            self._idle.put(handler)
            self._created = self.max_concurrency = 1

    def _acquire(self) -> Any:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._created < self.max_concurrency:
                index = self._created
                self._created += 1
                try:
                    return self._new_container(index)
                except BaseException:
                    self._created -= 1
                    raise
        return self._idle.get()

    def invoke(self, event: Any, request_id: str | None = None) -> Any:
        """Run the handler on `event` and return its result; `FunctionError` if it raised or ran
        past the function's timeout (Lambda would have stopped it; here it ran to its end)."""
        request_id = request_id or str(uuid.uuid4())
        payload = json.loads(json.dumps(event))
        handler = self._acquire()
        started = time.monotonic()
        try:
            result = handler(payload, LambdaContext(self, request_id))
        except Exception as exc:
            log_error(self, request_id, exc)
            raise FunctionError(type(exc).__name__, str(exc)) from exc
        finally:
            self._idle.put(handler)
        elapsed = time.monotonic() - started
        if elapsed > self.timeout:
            message = f"Task timed out after {self.timeout:.2f} seconds (ran {elapsed:.2f}s locally)"
            print(json.dumps({"level": "ERROR", "function": self.name, "requestId": request_id, "message": message}))
            raise FunctionError("Sandbox.Timedout", message)
        try:
            return json.loads(json.dumps(result))
        except (TypeError, ValueError) as exc:
            raise FunctionError("Runtime.MarshalError", f"the result is not JSON: {exc}") from exc


def log_error(fn: Function, request_id: str, exc: BaseException) -> None:
    """The function's error in its log (stdout), as the Lambda runtime writes it."""
    print(
        json.dumps(
            {
                "level": "ERROR",
                "function": fn.name,
                "requestId": request_id,
                "errorType": type(exc).__name__,
                "errorMessage": str(exc),
                "stackTrace": traceback.format_exception(exc),
            }
        ),
        flush=True,
    )


def _async_config(resources: LocalResources, props: dict[str, Any], glob: dict[str, Any]) -> AsyncConfig:
    invoke = resources.resolve(props.get("EventInvokeConfig", glob.get("EventInvokeConfig")) or {})
    dlq = resources.resolve(props.get("DeadLetterQueue", glob.get("DeadLetterQueue")) or {})
    on_failure = ((invoke.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
    return AsyncConfig(
        maximum_retry_attempts=int(invoke.get("MaximumRetryAttempts", 2)),
        maximum_event_age_seconds=int(invoke.get("MaximumEventAgeInSeconds", 21600)),
        dead_letter_arn=dlq.get("TargetArn") or on_failure,
    )


class Functions:
    """Every function of the template, by logical id, name and ARN."""

    def __init__(self, resources: LocalResources, concurrency: int = DEFAULT_CONCURRENCY) -> None:
        template = cfn.load_template()
        glob = (template.get("Globals") or {}).get("Function") or {}
        self.resources = resources
        self.by_logical: dict[str, Function] = {}
        for logical_id, definition in cfn.functions().items():
            props = template["Resources"][logical_id]["Properties"]
            self.by_logical[logical_id] = Function(
                logical_id=logical_id,
                definition=definition,
                name=resources.function_name(logical_id),
                arn=resources.function_arn(logical_id),
                timeout=definition.timeout,
                memory=int(props.get("MemorySize", glob.get("MemorySize", 128))),
                async_config=_async_config(resources, props, glob),
                max_concurrency=max(1, concurrency),
            )
        self._by_arn = {fn.arn: fn for fn in self.by_logical.values()}
        self._by_name = {fn.name: fn for fn in self.by_logical.values()}

    def load_all(self) -> None:
        for fn in self.by_logical.values():
            fn.load()

    def __getitem__(self, logical_id: str) -> Function:
        return self.by_logical[logical_id]

    def for_arn(self, arn: str) -> Function | None:
        """The function a Lambda ARN (or a bare name, or an ARN with a version/alias) names."""
        if arn in self._by_arn:
            return self._by_arn[arn]
        if arn in self._by_name:
            return self._by_name[arn]
        parts = arn.split(":")
        if len(parts) >= 7 and parts[2] == "lambda" and parts[5] == "function":
            return self._by_name.get(parts[6])
        return None
