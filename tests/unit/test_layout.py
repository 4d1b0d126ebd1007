"""The layout rules of the layer, as checks (issue 12): rooms stay small, no module reaches into
another's private names, and only the tests import the tests.

* every module of the layer (layers/common/staykey) has at most 500 lines, every class at most 300;
* no module of layers/, functions/, local/, tools/ or bench/ imports a private name (one starting
  with an underscore, dunders aside) of another module: neither ``from x import _y`` nor ``x._y``
  on a module it imported;
* no module outside tests/ imports ``tests``.
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "common" / "staykey"
SOURCES = ("layers", "functions", "local", "tools", "bench")
IMPORT_ROOTS = (ROOT / "layers" / "common", ROOT)  # pyproject's pythonpath
SKIP_DIRS = {".venv", "node_modules", ".git", ".aws-sam", "build", "__pycache__", ".mypy_cache", ".ruff_cache"}
MAX_MODULE_LINES = 500
MAX_CLASS_LINES = 300


def python_files(*tops: Path) -> Iterator[Path]:
    for top in tops:
        for path in sorted(top.rglob("*.py")):
            parts = path.relative_to(ROOT).parts[:-1]
            if not SKIP_DIRS.intersection(parts) and not any(part.startswith(".") for part in parts):
                yield path


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def module_name(path: Path) -> str:
    for root in IMPORT_ROOTS:
        if path.is_relative_to(root):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            return ".".join(parts)
    raise AssertionError(path)


def absolute(node: ast.ImportFrom, path: Path) -> str:
    """The module an ImportFrom reads from, relative imports resolved."""
    if not node.level:
        return node.module or ""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package.pop()
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def is_module(dotted: str) -> bool:
    """Whether `dotted` names a module or package, found on disk without importing anything."""
    head, *rest = dotted.split(".")
    for root in IMPORT_ROOTS:
        if (root / head).is_dir() or (root / f"{head}.py").is_file():
            places = [root / head] if (root / head).is_dir() else []
            break
    else:
        try:
            spec = importlib.util.find_spec(head)
        except (ImportError, ValueError):
            return False
        if spec is None:
            return False
        places = [Path(p) for p in spec.submodule_search_locations or []]
    if not rest:
        return True
    for place in places:
        target = place.joinpath(*rest[:-1])
        if (target / rest[-1]).is_dir() or (target / f"{rest[-1]}.py").is_file():
            return True
    return False


def dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def private_imports(path: Path, source: str | None = None) -> list[str]:
    """Where `path` (or `source`, read as if it were at `path`) takes a private name from another module."""
    tree = parse(path) if source is None else ast.parse(source)
    found: list[str] = []
    modules: dict[str, str] = {}  # a local name bound to a module -> that module
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if any(is_private(part) for part in alias.name.split(".")):
                    found.append(f"{rel(path)}:{node.lineno}: import {alias.name}")
                if alias.asname:
                    modules[alias.asname] = alias.name
                else:
                    head = alias.name.split(".")[0]
                    modules[head] = head
        elif isinstance(node, ast.ImportFrom):
            origin = absolute(node, path)
            if any(is_private(part) for part in origin.split(".")):
                found.append(f"{rel(path)}:{node.lineno}: from {origin} import ...")
            for alias in node.names:
                if is_private(alias.name):
                    found.append(f"{rel(path)}:{node.lineno}: from {origin} import {alias.name}")
                elif alias.name != "*" and is_module(f"{origin}.{alias.name}"):
                    modules[alias.asname or alias.name] = f"{origin}.{alias.name}"
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and is_private(node.attr)):
            continue
        base = dotted(node.value)
        if base is None or base.split(".")[0] not in modules:
            continue
        head, _, tail = base.partition(".")
        target = modules[head] + (f".{tail}" if tail else "")
        if is_module(target):
            found.append(f"{rel(path)}:{node.lineno}: {base}.{node.attr}")
    return found


def imports_of(path: Path, source: str | None = None) -> Iterator[tuple[int, str]]:
    """(line, module) of every import in `path` (or `source`), ``importlib.import_module("x")`` too."""
    for node in ast.walk(parse(path) if source is None else ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and not node.level:
            yield node.lineno, node.module or ""
        elif (
            isinstance(node, ast.Call)
            and dotted(node.func) in ("importlib.import_module", "import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value


# ------------------------------------------------------------------ the rules


def test_no_module_of_the_layer_is_over_500_lines_and_no_class_over_300() -> None:
    too_long: list[str] = []
    for path in python_files(LAYER):
        text = path.read_text(encoding="utf-8")
        lines = len(text.splitlines())
        if lines > MAX_MODULE_LINES:
            too_long.append(f"{rel(path)}: {lines} lines (at most {MAX_MODULE_LINES})")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > MAX_CLASS_LINES:
                    too_long.append(f"{rel(path)}: class {node.name} {size} lines (at most {MAX_CLASS_LINES})")
    assert not too_long, "\n".join(too_long)


def test_no_module_imports_a_private_name_of_another() -> None:
    found = [hit for path in python_files(*(ROOT / top for top in SOURCES)) for hit in private_imports(path)]
    assert not found, "\n".join(found)


def test_nothing_outside_tests_imports_the_tests() -> None:
    tops = [p for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name not in SKIP_DIRS]
    tops = [p for p in tops if p.name != "tests"]
    found = [
        f"{rel(path)}:{line}: {name}"
        for path in [*python_files(*tops), *sorted(ROOT.glob("*.py"))]
        for line, name in imports_of(path)
        if is_tests(name)
    ]
    assert not found, "\n".join(found)


def is_tests(module: str) -> bool:
    return module == "tests" or module.startswith("tests.")


# ------------------------------------------------------------------ the checks check


@pytest.mark.parametrize(
    ("source", "hits"),
    [
        ("from staykey.core.models import _private\n", 1),
        ("from staykey.core import models\nmodels._private\n", 1),
        ("import staykey.core.models\nstaykey.core.models._private\n", 1),
        ("import staykey.core.models as m\nm._private()\n", 1),
        ("from . import _private\n", 1),
        ("from staykey.core.models import Booking\nBooking._private\n", 0),  # a class, not a module
        ("from staykey.core import models\nmodels.__doc__\n", 0),
        ("self._private = 1\n", 0),
    ],
)
def test_the_private_name_check_sees_both_forms(source: str, hits: int) -> None:
    # As if it were staykey/core/_layout_probe.py (nothing is written).
    found = private_imports(LAYER / "core" / "_layout_probe.py", source)
    assert len(found) == hits, found


@pytest.mark.parametrize(
    ("source", "hits"),
    [
        ("from tests import apigw\n", 1),
        ("import tests.fakes\n", 1),
        ("from tests.conftest import World\n", 1),
        ("import importlib\nimportlib.import_module('tests.fakes')\n", 1),
        ("from local.kit import apigw\nimport testsuite\n", 0),
    ],
)
def test_the_tests_import_check_sees_them(source: str, hits: int) -> None:
    found = [name for _, name in imports_of(ROOT / "bench" / "probe.py", source) if is_tests(name)]
    assert len(found) == hits, found


def store_privates(tree: ast.Module) -> list[str]:
    """``<anything>.store._x`` / ``Store._x``: a private member of the store reached from outside it."""
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")):
            continue
        owner = node.value
        name = owner.attr if isinstance(owner, ast.Attribute) else owner.id if isinstance(owner, ast.Name) else ""
        if name in ("store", "Store"):
            found.append(f"{name}.{node.attr}")
    return found


def test_nothing_outside_the_store_reaches_into_its_private_members() -> None:
    """Benchmarks, the simulator and the tools load and read the table through the store's public
    names (`booking_item`, `codec`, ...), so a change inside the store cannot break them unseen."""
    store_dir = LAYER / "store"
    hits = [
        f"{path.relative_to(ROOT)}: {hit}"
        for path in python_files(*(ROOT / top for top in SOURCES))
        if store_dir not in path.parents
        for hit in store_privates(parse(path))
    ]
    assert hits == []


@pytest.mark.parametrize(
    ("source", "hits"),
    [("world.store._codec.load(x)", 1), ("Store._booking_item(b)", 1), ("store.codec", 0), ("self._store", 0)],
)
def test_the_store_private_check_sees_them(source: str, hits: int) -> None:
    assert len(store_privates(ast.parse(source))) == hits
