"""Loading the YAML library for the app: a broken file is reported, the rest still loads."""

from __future__ import annotations

from pathlib import Path

from ..core.errors import ConfigError, Problem
from ..core.games import Game, load_games
from ..core.library import Library, games_dir, programs_dir
from ..core.programs import ProgramEntry, load_program_entries
from ..core.yamlio import iter_yaml_files, read_documents, validate


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
                for game in [validate(doc, Game) for doc in read_documents(f)]:
                    games.setdefault(game.id, game)
            except ConfigError:
                pass
    try:
        entries = load_program_entries([pp])
    except ConfigError as exc:
        problems += exc.problems
        entries: dict[str, ProgramEntry] = {}
        for f in (iter_yaml_files(pp) if pp.is_dir() else []):
            try:
                for k, e in load_program_entries([f]).items():
                    entries.setdefault(k, e)
            except ConfigError:
                pass
    return Library(games, entries, pp, gp), problems

