"""Schemathesis fuzzes the shop API over HTTP (tools/fuzz.py): every route of openapi.yaml, its
examples, boundary values, positive and negative data, and stateful sequences along its links.

`make test` runs a bounded number of cases (STAYKEY_FUZZ_EXAMPLES per operation and phase,
default 5, some 600 cases in all); `make fuzz` runs at least 1,000. The fuzzer gets a stack of
its own, so its rooms, bookings and load never meet the other end-to-end tests; its PINs and its
logs join the session's PIN-in-logs check (tests/e2e/pins.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from local.stack import LocalStack, StackConfig
from tests.e2e.conftest import FUNCTION_ENV, SYNC_DELAY
from tests.e2e.helpers import Shop
from tests.e2e.pins import LEDGER
from tools.fuzz import FuzzResult, fuzz_stack

pytestmark = pytest.mark.e2e

EXAMPLES = int(os.environ.get("STAYKEY_FUZZ_EXAMPLES", "5"))
SEED = int(os.environ.get("STAYKEY_FUZZ_SEED", "20261126"))


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> FuzzResult:
    workdir = tmp_path_factory.mktemp("fuzz")
    config = StackConfig.from_env(
        environ={},
        gateway_port=0,
        nuki_port=0,
        aws_port=0,
        sync_delay=SYNC_DELAY,
        env=dict(FUNCTION_ENV),
        log_dir=workdir / "logs",
    )
    with LocalStack(config) as stack:
        result = fuzz_stack(stack, max_examples=EXAMPLES, seed=SEED, workdir=workdir)
    LEDGER.add(result.pins)
    LEDGER.add_logs(Path(workdir / "logs"))
    print(result.summary())
    return result


def test_no_5xx_and_every_answer_as_openapi_says(fuzzed: FuzzResult) -> None:
    assert fuzzed.cases >= 100, fuzzed.output[-3000:]
    assert fuzzed.server_errors == [], fuzzed.summary()
    assert fuzzed.failures == [], fuzzed.summary() + "\n" + fuzzed.output[-6000:]
    assert fuzzed.exit_code == 0, fuzzed.output[-6000:]


def test_no_function_crashed_behind_the_answers(fuzzed: FuzzResult) -> None:
    """Webhook processing, follow-ups and schedules run after the answer: their failures show only
    in the logs (an unhandled exception, an SQS record a function failed)."""
    assert fuzzed.crashes == [], "\n".join(fuzzed.crashes[:20])


CREATORS = ("POST /bookings", "PUT /rooms/{roomId}")


def test_the_fuzzer_reached_every_route_and_made_bookings(fuzzed: FuzzResult) -> None:
    assert fuzzed.report["operations"]["tested"] == fuzzed.report["operations"]["total"] == _operations()
    reach = fuzzed.reach(*CREATORS)
    assert fuzzed.statuses[201] > 0, f"nothing was created: the fuzz stayed on the surface\n{reach}"
    assert fuzzed.created("POST /bookings") > 0, f"no booking was created\n{reach}"
    assert fuzzed.pins, f"no answer carried a PIN\n{reach}"


def test_any_other_method_gets_api_gateways_403_not_a_5xx(shop: Shop) -> None:
    """Found by the fuzzer: TRACE got http.server's 501 from the local gateway."""
    for method in ("TRACE", "CONNECT", "PROPFIND"):
        r = shop.http.request(method, f"{shop.url}/bookings", headers=shop.headers, timeout=30)
        assert r.status_code == 403, (method, r.status_code, r.text)
        assert r.json() == {"message": "Missing Authentication Token"}


def _operations() -> int:
    """Every operation of both specs (the fuzzer merges the Nuki webhook receiver's spec in)."""
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[2]
    total = 0
    for name in ("openapi.yaml", "openapi-nuki-webhook.yaml"):
        spec = yaml.safe_load((root / name).read_text(encoding="utf-8"))
        total += sum(
            1 for item in spec["paths"].values() for m in item if m in {"get", "put", "post", "patch", "delete"}
        )
    return total
