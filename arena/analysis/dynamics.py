"""Evolutionary dynamics of the meta-game: a population of programs meeting at random.

U[i][j] is program i's mean payoff against program j (metagame.py). Two classic dynamics:

- Discrete replicator dynamics (Taylor and Jonker; the Axelrod library's form), from the uniform mix:
  x'_i = x_i·(f_i + c) / (x·f + c), f = U·x the programs' fitness against the population and
  c = 1 − min U (the shift that keeps every fitness positive; it changes the speed, not the rest
  points). Iterated until no share moves by more than `tol` (the rest point) or `steps` steps.
- The Moran process in a population of N (Nowak, Evolutionary Dynamics, ch. 6): with i invaders A
  among residents B, an A meets the others at random, f_i = (a(i−1) + b(N−i))/(N−1), a B gets
  g_i = (c·i + d(N−i−1))/(N−1), with a = U[A][A], b = U[A][B], c = U[B][A], d = U[B][B]. Fitness
  is exp(w·payoff) (positive for any payoffs; w the intensity of selection). The fixation probability
  of one invader is exact: ρ = 1 / (1 + Σ_{k=1}^{N−1} Π_{i=1}^{k} g_i'/f_i'), where f' = exp(w·f) and
  g' = exp(w·g); neutral drift gives 1/N. No simulation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from arena.analysis.rows import ConditionKey
from arena.analysis.stats import Condition

DEFAULT_POPULATION = 10
DEFAULT_INTENSITY = 1.0
REPLICATOR_STEPS = 10_000
REPLICATOR_TOL = 1e-10


class ReplicatorRow(ConditionKey):
    """One program's share of the population at one step of the replicator dynamics."""

    step: int  # 0 = the uniform mix; steps recorded: 0-100, then every 100th, and the last
    program: str
    share: float
    fitness: float  # U·x: its mean payoff against the population at this step
    rest: bool  # the last step recorded (the rest point when converged)
    converged: bool  # the dynamics stopped moving (max change below 1e-10) before the step limit


class MoranRow(ConditionKey):
    """Fixation probability of one `invader` in a population of `population − 1` residents."""

    invader: str
    resident: str
    population: int
    intensity: float  # w: fitness = exp(w · mean payoff)
    fixation: float
    neutral: float  # 1/N, the fixation probability under neutral drift
    favoured: bool  # fixation > neutral: selection favours the invader


@dataclass
class Trajectory:
    shares: list[list[float]]  # the recorded steps' shares
    fitness: list[list[float]]
    steps: list[int]
    converged: bool


def replicator(U: Sequence[Sequence[float]], steps: int = REPLICATOR_STEPS, tol: float = REPLICATOR_TOL) -> Trajectory:
    """The discrete replicator dynamics of U from the uniform mix (see the module's docstring)."""
    n = len(U)
    shift = 1.0 - min(min(row) for row in U)
    x = [1.0 / n] * n

    def fit(x: list[float]) -> list[float]:
        return [sum(U[i][j] * x[j] for j in range(n)) for i in range(n)]

    f = fit(x)
    traj = Trajectory([x], [f], [0], False)
    for t in range(1, steps + 1):
        mean = sum(xi * fi for xi, fi in zip(x, f)) + shift
        new = [xi * (fi + shift) / mean for xi, fi in zip(x, f)]
        total = sum(new)
        new = [v / total for v in new]
        moved = max(abs(a - b) for a, b in zip(new, x))
        x, f = new, fit(new)
        if moved < tol:
            traj.converged = True
        if t <= 100 or t % 100 == 0 or traj.converged or t == steps:
            traj.shares.append(x)
            traj.fitness.append(f)
            traj.steps.append(t)
        if traj.converged:
            break
    return traj


def fixation(a: float, b: float, c: float, d: float, N: int, w: float = DEFAULT_INTENSITY) -> float:
    """Fixation probability of one A among N − 1 B (payoffs A vs A = a, A vs B = b, B vs A = c, B vs B = d)."""
    if N < 2:
        raise ValueError("a Moran population needs N ≥ 2")
    total, log_prod = 1.0, 0.0
    for i in range(1, N):
        f = (a * (i - 1) + b * (N - i)) / (N - 1)
        g = (c * i + d * (N - i - 1)) / (N - 1)
        log_prod += w * (g - f)
        total += math.exp(min(log_prod, 700.0))
    return 1.0 / total


def replicator_rows(cond: Condition, programs: Sequence[str], U: Sequence[Sequence[float]]) -> list[ReplicatorRow]:
    game, eps, depth, temp = cond
    traj = replicator(U)
    rows = []
    last = len(traj.steps) - 1
    for k, (t, x, f) in enumerate(zip(traj.steps, traj.shares, traj.fitness)):
        for p, share, fit in zip(programs, x, f):
            rows.append(ReplicatorRow(game=game, epsilon=eps, max_depth=depth, temperature=temp, step=t, program=p,
                                      share=share, fitness=fit, rest=k == last, converged=traj.converged))
    return rows


def moran_rows(cond: Condition, programs: Sequence[str], U: Sequence[Sequence[float]], N: int = DEFAULT_POPULATION,
               w: float = DEFAULT_INTENSITY) -> list[MoranRow]:
    game, eps, depth, temp = cond
    rows = []
    for i, a in enumerate(programs):
        for j, b in enumerate(programs):
            if i == j:
                continue
            rho = fixation(U[i][i], U[i][j], U[j][i], U[j][j], N, w)
            rows.append(MoranRow(game=game, epsilon=eps, max_depth=depth, temperature=temp, invader=a, resident=b,
                                 population=N, intensity=w, fixation=rho, neutral=1 / N, favoured=rho > 1 / N + 1e-12))
    return rows
