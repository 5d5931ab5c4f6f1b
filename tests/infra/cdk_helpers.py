"""Small readers over synthesised CloudFormation, shared by the infra tests."""

from __future__ import annotations

from typing import Any


def resources_of_type(template: Any, resource_type: str) -> dict[str, dict[str, Any]]:
    """Logical id -> resource, for every resource of a type (plain dicts, easy to inspect)."""
    return dict(template.find_resources(resource_type))


def only_resource(template: Any, resource_type: str, **match: Any) -> tuple[str, dict[str, Any]]:
    """The single resource of a type (optionally matching `Properties`), failing otherwise."""
    found = dict(template.find_resources(resource_type, {"Properties": match} if match else None))
    assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
    return next(iter(found.items()))


def policy_statements(template: Any, role_logical_id: str) -> list[dict[str, Any]]:
    """Every statement of the inline policies attached to one role."""
    statements: list[dict[str, Any]] = []
    for policy in resources_of_type(template, "AWS::IAM::Policy").values():
        if {"Ref": role_logical_id} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def actions_of(statements: list[dict[str, Any]]) -> set[str]:
    actions: set[str] = set()
    for statement in statements:
        action = statement["Action"]
        actions.update([action] if isinstance(action, str) else action)
    return actions
