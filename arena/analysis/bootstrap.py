"""Uncertainty of the meta-game: a seeded bootstrap over the trials within each cell.

A cell's valid trials are iid draws of a joint outcome, and a joint outcome fixes both payoffs; so a
cell is summed up exactly by its counts over joint outcomes (its sufficient statistic). A bootstrap
resample of the cell draws the same number of trials with replacement, i.e. its counts are
Multinomial(n, observed shares): B resamples of every cell cost O(B × outcomes) whatever the number
of trials (a 1,000,000-trial tournament costs what a 1,000-trial one does). Cells are resampled
independently (the design fixes each cell's number of trials: a stratified bootstrap).

From each resample the meta-game matrix U is rebuilt exactly as metagame.payoff_matrix builds it, and
with it every pure pair's margins and (optionally) the Nash equilibria's supports. Percentile 95%
intervals of the margins give the verdicts (see `verdict`). The generator is numpy's PCG64 seeded with
(tournament seed, condition index): the same tournament gives the same intervals.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from arena.analysis.stats import TOL, Condition

DEFAULT_RESAMPLES = 1000
# Pure equilibria are read off every resample's margins (exact, free). Mixed ones need nashpy's vertex
# enumeration (its cost per matrix grows fast with the programs, docs/analysis.md): it runs on the first NASH_RESAMPLES
# resamples only, and only up to NASH_PROGRAMS programs.
NASH_RESAMPLES = 50
NASH_PROGRAMS = 5
EQUILIBRIUM, NOT, UNCERTAIN = "equilibrium", "not", "uncertain"


@dataclass(slots=True)
class CellOutcomes:
    """One cell's valid trials by joint outcome: counts and the payoffs each outcome gives."""

    counts: np.ndarray  # (K,) trials per joint outcome
    row_pay: np.ndarray  # (K,) row payoff of each outcome
    col_pay: np.ndarray

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    @property
    def deterministic(self) -> bool:
        return int((self.counts > 0).sum()) <= 1

    def resample(self, rng: np.random.Generator, B: int) -> tuple[np.ndarray, np.ndarray]:
        """(B,) row and column mean payoffs of B resamples of this cell."""
        n = self.n
        draws = rng.multinomial(n, self.counts / n, size=B)
        return draws @ self.row_pay / n, draws @ self.col_pay / n


def cell_outcomes(groups: Sequence) -> dict[Condition, dict[tuple[str, str], CellOutcomes]]:
    """Condition -> (row, col) -> the cell's joint-outcome counts, from analysis Outcomes.groups."""
    acc: dict[Condition, dict[tuple[str, str], dict[tuple, list[float]]]] = {}
    for g in groups:
        if g.status != "ok" or g.n == 0:
            continue
        outcome = acc.setdefault(g.cond, {}).setdefault((g.row, g.col), {}).setdefault(
            (g.row_action, g.col_action), [0, g.rp / g.n, g.cp / g.n])
        outcome[0] += g.n
    return {cond: {cell: CellOutcomes(np.array([v[0] for v in o.values()], dtype=np.int64),
                                      np.array([v[1] for v in o.values()], dtype=float),
                                      np.array([v[2] for v in o.values()], dtype=float))
                   for cell, o in cells.items()}
            for cond, cells in acc.items()}


