"""DataStack: the stateful resources are encrypted, private and named by ResourceNames; prod
protects and keeps them, a dev stage cleans up after itself; every workload has its own login."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match
from cdk_helpers import only_resource, resources_of_type

from infra.config import StageConfig
from infra.workloads import DATABASE_LOGINS, WORKLOADS
from tekoa.charts.spec import CHART_PREFIX
from tekoa.names import ResourceNames

pytestmark = pytest.mark.xdist_group("infra")
NAMES = ResourceNames("dev")
PROD = ResourceNames("prod")


def test_only_the_prod_data_stack_is_termination_protected(platform: Any, prod_platform: Any) -> None:
    def protected(synthesised: Any) -> bool:
        artifact = synthesised.manifest()["artifacts"][synthesised.stack_ids["data"]]
        return bool(artifact["properties"].get("terminationProtection", False))

    assert protected(prod_platform) is True
    assert protected(platform) is False


def test_aurora_is_postgres_16_serverless_v2(data_template: Any) -> None:
    _, cluster = only_resource(data_template, "AWS::RDS::DBCluster")
    props = cluster["Properties"]
    assert props["Engine"] == "aurora-postgresql"
    assert props["EngineVersion"].startswith("16.")
    data_template.has_resource_properties(
        "AWS::RDS::DBInstance", {"DBInstanceClass": "db.serverless", "PubliclyAccessible": False}
    )


def test_prod_aurora_keeps_half_an_acu_and_dev_pauses_at_zero(
    data_template: Any, prod_templates: dict[str, Any]
) -> None:
    _, prod = only_resource(prod_templates["data"], "AWS::RDS::DBCluster")
    _, dev = only_resource(data_template, "AWS::RDS::DBCluster")
    assert prod["Properties"]["ServerlessV2ScalingConfiguration"] == {"MinCapacity": 0.5, "MaxCapacity": 8}
    assert dev["Properties"]["ServerlessV2ScalingConfiguration"] == {
        "MinCapacity": 0,
        "MaxCapacity": 2,
        "SecondsUntilAutoPause": 300,
    }


def test_aurora_is_encrypted_with_the_data_key_and_uses_the_named_secret(data_template: Any) -> None:
    key_id, _ = only_resource(
        data_template, "AWS::KMS::Key", Description=Match.string_like_regexp("^Tekoa data key")
    )
    _, cluster = only_resource(data_template, "AWS::RDS::DBCluster")
    assert cluster["Properties"]["StorageEncrypted"] is True
    assert cluster["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    data_template.has_resource_properties(
        "AWS::SecretsManager::Secret",
        {
            "Name": NAMES.db_secret,
            "KmsKeyId": {"Fn::GetAtt": [key_id, "Arn"]},
            "GenerateSecretString": Match.any_value(),
        },
    )


def test_prod_database_survives_stack_deletion(prod_templates: dict[str, Any]) -> None:
    _, cluster = only_resource(prod_templates["data"], "AWS::RDS::DBCluster")
    assert cluster["Properties"]["DeletionProtection"] is True
    assert cluster["DeletionPolicy"] == "Snapshot"
    assert cluster["UpdateReplacePolicy"] == "Snapshot"
    assert cluster["Properties"]["BackupRetentionPeriod"] >= 7


def test_dev_database_goes_with_its_stack_so_a_failed_deploy_can_be_retried(data_template: Any) -> None:
    _, cluster = only_resource(data_template, "AWS::RDS::DBCluster")
    assert cluster["Properties"]["DeletionProtection"] is False
    assert cluster["DeletionPolicy"] == "Delete"


def test_prod_keeps_its_data_but_lets_a_failed_first_deploy_roll_back(prod_templates: dict[str, Any]) -> None:
    # RetainExceptOnCreate: kept on stack deletion and replacement, removed if the deploy that
    # creates it rolls back, so the retry finds no leftover under the same name.
    data = prod_templates["data"]
    kept = {
        "AWS::KMS::Key": 2,
        "AWS::S3::Bucket": 1,
    }
    for resource_type, count in kept.items():
        resources = resources_of_type(data, resource_type).values()
        assert len(resources) == count
        assert {r["DeletionPolicy"] for r in resources} == {"RetainExceptOnCreate"}
    data.has_resource(
        "AWS::SecretsManager::Secret",
        {
            "Properties": Match.object_like({"Name": PROD.jwt_secret}),
            "DeletionPolicy": "RetainExceptOnCreate",
        },
    )


def test_a_dev_stage_cleans_up_after_itself(data_template: Any) -> None:
    for resource_type in ("AWS::KMS::Key", "AWS::S3::Bucket", "AWS::SecretsManager::Secret"):
        assert {r["DeletionPolicy"] for r in resources_of_type(data_template, resource_type).values()} == {
            "Delete"
        }
    # A bucket with charts in it cannot be deleted: CDK's helper empties it first.
    data_template.resource_count_is("Custom::S3AutoDeleteObjects", 1)
    assert {
        r["Properties"]["PendingWindowInDays"]
        for r in resources_of_type(data_template, "AWS::KMS::Key").values()
    } == {7}


def test_prod_rds_proxy_requires_tls_and_knows_every_login(prod_templates: dict[str, Any]) -> None:
    data = prod_templates["data"]
    _, proxy = only_resource(data, "AWS::RDS::DBProxy")
    props = proxy["Properties"]
    assert props["RequireTLS"] is True
    assert props["EngineFamily"] == "POSTGRESQL"
    assert {auth["AuthScheme"] for auth in props["Auth"]} == {"SECRETS"}
    assert {auth["ClientPasswordAuthType"] for auth in props["Auth"]} == {"POSTGRES_SCRAM_SHA_256"}
    secrets = {json.dumps(auth["SecretArn"]) for auth in props["Auth"]}
    assert len(secrets) == 1 + len(DATABASE_LOGINS)  # the master (migrations) + one per workload


def test_dev_has_no_proxy(data_template: Any) -> None:
    data_template.resource_count_is("AWS::RDS::DBProxy", 0)


def test_only_the_proxy_may_reach_prod_aurora(prod_templates: dict[str, Any]) -> None:
    data = prod_templates["data"]
    groups = resources_of_type(data, "AWS::EC2::SecurityGroup")
    proxy_group = next(lid for lid in groups if lid.startswith("DatabaseProxySecurityGroup"))
    cluster_group = next(lid for lid in groups if lid.startswith("DatabaseClusterSecurityGroup"))
    assert "SecurityGroupIngress" not in groups[cluster_group]["Properties"]  # no inline CIDR rules
    into_cluster = [
        r
        for r in resources_of_type(data, "AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [cluster_group, "GroupId"]}
    ]
    assert into_cluster
    assert all(
        r["Properties"]["SourceSecurityGroupId"] == {"Fn::GetAtt": [proxy_group, "GroupId"]}
        for r in into_cluster
    )


def test_every_database_login_has_its_own_encrypted_secret(data_template: Any) -> None:
    key_id, _ = only_resource(
        data_template, "AWS::KMS::Key", Description=Match.string_like_regexp("^Tekoa data key")
    )
    for login in DATABASE_LOGINS:
        _, secret = only_resource(
            data_template, "AWS::SecretsManager::Secret", Name=NAMES.db_login_secret(login.role)
        )
        generated = secret["Properties"]["GenerateSecretString"]
        assert json.loads(generated["SecretStringTemplate"]) == {"username": login.role}
        assert generated["GenerateStringKey"] == "password"
        assert secret["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}


def test_jwt_signing_key_is_generated(data_template: Any) -> None:
    data_template.has_resource_properties(
        "AWS::SecretsManager::Secret",
        {"Name": NAMES.jwt_secret, "GenerateSecretString": Match.object_like({"PasswordLength": 64})},
    )


def test_both_kms_keys_rotate_under_their_aliases(data_template: Any) -> None:
    keys = resources_of_type(data_template, "AWS::KMS::Key")
    assert len(keys) == 2
    assert all(key["Properties"]["EnableKeyRotation"] is True for key in keys.values())
    aliases = {
        a["Properties"]["AliasName"]: a["Properties"]["TargetKeyId"]["Fn::GetAtt"][0]
        for a in resources_of_type(data_template, "AWS::KMS::Alias").values()
    }
    assert set(aliases) == {NAMES.data_key_alias, NAMES.broker_key_alias}
    assert aliases[NAMES.data_key_alias] != aliases[NAMES.broker_key_alias]


def test_the_broker_key_refuses_any_use_without_the_envelope_context(data_template: Any) -> None:
    from tekoa.services.credentials import ENCRYPTION_CONTEXT_KEYS

    alias = next(
        a
        for a in resources_of_type(data_template, "AWS::KMS::Alias").values()
        if a["Properties"]["AliasName"] == NAMES.broker_key_alias
    )
    key = resources_of_type(data_template, "AWS::KMS::Key")[
        alias["Properties"]["TargetKeyId"]["Fn::GetAtt"][0]
    ]
    denies = [s for s in key["Properties"]["KeyPolicy"]["Statement"] if s["Effect"] == "Deny"]
    # One Deny per context key: missing either one refuses the call, for every principal.
    assert sorted(json.dumps(s["Condition"]) for s in denies) == sorted(
        json.dumps({"Null": {f"kms:EncryptionContext:{k}": "true"}}) for k in ENCRYPTION_CONTEXT_KEYS
    )
    for statement in denies:
        assert statement["Principal"] == {"AWS": "*"}
        assert set(statement["Action"]) >= {"kms:Decrypt", "kms:GenerateDataKey*"}


def test_charts_bucket_name_carries_the_account_and_region(data_template: Any) -> None:
    _, bucket = only_resource(data_template, "AWS::S3::Bucket")
    assert bucket["Properties"]["BucketName"] == {
        "Fn::Join": ["", [f"{NAMES.charts_bucket}-", {"Ref": "AWS::AccountId"}, "-", {"Ref": "AWS::Region"}]]
    }
    assert (
        NAMES.charts_bucket_in("123456789012", "ap-southeast-2")
        == "tekoa-dev-charts-123456789012-ap-southeast-2"
    )


def test_charts_bucket_is_private_encrypted_and_versioned(data_template: Any) -> None:
    _, bucket = only_resource(data_template, "AWS::S3::Bucket")
    props = bucket["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (encryption,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}


def test_charts_bucket_expires_charts_after_the_configured_days(data_template: Any) -> None:
    _, bucket = only_resource(data_template, "AWS::S3::Bucket")
    (rule,) = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled"
    assert rule["Prefix"] == CHART_PREFIX
    assert (
        rule["ExpirationInDays"] == StageConfig().chart_retention_days == 30
    )  # context chart_retention_days
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 7}


def test_charts_bucket_refuses_plain_http(data_template: Any) -> None:
    data_template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "PolicyDocument": Match.object_like(
                {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Effect": "Deny",
                                    "Action": "s3:*",
                                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                }
                            )
                        ]
                    )
                }
            )
        },
    )


@pytest.mark.parametrize("profile", ["dev", "prod"])
def test_migrations_run_on_deploy_after_the_database_and_its_ingress(
    profile: str, data_template: Any, prod_templates: dict[str, Any]
) -> None:
    data = data_template if profile == "dev" else prod_templates["data"]
    function_id, function = only_resource(data, "AWS::Lambda::Function", Handler=WORKLOADS["migrate"].handler)
    props = function["Properties"]
    assert props["VpcConfig"]["SubnetIds"]
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert "ReservedConcurrentExecutions" not in props  # accounts with a quota of 10 refuse any
    assert int(props["Environment"]["Variables"]["TEKOA_DB_CONNECT_TIMEOUT_S"]) >= 20

    _, trigger = only_resource(data, "Custom::Trigger")
    # It invokes the function's current version (so a new migration in the code re-runs it),
    # waits for the answer (a failing migration fails the deploy) ...
    version_id = trigger["Properties"]["HandlerArn"]["Ref"]
    assert resources_of_type(data, "AWS::Lambda::Version")[version_id]["Properties"] == {
        "FunctionName": {"Ref": function_id}
    }
    assert trigger["Properties"]["InvocationType"] == "RequestResponse"
    # ... and only once the database, the logins' secrets and the rule letting it in exist.
    depends = set(trigger["DependsOn"])
    database_types = ["AWS::RDS::DBCluster"] + (["AWS::RDS::DBProxy"] if profile == "prod" else [])
    for resource_type in database_types:
        assert only_resource(data, resource_type)[0] in depends
    ingress_id, _ = only_resource(
        data, "AWS::EC2::SecurityGroupIngress", Description="Migrations Lambda to the database"
    )
    assert ingress_id in depends


def test_migrations_know_every_workload_login_and_may_read_its_secret(data_template: Any) -> None:
    _, function = only_resource(data_template, "AWS::Lambda::Function", Handler=WORKLOADS["migrate"].handler)
    logins = function["Properties"]["Environment"]["Variables"]["TEKOA_DATABASE_LOGINS"]
    rendered = "".join(part if isinstance(part, str) else json.dumps(part) for part in logins["Fn::Join"][1])
    for login in DATABASE_LOGINS:
        assert f'"role":"{login.role}"' in rendered
        assert f'"member_of":{json.dumps(list(login.member_of)).replace(" ", "")}' in rendered
        assert f'"connection_limit":{login.connection_limit}' in rendered
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    readable = json.dumps(
        [
            s["Resource"]
            for policy in resources_of_type(data_template, "AWS::IAM::Policy").values()
            if {"Ref": role_id} in policy["Properties"]["Roles"]
            for s in policy["Properties"]["PolicyDocument"]["Statement"]
            if "secretsmanager:GetSecretValue" in s["Action"]
        ]
    )
    for login in DATABASE_LOGINS:
        secret_id, _ = only_resource(
            data_template, "AWS::SecretsManager::Secret", Name=NAMES.db_login_secret(login.role)
        )
        assert secret_id in readable
