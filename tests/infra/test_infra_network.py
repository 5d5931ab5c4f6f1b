"""NetworkStack: compute and database live in subnets with no route to the internet, and reach
AWS services through VPC endpoints."""

from __future__ import annotations

from typing import Any

import pytest
from cdk_helpers import resources_of_type

pytestmark = pytest.mark.xdist_group("infra")


def _service_suffix(endpoint: dict[str, Any]) -> str:
    # ServiceName is Fn::Join ["", ["com.amazonaws.", {"Ref": "AWS::Region"}, ".sqs"]].
    return str(endpoint["Properties"]["ServiceName"]["Fn::Join"][1][-1]).lstrip(".")


def test_vpc_has_only_isolated_subnets_and_no_internet_path(network_template: Any) -> None:
    subnets = resources_of_type(network_template, "AWS::EC2::Subnet").values()
    assert len(subnets) == 2  # one per AZ
    assert all(subnet["Properties"]["MapPublicIpOnLaunch"] is False for subnet in subnets)
    network_template.resource_count_is("AWS::EC2::NatGateway", 0)
    network_template.resource_count_is("AWS::EC2::InternetGateway", 0)


def test_interface_endpoints_cover_every_service_the_workloads_call(network_template: Any) -> None:
    endpoints = resources_of_type(network_template, "AWS::EC2::VPCEndpoint").values()
    interface = {_service_suffix(e) for e in endpoints if e["Properties"]["VpcEndpointType"] == "Interface"}
    gateway = {_service_suffix(e) for e in endpoints if e["Properties"]["VpcEndpointType"] == "Gateway"}

    # execute-api is deliberately absent: it only serves private APIs (see infra/components/network.py).
    assert interface == {"sqs", "events", "kms", "secretsmanager", "logs", "ecr.api", "ecr.dkr"}
    assert gateway == {"s3"}
    assert all(
        e["Properties"]["PrivateDnsEnabled"] is True
        for e in endpoints
        if e["Properties"]["VpcEndpointType"] == "Interface"
    )


def test_endpoints_accept_https_from_inside_the_vpc_only(network_template: Any) -> None:
    endpoint_groups = [
        group
        for group in resources_of_type(network_template, "AWS::EC2::SecurityGroup").values()
        if "SecurityGroupIngress" in group["Properties"]
    ]
    assert len(endpoint_groups) == 7
    for group in endpoint_groups:
        (rule,) = group["Properties"]["SecurityGroupIngress"]
        assert (rule["CidrIp"], rule["FromPort"], rule["ToPort"]) == ("10.40.0.0/16", 443, 443)


def test_vpc_flow_logs_are_recorded(network_template: Any) -> None:
    network_template.has_resource_properties("AWS::EC2::FlowLog", {"TrafficType": "ALL"})


def test_egress_switch_adds_one_nat_gateway_and_keeps_the_database_isolated() -> None:
    from aws_cdk import App, Stack
    from aws_cdk.assertions import Template

    from infra.components.network import PlatformNetwork

    stack = Stack(App(), "EgressNetwork")
    network = PlatformNetwork(stack, "Network", egress=True)
    template = Template.from_stack(stack)

    template.resource_count_is("AWS::EC2::NatGateway", 1)
    assert network.compute_subnets.subnet_type is not None
    assert network.compute_subnets.subnet_type.name == "PRIVATE_WITH_EGRESS"
    assert network.database_subnets.subnet_type is not None
    assert network.database_subnets.subnet_type.name == "PRIVATE_ISOLATED"
