"""The tournament runner: plans the trials of a tournament, runs them on the engine (and LLMs), stores them."""
