"""Tekoa's AWS CDK app: stacks compose the capability constructs in `infra.components`."""
