"""What the Results screen's export dialog offers: every format of `arena.analysis.export`, and per
format the tables or plots it can hold. The files are written by arena.analysis.export; nothing is computed here."""

from __future__ import annotations

from pathlib import Path

from arena.analysis import export as exports

TABLE_LABELS = {"pairs": "pairs", "summary": "summary", "programs": "programs (ranking)",
                "matrix": "meta-game payoff matrix", "equilibria": "meta-game equilibria",
                "supports": "equilibrium supports (bootstrap)", "depths": "depths per program, seat and opponent",
                "replicator": "replicator dynamics", "moran": "Moran fixation", "calls": "LLM calls",
                "all": "all tables"}
PLOT_LABELS = {"all": "all plots (into a folder)", "coop-vs-eps": "cooperation vs ε", "payoff-heatmap": "payoff heat map",
               "depth-hist": "depth histogram", "replicator": "replicator dynamics"}


def formats() -> list[str]:
    return list(exports.FORMATS)


def choices(fmt: str) -> list[tuple[str, str]]:
    """(label, value) of the tables (text formats) or plots (image formats) of `fmt`, the default first."""
    if fmt in exports.PLOT_FORMATS:
        return [(label, v) for v, label in PLOT_LABELS.items()]
    first = exports.default_table(fmt)
    values = [first] + [t for t in (*exports.TABLES, "all") if t != first and not (fmt == "csv" and t == "all")]
    return [(TABLE_LABELS[v], v) for v in values]


def default_path(tid: int, fmt: str, what: str | None = None) -> Path:
    """The file to offer; for every plot at once, the folder they go into."""
    if fmt in exports.PLOT_FORMATS and (what is None or what == "all"):
        return Path(".")
    return exports.default_path(tid, fmt, what)


def export(store, tid: int, fmt: str, path: Path, what: str | None = None) -> list[Path]:
    """Write tournament `tid` in format `fmt` to `path`; returns the files written."""
    if fmt in exports.PLOT_FORMATS:
        return exports.export(store, tid, fmt, path, plot=what)
    return exports.export(store, tid, fmt, path, table=what)
