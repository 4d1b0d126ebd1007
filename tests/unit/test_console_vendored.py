"""The console's vendored htmx is the npm package's file byte for byte, and its German words cover
every English one the templates use."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from staykey.console import i18n

ROOT = Path(__file__).resolve().parents[2]
CONSOLE = ROOT / "layers" / "common" / "staykey" / "console"


def test_vendored_htmx_is_the_npm_package_s_file() -> None:
    package = ROOT / "node_modules" / "htmx.org"
    if not package.exists():
        if os.environ.get("CI") == "true":
            raise AssertionError("node_modules/htmx.org is missing (make test runs npm ci)")
        pytest.skip("npm ci has not run")
    import json

    version = json.loads((package / "package.json").read_text())["version"]
    vendored = CONSOLE / "static" / f"htmx-{version}.min.js"
    assert vendored.read_bytes() == (package / "dist" / "htmx.min.js").read_bytes()
    assert f"htmx-{version}.min.js" in (CONSOLE / "templates" / "base.html").read_text()


def test_every_word_the_templates_show_has_a_german_translation() -> None:
    used: set[str] = set()
    for template in (CONSOLE / "templates").glob("*.html"):
        used |= set(re.findall(r"""_\(["']((?:[^"'\\]|\\.)+)["']\)""", template.read_text()))
    from staykey.console import pages

    used |= {title for title, _ in pages.ACTIONS.values()} | {text for _, text in pages.ACTIONS.values()}
    missing = sorted(text for text in used if text.replace("\\'", "'") not in i18n.DE)
    assert missing == []
