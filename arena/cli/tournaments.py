"""`arena tournaments`: the tournaments stored in the database (list, show)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from arena.cli.common import DbOpt, fail, open_store

tournaments_app = typer.Typer(help="Tournaments stored in the database.", no_args_is_help=True)


@tournaments_app.command("list")
def tournaments_list(db: DbOpt = None) -> None:
    """Tournaments in the database, newest first."""
    import datetime as dt

    from rich.table import Table

    from arena.cli.progress import console

    from arena.errors import ArenaError

    try:
        with open_store(db) as store:
            rows = store.tournaments()
    except ArenaError as exc:
        fail(str(exc))
    t = Table("id", "name", "status", "trials", "games", "programs", "started", "reason", "runner pid")
    for r in rows:
        started = dt.datetime.fromtimestamp(r.started_at or r.created_at).strftime("%Y-%m-%d %H:%M")
        status = r.display_status
        t.add_row(str(r.id), r.name or "", status, f"{r.done}/{r.total_trials}",
                  ",".join(r.config["games"]), str(len(r.config["programs"])), started, r.reason or "",
                  str(r.runner_pid) if status == "running" else "-")
    console().print(t)


@tournaments_app.command("show")
def tournaments_show(tournament: Annotated[Optional[int], typer.Argument(metavar="ID")] = None, db: DbOpt = None) -> None:
    """The summary table of a stored tournament (default: the latest)."""
    from arena.errors import ArenaError
    from arena.cli.progress import print_summary

    try:
        with open_store(db) as store:
            row = store.tournament(tournament)
            print_summary(store, row.id)
            if row.reason:
                typer.echo(f"{row.display_status}: {row.reason}")
    except ArenaError as exc:
        fail(str(exc))
