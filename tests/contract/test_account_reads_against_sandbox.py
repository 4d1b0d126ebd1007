"""The account-wide reads of issue 17 against the sandbox, every exchange judged by Nuki's spec:
`GET /smartlock/auth`, `GET /smartlock/auth/paged` and `GET /smartlock/log`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from local.nuki_sandbox import start_sandbox
from staykey.nuki import NukiClient
from tests.contract.test_client_against_sandbox import TOKEN, SpecJudgedSession

LOCKS = (17000001, 17000002, 17000003)


@pytest.fixture
def sandbox() -> Iterator[Any]:
    running = start_sandbox(token=TOKEN, sync_delay=0.05)
    for lock_id in LOCKS:
        requests.post(f"{running.url}/_sim/smartlocks", json={"smartlockId": lock_id}, timeout=5)
        for n in range(3):  # three codes others added on each lock
            code = int(f"{n + 3}{lock_id % 10}5678")
            added = requests.post(
                f"{running.url}/_sim/smartlocks/{lock_id}/auths", json={"name": f"Cleaner {n}", "code": code}, timeout=5
            )
            assert added.status_code == 201, added.text
    yield running
    running.stop()


@pytest.fixture
def client(sandbox: Any) -> Iterator[NukiClient]:
    judged = SpecJudgedSession()
    with NukiClient(TOKEN, sandbox.url, session=judged, max_total_seconds=5) as nuki:
        yield nuki
    assert judged.problems == []
    assert judged.exchanges > 0


def test_every_locks_codes_in_one_call_and_in_pages_agree(client: NukiClient) -> None:
    whole = client.list_account_auths()
    pages = list(client.iter_auth_pages(size=4))

    assert len(whole) == 9
    assert {a.smartlock_id for a in whole} == set(LOCKS)
    # 9 codes in pages of 4: 4, 4, 1, and the same codes in the same order as the one answer
    assert [len(p.results) for p in pages] == [4, 4, 1]
    assert [a.id for p in pages for a in p.results] == [a.id for a in whole]
    assert [(p.pagination.current_page, p.pagination.total_pages) for p in pages] == [(0, 3), (1, 3), (2, 3)]
    assert pages[0].pagination.total_items == 9


def test_a_page_past_the_end_is_empty(client: NukiClient) -> None:
    page = client.list_auths_page(7, size=4)

    assert page.results == []
    assert page.pagination.total_items == 9


def test_the_account_log_pages_across_locks_newest_first(client: NukiClient, sandbox: Any) -> None:
    for i in range(70):
        lock_id = LOCKS[i % 3]
        requests.post(f"{sandbox.url}/_sim/smartlocks/{lock_id}/keypad", json={"code": 987654}, timeout=5)

    pages = list(client.iter_account_log_pages())

    entries = [entry for page in pages for entry in page]
    assert [len(page) for page in pages] == [50, 20]
    assert {entry.smartlock_id for entry in entries} == set(LOCKS)
    assert len({entry.id for entry in entries}) == 70
    assert [e.date for e in entries] == sorted((e.date for e in entries), reverse=True)
