"""Running statistics of a tournament while it runs, fed by `TrialsFinished` events.

Live displays (the TUI's pair matrix) cannot re-query the whole `trials` table at every refresh of a
large tournament without slowing the writer down, so they keep these counts instead: seeded once from
the store (a resumed tournament), then updated with each batch of results. The numbers are the same
as `analysis.pair_rows` computes from the store (same shares, same intervals). Thread-safe: the
runner's thread adds, the UI thread reads.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from arena.analysis.rows import PairStats
from arena.analysis.stats import wald_ci, wilson_ci
from arena.engine.cells import add_sums, condition_game
from arena.engine.records import TrialResult
from arena.store.database import Store

Condition = tuple[str, float, int, float | None]  # game, epsilon, max_depth, temperature


@dataclass(frozen=True, slots=True)
class PairCell:
    """Counts of one (row, column) pair, possibly summed over several conditions."""

    trials: int
    valid: int
    cooperative: float  # (a match counts the share of its cooperative rounds)

    @property
    def cooperation(self) -> float:
        return self.cooperative / self.valid if self.valid else math.nan


class LiveTally:
    """Per-cell counts: (game, epsilon, max_depth, temperature, row, col) -> trials, valid, coop, ..."""

    # counts per cell: trials, valid, cooperative, refused, errors, row payoff sum, col payoff sum, calls

    def __init__(self) -> None:
        self._cells: dict[tuple, list[float]] = {}
        self._lock = threading.Lock()
        self.version = 0  # bumps on every change; readers compare to skip redraws

    def seed(self, store: Store, tournament_id: int, until_id: int | None = None) -> None:
        """Start from what is already stored (resume, or a finished tournament reopened); with `until_id`,
        only the trials up to that trials.id (a client attaching to a runner gets the later ones streamed)."""
        rows = store.query(
            """
            SELECT game, epsilon, max_depth, temperature, row_program, col_program, count(*) AS n,
                   sum(status = 'ok'), sum(coalesce(cooperative, 0)), sum(status = 'refused'),
                   sum(status = 'error'), coalesce(sum(row_payoff), 0), coalesce(sum(col_payoff), 0),
                   sum(n_calls), min(seq) AS first, rounds, continuation, noise, recall, disclosure
            FROM trials WHERE tournament_id = ? AND id <= ?
            GROUP BY game, row_program, col_program, epsilon, max_depth, coalesce(temperature, -1.0), rounds,
                     coalesce(continuation, -1.0), noise, coalesce(recall, -1), disclosure
            ORDER BY first  -- (grouped in trials_key's order: no sort of every trial)
            """,
            (tournament_id, until_id if until_id is not None else 2**62),
        )
        with self._lock:
            for r in rows:
                v = list(r.values())
                v[0] = condition_game(v[0], *v[15:20])  # a condition carries its match rules and disclosure
                self._cells[tuple(v[:6])] = [float(x or 0) for x in v[6:14]]
            self.version += 1

    def add(self, results: Iterable[TrialResult]) -> None:
        with self._lock:
            add_sums(self._cells, results)
            self.version += 1

    def merge(self, cells) -> None:
        """Add sums already made per cell ((key, sums) pairs as `arena.engine.cells.cell_sums` makes them:
        the same eight numbers as `add` keeps)."""
        with self._lock:
            for key, sums in cells:
                c = self._cells.get(key)
                if c is None:
                    self._cells[key] = [float(x) for x in sums]
                else:
                    for i, x in enumerate(sums):
                        c[i] += x
            self.version += 1

    def conditions(self) -> list[Condition]:
        with self._lock:
            return list(dict.fromkeys(k[:4] for k in self._cells))

    def matrix(self, condition: Condition | None = None) -> dict[tuple[str, str], PairCell]:
        """(row, col) -> counts, over one condition or summed over all of them."""
        out: dict[tuple[str, str], list[int]] = {}
        with self._lock:
            for key, c in self._cells.items():
                if condition is not None and key[:4] != condition:
                    continue
                acc = out.setdefault(key[4:], [0, 0, 0])
                acc[0] += int(c[0])
                acc[1] += int(c[1])
                acc[2] += c[2]  # (matches add shares of rounds)
        return {k: PairCell(*v) for k, v in out.items()}

    def rows(self) -> list[PairStats]:
        """The same numbers as `analysis.pair_rows` gives for the trials counted so far."""
        with self._lock:
            items = [(k, list(c)) for k, c in self._cells.items()]
        out = []
        for (game, eps, depth, temp, row, col), c in items:
            trials, valid, coop, refused, errors, rsum, csum, calls = c
            p, wl, wh = wald_ci(coop, int(valid))
            _, sl, sh = wilson_ci(coop, int(valid))
            out.append(PairStats(
                game=game, epsilon=eps, max_depth=depth, temperature=temp, row_program=row, col_program=col,
                trials=int(trials), valid=int(valid), cooperation=p, wald_low=wl, wald_high=wh, wilson_low=sl,
                wilson_high=sh, row_payoff=rsum / valid if valid else math.nan,
                col_payoff=csum / valid if valid else math.nan, refusal_rate=refused / trials,
                error_rate=errors / trials, calls_per_trial=calls / trials,
            ))
        return out
