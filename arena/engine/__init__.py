"""The engine: trial records, the ε-grounded simulator, built-in bots, the grid of conditions, events."""
