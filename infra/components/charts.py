"""The chart function (container image) and the chart queue that feeds it."""

from __future__ import annotations

from aws_cdk import Aws, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.components.database import Database
from infra.components.functions import workload_function
from infra.constants import CHARTS_BATCH_SIZE, CHARTS_MEMORY_MB, CHARTS_TIMEOUT
from infra.nag import acknowledge
from infra.workloads import CHARTS
from tekoa.charts.spec import CHART_PREFIX
from tekoa.names import ResourceNames


class ChartsFunction(Construct):
    """Renders chart PNGs into the charts bucket: matplotlib, numpy and numba need an image.

    The chart queue is its event source, with partial batch responses: the API's render
    requests and the `order.filled` events routed there for closed trades. It may write and read
    only under the bucket's chart prefix, logs in as `tekoa_charts` (the app role: every chart is
    read and written as its owner), and gets 2 GB, which is also how Lambda sizes its CPU.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        database: Database,
        chart_queue: sqs.IQueue,
        names: ResourceNames,
    ) -> None:
        super().__init__(scope, construct_id)
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="Chart Lambda: no ingress; egress to database/AWS APIs",
        )
        bucket = names.charts_bucket_in(Aws.ACCOUNT_ID, Aws.REGION)
        self.function = workload_function(
            self,
            CHARTS,
            bundle=True,
            description="Tekoa chart rendering",
            memory_mb=CHARTS_MEMORY_MB,
            timeout=CHARTS_TIMEOUT,
            vpc=vpc,
            subnets=subnets,
            security_group=self.security_group,
            environment={
                **database.client_environment(stage, CHARTS.database_login),
                "TEKOA_CHARTS_BUCKET": bucket,
            },
            # Charts scale with demand; the login's connection limit bounds their connections.
            reserved_concurrency=None,
        )
        database.grant_connect(
            self, self.security_group, self.function, "Chart Lambda to the database", CHARTS.database_login
        )
        chart_objects = Stack.of(self).format_arn(
            service="s3", region="", account="", resource=bucket, resource_name=f"{CHART_PREFIX}*"
        )
        # GetObject also answers HEAD (is a chart's image still there?).
        iam.Grant.add_to_principal(
            grantee=self.function, actions=["s3:PutObject", "s3:GetObject"], resource_arns=[chart_objects]
        )
        finding = names.charts_bucket_in("<AWS::AccountId>", "<AWS::Region>")
        acknowledge(
            self.function,
            "Put and get chart images under the charts prefix only; keys are per user and content.",
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::{finding}/{CHART_PREFIX}*]",
        )
        self.function.add_event_source(
            sources.SqsEventSource(chart_queue, batch_size=CHARTS_BATCH_SIZE, report_batch_item_failures=True)
        )
