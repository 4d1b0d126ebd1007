"""The event types are one list: staykey.events.model.EVENT_TYPES, openapi.yaml's EventType and
EventTypeList enums and its `webhooks`, and docs/events.md's table say the same."""

from __future__ import annotations

from pathlib import Path

import yaml

from staykey.events.model import EVENT_TYPES

ROOT = Path(__file__).resolve().parents[2]


def test_openapi_and_the_docs_list_every_event_type_and_no_other() -> None:
    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8"))
    schemas = spec["components"]["schemas"]
    assert schemas["EventType"]["enum"] == list(EVENT_TYPES)
    assert schemas["EventTypeList"]["items"]["enum"] == ["*", *EVENT_TYPES]
    assert schemas["EventTypeList"]["maxItems"] == len(EVENT_TYPES)
    assert list(spec["webhooks"]) == list(EVENT_TYPES)
    table = (ROOT / "docs" / "events.md").read_text(encoding="utf-8")
    assert [t for t in EVENT_TYPES if f"| `{t}` |" not in table] == []
