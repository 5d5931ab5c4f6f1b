"""Business rules of the API: one function per use case, no HTTP, no FastAPI."""
