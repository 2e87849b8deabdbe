"""LLM access: providers and their limits, prompts and answer parsing, the response cache, the embedded model."""
