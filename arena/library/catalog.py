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
    """Where programs are read from: `$ARENA_PROGRAMS`, else ./programs if it exists, else the library
    shipped with Arena (read-only: see programs_home)."""
    return _find("ARENA_PROGRAMS", "programs")


def programs_home() -> Path:
    """Where new and edited programs are written: `$ARENA_PROGRAMS`, else ./programs (created on the first
    save) -- never the library shipped with Arena, which may be an installed package's folder."""
    if os.environ.get("ARENA_PROGRAMS"):
        return Path(os.environ["ARENA_PROGRAMS"])
    return Path.cwd() / "programs"


def shipped_programs_dir() -> Path:
    """The example programs shipped with Arena."""
    return _REPO / "programs"


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


EXAMPLES = "examples"  # the group of the shipped examples beside the user's own programs (load_lenient)


def is_example(entry: ProgramEntry) -> bool:
    """A shipped example listed beside the user's programs (read-only: editing it saves a copy)."""
    return entry.group == EXAMPLES or entry.group.startswith(EXAMPLES + "/")


def load_lenient(programs_path: Path | None = None, games_path: Path | None = None,
                 examples: bool = False) -> tuple[Library, list[Problem]]:
    """Like core's load_library, but a file with problems is left out (and its problems returned).

    `examples`: the library is programs_home() (`$ARENA_PROGRAMS`, else ./programs, which need not exist
    yet); without `$ARENA_PROGRAMS`, and unless ./programs is the shipped folder itself, the shipped
    programs are added in the group 'examples' (an id of the user's own hides the example of that id). The Library's programs_path is
    then where programs are written, never the shipped folder."""
    if examples and programs_path is None:
        home = programs_home()
        lib, problems = load_lenient(home, games_path)
        shipped = shipped_programs_dir()
        if not os.environ.get("ARENA_PROGRAMS") and shipped.is_dir() and not (home.is_dir() and home.resolve() == shipped.resolve()):
            extra, _ = load_lenient(shipped, games_path)  # (a broken example is not the user's problem)
            entries = dict(lib.entries)
            for k, e in extra.entries.items():
                if k not in entries:
                    group = f"{EXAMPLES}/{e.group}" if e.group else EXAMPLES
                    entries[k] = ProgramEntry(e.program, e.file, e.index, e.line, e.source_line, group)
            lib = Library(lib.games, entries, home, lib.games_path)
        return lib, problems
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
        entries = load_program_entries([pp]) if pp.exists() else {}  # (a home not written to yet: empty)
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

