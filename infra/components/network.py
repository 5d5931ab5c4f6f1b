"""The VPC and the private paths from it to AWS services."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import Egress
from infra.constants import LOG_RETENTION, MAX_AZS, NAT_INSTANCE_TYPE, SUBNET_CIDR_MASK, VPC_CIDR
from infra.nag import acknowledge

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
    "XRay": ec2.InterfaceVpcEndpointAwsService.XRAY,  # the Fargate task's trace daemon
}


class PlatformNetwork(Construct):
    """A VPC whose workloads reach AWS through endpoints or a NAT, with optional internet egress.

    - `egress="none"`: compute runs in isolated subnets and reaches AWS only through the
      interface endpoints: no NAT bill and no path out (a stage on the simulated exchange).
    - `egress="nat-gateway"`: one managed NAT gateway serves private compute subnets.
    - `egress="nat-instance"`: one t4g.nano NAT instance does the same for a tenth of the price
      (dev profile), without the gateway's availability; it also replaces the endpoints.
    The database always stays in isolated subnets; S3 is always a (free) gateway endpoint.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, egress: Egress, interface_endpoints: bool
    ) -> None:
        super().__init__(scope, construct_id)
        if egress == "none" and not interface_endpoints:
            raise ValueError("without egress the compute needs interface endpoints to reach AWS")
        subnets = [
            ec2.SubnetConfiguration(
                name="isolated", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=SUBNET_CIDR_MASK
            )
        ]
        if egress != "none":
            subnets += [
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(
                    name="compute", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=SUBNET_CIDR_MASK
                ),
            ]
        nat_instance = (
            ec2.NatProvider.instance_v2(
                instance_type=ec2.InstanceType(NAT_INSTANCE_TYPE),
                # Standard credits: a burst can slow the NAT down but never adds to the bill.
                credit_specification=ec2.CpuCredits.STANDARD,
                default_allowed_traffic=ec2.NatTrafficDirection.OUTBOUND_ONLY,
            )
            if egress == "nat-instance"
            else None
        )
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(VPC_CIDR),
            max_azs=MAX_AZS,
            nat_gateways=0 if egress == "none" else 1,
            nat_gateway_provider=nat_instance,
            subnet_configuration=subnets,
            restrict_default_security_group=True,
        )
        self.database_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        self.compute_subnets = ec2.SubnetSelection(
            subnet_type=ec2.SubnetType.PRIVATE_ISOLATED
            if egress == "none"
            else ec2.SubnetType.PRIVATE_WITH_EGRESS
        )
        if nat_instance is not None:
            # Forward what the VPC sends out; nothing from outside may open a connection.
            nat_instance.security_group.add_ingress_rule(
                ec2.Peer.ipv4(VPC_CIDR), ec2.Port.all_traffic(), "Traffic from the VPC to forward"
            )
            acknowledge(
                self.vpc,
                "The dev profile's NAT instance: a disposable forwarder with no data at rest and "
                "nothing worth detailed monitoring or termination protection; its root volume holds "
                "only the AMI.",
                "AwsSolutions-EC26",
                "AwsSolutions-EC28",
                "AwsSolutions-EC29",
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
        if not interface_endpoints:
            return
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
