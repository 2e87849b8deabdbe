"""How the Results screen's Equilibria tab shows the meta-game's Nash equilibria (EquilibriumRow)."""

from __future__ import annotations

from collections.abc import Sequence

from . import format as fmt

EQ_COLUMNS = (("index", "#"), ("kind", "kind"), ("row", "row plays"), ("col", "column plays"),
              ("rowpay", "row pay"), ("colpay", "col pay"))  # (the method, one per condition, is in the caption)
_SHOWN = {"game", "epsilon", "max_depth", "temperature", "index", "row_strategy", "col_strategy", "row_payoff",
          "col_payoff", "pure", "symmetric", "method"}


def strategy(probs: dict[str, float]) -> str:
    """'fairbot' for a pure strategy, 'fairbot 50% · defectbot 50%' for a mixed one (largest first)."""
    shown = sorted(((p, x) for p, x in probs.items() if x > 1e-9), key=lambda px: -px[1])
    if len(shown) == 1:
        return shown[0][0]
    return " · ".join(f"{p} {fmt.pct(x)}" for p, x in shown)


def extra_fields(rows: Sequence) -> list[str]:
    """Fields the rows carry beyond the ones shown by name (e.g. verdicts added later): shown as they are,
    unless no row has a value (a bootstrap's support frequency when none was run)."""
    if not rows:
        return []
    return [f for f in type(rows[0]).model_fields
            if f not in _SHOWN and any(getattr(r, f) is not None for r in rows)]


def cells(row, extra: Sequence[str] = ()) -> list[str]:
    kind = ("pure" if row.pure else "mixed") + (", symmetric" if row.symmetric else "")
    return [str(row.index), kind, strategy(row.row_strategy), strategy(row.col_strategy), fmt.num(row.row_payoff),
            fmt.num(row.col_payoff), *(_plain(getattr(row, f)) for f in extra)]


def _plain(x) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return fmt.num(x)
    return str(x)