@dataclass
class MetaBootstrap:
    """The bootstrap of one condition's meta-game (programs in the matrix's order)."""

    programs: list[str]
    resamples: int
    U: np.ndarray  # (B, n, n) resampled meta-game matrices
    deterministic: np.ndarray  # (n, n) U[i][j] comes from cells with a single outcome each
    pure: np.ndarray | None = None  # (n, n) resamples in which (i, j) is a pure equilibrium (weak margin ≥ 0)
    supports: Counter = field(default_factory=Counter)  # mixed (row support, col support) -> resamples with one
    support_resamples: int = 0  # resamples whose mixed equilibria were enumerated (the first NASH_RESAMPLES)

    def ties(self, U0: Sequence[Sequence[float]]) -> np.ndarray:
        """(n, n, n) which deviations tie, decided with the resamples' uncertainty (see tie_mask)."""
        return tie_mask(self.U, U0)

    def margins(self, U0: Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
        """(B, n, n) weak and strict margins of every pure pair in every resample (margin_arrays), the
        strict ones over the deviations that do not tie by the bootstrap (tie_mask)."""
        return margin_arrays(self.U, U0, self.ties(U0))

    def pair_deterministic(self, i: int, j: int) -> bool:
        """Every payoff the margin of (i, j) reads (columns i and j of U) comes from deterministic cells."""
        return bool(self.deterministic[:, i].all() and self.deterministic[:, j].all())

    def support_count(self, row: tuple[str, ...], col: tuple[str, ...]) -> tuple[int, int]:
        """(resamples with an equilibrium of this support, resamples searched); (0, 0) if none was."""
        if len(row) == len(col) == 1 and self.pure is not None:
            return int(self.pure[self.programs.index(row[0]), self.programs.index(col[0])]), self.resamples
        return self.supports.get((row, col), 0), self.support_resamples

    def support_frequency(self, row: tuple[str, ...], col: tuple[str, ...]) -> float | None:
        k, searched = self.support_count(row, col)
        return k / searched if searched else None

    def all_supports(self) -> list[tuple[tuple[str, ...], tuple[str, ...], int, int]]:
        """(row support, col support, resamples with one, resamples searched) of every support seen."""
        out = []
        if self.pure is not None:
            for i, a in enumerate(self.programs):
                for j, b in enumerate(self.programs):
                    if self.pure[i, j]:
                        out.append(((a,), (b,), int(self.pure[i, j]), self.resamples))
        out += [(r, c, k, self.support_resamples) for (r, c), k in self.supports.items()]
        return out


def _gains(U: np.ndarray) -> np.ndarray:
    """gain[b, i, j, k] = U[b, i, j] − U[b, k, j]: what the row player of (i, j) gives up by playing k."""
    return U[:, :, :, None] - np.transpose(U, (0, 2, 1))[:, None, :, :]


def point_ties(U0) -> np.ndarray:
    """ties[i, j, k]: U0[k][j] equals U0[i][j] within TOL (the point estimate's ties)."""
    A = np.asarray(U0, dtype=float)
    return np.abs(A[:, :, None] - A.T[None, :, :]) <= TOL


def tie_mask(U, U0) -> np.ndarray:
    """ties[i, j, k]: the deviation of (i, j)'s row player to k ties, decided with the same uncertainty as
    the verdicts: it ties in the point estimate U0, or the 95% percentile interval of its gain
    U[b][i][j] − U[b][k][j] over the B resamples U (B, n, n) holds 0 (the trials cannot tell it from a tie).
    A deviation whose gain is the same in every resample (deterministic cells) ties only if that gain is 0."""
    lo, hi = np.percentile(_gains(np.asarray(U, dtype=float)), [2.5, 97.5], axis=0)
    return point_ties(U0) | ((lo <= TOL) & (hi >= -TOL))


def margin_arrays(U, U0, ties: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(B, n, n) weak and strict margins of every pure pair for each of B matrices U (B, n, n). Weak:
    min(U[i][j] − max_{k≠i} U[k][j], U[j][i] − max_{k≠j} U[k][i]); strict: the same over the deviations
    that do not tie (+inf if every one ties; +inf too for a single program, which has no deviation).
    Which deviations tie: `ties` (n, n, n; tie_mask), by default the point estimate U0's (point_ties)."""
    U = np.asarray(U, dtype=float)
    n = U.shape[1]
    gain = _gains(U)
    other = ~np.eye(n, dtype=bool)[:, None, :]  # k ≠ i, broadcast over j
    if ties is None:
        ties = point_ties(U0)
    weak1 = np.where(other, gain, np.inf).min(axis=3)
    strict1 = np.where(other & ~ties, gain, np.inf).min(axis=3)
    weak = np.minimum(weak1, np.transpose(weak1, (0, 2, 1)))
    strict = np.minimum(strict1, np.transpose(strict1, (0, 2, 1)))
    return weak, strict


def percentile_interval(x: np.ndarray) -> tuple[float | None, float | None]:
    """The 95% percentile interval of resampled values (None where every value is infinite)."""
    x = x[np.isfinite(x)]
    if x.size == 0:
        return (None, None)
    lo, hi = np.percentile(x, [2.5, 97.5])
    return float(lo), float(hi)


def verdict(low: float | None, high: float | None, margin: float | None, deterministic: bool,
            never_negative: bool = False) -> str | None:
    """`equilibrium` when the margin's interval lies above 0, or is 0 exactly from deterministic cells
    (or from a deviation that ties in every resample: no resample has a negative margin); `not` when
    it lies below 0; `uncertain` when it holds 0 and the cells are random."""
    if margin is None:
        return None
    if low is None or high is None:
        return EQUILIBRIUM if margin >= -TOL else NOT
    if low > TOL:
        return EQUILIBRIUM
    if high < -TOL:
        return NOT
    if deterministic or never_negative:
        return EQUILIBRIUM if margin >= -TOL else NOT
    return UNCERTAIN


def bootstrap_matrix(programs: Sequence[str], cells: dict[tuple[str, str], CellOutcomes], resamples: int,
                     rng: np.random.Generator, solve: Callable | None = None) -> MetaBootstrap | None:
    """B resampled meta-game matrices (None when some U[i][j] has no valid trial)."""
    n = len(programs)
    B = resamples
    drawn = {key: c.resample(rng, B) for key, c in cells.items() if c.n > 0}
    U = np.empty((B, n, n))
    det = np.zeros((n, n), dtype=bool)
    for i, a in enumerate(programs):
        for j, b in enumerate(programs):
            parts = []
            if (a, b) in drawn:
                parts.append((drawn[(a, b)][0], cells[(a, b)].deterministic))
            if (b, a) in drawn:
                parts.append((drawn[(b, a)][1], cells[(b, a)].deterministic))
            if not parts:
                return None
            U[:, i, j] = sum(p for p, _ in parts) / len(parts)
            det[i, j] = all(d for _, d in parts)
    boot = MetaBootstrap(list(programs), B, U, det)
    if solve is not None:
        boot.pure = (margin_arrays(U, U[0])[0] >= -TOL).sum(axis=0)
        if 1 < n <= NASH_PROGRAMS:
            boot.support_resamples = min(B, NASH_RESAMPLES)
            boot.supports = support_counts(list(programs), U[:boot.support_resamples], solve)
    return boot


def support_counts(programs: list[str], U: np.ndarray, solve: Callable) -> Counter:
    """(row support, col support) -> the number of resamples with a mixed Nash equilibrium of that support
    (each support counted once per resample); `solve(U)` gives a matrix's equilibria (metagame's
    nash_equilibria). Identical resampled matrices are solved once."""
    counts: Counter = Counter()
    solved: dict[bytes, set] = {}
    for b in range(U.shape[0]):
        key = np.round(U[b], 12).tobytes()
        found = solved.get(key)
        if found is None:
            eqs = solve(U[b].tolist())
            found = solved[key] = {support(programs, e.row, e.col) for e in eqs if not e.pure}
        counts.update(found)
    return counts


def support(programs: Sequence[str], row: Sequence[float], col: Sequence[float]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return (tuple(p for p, x in zip(programs, row) if x > 0), tuple(p for p, x in zip(programs, col) if x > 0))
