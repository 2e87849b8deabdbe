"""The Textual app: displays core events and store queries, computes nothing itself."""

from __future__ import annotations

from pathlib import Path


def launch(db: Path | None = None) -> None:
    """Open the app (bare `arena`)."""
    from .app import ArenaApp

    ArenaApp(db=db).run()
