"""DataStack: the stateful resources are encrypted, private, retained, and named by ResourceNames."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match
from cdk_helpers import only_resource, resources_of_type

from tekoa.names import ResourceNames

pytestmark = pytest.mark.xdist_group("infra")
NAMES = ResourceNames("dev")


def test_data_stack_is_termination_protected(platform: Any) -> None:
    artifact = platform.manifest()["artifacts"][platform.stack_ids["data"]]
    assert artifact["properties"]["terminationProtection"] is True


def test_aurora_is_postgres_16_serverless_v2(data_template: Any) -> None:
    _, cluster = only_resource(data_template, "AWS::RDS::DBCluster")
    props = cluster["Properties"]
    assert props["Engine"] == "aurora-postgresql"
    assert props["EngineVersion"].startswith("16.")
    assert props["ServerlessV2ScalingConfiguration"] == {"MinCapacity": 0.5, "MaxCapacity": 8}
    data_template.has_resource_properties(
        "AWS::RDS::DBInstance", {"DBInstanceClass": "db.serverless", "PubliclyAccessible": False}
    )


def test_aurora_is_encrypted_with_the_data_key_and_uses_the_named_secret(data_template: Any) -> None:
    key_id, _ = only_resource(data_template, "AWS::KMS::Key")
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


def test_database_survives_stack_deletion(data_template: Any) -> None:
    _, cluster = only_resource(data_template, "AWS::RDS::DBCluster")
    assert cluster["Properties"]["DeletionProtection"] is True
    assert cluster["DeletionPolicy"] == "Snapshot"
    assert cluster["UpdateReplacePolicy"] == "Snapshot"
    assert cluster["Properties"]["BackupRetentionPeriod"] >= 7


def test_rds_proxy_requires_tls_and_authenticates_with_the_db_secret(data_template: Any) -> None:
    _, proxy = only_resource(data_template, "AWS::RDS::DBProxy")
    props = proxy["Properties"]
    assert props["RequireTLS"] is True
    assert props["EngineFamily"] == "POSTGRESQL"
    (auth,) = props["Auth"]
    assert auth["AuthScheme"] == "SECRETS"
    assert "SecretArn" in auth


def test_only_the_proxy_may_reach_aurora(data_template: Any) -> None:
    groups = resources_of_type(data_template, "AWS::EC2::SecurityGroup")
    proxy_group = next(lid for lid in groups if lid.startswith("DatabaseProxySecurityGroup"))
    cluster_group = next(lid for lid in groups if lid.startswith("DatabaseClusterSecurityGroup"))
    assert "SecurityGroupIngress" not in groups[cluster_group]["Properties"]  # no inline CIDR rules
    rules = resources_of_type(data_template, "AWS::EC2::SecurityGroupIngress").values()
    into_cluster = [
        r for r in rules if r["Properties"]["GroupId"] == {"Fn::GetAtt": [cluster_group, "GroupId"]}
    ]
    assert into_cluster
    assert all(
        r["Properties"]["SourceSecurityGroupId"] == {"Fn::GetAtt": [proxy_group, "GroupId"]}
        for r in into_cluster
    )


def test_jwt_signing_key_is_generated_and_retained(data_template: Any) -> None:
    data_template.has_resource(
        "AWS::SecretsManager::Secret",
        {
            "Properties": Match.object_like(
                {"Name": NAMES.jwt_secret, "GenerateSecretString": Match.object_like({"PasswordLength": 64})}
            ),
            "DeletionPolicy": "Retain",
        },
    )


def test_kms_key_rotates_and_is_retained_under_its_alias(data_template: Any) -> None:
    key_id, key = only_resource(data_template, "AWS::KMS::Key")
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"
    data_template.has_resource_properties(
        "AWS::KMS::Alias", {"AliasName": NAMES.kms_key_alias, "TargetKeyId": {"Fn::GetAtt": [key_id, "Arn"]}}
    )


def test_charts_bucket_is_private_encrypted_versioned_and_retained(data_template: Any) -> None:
    _, bucket = only_resource(data_template, "AWS::S3::Bucket")
    props = bucket["Properties"]
    assert props["BucketName"] == NAMES.charts_bucket
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (encryption,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["DeletionPolicy"] == "Retain"


def test_charts_bucket_expires_old_charts(data_template: Any) -> None:
    _, bucket = only_resource(data_template, "AWS::S3::Bucket")
    (rule,) = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled"
    assert rule["ExpirationInDays"] == 90
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


def test_migrations_run_on_deploy_after_the_database_and_its_ingress(data_template: Any) -> None:
    function_id, function = only_resource(
        data_template, "AWS::Lambda::Function", Handler="functions.migrate.handler.handler"
    )
    props = function["Properties"]
    assert props["ReservedConcurrentExecutions"] == 1
    assert props["VpcConfig"]["SubnetIds"]
    assert "TEKOA_DATABASE_SECRET_ARN" in props["Environment"]["Variables"]

    _, trigger = only_resource(data_template, "Custom::Trigger")
    # It invokes the function's current version (so a new migration in the code re-runs it),
    # waits for the answer (a failing migration fails the deploy) ...
    version_id = trigger["Properties"]["HandlerArn"]["Ref"]
    assert resources_of_type(data_template, "AWS::Lambda::Version")[version_id]["Properties"] == {
        "FunctionName": {"Ref": function_id}
    }
    assert trigger["Properties"]["InvocationType"] == "RequestResponse"
    # ... and only once the cluster, the proxy and the rule letting it in exist.
    depends = set(trigger["DependsOn"])
    for resource_type in ("AWS::RDS::DBCluster", "AWS::RDS::DBProxy"):
        assert only_resource(data_template, resource_type)[0] in depends
    ingress_id, _ = only_resource(
        data_template, "AWS::EC2::SecurityGroupIngress", Description="Migrations Lambda to RDS Proxy"
    )
    assert ingress_id in depends
