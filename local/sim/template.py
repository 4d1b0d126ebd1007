"""What the simulator reads from template.yaml: the metrics its alarms watch."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


# libyaml's loader when PyYAML has it (a tenth of the time on the 70 KB template), else PyYAML's own.
_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[valid-type,misc]
    pass


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> object:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)  # type: ignore[arg-type]


_Loader.add_multi_constructor("!", _tag)


@cache
def alarmed_metrics() -> frozenset[str]:
    """StayKey metrics (namespace StayKey) that a CloudWatch alarm in the template watches."""
    template = yaml.load(TEMPLATE.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    names = set()
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") != "AWS::CloudWatch::Alarm":
            continue
        props = resource.get("Properties", {})
        if props.get("MetricName"):
            names.add(str(props["MetricName"]))
        for query in props.get("Metrics", []) or []:
            stat = (query.get("MetricStat") or {}).get("Metric") or {}
            if stat.get("MetricName"):
                names.add(str(stat["MetricName"]))
    return frozenset(names)
