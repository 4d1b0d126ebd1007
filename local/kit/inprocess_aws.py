"""In-process AWS (inside moto's `mock_aws`) built from template.yaml, shared by the tests and the
benchmarks. No side effects at import: the caller sets credentials and the environment first."""

from __future__ import annotations

import os


def create_local_aws(table: str, group: str, sender: str, token: str, webhook_secret: str) -> dict[str, str]:
    """Tables, schedule group, queues, SES identity and secrets, as template.yaml declares them.

    The secrets get the names in NUKI_TOKEN_SECRET_NAME and NUKI_WEBHOOK_SECRET_NAME. Returns the
    queue URLs by name ("lifecycle", "webhooks").
    """
    import boto3

    from local import moto_streams
    from local.cfn import table_definition, ttl_attribute

    moto_streams.apply()  # DynamoDB Streams as in AWS (the event outbox reads the table's stream)

    ddb = boto3.client("dynamodb")
    ddb.create_table(TableName=table, **table_definition())
    ttl = ttl_attribute()
    if ttl:
        ddb.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl})
    boto3.client("scheduler").create_schedule_group(Name=group)
    sqs = boto3.client("sqs")
    urls = {name: sqs.create_queue(QueueName=f"{table}-{name}")["QueueUrl"] for name in ("lifecycle", "webhooks")}
    boto3.client("ses").verify_email_identity(EmailAddress=sender)
    sm = boto3.client("secretsmanager")
    sm.create_secret(Name=os.environ["NUKI_TOKEN_SECRET_NAME"], SecretString=token)
    sm.create_secret(Name=os.environ["NUKI_WEBHOOK_SECRET_NAME"], SecretString=webhook_secret)
    return urls
