"""Error types that cross the core boundary. Each one renders as a message a user can act on."""

from __future__ import annotations

from dataclasses import dataclass


class ArenaError(Exception):
    """Base class: an expected failure with a message meant for the user (CLI exit code 2)."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file: where it is and what is wrong."""

    file: str
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        what = f"field '{self.field}': " if self.field else ""
        return f"{where}: {what}{self.message}"


class ConfigError(ArenaError):
    """One or more problems in YAML input (programs, games)."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class LookupFailed(ArenaError):
    """An id (game, program, tournament, provider) that does not exist."""


class StoreError(ArenaError):
    """The database cannot be opened or used (locked, corrupt, not an Arena database)."""
