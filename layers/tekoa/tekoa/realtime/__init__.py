"""Live updates: WebSocket connections, what they subscribe to, and what is pushed to them."""
