"""Iterated best response (the PIBR algorithm): an LLM writes and improves programs against each other.

`prompts.py` the writer's messages and reading a candidate from a reply; `feedback.py` unit tests and
utility feedback; `play.py` a candidate's trials through the ε-grounded simulator; `loop.py` the run
(rounds, turns, steps), resumable from the store (arena/store/iterate.py).
"""
