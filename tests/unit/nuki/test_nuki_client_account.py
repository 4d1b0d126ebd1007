"""The account-wide reads (issue 17): the log of every lock (`GET /smartlock/log`) and the keypad
codes of every lock (`GET /smartlock/auth`, `GET /smartlock/auth/paged`), each request checked
against Nuki's spec by the fake."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from staykey.nuki import AuthPage, NukiClient
from tests.unit.nuki.nuki_fakes import AUTH_ID, LOCK, OTHER_LOCK, FakeNuki, auth_json, log_json


def test_account_auths_are_one_call_for_every_lock(client: NukiClient, fake_nuki: FakeNuki) -> None:
    other = auth_json(id="6a1f00000000000000000002", smartlockId=OTHER_LOCK)
    fake_nuki.add("GET", "/smartlock/auth", json_body=[auth_json(), other])

    auths = client.list_account_auths()

    assert (fake_nuki.last.method, fake_nuki.last.path, fake_nuki.last.query) == (
        "GET",
        "/smartlock/auth",
        {"types": ["13"]},
    )
    assert [a.smartlock_id for a in auths] == [LOCK, OTHER_LOCK]


def _page(page: int, size: int, total: int, ids: list[str]) -> dict[str, object]:
    return {
        "results": [auth_json(id=i) for i in ids],
        "pagination": {"totalItems": total, "totalPages": -(-total // size), "currentPage": page, "pageSize": size},
    }


def test_a_page_asks_for_its_number_size_and_keypad_codes(client: NukiClient, fake_nuki: FakeNuki) -> None:
    fake_nuki.add("GET", "/smartlock/auth/paged", json_body=_page(3, 2, 8, [AUTH_ID]))

    page = client.list_auths_page(3, size=2)

    assert fake_nuki.last.query == {"page": ["3"], "size": ["2"], "types": ["13"]}
    assert isinstance(page, AuthPage)
    assert [a.id for a in page.results] == [AUTH_ID]
    assert (page.pagination.total_items, page.pagination.total_pages, page.pagination.current_page) == (8, 4, 3)


def test_pages_are_read_until_the_last_one_nuki_counts(client: NukiClient, fake_nuki: FakeNuki) -> None:
    ids = [f"6a1f0000000000000000000{n}" for n in range(4)]
    fake_nuki.add("GET", "/smartlock/auth/paged", json_body=_page(0, 2, 4, ids[:2]))
    fake_nuki.add("GET", "/smartlock/auth/paged", json_body=_page(1, 2, 4, ids[2:]))

    pages = list(client.iter_auth_pages(size=2))

    # Two full pages and totalPages 2: no third call for an empty page
    assert [a.id for page in pages for a in page.results] == ids
    assert [r.query["page"] for r in fake_nuki.requests] == [["0"], ["1"]]


def test_pages_stop_at_a_short_page(client: NukiClient, fake_nuki: FakeNuki) -> None:
    fake_nuki.add("GET", "/smartlock/auth/paged", json_body={"results": [auth_json()], "pagination": {}})

    assert len(list(client.iter_auth_pages(size=2))) == 1
    assert len(fake_nuki.requests) == 1


@pytest.mark.parametrize(("page", "size"), [(-1, 10), (0, 0)])
def test_a_page_out_of_range_is_refused_before_any_call(
    client: NukiClient, fake_nuki: FakeNuki, page: int, size: int
) -> None:
    with pytest.raises(ValueError, match="page"):
        client.list_auths_page(page, size)
    assert fake_nuki.requests == []


def test_the_account_log_follows_the_id_cursor(client: NukiClient, fake_nuki: FakeNuki) -> None:
    # Given 60 entries of two locks: Nuki serves them 50, then 10
    entries = [log_json(n) for n in range(60)]
    fake_nuki.add("GET", "/smartlock/log", json_body=entries[:50])
    fake_nuki.add("GET", "/smartlock/log", json_body=entries[50:])

    pages = list(client.iter_account_log_pages(from_date=datetime(2026, 12, 1, tzinfo=UTC)))

    assert [len(page) for page in pages] == [50, 10]
    first, second = (r.query for r in fake_nuki.requests)
    assert first == {"limit": ["50"], "fromDate": ["2026-12-01T00:00:00.000Z"]}
    assert second == {**first, "id": [entries[49]["id"]]}
    assert {r.path for r in fake_nuki.requests} == {"/smartlock/log"}


def test_the_account_log_stops_after_max_pages(client: NukiClient, fake_nuki: FakeNuki) -> None:
    fake_nuki.add("GET", "/smartlock/log", json_body=[log_json(n) for n in range(2)])

    pages = list(client.iter_account_log_pages(limit=2, max_pages=1))

    assert len(pages) == 1
    assert len(fake_nuki.requests) == 1
