"""What every `arena` command shares: the --db option, the store it opens, the error exit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

DbOpt = Annotated[Optional[Path], typer.Option("--db", metavar="PATH", help="SQLite database (default: $ARENA_DB or ./arena.db)")]


def fail(message: str, code: int = 2) -> None:
    from arena.llm.secrets import clean

    typer.echo(f"arena: error: {clean(message)}", err=True)  # never a key, bearer token or URL password
    raise typer.Exit(code)


def open_store(db: Path | None):
    """The store at --db (default: $ARENA_DB or ./arena.db), waiting $ARENA_DB_TIMEOUT seconds for a lock."""
    import os

    from arena.store.database import Store, default_db_path

    wait = os.environ.get("ARENA_DB_TIMEOUT", "10")
    try:
        timeout = float(wait)
    except ValueError:
        fail(f"ARENA_DB_TIMEOUT must be a number of seconds, got {wait!r}")
    return Store(db or default_db_path(), timeout=timeout)
