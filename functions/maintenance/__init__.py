"""Scheduled housekeeping (EventBridge schedule → Lambda)."""
