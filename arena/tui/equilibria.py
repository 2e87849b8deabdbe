"""How the Results screen's Equilibria tab shows the meta-game's Nash equilibria (EquilibriumRow)."""

from __future__ import annotations

from collections.abc import Sequence

from . import format as fmt

EQ_COLUMNS = (("index", "#"), ("kind", "kind"), ("row", "row plays"), ("col", "column plays"),
              ("rowpay", "row pay"), ("colpay", "col pay"))  # (the method, one per condition, is in the caption)
_SHOWN = {"game", "epsilon", "max_depth", "temperature", "index", "row_strategy", "col_strategy", "row_payoff",
          "col_payoff", "pure", "symmetric", "method"}


def strategy(probs: dict[str, float], sep: str = " · ") -> str:
    """'fairbot' for a pure strategy, 'fairbot 50% · defectbot 50%' for a mixed one (largest first; sep
    "\n": one program a line, for a narrow table)."""
    shown = sorted(((p, x) for p, x in probs.items() if x > 1e-9), key=lambda px: -px[1])
    if len(shown) == 1:
        return shown[0][0]
    return sep.join(f"{p} {fmt.pct(x)}" for p, x in shown)


def extra_fields(rows: Sequence) -> list[str]:
    """Fields the rows carry beyond the ones shown by name (e.g. verdicts added later): shown as they are,
    unless no row has a value (a bootstrap's support frequency when none was run)."""
    if not rows:
        return []
    return [f for f in type(rows[0]).model_fields
            if f not in _SHOWN and any(getattr(r, f) is not None for r in rows)]


def cells(row, extra: Sequence[str] = (), narrow: bool = False) -> list[str]:
    """A row's cells; `narrow` (under 100 columns): a mixed strategy one program a line, kind abbreviated."""
    kind = ("pure" if row.pure else "mixed") + ((" sym." if narrow else ", symmetric") if row.symmetric else "")
    sep = "\n" if narrow else " · "
    return [str(row.index), kind, strategy(row.row_strategy, sep), strategy(row.col_strategy, sep), fmt.num(row.row_payoff),
            fmt.num(row.col_payoff), *(_plain(getattr(row, f)) for f in extra)]


def _plain(x) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return fmt.num(x)
    return str(x)
