"""The meta-game of a tournament condition: choosing a program is a strategy.

For a condition (game, epsilon, max_depth, temperature) and the programs of the tournament,
U[i][j] is the mean payoff of program i against program j, both seats weighted equally: the mean of
i's row payoff in cell (i, j) and i's column payoff in cell (j, i) (for i = j, the mean of the row
and column payoffs of the self-play cell). The meta-game is the symmetric two-player game (U, Uᵀ).

- Its Nash equilibria come from nashpy's vertex enumeration: every extreme equilibrium, also in
  degenerate games, where equilibria form connected sets and the extreme ones are their corners.
  Each candidate is checked to be an equilibrium (best replies within a tolerance) and duplicates are
  dropped. Larger libraries (more than VERTEX_LIMIT programs) use Lemke-Howson from every starting
  label (some equilibria, not necessarily all).
- A pure pair (i, j) is an *empirical program equilibrium* when neither player gains by switching to
  another program of the tournament; its margin is the smallest gain given up by a deviation:
  min( U[i][j] − max_{k≠i} U[k][j],  U[j][i] − max_{k≠j} U[k][i] ). It is an equilibrium iff the
  margin is ≥ 0 (within TOL): a margin of 0 is a weak equilibrium (some deviation ties). Its *strict*
  margin is the same minimum over the deviations that do not tie (whose payoff differs from the
  pair's by more than TOL): how far the nearest deviation that changes anything is.
- With a bootstrap (analysis/bootstrap.py) each pure pair also gets the 95% interval of its margin and
  a verdict: equilibrium, not, or uncertain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from typing import TYPE_CHECKING

from arena.analysis.stats import TOL, Condition
from arena.analysis.rows import ConditionKey, PairRow

if TYPE_CHECKING:  # numpy loads only when the meta-game is computed
    from arena.analysis.bootstrap import MetaBootstrap

VERTEX_LIMIT = 12


class MatrixRow(ConditionKey):
    """One entry of the meta-game payoff matrix, with the pure pair's equilibrium check."""

    program: str
    opponent: str
    payoff: float | None  # U[program][opponent]: program's mean payoff against opponent, both seats
    opponent_payoff: float | None  # U[opponent][program]
    trials: int  # valid trials between them, both seatings
    program_equilibrium: bool | None  # (program, opponent) is an empirical program equilibrium
    margin: float | None  # min over deviations of (equilibrium payoff − deviation payoff)
    margin_low: float | None = None  # bootstrap 95% percentile interval of the margin
    margin_high: float | None = None
    strict_margin: float | None = None  # min over the deviations that do not tie (None: every one ties)
    strict_margin_low: float | None = None
    strict_margin_high: float | None = None
    verdict: str | None = None  # equilibrium | not | uncertain (bootstrap); None without the payoffs it needs


class EquilibriumRow(ConditionKey):
    """A Nash equilibrium of the meta-game: each player's probability of every program (in tournament order)."""

    index: int
    row_strategy: dict[str, float]
    col_strategy: dict[str, float]
    row_payoff: float
    col_payoff: float
    pure: bool
    symmetric: bool
    method: str
    support_frequency: float | None = None  # share of bootstrap resamples with an equilibrium of this support


class SupportRow(ConditionKey):
    """A support of Nash equilibria and the share of bootstrap resamples in which one appears."""

    row_support: list[str]
    col_support: list[str]
    frequency: float  # share of the resamples searched in which an equilibrium has this support
    resamples: int  # resamples searched: all of them for a pure pair; the first 50 for a mixed support
    estimated: bool  # an equilibrium of the point estimate has this support


@dataclass
class Equilibrium:
    row: list[float]
    col: list[float]
    row_payoff: float
    col_payoff: float

    @property
    def pure(self) -> bool:
        return all(x in (0.0, 1.0) for x in self.row + self.col)

    @property
    def symmetric(self) -> bool:
        return all(abs(a - b) <= 1e-9 for a, b in zip(self.row, self.col))


