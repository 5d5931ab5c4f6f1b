"""tekoa.llm."""
