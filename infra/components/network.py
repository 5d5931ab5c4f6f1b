"""The VPC and the private paths from it to AWS services."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.constants import LOG_RETENTION, MAX_AZS, SUBNET_CIDR_MASK, VPC_CIDR

# Interface endpoints the workloads call. Not here on purpose:
# - DynamoDB: unused.
# - STS: nothing assumes roles from inside the VPC (Lambda and ECS hand credentials in).
# - execute-api: that endpoint serves *private* REST APIs only. WebSocket APIs are Regional,
#   so @connections must be reached over the internet; with private DNS on, the endpoint would
#   even hijack the public execute-api hostnames and break those calls. See `egress`.
INTERFACE_ENDPOINTS: dict[str, ec2.InterfaceVpcEndpointAwsService] = {
    "Sqs": ec2.InterfaceVpcEndpointAwsService.SQS,
    "Events": ec2.InterfaceVpcEndpointAwsService.EVENTBRIDGE,
    "Kms": ec2.InterfaceVpcEndpointAwsService.KMS,
    "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,  # Fargate's awslogs driver
    "EcrApi": ec2.InterfaceVpcEndpointAwsService.ECR,  # Fargate image pull: auth + manifest
    "EcrDocker": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,  # Fargate image pull: layers
}


class PlatformNetwork(Construct):
    """A VPC whose workloads reach AWS through endpoints, with optional internet egress.

    Without egress the compute runs in isolated subnets: no NAT bill and no path out, which
    suits a stage driven by the simulated exchange. With egress a single NAT gateway serves
    private subnets for the compute; the database always stays in isolated subnets.
    """

    def __init__(self, scope: Construct, construct_id: str, *, egress: bool) -> None:
        super().__init__(scope, construct_id)
        subnets = [
            ec2.SubnetConfiguration(
                name="isolated", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=SUBNET_CIDR_MASK
            )
        ]
        if egress:
            subnets += [
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(
                    name="compute", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=SUBNET_CIDR_MASK
                ),
            ]
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(VPC_CIDR),
            max_azs=MAX_AZS,
            nat_gateways=1 if egress else 0,
            subnet_configuration=subnets,
            restrict_default_security_group=True,
        )
        self.database_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        self.compute_subnets = ec2.SubnetSelection(
            subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS if egress else ec2.SubnetType.PRIVATE_ISOLATED
        )

        # Rejected and accepted flows, so a blocked connection can be diagnosed after the fact.
        flow_log_group = logs.LogGroup(
            self, "FlowLogs", retention=LOG_RETENTION, removal_policy=RemovalPolicy.DESTROY
        )
        self.vpc.add_flow_log(
            "FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_log_group)
        )

        # S3 is a free gateway endpoint: chart reads/writes and ECR image layers use it.
        self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3)
        for endpoint_id, service in INTERFACE_ENDPOINTS.items():
            endpoint = self.vpc.add_interface_endpoint(
                endpoint_id,
                service=service,
                subnets=self.compute_subnets,
                private_dns_enabled=True,
                open=False,
            )
            # HTTPS from inside the VPC only. A literal CIDR rather than the VPC's CidrBlock
            # attribute, so that the rule can be checked (cdk-nag EC23) before deployment.
            endpoint.connections.allow_default_port_from(ec2.Peer.ipv4(VPC_CIDR), "HTTPS from the VPC")
