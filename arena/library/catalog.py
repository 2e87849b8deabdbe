"""Where the YAML library lives, and loading it as a whole."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from arena.errors import ConfigError, Problem
from arena.library.games import Game, game_model, load_games
from arena.library.programs import ProgramEntry, load_program_entries
from arena.library.yamlio import iter_yaml_files, plain, read_documents, validate

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
    inside = Path(pp).resolve()  # a file of the library given again on the command line is loaded once
    entries = load_program_entries([pp, *[p for p in extra_programs if not Path(p).resolve().is_relative_to(inside)]])
    return Library(load_games(gp), entries, pp, gp)


def load_lenient(programs_path: Path | None = None, games_path: Path | None = None) -> tuple[Library, list[Problem]]:
    """Like core's load_library, but a file with problems is left out (and its problems returned)."""
    pp = Path(programs_path or programs_dir())
    gp = Path(games_path or games_dir())
    problems: list[Problem] = []
    try:
        games = load_games(gp)
    except ConfigError as exc:
        problems += exc.problems
        games = {}
        for f in iter_yaml_files(gp):
            try:
                for game in [validate(doc, game_model(plain(doc.data))) for doc in read_documents(f)]:
                    games.setdefault(game.id, game)
            except ConfigError:
                pass
    try:
        entries = load_program_entries([pp])
    except ConfigError as exc:
        problems += exc.problems
        entries: dict[str, ProgramEntry] = {}
        for f in (iter_yaml_files(pp, recursive=True) if pp.is_dir() else []):
            try:
                for k, e in load_program_entries([f], root=pp).items():
                    entries.setdefault(k, e)
            except ConfigError:
                pass
    return Library(games, entries, pp, gp), problems

