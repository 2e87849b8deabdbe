"""`arena games` and `arena programs`: the game and program libraries (list, show, validate)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from arena.cli.common import fail

games_app = typer.Typer(help="The game library (games/*.yaml).", no_args_is_help=True)
programs_app = typer.Typer(help="The program library (programs/*.yaml).", no_args_is_help=True)


@games_app.command("list")
def games_list() -> None:
    """List the games with their actions and cooperative outcomes."""
    from rich.table import Table

    from arena.cli.progress import console

    from arena.errors import ArenaError
    from arena.library.games import load_games
    from arena.library.catalog import games_dir

    try:
        games = load_games(games_dir())
    except ArenaError as exc:
        fail(str(exc))
    t = Table("id", "name", "actions", "cooperative", "default", title=f"Games in {games_dir()}")
    for g in games.values():
        t.add_row(g.id, g.name, " ".join(g.actions), " ".join(f"({a},{b})" for a, b in g.cooperative), g.default_label)
    console().print(t)


@games_app.command("show")
def games_show(game_id: str) -> None:
    """Show one game's description and payoff matrix (a grid world's: its parameters)."""
    from arena.errors import ArenaError
    from arena.library.games import load_games
    from arena.library.catalog import games_dir

    try:
        games = load_games(games_dir())
    except ArenaError as exc:
        fail(str(exc))
    if game_id not in games:
        fail(f"unknown game '{game_id}'. Known: {', '.join(sorted(games))}")
    g = games[game_id]
    if g.markov:  # a grid world: its parameters and actions (each step's rewards come from the env)
        params = "\n".join(f"{k}: {v}" for k, v in g.parameters().items() if v is not None)
        typer.echo(f"{g.name} ({g.id})\n\n{g.description.strip()}\n\n{params}\nactions: {' '.join(g.actions)}\n\n"
                   "A game with a state: each step's rewards come from the lbforaging environment "
                   "(docs/markov-games.md).")
        return
    typer.echo(f"{g.name} ({g.id})\n\n{g.description.strip()}\n\n{g.matrix_text()}\n")
    typer.echo(f"cooperative: {', '.join(f'({a}, {b})' for a, b in g.cooperative)}; "
               f"default action: {g.default_label}; defect action: {g.defect_action}")


@programs_app.command("list")
def programs_list(
    axelrod: Annotated[bool, typer.Option("--axelrod", help="list Axelrod's strategies instead, each a program axelrod:NAME (needs the axelrod extra)")] = False,
) -> None:
    """List the programs: id, kind, model or strategy, temperature, epsilon."""
    from rich.table import Table

    from arena.cli.progress import console

    from arena.errors import ArenaError
    from arena.library.catalog import programs_dir
    from arena.library.programs import load_program_entries

    if axelrod:
        _axelrod_list()
        return
    try:
        entries = load_program_entries([programs_dir()])
    except ArenaError as exc:
        fail(str(exc))
    t = Table("id", "kind", "model / strategy", "temp", "epsilon", "file", title=f"Programs in {programs_dir()}")
    for e in entries.values():
        p = e.program
        if p.kind == "code":
            what = "code" + ("" if p.simulates else " (acts directly)")
        else:
            what = p.model if p.kind == "llm" else p.strategy + "".join(f" {k}={v}" for k, v in p.params.items())
        temp = f"{p.temperature:g}" if p.kind == "llm" else "-"
        eps = "-" if p.epsilon is None else f"{p.epsilon:g}"
        t.add_row(p.id, p.kind, what, temp, eps, e.file.name)
    console().print(t)
    from arena.library.axelrod_programs import available

    typer.echo("Also: axelrod:NAME, any of Axelrod's strategies (" +
               ("`arena programs list --axelrod` lists them)" if available()
                else "needs the axelrod package: pip install 'arena[axelrod]')"))


def _axelrod_list() -> None:
    """Axelrod's strategies as programs: id, whether it is stochastic, the first sentence of its docstring."""
    from rich.table import Table

    from arena.cli.progress import console
    from arena.errors import ArenaError
    from arena.library.axelrod_programs import axelrod, doc_line, strategies

    try:
        known = strategies()
    except ArenaError as exc:
        fail(str(exc))
    stochastic = axelrod().Classifiers["stochastic"]
    t = Table("id", "name", "stochastic", "what it does", title=f"Axelrod's strategies ({len(known)}, axelrod "
                                                                   f"{axelrod().__version__})")
    for name, cls in sorted(known.items(), key=lambda kv: kv[0].lower()):
        t.add_row(f"axelrod:{name}", cls.name, "yes" if stochastic(cls()) else "-", doc_line(name))
    console().print(t)


@programs_app.command("validate")
def programs_validate(paths: Annotated[Optional[list[Path]], typer.Argument(metavar="PATH...", help="files or directories (default: the library)")] = None) -> None:
    """Check program YAML files; problems are printed as file:line: field: message."""
    from arena.errors import ConfigError
    from arena.library.catalog import programs_dir
    from arena.library.programs import load_program_entries

    try:
        entries = load_program_entries(list(paths or [programs_dir()]))
        _smoke_all(list(entries.values()))
    except ConfigError as exc:
        for p in exc.problems:
            typer.echo(str(p), err=True)
        typer.echo(f"{len(exc.problems)} problem(s)", err=True)
        raise typer.Exit(2)
    typer.echo(f"ok: {len(entries)} program(s) valid")


def _smoke_all(entries: list) -> None:
    """Smoke-test code programs in every game of the library (a game that does not load is not one)."""
    from arena.engine.smoke import smoke_problems
    from arena.errors import ConfigError
    from arena.library.catalog import load_lenient

    if any(e.program.kind == "code" for e in entries):
        games = list(load_lenient()[0].games.values())
        problems = smoke_problems(entries, games)
        if problems:
            raise ConfigError(problems)
