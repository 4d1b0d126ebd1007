"""The local runtime hears of each email SES accepts from the send itself (local.observe), and the
outbox file is read incrementally: nothing asks moto for everything it holds."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from local.aws import LOCAL_CREDENTIALS, MotoServer
from local.observe import OutboxTail, SesOutbox, read_outbox


def test_every_accepted_email_lands_in_the_outbox_and_a_tail_reads_only_what_is_new(
    moto: MotoServer, tmp_path: Path
) -> None:
    session = boto3.session.Session(
        aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name="eu-central-1",
    )
    outbox = SesOutbox(tmp_path / "outbox.jsonl").install(session.events)
    ses = session.client("ses", endpoint_url=moto.endpoint)
    ses.verify_email_identity(EmailAddress="no-reply@example.com")
    tail = OutboxTail(outbox.path)
    assert tail.new() == []

    def send(to: str, subject: str) -> str:
        answer = ses.send_email(
            Source="no-reply@example.com",
            Destination={"ToAddresses": [to]},
            Message={
                "Subject": {"Data": subject},
                "Body": {"Text": {"Data": "the text"}, "Html": {"Data": "<p>the html</p>"}},
            },
        )
        return str(answer["MessageId"])

    first = send("ada@example.org", "Your door code")
    (entry,) = tail.new()
    assert entry["id"] == first
    assert entry["destinations"] == {"ToAddresses": ["ada@example.org"]}
    assert (entry["subject"], entry["body"], entry["text"]) == ("Your door code", "<p>the html</p>", "the text")

    second = send("grace@example.org", "Another")
    assert [e["id"] for e in tail.new()] == [second]
    assert tail.new() == []
    assert [e["id"] for e in read_outbox(outbox.path)] == [first, second]

    # A refused send (unverified sender) is not in the outbox
    with pytest.raises(ses.exceptions.MessageRejected):
        ses.send_email(
            Source="nobody@elsewhere.example",
            Destination={"ToAddresses": ["x@example.org"]},
            Message={"Subject": {"Data": "x"}, "Body": {"Text": {"Data": "x"}}},
        )
    assert tail.new() == []
