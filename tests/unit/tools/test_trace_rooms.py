"""tools.trace_rooms' counting on a call graph small enough to count by hand: two rooms and a
transparent module between them, a callback through it, a generator started and resumed."""

from __future__ import annotations

import sys
import types
from pathlib import Path

from tools.trace_rooms import ROOT, classify_staykey, measure

ROOM_A = """
def run():
    start()                       # within a
    again()                       # within a, then a -> b (leaf): a transition, b has returned
    return room_b.consume(gen())  # a -> b; b starts a's generator: b -> a, a callback; 2 resumes

def start():
    return room_b.middle(callback)  # a -> b

def callback():                   # b -> (transparent) -> a: a callback
    return helper()               # within a

def helper():
    return 1

def again():
    return room_b.leaf()

def gen():
    yield 1
    yield 2
"""

ROOM_B = """
def middle(fn):
    return transparent.call(fn)

def leaf():
    return 2

def consume(values):
    return sum(values)
"""

TRANSPARENT = """
def call(fn):
    return fn()
"""

FILES = {"/synthetic/room_a.py": "a", "/synthetic/room_b.py": "b"}


def _module(name: str, source: str) -> types.ModuleType:
    module = types.ModuleType(name)
    exec(compile(source, f"/synthetic/{name}.py", "exec"), module.__dict__)  # noqa: S102 - our own source
    return module


def _graph() -> types.ModuleType:
    a, b, t = _module("room_a", ROOM_A), _module("room_b", ROOM_B), _module("transparent", TRANSPARENT)
    a.room_b = b  # type: ignore[attr-defined]
    b.transparent = t  # type: ignore[attr-defined]
    return a


def test_it_counts_rooms_transitions_and_callbacks_through_transparent_frames() -> None:
    a = _graph()

    result, rooms = measure(a.run, FILES.get)

    assert result == 3
    assert rooms.visited == ["a", "b"]
    assert rooms.entries == 1  # run
    # a -> b (middle), b -> a (callback via transparent), a -> b (leaf), a -> b (consume), b -> a (gen)
    assert rooms.transitions == 5
    assert rooms.callbacks == 2
    assert rooms.callback_edges == {("b", "a", "callback"): 1, ("b", "a", "gen"): 1}
    assert rooms.resumes == 2
    assert rooms.reentries == 4
    # run, start, callback, helper, again, gen (its start) in a; middle, leaf, consume in b
    assert rooms.calls == {"a": 6, "b": 3}
    assert rooms.entered == {"a": 3, "b": 3}
    assert rooms.to_json()["callbackEdges"][0]["count"] == 1


def test_it_counts_nothing_outside_the_rooms_and_puts_the_previous_profile_back() -> None:
    a = _graph()

    def previous(frame: types.FrameType, event: str, arg: object) -> None:
        pass

    sys.setprofile(previous)
    try:
        _, rooms = measure(a.run, lambda filename: None)
        assert sys.getprofile() is previous
    finally:
        sys.setprofile(None)
    assert rooms.visited == []
    assert rooms.transitions == rooms.callbacks == rooms.entries == 0


def test_the_rooms_are_the_layers_modules_and_the_handlers() -> None:
    layer = ROOT / "layers" / "common" / "staykey"
    assert classify_staykey(str(layer / "store" / "bookings.py")) == "staykey.store.bookings"
    assert classify_staykey(str(layer / "store" / "__init__.py")) == "staykey.store"
    assert classify_staykey(str(layer / "wiring.py")) == "staykey.wiring"
    assert classify_staykey(str(ROOT / "functions" / "checkout" / "app.py")) == "functions.checkout.app"
    assert classify_staykey(str(ROOT / "local" / "nuki_sandbox" / "api.py")) is None
    assert classify_staykey(str(ROOT / "tools" / "trace_rooms.py")) is None
    assert classify_staykey(str(Path(sys.prefix) / "lib" / "pydantic" / "main.py")) is None
    assert classify_staykey("<string>") is None
