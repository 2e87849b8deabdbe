"""`arena export`: a stored tournament's tables (CSV, JSON, Markdown, LaTeX) or plots (PNG, SVG), or an
iterate run's."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from arena.cli.common import DbOpt, fail, open_store


class ExportFormat(str, Enum):
    csv = "csv"
    json = "json"
    markdown = "markdown"
    latex = "latex"
    png = "png"
    svg = "svg"


class ExportTable(str, Enum):
    summary = "summary"
    pairs = "pairs"
    programs = "programs"
    matrix = "matrix"
    equilibria = "equilibria"
    supports = "supports"
    depths = "depths"
    replicator = "replicator"
    moran = "moran"
    calls = "calls"
    matches = "matches"
    match_programs = "match_programs"
    rounds = "rounds"
    lengths = "lengths"
    episodes = "episodes"
    disclosure = "disclosure"
    all = "all"


class ExportPlot(str, Enum):
    coop_vs_eps = "coop-vs-eps"
    payoff_heatmap = "payoff-heatmap"
    depth_hist = "depth-hist"
    replicator = "replicator"
    coop_by_round = "coop-by-round"
    value_of_disclosure = "value-of-disclosure"
    all = "all"


def export_cmd(
    format: Annotated[Optional[ExportFormat], typer.Option("--format", "-f", help="csv, json, markdown, latex: tables; png, svg: plots")] = None,
    tournament: Annotated[Optional[int], typer.Option("--tournament", "-t", metavar="ID", help="tournament id (default: the latest)")] = None,
    table: Annotated[Optional[ExportTable], typer.Option(help="the table (default: pairs for csv, all otherwise)")] = None,
    plot: Annotated[Optional[ExportPlot], typer.Option(help="the plot (default: all)")] = None,
    out: Annotated[Optional[str], typer.Option("--out", "-o", metavar="PATH", help="file to write; '-' or none: stdout for text formats; a directory for all plots")] = None,
    schema: Annotated[bool, typer.Option("--schema", help="print the JSON Schema of --format json exports and exit")] = False,
    bootstrap: Annotated[int, typer.Option("--bootstrap", metavar="B", min=0, help="bootstrap resamples behind the meta-game's intervals and verdicts (0: none)")] = 1000,
    population: Annotated[int, typer.Option("--population", metavar="N", min=2, help="population size N of the Moran table")] = 10,
    iterate: Annotated[Optional[int], typer.Option("--iterate", metavar="ID", help="an iterate run: its steps table, or its welfare plot (png, svg)")] = None,
    db: DbOpt = None,
) -> None:
    """Export a stored tournament's tables or plots (see docs/analysis.md)."""
    import json

    from arena.analysis import export as ex
    from arena.errors import ArenaError

    if schema:
        typer.echo(json.dumps(ex.json_schema(), indent=2))
        return
    if format is None:
        fail(f"--format is required: {' | '.join(ex.FORMATS)}")
    fmt = format.value
    if iterate is not None:
        from arena.cli.iterate import export_iterate

        return export_iterate(open_store, db, iterate, fmt, out)
    try:
        with open_store(db) as store:
            tid = store.tournament(tournament).id
            if fmt in ex.TEXT_FORMATS and (out is None or out == "-"):
                if plot is not None:
                    fail("--plot goes with --format png or svg")
                sys.stdout.write(ex.render(store, tid, fmt, table.value if table else None, bootstrap, population))
                return
            if fmt in ex.PLOT_FORMATS and out == "-":
                fail(f"{fmt} plots need a file: --out PATH (or no --out for the default names)")
            paths = ex.export(store, tid, fmt, Path(out) if out else None, table.value if table else None,
                              plot.value if plot else None, bootstrap, population)
    except ArenaError as exc:
        fail(str(exc))
    for p in paths:
        typer.echo(f"wrote {p}", err=True)
