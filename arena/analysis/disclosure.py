"""The value of disclosure: per game (with its match rules), condition and ordered pair, cooperation and mean
payoffs under each disclosure level, and their differences from `full` with a stratified bootstrap interval.

A condition's game carries its disclosure level ('prisoners_dilemma (disclosure none)',
analysis/conditions.py); this table lines up the levels of one game side by side. The interval of a
difference resamples the two cells (the pair at that level, the pair at `full`) independently, each from
its counts over joint outcomes (bootstrap.py's multinomial resampling; in a match, one outcome is the
match's last round, and its trials' cooperation and payoffs are their outcome's means), B resamples seeded
with (tournament seed, the row's index): the same tournament gives the same intervals. `verdict` is the
meta-game's verdict of the pure profile (row, col) under that level (metagame.pair_statistics).
"""

from __future__ import annotations

from collections.abc import Sequence

from arena.analysis.conditions import condition_disclosure, without_disclosure
from arena.analysis.rows import ConditionKey
from arena.analysis.stats import wilson_ci

FULL = "full"


class DisclosureRow(ConditionKey):
    """One ordered pair under one disclosure level of a condition (`game` without the level)."""

    row_program: str
    col_program: str
    disclosure: str
    valid: int  # trials with both actions
    cooperation: float | None
    wilson_low: float | None
    wilson_high: float | None
    row_payoff: float | None
    col_payoff: float | None
    # differences from the same pair under `full` (None on the `full` row, or without a `full` cell)
    cooperation_diff: float | None = None
    cooperation_diff_low: float | None = None
    cooperation_diff_high: float | None = None
    row_payoff_diff: float | None = None
    row_payoff_diff_low: float | None = None
    row_payoff_diff_high: float | None = None
    col_payoff_diff: float | None = None
    col_payoff_diff_low: float | None = None
    col_payoff_diff_high: float | None = None
    verdict: str | None = None  # the meta-game's verdict of (row, col) under this level


class _Cell:
    """A cell's valid trials by joint outcome: counts, and each outcome's mean cooperation and payoffs."""

    __slots__ = ("n", "counts", "coop", "rp", "cp")

    def __init__(self, outcomes: list[tuple[int, float, float, float]]):
        import numpy as np  # (numpy loads when the table is computed, never at start-up)

        self.counts = np.array([o[0] for o in outcomes], dtype=float)
        self.n = int(self.counts.sum())
        self.coop = np.array([o[1] / o[0] for o in outcomes])
        self.rp = np.array([o[2] / o[0] for o in outcomes])
        self.cp = np.array([o[3] / o[0] for o in outcomes])

    def means(self):
        """(3,) cooperation, row payoff, column payoff over the cell's trials."""
        import numpy as np

        w = self.counts / self.n
        return np.array([w @ self.coop, w @ self.rp, w @ self.cp])

    def resample(self, rng, B: int):
        """(B, 3) the means of B resamples of the cell (`rng`: a numpy Generator)."""
        import numpy as np

        draws = rng.multinomial(self.n, self.counts / self.n, size=B) / self.n
        return np.stack([draws @ self.coop, draws @ self.rp, draws @ self.cp], axis=1)


def disclosure_rows(groups: Sequence, order: Sequence[str], levels: Sequence[str], rank, matrices: dict | None = None,
                    resamples: int = 1000, seed: int = 0) -> list[DisclosureRow]:
    """The table from analysis Outcomes.groups (`order`: the programs' order, `levels`: the tournament's
    disclosure levels, `rank`: the sort key of a condition, `matrices`: the meta-games, for the verdicts)."""
    import numpy as np

    from arena.analysis.bootstrap import percentile_interval
    from arena.analysis.metagame import pair_statistics

    cells: dict[tuple, list[tuple[int, float, float, float]]] = {}
    for g in groups:
        if g.status != "ok" or not g.n:
            continue
        cells.setdefault((g.cond, g.row, g.col), []).append((g.n, g.coop, g.rp, g.cp))
    verdicts: dict = {}
    for cond, m in (matrices or {}).items():
        verdicts[cond] = {k: v.get("verdict") for k, v in pair_statistics(m).items()}
    level_index = {lv: i for i, lv in enumerate(levels)}
    prog = {p: i for i, p in enumerate(order)}

    def key(item):
        (cond, row, col) = item
        level = condition_disclosure(cond[0])
        base = (without_disclosure(cond[0]), *cond[1:])
        return (rank(base), prog.get(row, len(prog)), row, prog.get(col, len(prog)), col,
                level_index.get(level, len(level_index)), level)

    out = []
    built = {k: _Cell(v) for k, v in cells.items()}
    for k, (cond, row, col) in enumerate(sorted(built, key=key)):
        cell = built[(cond, row, col)]
        level = condition_disclosure(cond[0])
        base = (without_disclosure(cond[0]), *cond[1:])
        coop, rp, cp = cell.means()
        _, lo, hi = wilson_ci(int(round(coop * cell.n)), cell.n) if cell.n else (None, None, None)
        r = DisclosureRow(game=base[0], epsilon=base[1], max_depth=base[2], temperature=base[3], row_program=row,
                          col_program=col, disclosure=level, valid=cell.n, cooperation=float(coop), wilson_low=lo,
                          wilson_high=hi, row_payoff=float(rp), col_payoff=float(cp),
                          verdict=verdicts.get(cond, {}).get((row, col)))
        ref = built.get(((base[0], *cond[1:]), row, col))
        if level != FULL and ref is not None:
            d = cell.means() - ref.means()
            r.cooperation_diff, r.row_payoff_diff, r.col_payoff_diff = (float(x) for x in d)
            if resamples > 0:
                rng = np.random.default_rng([abs(int(seed)), k])
                diffs = cell.resample(rng, resamples) - ref.resample(rng, resamples)
                (r.cooperation_diff_low, r.cooperation_diff_high), (r.row_payoff_diff_low, r.row_payoff_diff_high), \
                    (r.col_payoff_diff_low, r.col_payoff_diff_high) = (percentile_interval(diffs[:, i])
                                                                       for i in range(3))
        out.append(r)
    return out


def disclosure_tournament(config: dict) -> bool:
    """Whether a tournament's grid has a disclosure level besides `full` (its 'all' exports add the table)."""
    return list(config.get("disclosures", [FULL])) != [FULL]
