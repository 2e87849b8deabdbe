"""Confidence intervals and small numeric helpers shared by the analysis tables."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

Z95 = 1.959963984540054
TOL = 1e-9  # payoffs closer than this tie (margins, best replies)
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


def stratified_ci(strata: Iterable[tuple[float, float, float]], z: float = Z95) -> tuple[float | None, float | None, float | None]:
    """Pooled mean of strata (cells) with a normal 95% interval that respects the stratification.

    Each stratum is (weight, mean, variance of its mean); the pooled mean is Σ wₕ·mₕ / Σ wₕ and its
    variance Σ (wₕ/W)²·Var(mₕ). The cells of a tournament are fixed by its design (each has its own
    number of trials), so only the within-cell sampling varies: a tournament of deterministic cells
    has a zero-width interval. (None, None, None) without strata or weight."""
    strata = [s for s in strata if s[0] > 0]
    total = sum(w for w, _, _ in strata)
    if not strata or total <= 0:
        return (None, None, None)
    mean = sum(w * m for w, m, _ in strata) / total
    var = sum((w / total) ** 2 * v for w, _, v in strata)
    half = z * math.sqrt(max(0.0, var))
    return (mean, mean - half, mean + half)


def share_stratum(k: int, n: int) -> tuple[float, float, float]:
    """A cell's share k/n as a stratum: (n, p, p(1−p)/n)."""
    p = k / n
    return (float(n), p, p * (1 - p) / n)


def values_stratum(counts: Iterable[tuple[float, int]]) -> tuple[float, float, float]:
    """A cell's values given as (value, count) as a stratum: (n, mean, s²/n), s² the sample variance
    (n − 1 in the denominator; 0 for a single value)."""
    counts = [(v, c) for v, c in counts if c > 0]
    n = sum(c for _, c in counts)
    if n == 0:
        return (0.0, 0.0, 0.0)
    mean = sum(v * c for v, c in counts) / n
    s2 = sum(c * (v - mean) ** 2 for v, c in counts) / (n - 1) if n > 1 else 0.0
    return (float(n), mean, s2 / n)
