"""The Textual app: displays core events and store queries, computes nothing itself."""

from __future__ import annotations

from pathlib import Path


def launch(db: Path | None = None, attach: int | bool | None = None) -> None:
    """Open the app (bare `arena`, `arena attach`): tournaments run in runner processes; `attach` (an id,
    or True for the newest running one) follows one that runs already."""
    from .app import ArenaApp

    ArenaApp(db=db, runner_process=True, attach=attach, quiet_gc=True).run()