@dataclass
class MetaMatrix:
    condition: Condition
    programs: list[str]
    U: list[list[float | None]]
    trials: list[list[int]]
    pure: list[tuple[str, str, bool | None, float | None]] = field(default_factory=list)
    equilibria: list[Equilibrium] = field(default_factory=list)
    method: str | None = None
    degenerate: bool | None = None
    boot: MetaBootstrap | None = None  # when uncertainty was asked for

    @property
    def complete(self) -> bool:
        return all(x is not None for row in self.U for x in row)

    def wins(self, program: str) -> int:
        """Opponents (itself excluded) against which `program`'s mean payoff beats theirs."""
        if program not in self.programs:
            return 0
        i = self.programs.index(program)
        return sum(1 for j in range(len(self.programs)) if j != i and self.U[i][j] is not None
                   and self.U[j][i] is not None and self.U[i][j] - self.U[j][i] > TOL)


def _mean(xs: Sequence[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return sum(vals) / len(vals) if vals else None


def payoff_matrix(programs: Sequence[str], cells: dict[tuple[str, str], PairRow]) -> tuple[list[list[float | None]], list[list[int]]]:
    """U and the valid trial counts for one condition, from its pair rows keyed by (row, col)."""
    n = len(programs)
    U: list[list[float | None]] = [[None] * n for _ in range(n)]
    T = [[0] * n for _ in range(n)]
    for i, a in enumerate(programs):
        for j, b in enumerate(programs):
            as_row, as_col = cells.get((a, b)), cells.get((b, a))
            U[i][j] = _mean([as_row.row_payoff if as_row else None, as_col.col_payoff if as_col else None])
            T[i][j] = (as_row.valid if as_row else 0) + (as_col.valid if as_col and a != b else 0)
    return U, T


def pure_equilibria(programs: Sequence[str], U: list[list[float | None]]) -> list[tuple[str, str, bool | None, float | None]]:
    """(row, col, is an empirical program equilibrium, margin) for every pure pair; None where a payoff
    the check needs is missing. With a single program there is no deviation: an equilibrium, no margin."""
    n = len(programs)
    out = []
    for i in range(n):
        for j in range(n):
            col_j = [U[k][j] for k in range(n)]
            col_i = [U[k][i] for k in range(n)]
            if any(x is None for x in col_j + col_i):
                out.append((programs[i], programs[j], None, None))
                continue
            gains = [U[i][j] - U[k][j] for k in range(n) if k != i] + [U[j][i] - U[k][i] for k in range(n) if k != j]
            margin = min(gains) if gains else None
            out.append((programs[i], programs[j], margin is None or margin >= -TOL, margin))
    return out


def nash_equilibria(U: list[list[float]]) -> tuple[list[Equilibrium], str]:
    """Nash equilibria of the symmetric game (U, Uᵀ), verified and without duplicates; and the method."""
    import warnings

    import nashpy
    import numpy as np

    A = np.array(U, dtype=float)
    # Equilibria do not change when a constant is added to a player's payoffs; strictly positive payoffs
    # keep the best-response polytopes bounded (nashpy only shifts to a minimum of 0).
    A = A - A.min() + 1.0
    B = A.T
    game = nashpy.Game(A, B)
    n = len(U)
    candidates: list = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nashpy warns on degenerate games; they are handled here
        if n <= VERTEX_LIMIT:
            method = "vertex_enumeration"
            try:
                candidates = list(game.vertex_enumeration())
            except Exception:  # Qhull can fail on some degenerate polytopes
                method = "support_enumeration"
                candidates = list(game.support_enumeration())
        else:
            method = "lemke_howson"
            for label in range(2 * n):
                try:
                    candidates.append(game.lemke_howson(initial_dropped_label=label))
                except Exception:
                    continue
    U0 = np.array(U, dtype=float)
    found: dict[tuple, Equilibrium] = {}
    for s, t in candidates:
        s, t = _clean(np.asarray(s, dtype=float)), _clean(np.asarray(t, dtype=float))
        if s is None or t is None or not _is_equilibrium(U0, s, t):
            continue
        key = (tuple(np.round(s, 9)), tuple(np.round(t, 9)))
        if key not in found:
            found[key] = Equilibrium([float(x) for x in s], [float(x) for x in t], float(s @ U0 @ t), float(t @ U0 @ s))
    eqs = sorted(found.values(), key=lambda e: (not e.pure, sum(x > 0 for x in e.row + e.col),
                                                [-x for x in e.row + e.col]))
    return eqs, method


def _clean(x):
    import numpy as np

    if x.shape == () or not np.all(np.isfinite(x)):
        return None
    x = np.where(np.abs(x) < 1e-12, 0.0, x)
    if np.any(x < 0) or x.sum() <= 0:
        return None
    x = x / x.sum()
    return np.where(np.abs(x - np.round(x)) < 1e-12, np.round(x), x)


def _is_equilibrium(U, s, t) -> bool:
    scale = max(1.0, float(abs(U).max()))
    return (float((U @ t).max() - s @ U @ t) <= 1e-7 * scale
            and float((U @ s).max() - t @ U @ s) <= 1e-7 * scale)


def degenerate_pure(U: list[list[float]]) -> bool:
    """Some pure strategy has two or more pure best replies (ties in a column's maximum)."""
    n = len(U)
    for j in range(n):
        col = [U[k][j] for k in range(n)]
        top = max(col)
        if sum(1 for x in col if top - x <= TOL) > 1:
            return True
    return False


def meta_matrices(programs: Sequence[str], pairs: Sequence[PairRow], nash: bool = True) -> dict[Condition, MetaMatrix]:
    """The meta-game of every condition: U over the programs with trials under it, the pure pairs'
    equilibrium checks, and (with nash=True and a complete matrix) the Nash equilibria."""
    by_cond: dict[Condition, dict[tuple[str, str], PairRow]] = {}
    for r in pairs:
        by_cond.setdefault(r.condition, {})[(r.row_program, r.col_program)] = r
    out = {}
    for cond, cells in by_cond.items():
        present = {p for pair in cells for p in pair}
        progs = [p for p in programs if p in present]
        U, T = payoff_matrix(progs, cells)
        m = MetaMatrix(cond, progs, U, T, pure=pure_equilibria(progs, U))
        if m.complete:
            m.degenerate = degenerate_pure(U)
            if nash:
                m.equilibria, m.method = nash_equilibria(U)
        out[cond] = m
    return out


def _finite(x) -> float | None:
    return float(x) if x is not None and abs(float(x)) != float("inf") else None


def add_bootstrap(matrices: dict[Condition, MetaMatrix], groups: Sequence, resamples: int, seed: int,
                  nash: bool = True) -> None:
    """Attach to every complete matrix a bootstrap of `resamples` resamples of its cells (from analysis
    Outcomes.groups), seeded with (seed, the condition's index); with nash, the equilibria's supports."""
    import numpy as np

    from arena.analysis import bootstrap

    if resamples <= 0:
        return
    cells = bootstrap.cell_outcomes(groups)
    solve = (lambda U: nash_equilibria(U)[0]) if nash else None
    for k, (cond, m) in enumerate(matrices.items()):
        if not m.complete or cond not in cells:
            continue
        rng = np.random.default_rng([abs(int(seed)), k])
        m.boot = bootstrap.bootstrap_matrix(m.programs, cells[cond], resamples, rng, solve)


def pair_statistics(m: MetaMatrix) -> dict[tuple[str, str], dict]:
    """Per pure pair (row, col): its strict margin and, with a bootstrap, the 95% intervals of both margins
    and its verdict; without one, the point estimate's verdict. Which deviations tie (for the strict margin,
    the point estimate's included) is decided by the bootstrap when there is one (bootstrap.tie_mask)."""
    from arena.analysis import bootstrap

    pure = {(a, b): (ok, margin) for a, b, ok, margin in m.pure}
    out: dict[tuple[str, str], dict] = {}
    strict = weak_b = strict_b = None
    boot = m.boot
    if m.complete:
        import numpy as np

        U0 = np.asarray(m.U, dtype=float)
        ties = boot.ties(m.U) if boot is not None else None
        strict = bootstrap.margin_arrays(U0[None], m.U, ties)[1][0]
        if boot is not None:
            weak_b, strict_b = boot.margins(m.U)
    for i, a in enumerate(m.programs):
        for j, b in enumerate(m.programs):
            ok, margin = pure[(a, b)]
            extra: dict = {"strict_margin": _finite(strict[i, j]) if strict is not None else None}
            if weak_b is not None and margin is not None:
                lo, hi = bootstrap.percentile_interval(weak_b[:, i, j])
                slo, shi = bootstrap.percentile_interval(strict_b[:, i, j])
                extra.update(margin_low=lo, margin_high=hi, strict_margin_low=slo, strict_margin_high=shi,
                             verdict=bootstrap.verdict(lo, hi, margin, boot.pair_deterministic(i, j),
                                                       bool((weak_b[:, i, j] >= -TOL).all())))
            elif ok is not None:
                extra["verdict"] = bootstrap.EQUILIBRIUM if ok else bootstrap.NOT
            out[(a, b)] = extra
    return out


BOOTSTRAP, POINT_ESTIMATE = "bootstrap", "point estimate"


def named_equilibria(m: MetaMatrix, stats: dict[tuple[str, str], dict] | None = None) -> tuple[list[str], list[str], str]:
    """The pure pairs 'row/col' a summary names: (equilibria, uncertain ones, what decided them). With a
    bootstrap they follow its verdicts (`equilibrium`; `uncertain`: the trials cannot tell); without one
    they are the point estimate's equilibria, and nothing is uncertain."""
    from arena.analysis import bootstrap

    stats = pair_statistics(m) if stats is None else stats
    named = lambda v: [f"{a}/{b}" for (a, b), x in stats.items() if x.get("verdict") == v]  # noqa: E731
    return named(bootstrap.EQUILIBRIUM), named(bootstrap.UNCERTAIN), BOOTSTRAP if m.boot is not None else POINT_ESTIMATE


def equilibrium_mark(r: MatrixRow) -> str:
    """'*' on a program equilibrium, '?' on an uncertain one (by the bootstrap's verdict; the point
    estimate's without one), '' otherwise."""
    if r.verdict is not None:
        return {"equilibrium": "*", "uncertain": "?"}.get(r.verdict, "")
    return "*" if r.program_equilibrium else ""


def matrix_rows(matrices: dict[Condition, MetaMatrix]) -> list[MatrixRow]:
    rows = []
    for (game, eps, depth, temp), m in matrices.items():
        pure = {(a, b): (ok, margin) for a, b, ok, margin in m.pure}
        stats = pair_statistics(m)
        for i, a in enumerate(m.programs):
            for j, b in enumerate(m.programs):
                ok, margin = pure[(a, b)]
                rows.append(MatrixRow(game=game, epsilon=eps, max_depth=depth, temperature=temp, program=a, opponent=b,
                                      payoff=m.U[i][j], opponent_payoff=m.U[j][i], trials=m.trials[i][j],
                                      program_equilibrium=ok, margin=margin, **stats[(a, b)]))
    return rows


def support_rows(matrices: dict[Condition, MetaMatrix]) -> list[SupportRow]:
    """Every support of Nash equilibria seen in the bootstrap resamples, most frequent first."""
    from arena.analysis import bootstrap

    rows = []
    for (game, eps, depth, temp), m in matrices.items():
        boot = m.boot
        if boot is None or boot.pure is None:
            continue
        estimated = {bootstrap.support(m.programs, e.row, e.col) for e in m.equilibria}
        order = {p: i for i, p in enumerate(m.programs)}
        seen = sorted(boot.all_supports(), key=lambda s: (-s[2] / s[3], len(s[0]) + len(s[1]),
                                                         [order[p] for p in s[0] + s[1]]))
        for row, col, k, searched in seen:
            rows.append(SupportRow(game=game, epsilon=eps, max_depth=depth, temperature=temp, row_support=list(row),
                                   col_support=list(col), frequency=k / searched, resamples=searched,
                                   estimated=(row, col) in estimated))
    return rows


def equilibrium_rows(matrices: dict[Condition, MetaMatrix]) -> list[EquilibriumRow]:
    rows = []
    for (game, eps, depth, temp), m in matrices.items():
        for k, e in enumerate(m.equilibria, 1):
            rows.append(EquilibriumRow(
                game=game, epsilon=eps, max_depth=depth, temperature=temp, index=k,
                row_strategy=dict(zip(m.programs, e.row)), col_strategy=dict(zip(m.programs, e.col)),
                row_payoff=e.row_payoff, col_payoff=e.col_payoff, pure=e.pure, symmetric=e.symmetric,
                method=m.method or "",
                support_frequency=_support_frequency(m, e),
            ))
    return rows


def _support_frequency(m: MetaMatrix, e: Equilibrium) -> float | None:
    from arena.analysis import bootstrap

    if m.boot is None or m.boot.pure is None:
        return None
    return m.boot.support_frequency(*bootstrap.support(m.programs, e.row, e.col))


__all__ = ["equilibrium_mark", "named_equilibria", "pair_statistics", "SupportRow", "support_rows", "add_bootstrap", "MatrixRow", "EquilibriumRow", "MetaMatrix", "Equilibrium", "meta_matrices", "matrix_rows",
           "equilibrium_rows", "nash_equilibria", "pure_equilibria", "payoff_matrix"]
