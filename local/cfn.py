"""Reads `template.yaml` so the local stack and the tests build what the template declares.

The local gateway takes its routes from the functions' `Api` events, the local AWS its table from
the `AWS::DynamoDB::Table` resource, the dispatcher its queue wiring from `SQS` events: one source
of truth, no second list kept by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"


class Tag:
    """A CloudFormation short-form function as the template writes it (``!Ref X``, ``!Sub ...``)."""

    def __init__(self, tag: str, value: Any) -> None:
        self.tag, self.value = tag, value

    def __repr__(self) -> str:
        return f"{self.tag} {self.value!r}"


class _Loader(yaml.SafeLoader):
    pass


def _construct(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Tag:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return Tag("!" + suffix, value)


_Loader.add_multi_constructor("!", _construct)


@lru_cache(maxsize=1)
def load_template(path: str = str(TEMPLATE)) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506
    return loaded  # (_Loader is a SafeLoader: no arbitrary objects)


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # /bookings/{bookingId}
    function: str  # logical id
    api_key_required: bool


@dataclass(frozen=True)
class FunctionDef:
    logical_id: str
    module: str  # functions.booking_created.app
    handler: str  # lambda_handler
    name_suffix: str  # "booking-created" from FunctionName !Sub "${AWS::StackName}-booking-created"
    timeout: int
    environment: dict[str, Any] = field(default_factory=dict)
    sqs_queues: tuple[str, ...] = ()  # logical ids of queues feeding it
    schedules: tuple[tuple[str, Any], ...] = ()  # (event name, ScheduleV2 properties)


def resources(kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in load_template()["Resources"].items() if v.get("Type") == kind}


def functions() -> dict[str, FunctionDef]:
    tpl = load_template()
    glob = tpl.get("Globals", {}).get("Function", {})
    out = {}
    for logical_id, res in resources("AWS::Serverless::Function").items():
        props = res["Properties"]
        code_uri = props["CodeUri"].strip("/")
        module_file, handler = props.get("Handler", "app.lambda_handler").rsplit(".", 1)
        module = ".".join([*code_uri.split("/"), module_file])
        fname = props.get("FunctionName")
        suffix = fname.value.split("}-", 1)[1] if isinstance(fname, Tag) else logical_id
        env = {
            **glob.get("Environment", {}).get("Variables", {}),
            **props.get("Environment", {}).get("Variables", {}),
        }
        queues, schedules = [], []
        for event_name, event in (props.get("Events") or {}).items():
            if event["Type"] == "SQS":
                queue = event["Properties"]["Queue"]
                queues.append(queue.value.split(".")[0] if isinstance(queue, Tag) else str(queue))
            elif event["Type"] in ("ScheduleV2", "Schedule"):
                schedules.append((event_name, event["Properties"]))
        out[logical_id] = FunctionDef(
            logical_id=logical_id,
            module=module,
            handler=handler,
            name_suffix=suffix,
            timeout=int(props.get("Timeout", glob.get("Timeout", 3))),
            environment=env,
            sqs_queues=tuple(queues),
            schedules=tuple(schedules),
        )
    return out


def routes() -> list[Route]:
    tpl = load_template()
    api_default = True
    for res in resources("AWS::Serverless::Api").values():
        api_default = bool(res["Properties"].get("Auth", {}).get("ApiKeyRequired", False))
    out = []
    for logical_id, res in resources("AWS::Serverless::Function").items():
        for event in (res["Properties"].get("Events") or {}).values():
            if event["Type"] != "Api":
                continue
            props = event["Properties"]
            required = props.get("Auth", {}).get("ApiKeyRequired", api_default)
            out.append(Route(props["Method"].upper(), props["Path"], logical_id, bool(required)))
    del tpl
    return out


def table_definition(logical_id: str = "Table") -> dict[str, Any]:
    """The table's key schema, attributes and indexes as `create_table` takes them."""
    props = load_template()["Resources"][logical_id]["Properties"]
    definition: dict[str, Any] = {
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if props.get("GlobalSecondaryIndexes"):
        definition["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    if props.get("StreamSpecification"):
        definition["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
    return definition


def ttl_attribute(logical_id: str = "Table") -> str | None:
    spec = load_template()["Resources"][logical_id]["Properties"].get("TimeToLiveSpecification")
    return spec["AttributeName"] if spec and spec.get("Enabled") else None


def queue_properties(logical_id: str) -> dict[str, Any]:
    return dict(load_template()["Resources"][logical_id].get("Properties") or {})
