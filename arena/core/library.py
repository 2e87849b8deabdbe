"""Where the YAML library lives, and loading it as a whole."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .games import Game, load_games
from .programs import ProgramEntry, load_program_entries

_REPO = Path(__file__).resolve().parents[2]


def programs_dir() -> Path:
    """`$ARENA_PROGRAMS`, else ./programs if it exists, else the library shipped with Arena."""
    return _find("ARENA_PROGRAMS", "programs")


def games_dir() -> Path:
    return _find("ARENA_GAMES", "games")


def _find(env: str, name: str) -> Path:
    if os.environ.get(env):
        return Path(os.environ[env])
    local = Path.cwd() / name
    if local.is_dir():
        return local
    return _REPO / name


@dataclass(frozen=True)
class Library:
    games: dict[str, Game]
    entries: dict[str, ProgramEntry]
    programs_path: Path
    games_path: Path

    @property
    def programs(self) -> dict:
        return {k: e.program for k, e in self.entries.items()}


def load_library(programs_path: Path | None = None, games_path: Path | None = None,
                 extra_programs: list[Path] = ()) -> Library:
    """The game and program library; `extra_programs` are YAML files given on the command line."""
    pp = programs_path or programs_dir()
    gp = games_path or games_dir()
    entries = load_program_entries([pp, *[p for p in extra_programs if Path(p).resolve().parent != pp.resolve()]])
    return Library(load_games(gp), entries, pp, gp)
