from __future__ import annotations

import itertools
import random

import pytest

from staykey.core.pins import auth_name, generate_pin, is_acceptable_pin, is_trivial


@pytest.mark.parametrize("pin", ["555555", "234567", "987654", "121212", "112211", "345678", "765432"])
def test_trivial_pins_are_refused(pin: str) -> None:
    assert is_trivial(pin)
    assert not is_acceptable_pin(pin)


@pytest.mark.parametrize("pin", ["483726", "918273", "314159"])
def test_ordinary_pins_are_fine(pin: str) -> None:
    assert is_acceptable_pin(pin)


@pytest.mark.parametrize("pin", ["123456", "120000", "12345", "1234567", "403726", "48372a"])
def test_nuki_rules_apply(pin: str) -> None:
    assert not is_acceptable_pin(pin)


def test_generated_pins_follow_every_rule_and_avoid_known_codes() -> None:
    avoid = {"483726"}
    pins = [generate_pin(avoid) for _ in range(2000)]
    assert all(is_acceptable_pin(p) and p not in avoid for p in pins)
    assert len(set(pins)) > 1900  # spread out, not a handful of favourites


def test_generate_avoids_known_codes_even_when_the_source_insists() -> None:
    seq = itertools.chain("483726", "483726", "918273")
    assert generate_pin({"483726"}, choice=lambda _digits: next(seq)) == "918273"


def test_auth_names_are_ours_short_and_free_of_guest_data() -> None:
    assert auth_name("B-1001") == "SK B-1001"
    long_id = "booking-2026-12-01-ada-lovelace-room-12-xyz"
    name = auth_name(long_id)
    assert len(name) <= 20
    assert name.startswith("SK ")
    assert name != auth_name(long_id + "x")
    assert auth_name("B-1001", attempt=1) != auth_name("B-1001")
    rng = random.Random(1)
    ids = {"".join(rng.choice("ABCDEFGHJK0123456789-") for _ in range(40)) for _ in range(5000)}
    assert len({auth_name(i) for i in ids}) == len(ids)
