"""A stack started in a log directory an earlier run used (make demo and make local always use the
same one) starts with nothing sent: found when a second `make demo` saw the first run's email."""

from __future__ import annotations

from pathlib import Path

import pytest

from local.stack import LocalStack, StackConfig
from tests.e2e.conftest import FUNCTION_ENV, SYNC_DELAY

pytestmark = pytest.mark.e2e


def test_a_new_stack_in_an_old_log_directory_has_sent_no_email(tmp_path: Path) -> None:
    stale = tmp_path / "ses-outbox.jsonl"
    stale.write_text(
        '{"id":"old","source":"no-reply@example.com","destinations":{"ToAddresses":["ada@example.org"]},'
        '"subject":"Your door code for Room 12","body":"an earlier run"}\n',
        encoding="utf-8",
    )
    config = StackConfig.from_env(
        environ={},
        gateway_port=0,
        nuki_port=0,
        aws_port=0,
        sync_delay=SYNC_DELAY,
        env=dict(FUNCTION_ENV),
        log_dir=tmp_path,
    )
    with LocalStack(config) as stack:
        assert stack.sent_emails() == []
