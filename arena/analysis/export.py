"""Exports of a tournament's tables (CSV, JSON, Markdown, LaTeX) and plots (PNG, SVG).

- CSV and JSON carry every column of a table (the fields of its row model in analysis.py /
  metagame.py); in CSV a dict field becomes one column per key (`row_actions.cooperate`), a list
  is joined with '; ', a missing value is empty, a boolean is true/false.
- JSON is one document, `ExportDocument` below (its JSON Schema: `arena export --schema`).
- Markdown (GitHub pipe tables) and LaTeX (`tabular` only, text escaped) are paper-ready: the
  columns a paper shows, formatted (percentages, intervals, two decimals).
- Plots are drawn by plots.py (matplotlib, imported only when a plot is asked for).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from arena.analysis.rounds import (EpisodeRow, LengthRow, MatchRow, ProgramMatchRow, RoundRow, episode_tournament,
                                   match_tournament)
from arena.analysis.disclosure import DisclosureRow, disclosure_tournament
from arena.analysis.tables import DISCLOSURE_TABLES, EPISODE_TABLES, EXTRA_TABLES, MATCH_TABLES, TABLES, tables
from arena.analysis.rows import CallRow, ConditionRow, DepthRow, PairRow, ProgramRow
from arena.errors import ArenaError
from arena.analysis.dynamics import MoranRow, ReplicatorRow
from arena.analysis.metagame import EquilibriumRow, MatrixRow, SupportRow
from arena.store.database import Store

TEXT_FORMATS = ("csv", "json", "markdown", "latex")
PLOT_FORMATS = ("png", "svg")
FORMATS = TEXT_FORMATS + PLOT_FORMATS
PLOTS = ("coop-vs-eps", "payoff-heatmap", "depth-hist", "replicator")
MATCH_PLOTS = ("coop-by-round",)  # repeated games: in 'all' when the tournament has matches
DISCLOSURE_PLOTS = ("value-of-disclosure",)  # in 'all' when the grid has a disclosure level besides full
EXTENSIONS = {"csv": "csv", "json": "json", "markdown": "md", "latex": "tex", "png": "png", "svg": "svg"}
EXPORT_VERSION = 1


class ExportError(ArenaError):
    """An export that cannot be made as asked (unknown table or format, a plot without a file)."""


# --- the JSON document ---------------------------------------------------------------------------------
class TournamentInfo(BaseModel):
    id: int
    name: str | None
    status: str  # finished | running | interrupted | cancelled | failed
    total_trials: int
    done: int  # trials stored
    seed: int
    created_at: float  # Unix time
    started_at: float | None
    finished_at: float | None
    arena_version: str | None
    config: dict[str, Any]  # the tournament's configuration as stored (programs, games, grid, seed, ...)


class ExportTables(BaseModel):
    """The tables asked for; a table not asked for is absent."""

    summary: list[ConditionRow] | None = None
    pairs: list[PairRow] | None = None
    programs: list[ProgramRow] | None = None
    matrix: list[MatrixRow] | None = None
    equilibria: list[EquilibriumRow] | None = None
    supports: list[SupportRow] | None = None
    depths: list[DepthRow] | None = None
    replicator: list[ReplicatorRow] | None = None
    moran: list[MoranRow] | None = None
    calls: list[CallRow] | None = None
    # repeated games (in 'all' when the tournament has matches)
    matches: list[MatchRow] | None = None
    match_programs: list[ProgramMatchRow] | None = None
    rounds: list[RoundRow] | None = None
    lengths: list[LengthRow] | None = None
    # grid worlds (in 'all' when the tournament plays one)
    episodes: list[EpisodeRow] | None = None
    # disclosure levels (in 'all' when the grid has a level besides full)
    disclosure: list[DisclosureRow] | None = None


class ExportDocument(BaseModel):
    format: Literal["arena-export"] = "arena-export"
    version: Literal[1] = EXPORT_VERSION
    tournament: TournamentInfo
    tables: ExportTables


def json_schema() -> dict:
    return ExportDocument.model_json_schema()


# --- choosing --------------------------------------------------------------------------------------------
def default_table(fmt: str) -> str:
    """CSV holds one table (pairs by default); the other text formats hold all of them by default."""
    return "pairs" if fmt == "csv" else "all"


def table_names(fmt: str, table: str | None) -> list[str]:
    table = table or default_table(fmt)
    if table == "all":
        if fmt == "csv":
            raise ExportError(f"CSV holds one table: choose --table {'|'.join(TABLES)}")
        return list(TABLES)
    if table not in TABLES and table not in EXTRA_TABLES:
        raise ExportError(f"unknown table '{table}'; tables: {', '.join(TABLES + EXTRA_TABLES)}, all")
    return [table]


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ExportError(f"unknown format '{fmt}'; formats: {', '.join(FORMATS)}")


def default_path(tid: int, fmt: str, what: str | None = None) -> Path:
    """arena-tournament-3.csv, arena-tournament-3-programs.md, arena-tournament-3-depth-hist.png ..."""
    check_format(fmt)
    if fmt in PLOT_FORMATS:
        what = what or PLOTS[0]
    elif what is None or what == default_table(fmt):
        what = None
    return Path(f"arena-tournament-{tid}{'-' + what if what and what != 'all' else ''}.{EXTENSIONS[fmt]}")


# --- text ------------------------------------------------------------------------------------------------
def render(store: Store, tid: int, fmt: str, table: str | None = None, resamples: int | None = None,
           population: int | None = None) -> str:
    """A text export of tournament `tid` (csv, json, markdown or latex) as a string (`resamples`,
    `population`: the bootstrap's B and the Moran process's N, see analysis.tables)."""
    check_format(fmt)
    if fmt in PLOT_FORMATS:
        raise ExportError(f"{fmt} is a plot format: it needs a file (--out PATH)")
    names = table_names(fmt, table)
    row = store.tournament(tid)
    if (table or default_table(fmt)) == "all":
        if match_tournament(store, tid):
            names += list(MATCH_TABLES)
        if episode_tournament(store, tid):
            names += list(EPISODE_TABLES)
        if disclosure_tournament(row.config):
            names += list(DISCLOSURE_TABLES)
    data = tables(store, row.id, names, resamples=resamples, population=population)
    if fmt == "json":
        info = TournamentInfo(**{**row.model_dump(), "status": row.display_status})
        doc = ExportDocument(tournament=info, tables=ExportTables(**data))
        dumped = doc.model_dump(mode="json")
        dumped["tables"] = {k: v for k, v in dumped["tables"].items() if k in names}
        return json.dumps(dumped, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    if fmt == "csv":
        return to_csv(data[names[0]], _MODELS[names[0]])
    title = f"Arena tournament {row.id}" + (f": {row.name}" if row.name else "")
    if fmt == "markdown":
        parts = [f"# {markdown_escape(title)}"] if len(names) > 1 else []
        for n in names:
            if len(names) > 1:
                parts.append(f"## {TITLES[n]}" + (f"\n\n{markdown_escape(NOTES[n])}" if n in NOTES else ""))
            parts.append(markdown_tables(n, data[n]))
        return "\n\n".join(parts) + "\n"
    parts = [f"% {title}".replace("\n", " ")]
    for n in names:
        parts.append(f"% {TITLES[n]}" + (f"\n% {NOTES[n]}" if n in NOTES else ""))
        parts.append(latex_tables(n, data[n]))
    return "\n\n".join(parts) + "\n"


def export(store: Store, tid: int, fmt: str, path: Path | str | None = None, table: str | None = None,
           plot: str | None = None, resamples: int | None = None, population: int | None = None) -> list[Path]:
    """Write an export to files and return their paths.

    Text formats write one file (`path`, default `default_path`). Plot formats write the plot named
    `plot` to `path`, or with plot None or 'all' every plot into the directory `path` (default: the
    current directory) under its default name.
    """
    check_format(fmt)
    tid = store.tournament(tid).id
    if fmt in TEXT_FORMATS:
        if plot is not None:
            raise ExportError("--plot goes with --format png or svg")
        text = render(store, tid, fmt, table, resamples, population)
        out = Path(path) if path is not None else default_path(tid, fmt, table)
        _write(out, text)
        return [out]
    if table is not None:
        raise ExportError("--table goes with --format csv, json, markdown or latex")
    if plot is not None and plot != "all" and plot not in PLOTS + MATCH_PLOTS + DISCLOSURE_PLOTS:
        raise ExportError(f"unknown plot '{plot}'; plots: {', '.join(PLOTS + MATCH_PLOTS + DISCLOSURE_PLOTS)}, all")
    from arena.analysis import plots

    if plot is None or plot == "all":
        folder = Path(path) if path is not None else Path(".")
        if folder.suffix and not folder.is_dir():
            raise ExportError(f"every plot goes into a directory, not {folder}; name one plot with --plot")
        folder.mkdir(parents=True, exist_ok=True)
        names = (PLOTS + (MATCH_PLOTS if match_tournament(store, tid) else ())
                 + (DISCLOSURE_PLOTS if disclosure_tournament(store.tournament(tid).config) else ()))
        targets = [(p, folder / default_path(tid, fmt, p).name) for p in names]
    else:
        targets = [(plot, Path(path) if path is not None else default_path(tid, fmt, plot))]
    data = plots.plot_data(store, tid)
    for name, out in targets:
        write_figure(plots.DRAW[name](data), out, fmt)
    return [out for _name, out in targets]


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8", newline="")
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from None


def write_figure(fig, path: Path, fmt: str) -> Path:
    """A matplotlib figure into `path` as png or svg, the same bytes for the same figure (no date, no
    software version, a fixed SVG id salt); ExportError when the file cannot be written."""
    import matplotlib

    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    try:
        with matplotlib.rc_context({"svg.hashsalt": "arena", "svg.fonttype": "none"}):
            fig.savefig(path, format=fmt, dpi=120, metadata=metadata)
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


# --- CSV -------------------------------------------------------------------------------------------------
def flatten(row: BaseModel) -> dict[str, Any]:
    """One CSV record: dict fields spread into `field.key` columns, lists joined, None empty."""
    out: dict[str, Any] = {}
    for k, v in row.model_dump(mode="json").items():
        if isinstance(v, dict):
            for sub, x in v.items():
                out[f"{k}.{sub}"] = _csv_value(x)
        else:
            out[k] = _csv_value(v)
    return out


def _csv_value(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "; ".join(str(x) for x in v)
    if isinstance(v, float):
        return repr(v)
    return v


def to_csv(rows: Sequence[BaseModel], model: type[BaseModel]) -> str:
    records = [flatten(r) for r in rows]
    # Field order; a dict field's columns in the order their keys first appear.
    columns: list[str] = []
    for name in model.model_fields:
        keys = list(dict.fromkeys(c for rec in records for c in rec if c.startswith(name + ".")))
        columns += keys if keys else ([] if _is_dict_field(model, name) else [name])
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", restval="")
    w.writeheader()
    w.writerows(records)
    return buf.getvalue()


def _is_dict_field(model: type[BaseModel], name: str) -> bool:
    ann = model.model_fields[name].annotation
    return getattr(ann, "__origin__", None) is dict


# --- paper tables: columns -------------------------------------------------------------------------------
def pct(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f}%"


def num(x: float | None, digits: int = 2) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def interval(lo: float | None, hi: float | None, percent: bool = True) -> str:
    if lo is None or hi is None:
        return "–"
    return f"[{pct(lo)}, {pct(hi)}]" if percent else f"[{num(lo)}, {num(hi)}]"


def _signed(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:+.{digits}f}"


def _signed_pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:+.1f} pp"


def mixture(m: dict[str, float]) -> str:
    return ", ".join(p if abs(x - 1) < 1e-12 else f"{p} {x:.3f}" for p, x in m.items() if x > 0)


def named_equilibria(r: ConditionRow) -> str:
    """A summary's program equilibria as the matrix marks them: `*` none needed, `?` after an uncertain one;
    '(point estimate)' when no bootstrap decided them."""
    names = [*r.program_equilibria, *(f"{p}?" for p in r.uncertain_equilibria)]
    text = ", ".join(names) or "none"
    return text + " (point estimate)" if r.equilibria_basis != "bootstrap" else text


@dataclass(frozen=True)
class Col:
    header: str
    value: Callable[[Any], str]
    right: bool = True


_T = Col("T", lambda r: "own" if r.temperature is None else f"{r.temperature:g}")
_COND = [Col("game", lambda r: r.game, False), Col("ε", lambda r: f"{r.epsilon:g}"),
         Col("cap", lambda r: str(r.max_depth))]

COLUMNS: dict[str, list[Col]] = {
    "summary": [
        Col("programs", lambda r: str(r.programs)), Col("trials", lambda r: str(r.trials)),
        Col("coop", lambda r: pct(r.cooperation)),
        Col("95% CI (stratified)", lambda r: interval(r.cooperation_low, r.cooperation_high)),
        Col("mean payoff", lambda r: num(r.mean_payoff)), Col("refused", lambda r: pct(r.refusal_rate)),
        Col("calls/trial", lambda r: num(r.calls_per_trial)), Col("mean depth", lambda r: num(r.depth_mean)),
        Col("best", lambda r: ", ".join(r.best), False),
        Col("program equilibria", lambda r: named_equilibria(r), False),
    ],
    "pairs": [
        Col("row", lambda r: r.row_program, False), Col("column", lambda r: r.col_program, False),
        Col("trials", lambda r: str(r.trials)), Col("coop", lambda r: pct(r.cooperation)),
        Col("95% CI (Wald)", lambda r: interval(r.wald_low, r.wald_high)),
        Col("95% CI (Wilson)", lambda r: interval(r.wilson_low, r.wilson_high)),
        Col("row payoff", lambda r: num(r.row_payoff)), Col("col payoff", lambda r: num(r.col_payoff)),
        Col("refused", lambda r: pct(r.refusal_rate)), Col("calls/trial", lambda r: num(r.calls_per_trial)),
        Col("depth (row/col)", lambda r: f"{num(r.row_depth_mean)}/{num(r.col_depth_mean)}"),
    ],
    "programs": [
        Col("rank", lambda r: "–" if r.rank is None else str(r.rank)), Col("program", lambda r: r.program, False),
        Col("mean payoff", lambda r: num(r.mean_payoff)),
        Col("95% CI", lambda r: interval(r.payoff_low, r.payoff_high, percent=False)),
        Col("median", lambda r: num(r.median_payoff)), Col("coop rating", lambda r: pct(r.cooperation_rating)),
        Col("wins", lambda r: str(r.wins)), Col("initial", lambda r: pct(r.initial_rate)),
        Col("CC", lambda r: pct(r.cc)), Col("CD", lambda r: pct(r.cd)), Col("DC", lambda r: pct(r.dc)),
        Col("DD", lambda r: pct(r.dd)),
    ],
    "equilibria": [
        Col("#", lambda r: str(r.index)), Col("row strategy", lambda r: mixture(r.row_strategy), False),
        Col("column strategy", lambda r: mixture(r.col_strategy), False),
        Col("row payoff", lambda r: num(r.row_payoff, 3)), Col("col payoff", lambda r: num(r.col_payoff, 3)),
        Col("pure", lambda r: "yes" if r.pure else "no", False),
        Col("symmetric", lambda r: "yes" if r.symmetric else "no", False),
        Col("bootstrap", lambda r: pct(r.support_frequency, 0)),
    ],
    "supports": [
        Col("row support", lambda r: ", ".join(r.row_support), False),
        Col("column support", lambda r: ", ".join(r.col_support), False),
        Col("share of resamples", lambda r: pct(r.frequency)), Col("of", lambda r: str(r.resamples)),
        Col("in estimate", lambda r: "yes" if r.estimated else "no", False),
    ],
    "depths": [
        Col("program", lambda r: r.program, False), Col("seat", lambda r: r.seat, False),
        Col("opponent", lambda r: r.opponent, False),
        Col("depth", lambda r: str(r.depth)), Col("decisions", lambda r: str(r.decisions)),
    ],
    "replicator": [
        Col("step", lambda r: str(r.step)), Col("program", lambda r: r.program, False),
        Col("share", lambda r: num(r.share, 3)), Col("fitness", lambda r: num(r.fitness, 3)),
        Col("converged", lambda r: "yes" if r.converged else "no", False),
    ],
    "moran": [
        Col("invader", lambda r: r.invader, False), Col("resident", lambda r: r.resident, False),
        Col("N", lambda r: str(r.population)), Col("w", lambda r: f"{r.intensity:g}"),
        Col("fixation", lambda r: f"{r.fixation:.4g}"), Col("× neutral", lambda r: num(r.fixation / r.neutral)),
    ],
    "matches": [
        Col("row", lambda r: r.row_program, False), Col("col", lambda r: r.col_program, False),
        Col("matches", lambda r: str(r.matches)), Col("rounds", lambda r: f"{r.mean_rounds:.3g}"),
        Col("row total", lambda r: num(r.row_total)),
        Col("95% CI", lambda r: interval(r.row_total_low, r.row_total_high, percent=False)),
        Col("col total", lambda r: num(r.col_total)),
        Col("95% CI ", lambda r: interval(r.col_total_low, r.col_total_high, percent=False)),
        Col("row disc.", lambda r: num(r.row_discounted)), Col("col disc.", lambda r: num(r.col_discounted)),
        Col("first D row", lambda r: "–" if r.row_first_defection is None else f"{r.row_first_defection + 1:.3g}"),
        Col("first D col", lambda r: "–" if r.col_first_defection is None else f"{r.col_first_defection + 1:.3g}"),
    ],
    "match_programs": [
        Col("program", lambda r: r.program, False), Col("matches", lambda r: str(r.matches)),
        Col("mean total", lambda r: num(r.total)), Col("95% CI", lambda r: interval(r.total_low, r.total_high, percent=False)),
        Col("discounted", lambda r: num(r.discounted)),
        Col("95% CI ", lambda r: interval(r.discounted_low, r.discounted_high, percent=False)),
    ],
    "rounds": [
        Col("row", lambda r: r.row_program, False), Col("col", lambda r: r.col_program, False),
        Col("round", lambda r: str(r.round + 1)), Col("matches", lambda r: str(r.matches)),
        Col("coop", lambda r: pct(r.cooperation)), Col("Wilson 95%", lambda r: interval(r.wilson_low, r.wilson_high)),
        Col("row C", lambda r: pct(r.row_c)), Col("col C", lambda r: pct(r.col_c)),
    ],
    "lengths": [
        Col("rounds", lambda r: str(r.n_rounds)), Col("matches", lambda r: str(r.matches)),
        Col("share", lambda r: pct(r.share)), Col("geometric", lambda r: "–" if r.expected is None else pct(r.expected)),
    ],
    "episodes": [
        Col("row", lambda r: r.row_program, False), Col("col", lambda r: r.col_program, False),
        Col("episodes", lambda r: str(r.episodes)), Col("welfare", lambda r: num(r.welfare, 3)),
        Col("95% CI", lambda r: interval(r.welfare_low, r.welfare_high, percent=False)),
        Col("row return", lambda r: num(r.row_return, 3)), Col("col return", lambda r: num(r.col_return, 3)),
        Col("length", lambda r: num(r.length, 1)),
        Col("95% CI ", lambda r: interval(r.length_low, r.length_high, percent=False)),
        Col("food", lambda r: pct(r.food)), Col("95% CI  ", lambda r: interval(r.food_low, r.food_high)),
        Col("all food", lambda r: pct(r.cleared)),
    ],
    "disclosure": [
        Col("row", lambda r: r.row_program, False), Col("col", lambda r: r.col_program, False),
        Col("disclosure", lambda r: r.disclosure, False), Col("trials", lambda r: str(r.valid)),
        Col("coop", lambda r: pct(r.cooperation)), Col("Wilson 95%", lambda r: interval(r.wilson_low, r.wilson_high)),
        Col("Δ coop", lambda r: _signed_pct(r.cooperation_diff)),
        Col("95% CI", lambda r: interval(r.cooperation_diff_low, r.cooperation_diff_high)),
        Col("row pay", lambda r: num(r.row_payoff)), Col("Δ row", lambda r: _signed(r.row_payoff_diff)),
        Col("95% CI ", lambda r: interval(r.row_payoff_diff_low, r.row_payoff_diff_high, percent=False)),
        Col("col pay", lambda r: num(r.col_payoff)), Col("Δ col", lambda r: _signed(r.col_payoff_diff)),
        Col("95% CI  ", lambda r: interval(r.col_payoff_diff_low, r.col_payoff_diff_high, percent=False)),
        Col("verdict", lambda r: r.verdict or "–", False),
    ],
    "calls": [
        Col("provider", lambda r: r.provider, False), Col("model", lambda r: r.model, False),
        Col("program", lambda r: r.program, False), Col("calls", lambda r: str(r.calls)),
        Col("attempts", lambda r: str(r.attempts)), Col("retries", lambda r: str(r.retries)),
        Col("failures", lambda r: str(r.failures)), Col("refusals", lambda r: str(r.refusals)),
        Col("cached", lambda r: str(r.cached)), Col("mean latency (ms)", lambda r: num(r.latency_ms_mean, 0)),
        Col("prompt tokens", lambda r: str(r.prompt_tokens)), Col("completion tokens", lambda r: str(r.completion_tokens)),
    ],
}
TITLES = {"summary": "Summary", "pairs": "Pairs", "programs": "Programs", "matrix": "Meta-game payoff matrix",
          "equilibria": "Meta-game Nash equilibria", "supports": "Nash equilibrium supports across bootstrap resamples",
          "depths": "Simulation depth per program, seat and opponent", "replicator": "Replicator dynamics: the rest point",
          "moran": "Moran process: fixation probabilities", "calls": "LLM calls",
          "matches": "Matches: totals over the rounds", "match_programs": "Mean match payoff per program",
          "rounds": "Cooperation by round", "lengths": "Match lengths",
          "episodes": "Grid-world episodes: welfare, length, food collected",
          "disclosure": "Value of disclosure: each level against full"}
_MODELS: dict[str, type[BaseModel]] = {"summary": ConditionRow, "pairs": PairRow, "programs": ProgramRow,
                                       "matrix": MatrixRow, "equilibria": EquilibriumRow, "supports": SupportRow,
                                       "depths": DepthRow, "replicator": ReplicatorRow, "moran": MoranRow,
                                       "calls": CallRow, "matches": MatchRow, "match_programs": ProgramMatchRow,
                                       "rounds": RoundRow, "lengths": LengthRow, "episodes": EpisodeRow,
                                       "disclosure": DisclosureRow}
MATRIX_NOTE = ("Mean payoff of the row program against the column program (both seats averaged); "
               "* marks an empirical program equilibrium (neither program gains by switching; the bootstrap "
               "interval of its margin lies above 0), ? an uncertain one (the interval holds 0: the trials "
               "cannot tell).")
_MARKS = {"equilibrium": "*", "uncertain": "?"}
NOTES = {
    "episodes": ("Per cell, means over the episodes with 95% intervals: welfare is the sum of both agents' returns; "
                 "length in steps; food is the share of the food's value collected (the welfare without the PIBR "
                 "penalty); all food: the share of episodes that collected all of it."),
    "disclosure": ("Per pair, each disclosure level with its difference from full (Δ) and a stratified bootstrap 95% "
                   "interval (the two cells resampled independently); verdict: the meta-game's verdict of the pair "
                   "under that level (equilibrium, not, uncertain)."),
    "summary": ("Program equilibria follow the bootstrap's verdicts (? after an uncertain one: the interval of its "
                "margin holds 0); '(point estimate)' where no bootstrap was run."),
    "depths": ("Per opponent: against a program that does not simulate, a chain stops at depth 1; "
               "P(depth = k) = (1−ε)^k·ε holds against a simulating opponent of the same ε (itself, say)."),
}


def _columns(name: str, rows: Sequence[Any]) -> list[Col]:
    cols = COLUMNS[name]
    if name == "calls":
        if any(r.replica for r in rows):  # an endpoint pool: its rows are per replica
            return [*cols[:3], Col("replica", lambda r: r.replica or "(cache)", False), *cols[3:]]
        return cols
    cond = list(_COND)
    if any(r.temperature is not None for r in rows):
        cond.append(_T)
    return cond + cols


def grid(name: str, rows: Sequence[Any]) -> tuple[list[str], list[list[str]], list[bool]]:
    """Headers, cells and right-alignment of a paper table (not the matrix, which is wide)."""
    cols = _columns(name, rows)
    return [c.header for c in cols], [[c.value(r) for c in cols] for r in rows], [c.right for c in cols]


def matrix_grids(rows: Sequence[MatrixRow]) -> list[tuple[str, list[str], list[list[str]]]]:
    """One wide matrix per condition: (condition label, headers, cells)."""
    by_cond: dict[tuple, list[MatrixRow]] = {}
    for r in rows:
        by_cond.setdefault(r.condition, []).append(r)
    out = []
    for (game, eps, depth, temp), rs in by_cond.items():
        programs = list(dict.fromkeys(r.program for r in rs))
        cell = {(r.program, r.opponent): r for r in rs}
        label = f"{game}, ε = {eps:g}, cap {depth}" + ("" if temp is None else f", T = {temp:g}")
        body = []
        for p in programs:
            line = [p]
            for q in programs:
                r = cell.get((p, q))
                line.append("–" if r is None else num(r.payoff) + _mark(r))
            body.append(line)
        out.append((label, ["program", *programs], body))
    return out


def margin_grids(rows: Sequence[MatrixRow]) -> list[tuple[str, list[str], list[list[str]]]]:
    """Per condition, the pure pairs that are (or may be) program equilibria: margin with its bootstrap
    interval, strict margin, verdict."""
    by_cond: dict[tuple, list[MatrixRow]] = {}
    for r in rows:
        if r.verdict in _MARKS or (r.verdict is None and r.program_equilibrium):
            by_cond.setdefault(r.condition, []).append(r)
    out = []
    for (game, eps, depth, temp), rs in by_cond.items():
        label = f"program equilibria, {game}, ε = {eps:g}, cap {depth}" + ("" if temp is None else f", T = {temp:g}")
        body = [[f"{r.program}/{r.opponent}", num(r.margin, 3), interval(r.margin_low, r.margin_high, percent=False),
                 num(r.strict_margin, 3), interval(r.strict_margin_low, r.strict_margin_high, percent=False),
                 (r.verdict or "") + _mark(r)] for r in rs]
        out.append((label, ["pair", "margin", "95% CI", "strict margin", "95% CI", "verdict"], body))
    return out


def _mark(r: MatrixRow) -> str:
    """* equilibrium, ? uncertain (by the bootstrap's verdict, or the point estimate without one)."""
    if r.verdict is not None:
        return _MARKS.get(r.verdict, "")
    return "*" if r.program_equilibrium else ""


def _paper_rows(name: str, rows: Sequence[Any]) -> Sequence[Any]:
    """The rows a paper shows: of the replicator trajectory, only its last step (the rest point)."""
    return [r for r in rows if r.rest] if name == "replicator" else rows


# --- Markdown --------------------------------------------------------------------------------------------
def markdown_escape(text: str) -> str:
    return " ".join(str(text).split()).replace("\\", "\\\\").replace("|", "\\|")


def markdown_table(headers: Sequence[str], body: Sequence[Sequence[str]], right: Sequence[bool] | None = None) -> str:
    right = right or [False] + [True] * (len(headers) - 1)
    lines = ["| " + " | ".join(markdown_escape(h) for h in headers) + " |",
             "|" + "|".join("---:" if r else ":---" for r in right) + "|"]
    lines += ["| " + " | ".join(markdown_escape(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


def markdown_tables(name: str, rows: Sequence[Any]) -> str:
    if name == "matrix":
        parts = [f"{MATRIX_NOTE}"]
        for label, headers, body in matrix_grids(rows):
            parts.append(f"**{markdown_escape(label)}**\n\n" + markdown_table(headers, body))
        for label, headers, body in margin_grids(rows):
            parts.append(f"**{markdown_escape(label)}**\n\n" + markdown_table(headers, body))
        return "\n\n".join(parts) if len(parts) > 1 else "_No trials._"
    headers, body, right = grid(name, _paper_rows(name, rows))
    return markdown_table(headers, body, right) if body else "_No rows._"


# --- LaTeX -----------------------------------------------------------------------------------------------
_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
    "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
    "|": r"\textbar{}", "ε": r"$\varepsilon$", "–": "--", "—": "---", "×": r"$\times$", "±": r"$\pm$",
    "…": r"\ldots{}", "→": r"$\rightarrow$", "≥": r"$\geq$", "≤": r"$\leq$",
}
_LATEX_RE = re.compile("|".join(re.escape(k) for k in _LATEX_SPECIAL))


def latex_escape(text: str) -> str:
    """Text safe inside a LaTeX tabular: specials escaped, a few symbols as math, other non-ASCII as '?'."""
    text = " ".join(str(text).split())
    text = _LATEX_RE.sub(lambda m: _LATEX_SPECIAL[m.group(0)], text)
    return "".join(c if ord(c) < 128 else "?" for c in text)


def latex_table(headers: Sequence[str], body: Sequence[Sequence[str]], right: Sequence[bool] | None = None,
                caption: str | None = None) -> str:
    right = right or [False] + [True] * (len(headers) - 1)
    spec = "".join("r" if r else "l" for r in right)
    lines = [f"\\begin{{tabular}}{{{spec}}}", "\\hline"]
    if caption:
        lines.append(f"\\multicolumn{{{len(headers)}}}{{l}}{{{latex_escape(caption)}}} \\\\")
        lines.append("\\hline")
    lines.append(" & ".join(latex_escape(h) for h in headers) + " \\\\")
    lines.append("\\hline")
    lines += [" & ".join(latex_escape(c) for c in row) + " \\\\" for row in body]
    lines += ["\\hline", "\\end{tabular}"]
    return "\n".join(lines)


def latex_tables(name: str, rows: Sequence[Any]) -> str:
    if name == "matrix":
        parts = [f"% {MATRIX_NOTE}"]
        for label, headers, body in [*matrix_grids(rows), *margin_grids(rows)]:
            parts.append(latex_table(headers, body, caption=label))
        return "\n\n".join(parts)
    headers, body, right = grid(name, _paper_rows(name, rows))
    return latex_table(headers, body, right)
