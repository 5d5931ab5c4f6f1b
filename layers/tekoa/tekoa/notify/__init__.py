"""Notifications: per-user channels (Telegram, webhooks) told about fills, stops, risk and failures."""
