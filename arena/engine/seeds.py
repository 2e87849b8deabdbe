"""The seeds of a match's draws, from the trial's seed alone (engine/match.py uses them; a stored node's
ctx is rebuilt with them, engine/code.py)."""

from __future__ import annotations

import hashlib


def _seed(seed: int, what: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{seed}|{what}".encode(), digest_size=8).digest(), "big") >> 1


def round_seed(seed: int, t: int) -> int:
    """The seed of round t's node draws (round 0: the trial's own seed)."""
    return seed if t == 0 else _seed(seed, f"round {t}")


def match_seed(seed: int) -> int:
    """The seed of a match's noise and continuation draws."""
    return _seed(seed, "match")
