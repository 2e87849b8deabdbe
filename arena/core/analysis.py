"""Tournament statistics from stored trials: cooperation rates with confidence intervals, payoffs."""

from __future__ import annotations

import math

from pydantic import BaseModel

from .store import Store

Z95 = 1.959963984540054


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
    return (p, max(0.0, centre - half), min(1.0, centre + half))


class PairRow(BaseModel):
    game: str
    epsilon: float
    max_depth: int
    temperature: float | None
    row_program: str
    col_program: str
    trials: int
    valid: int  # trials with both actions (status ok)
    cooperation: float
    wald_low: float
    wald_high: float
    wilson_low: float
    wilson_high: float
    row_payoff: float
    col_payoff: float
    refusal_rate: float
    error_rate: float
    calls_per_trial: float


def pair_rows(store: Store, tournament_id: int) -> list[PairRow]:
    """One row per (game, epsilon, max_depth, temperature, row, col) cell.

    Grouped in the order of the trials_key index, so SQLite streams the groups instead of sorting a
    million rows first (1.6 s -> 0.9 s on a 1,000,000-trial tournament)."""
    rows = store.query(
        """
        SELECT game, epsilon, max_depth, temperature, row_program, col_program,
               count(*) AS trials,
               sum(status = 'ok') AS valid,
               sum(coalesce(cooperative, 0)) AS coop,
               avg(row_payoff) AS row_payoff, avg(col_payoff) AS col_payoff,
               avg(status = 'refused') AS refusal_rate, avg(status = 'error') AS error_rate,
               avg(n_calls) AS calls_per_trial, min(seq) AS first
        FROM trials WHERE tournament_id = ?
        GROUP BY game, row_program, col_program, epsilon, max_depth, coalesce(temperature, -1.0)
        ORDER BY first
        """,
        (tournament_id,),
    )
    out = []
    for r in rows:
        n, k = r["valid"], r["coop"]
        p, wl, wh = wald_ci(k, n)
        _, sl, sh = wilson_ci(k, n)
        out.append(PairRow(
            **{key: r[key] for key in ("game", "epsilon", "max_depth", "temperature", "row_program", "col_program",
                                      "trials", "valid", "refusal_rate", "error_rate", "calls_per_trial")},
            cooperation=p, wald_low=wl, wald_high=wh, wilson_low=sl, wilson_high=sh,
            row_payoff=r["row_payoff"] if r["row_payoff"] is not None else math.nan,
            col_payoff=r["col_payoff"] if r["col_payoff"] is not None else math.nan,
        ))
    return out
