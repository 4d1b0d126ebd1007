"""The fuzzer's copy of the spec (`tools.fuzz.combined_spec`): it admits exactly what openapi.yaml
admits, and schemathesis can draw booking bodies from it.

openapi.yaml's stay points spell month and day as ``[0-9]{2}`` next to ``format: date`` /
``date-time`` and years 2000-2200. Schemathesis rejected most of the bodies it drew for them, and
its stateful phase drops a whole scenario for one rejected draw: the fuzz made no bookings. The
fuzz's copy spells month and day as the formats take them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import StopTest
from schemathesis.generation import GenerationMode

from tools.fuzz import MONTH_DAY, SPEC, combined_spec, with_drawable_dates

YEARS = ("1999", "2000", "2026", "2200", "2201")
MONTHS = ("00", "01", "02", "04", "09", "10", "12", "13", "19", "20", "99")
DAYS = ("00", "01", "09", "10", "19", "28", "29", "30", "31", "32", "39", "40", "99")
TIMES = ("", "T15:00:00Z", "t23:59:59.5+05:30", "T00:00:00-12:00")


@pytest.fixture(scope="module")
def fuzz_spec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = combined_spec(tmp_path_factory.mktemp("fuzz-spec"))
    spec: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return spec


def _stay_point(spec: dict[str, Any]) -> jsonschema_rs.Validator:
    # As schemathesis validates: JSON Schema 2020-12 with formats asserted.
    schema = spec["components"]["schemas"]["StayPoint"]
    return jsonschema_rs.Draft202012Validator(schema, validate_formats=True)


def test_the_stay_point_admits_what_openapi_yaml_admits(fuzz_spec: dict[str, Any]) -> None:
    shop = _stay_point(yaml.safe_load(SPEC.read_text(encoding="utf-8")))
    fuzz = _stay_point(fuzz_spec)
    assert all(MONTH_DAY in branch["pattern"] for branch in fuzz_spec["components"]["schemas"]["StayPoint"]["anyOf"])
    values = [f"{y}-{m}-{d}{t}" for y in YEARS for m in MONTHS for d in DAYS for t in TIMES]
    differ = [v for v in values if shop.is_valid(v) != fuzz.is_valid(v)]
    assert differ == []
    assert sum(map(fuzz.is_valid, values)) > len(values) // 10  # valid and invalid both sampled


def test_only_the_stay_points_date_patterns_change() -> None:
    spec = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    rewritten, changed = with_drawable_dates(spec)
    assert changed == 2  # StayPoint's date and date-time
    for schema in (spec, rewritten):
        for branch in schema["components"]["schemas"]["StayPoint"]["anyOf"]:
            branch.pop("pattern")
    assert rewritten == spec


def test_schemathesis_draws_booking_bodies_without_rejecting_most(tmp_path: Path) -> None:
    """A rejected draw costs the stateful phase its scenario: with openapi.yaml's patterns most
    draws of a POST /bookings body were rejected; with the fuzz's, few are."""
    schema = schemathesis.openapi.from_path(str(combined_spec(tmp_path)))
    strategy = schema["/bookings"]["POST"].as_strategy(generation_mode=GenerationMode.POSITIVE)
    tries = {"drawn": 0, "rejected": 0}

    @settings(
        max_examples=30,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def draw(data: st.DataObject) -> None:
        try:
            data.draw(strategy)
        except StopTest:
            tries["rejected"] += 1
            raise
        tries["drawn"] += 1

    draw()
    assert tries["drawn"] == 30
    assert tries["rejected"] <= 6, tries
