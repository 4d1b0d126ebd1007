"""The local AWS resources and the functions' environments come from template.yaml."""

from __future__ import annotations

import pytest

from local import cfn
from local.aws import LocalResources, client, merged_environment, template_parameters
from local.lambdas import Functions


def test_every_function_gets_a_fully_resolved_environment(resources: LocalResources) -> None:
    merged, conflicts = merged_environment(resources)
    assert conflicts == []
    for fn in cfn.functions().values():
        env = resources.function_environment(fn)
        assert set(env) == set(fn.environment)
        assert all(isinstance(v, str) and "!" not in v[:1] for v in env.values()), env
    assert merged["TABLE_NAME"] == resources.refs["Table"]
    assert merged["LIFECYCLE_QUEUE_URL"] == resources.queue_urls["LifecycleQueue"]
    assert merged["NUKI_TOKEN_SECRET_NAME"].startswith("arn:aws:secretsmanager:")  # Ref of a secret is its ARN
    assert merged["PROVISION_FUNCTION_ARN"].endswith(f":function:{resources.stack_name}-provision")
    assert merged["SCHEDULE_GROUP_NAME"] in resources.schedule_groups


def test_resources_exist_as_the_template_declares_them(resources: LocalResources) -> None:
    endpoint = resources.endpoint
    table = client("dynamodb", endpoint).describe_table(TableName=resources.refs["Table"])["Table"]
    assert {k["AttributeName"] for k in table["KeySchema"]} == {"pk", "sk"}
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == ["gsi1", "gsi2", "gsi3", "gsi4"]
    ttl = client("dynamodb", endpoint).describe_time_to_live(TableName=resources.refs["Table"])
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expiresAt"
    sqs = client("sqs", endpoint)
    attributes = sqs.get_queue_attributes(QueueUrl=resources.queue_urls["LifecycleQueue"], AttributeNames=["All"])[
        "Attributes"
    ]
    assert attributes["VisibilityTimeout"] == "180"
    assert resources.queue_arn("LifecycleDeadLetterQueue") in attributes["RedrivePolicy"]
    secret = client("secretsmanager", endpoint).get_secret_value(SecretId=resources.refs["NukiTokenSecret"])
    assert secret["SecretString"] == "t0ken"
    identities = client("ses", endpoint).list_identities()["Identities"]
    assert resources.parameters["SenderEmail"] in identities


def test_schedule_targets_map_to_functions(resources: LocalResources, functions: Functions) -> None:
    for logical_id, fn in functions.by_logical.items():
        assert functions.for_arn(resources.function_arn(logical_id)) is fn
        assert functions.for_arn(resources.function_arn(logical_id) + ":$LATEST") is fn
    assert functions.for_arn(f"arn:aws:lambda:eu-central-1:123456789012:function:{resources.stack_name}-nope") is None


def test_parameter_overrides_must_name_a_parameter() -> None:
    assert template_parameters({"ProvisionLeadHours": "1"})["ProvisionLeadHours"] == "1"
    with pytest.raises(Exception, match="no such parameter"):
        template_parameters({"NoSuchParameter": "1"})
