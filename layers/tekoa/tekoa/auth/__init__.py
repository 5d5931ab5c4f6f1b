"""Accounts and authentication: passwords, access tokens, refresh tokens, API tokens, throttling.

Pure rules live in `passwords`, `tokens`, `jwt_tokens` and `throttle`; `service` composes them
with the repositories in `tekoa.db`. Nothing here knows about HTTP.
"""
