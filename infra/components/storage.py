"""S3 storage for rendered charts."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.constants import NONCURRENT_VERSION_EXPIRY
from infra.nag import acknowledge
from tekoa.charts.spec import CHART_PREFIX


class ChartsBucket(Construct):
    """Private, versioned bucket of chart PNGs, handed out only as presigned URLs made after an
    ownership check. Every chart lives under `charts/<user_id>/`; the lifecycle rule expires
    them after `retention_days` (a chart asked for again is rendered again).

    S3-managed encryption rather than KMS: presigned GETs then need no kms:Decrypt on the
    signer. The images hold no secrets, but a bot's chart shows its trades: only its owner
    gets a URL, and a URL lives at most 15 minutes.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, bucket_name: str, protect: bool, retention_days: int
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            bucket_name=bucket_name,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            # prod: retained once created (a failed first deploy still removes it, so the retry
            # can create it again); dev: emptied and deleted with the stack.
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE if protect else RemovalPolicy.DESTROY,
            auto_delete_objects=not protect,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-old-charts",
                    prefix=CHART_PREFIX,
                    expiration=Duration.days(retention_days),
                    noncurrent_version_expiration=NONCURRENT_VERSION_EXPIRY,
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
        )
        acknowledge(
            self.bucket,
            "Chart images are renderings of public market data served through presigned URLs; "
            "a second access-log bucket would cost more than it tells.",
            "AwsSolutions-S1",
        )
