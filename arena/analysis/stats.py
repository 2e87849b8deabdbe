"""Confidence intervals and small numeric helpers shared by the analysis tables."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

Z95 = 1.959963984540054
Condition = tuple[str, float, int, float | None]  # game, epsilon, max_depth, temperature


def wald_ci(k: int, n: int, z: float = Z95) -> tuple[float, float, float]:
    """Share k/n with the Wald interval p ± z·SD/√n, SD = √(p(1−p)) (the seed harness's convention)."""
    if n == 0:
        return (math.nan, math.nan, math.nan)
    p = k / n
    half = z * math.sqrt(p * (1 - p)) / math.sqrt(n)
    return (p, max(0.0, p - half), min(1.0, p + half))


def wilson_ci(k: int, n: int, z: float = Z95) -> tuple[float, float, float]:
    """Share k/n with the Wilson score interval (well-behaved near 0 and 1 and for small n)."""
    if n == 0:
        return (math.nan, math.nan, math.nan)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # The interval always holds p; min/max keep it so at p = 0 or 1 despite rounding.
    return (p, min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half)))


def mean_ci(total: float, total_sq: float, n: int, z: float = Z95) -> tuple[float | None, float | None, float | None]:
    """Mean of n values (given their sum and sum of squares) with the interval mean ± z·s/√n,
    s the sample standard deviation (n − 1 in the denominator). (None, None, None) without values;
    the interval is None for a single value."""
    if n == 0:
        return (None, None, None)
    mean = total / n
    if n == 1:
        return (mean, None, None)
    var = max(0.0, (total_sq - total * total / n) / (n - 1))
    half = z * math.sqrt(var / n)
    return (mean, mean - half, mean + half)


def _opt(x: float | None) -> float | None:
    """NaN (no data) as None, so that JSON carries null and tables a dash."""
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def _share(k: float, n: float) -> float | None:
    return k / n if n else None


def _shares(counts: Counter, n: int, order: Sequence[str]) -> dict[str, float]:
    """Shares of each action in the game's action order (every action present, 0 when unplayed)."""
    return {a: (counts.get(a, 0) / n if n else 0.0) for a in order} if n else {}
