"""NetworkStack: the database always lives in isolated subnets. The prod profile reaches AWS
through interface endpoints with no route to the internet; the dev profile replaces those
endpoints with one small NAT instance."""

from __future__ import annotations

from typing import Any

import pytest
from cdk_helpers import only_resource, resources_of_type

pytestmark = pytest.mark.xdist_group("infra")


def _service_suffix(endpoint: dict[str, Any]) -> str:
    # ServiceName is Fn::Join ["", ["com.amazonaws.", {"Ref": "AWS::Region"}, ".sqs"]].
    return str(endpoint["Properties"]["ServiceName"]["Fn::Join"][1][-1]).lstrip(".")


def _endpoints(template: Any, kind: str) -> list[dict[str, Any]]:
    return [
        e
        for e in resources_of_type(template, "AWS::EC2::VPCEndpoint").values()
        if e["Properties"]["VpcEndpointType"] == kind
    ]


def test_prod_vpc_has_only_isolated_subnets_and_no_internet_path(prod_templates: dict[str, Any]) -> None:
    network = prod_templates["network"]
    subnets = resources_of_type(network, "AWS::EC2::Subnet").values()
    assert len(subnets) == 2  # one per AZ
    assert all(subnet["Properties"]["MapPublicIpOnLaunch"] is False for subnet in subnets)
    network.resource_count_is("AWS::EC2::NatGateway", 0)
    network.resource_count_is("AWS::EC2::InternetGateway", 0)
    network.resource_count_is("AWS::EC2::Instance", 0)


def test_prod_interface_endpoints_cover_every_service_the_workloads_call(
    prod_templates: dict[str, Any],
) -> None:
    network = prod_templates["network"]
    interface = _endpoints(network, "Interface")
    # execute-api is deliberately absent: it only serves private APIs (see infra/components/network.py).
    assert {_service_suffix(e) for e in interface} == {
        "sqs", "events", "kms", "secretsmanager", "logs", "ecr.api", "ecr.dkr", "xray"
    }  # fmt: skip
    assert {_service_suffix(e) for e in _endpoints(network, "Gateway")} == {"s3"}
    assert all(e["Properties"]["PrivateDnsEnabled"] is True for e in interface)
    assert all(len(e["Properties"]["SubnetIds"]) == 2 for e in interface)


def test_prod_endpoints_accept_https_from_inside_the_vpc_only(prod_templates: dict[str, Any]) -> None:
    endpoint_groups = [
        group
        for group in resources_of_type(prod_templates["network"], "AWS::EC2::SecurityGroup").values()
        if "SecurityGroupIngress" in group["Properties"]
    ]
    assert len(endpoint_groups) == 8
    for group in endpoint_groups:
        (rule,) = group["Properties"]["SecurityGroupIngress"]
        assert (rule["CidrIp"], rule["FromPort"], rule["ToPort"]) == ("10.40.0.0/16", 443, 443)


def test_dev_reaches_aws_through_one_small_nat_instance_instead_of_endpoints(network_template: Any) -> None:
    assert _endpoints(network_template, "Interface") == []
    assert {_service_suffix(e) for e in _endpoints(network_template, "Gateway")} == {"s3"}
    network_template.resource_count_is("AWS::EC2::NatGateway", 0)
    _, instance = only_resource(network_template, "AWS::EC2::Instance")
    props = instance["Properties"]
    assert props["InstanceType"] == "t4g.nano"
    assert props["CreditSpecification"] == {"CPUCredits": "standard"}  # a burst never adds to the bill
    assert props["SourceDestCheck"] is False


def test_dev_nat_instance_forwards_for_the_vpc_and_accepts_nothing_from_outside(
    network_template: Any,
) -> None:
    _, instance = only_resource(network_template, "AWS::EC2::Instance")
    (group_ref,) = instance["Properties"]["SecurityGroupIds"]
    group = resources_of_type(network_template, "AWS::EC2::SecurityGroup")[group_ref["Fn::GetAtt"][0]]
    (rule,) = group["Properties"]["SecurityGroupIngress"]
    assert (rule["CidrIp"], rule["IpProtocol"]) == ("10.40.0.0/16", "-1")


def test_dev_database_subnets_stay_isolated(network_template: Any) -> None:
    subnets = resources_of_type(network_template, "AWS::EC2::Subnet")
    isolated = [lid for lid in subnets if "isolated" in lid]
    public = [lid for lid in subnets if "public" in lid]
    assert len(isolated) == 2 and len(public) == 2
    routes = resources_of_type(network_template, "AWS::EC2::Route").values()
    routed_tables = {route["Properties"]["RouteTableId"]["Ref"] for route in routes}
    for association in resources_of_type(network_template, "AWS::EC2::SubnetRouteTableAssociation").values():
        if association["Properties"]["SubnetId"]["Ref"] in isolated:
            assert association["Properties"]["RouteTableId"]["Ref"] not in routed_tables


def test_vpc_flow_logs_are_recorded(network_template: Any) -> None:
    network_template.has_resource_properties("AWS::EC2::FlowLog", {"TrafficType": "ALL"})


def test_egress_switch_adds_one_nat_gateway_and_keeps_the_database_isolated() -> None:
    from aws_cdk import App, Stack
    from aws_cdk.assertions import Template

    from infra.components.network import PlatformNetwork

    stack = Stack(App(), "EgressNetwork")
    network = PlatformNetwork(stack, "Network", egress="nat-gateway", interface_endpoints=True)
    template = Template.from_stack(stack)

    template.resource_count_is("AWS::EC2::NatGateway", 1)
    assert network.compute_subnets.subnet_type is not None
    assert network.compute_subnets.subnet_type.name == "PRIVATE_WITH_EGRESS"
    assert network.database_subnets.subnet_type is not None
    assert network.database_subnets.subnet_type.name == "PRIVATE_ISOLATED"


def test_a_network_with_no_way_to_aws_is_refused() -> None:
    from aws_cdk import App, Stack

    from infra.components.network import PlatformNetwork

    with pytest.raises(ValueError, match="interface endpoints"):
        PlatformNetwork(Stack(App(), "Closed"), "Network", egress="none", interface_endpoints=False)
