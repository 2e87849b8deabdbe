"""Arena: a terminal-UI tournament arena for program equilibrium with LLM programs."""

__version__ = "0.1.0"
