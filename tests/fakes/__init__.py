"""Loopback fakes of external services, importable by any test (`from tests.fakes... import`)."""
