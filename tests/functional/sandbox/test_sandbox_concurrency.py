"""Thread safety: concurrent writes over real HTTP keep Nuki's rules."""

from __future__ import annotations

import itertools
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.functional.sandbox.helpers import TOKEN, NukiApi, Sim, eventually, keypad_body, valid_codes

WORKERS = 32


def put_code(base: str, smartlock_id: int, code: int, name: str) -> int:
    # One session per call: every request on its own connection, as concurrent Lambdas would.
    with requests.Session() as session:
        session.trust_env = False
        response = session.put(
            f"{base}/smartlock/{smartlock_id}/auth",
            json=keypad_body(code, name),
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )
        return response.status_code


def test_many_concurrent_creates_of_distinct_codes_all_land(nuki: NukiApi, lock_a: int) -> None:
    codes = list(itertools.islice(valid_codes(), 64))
    with ThreadPoolExecutor(WORKERS) as pool:
        statuses = list(pool.map(lambda c: put_code(nuki.base, lock_a, c, f"SK-{c}"), codes))
    assert statuses == [204] * len(codes)
    eventually(lambda: len(nuki.auths(lock_a)) == len(codes))
    listed = nuki.auths(lock_a)
    assert sorted(a["code"] for a in listed) == codes
    assert len({a["id"] for a in listed}) == len(codes)
    assert len({a["authId"] for a in listed}) == len(codes)


def test_the_same_code_concurrently_lands_exactly_once(nuki: NukiApi, lock_a: int, sim: Sim) -> None:
    with ThreadPoolExecutor(WORKERS) as pool:
        statuses = list(pool.map(lambda n: put_code(nuki.base, lock_a, 483726, f"SK-{n}"), range(WORKERS)))
    assert Counter(statuses) == {204: 1, 409: WORKERS - 1}
    nuki.wait_for_code(lock_a, 483726)
    assert len(nuki.auths(lock_a)) == 1


def test_concurrent_writes_on_one_auth_get_one_204_and_423s(nuki: NukiApi, lock_a: int, sim: Sim) -> None:
    auth = nuki.create_code(lock_a, 483726)
    sim.config(syncDelaySeconds=2)

    def update(n: int) -> int:
        with requests.Session() as session:
            session.trust_env = False
            return session.post(
                f"{nuki.base}/smartlock/{lock_a}/auth/{auth['id']}",
                json={"name": f"SK-{n}", "code": 483726},
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=10,
            ).status_code

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(update, range(16)))
    assert Counter(statuses) == {204: 1, 423: 15}
