"""The `arena` command: the TUI by default, subcommands for headless work.

Heavy modules (pydantic models, sqlite-utils, openai, textual) are imported inside the commands so
that `arena --help` starts fast.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(
    help="Arena: tournaments of programs that read (and simulate) each other's source, on one-shot games.",
    no_args_is_help=False,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
games_app = typer.Typer(help="The game library (games/*.yaml).", no_args_is_help=True)
programs_app = typer.Typer(help="The program library (programs/*.yaml).", no_args_is_help=True)
tournaments_app = typer.Typer(help="Tournaments stored in the database.", no_args_is_help=True)
providers_app = typer.Typer(help="LLM providers: where LLM programs' calls go.", no_args_is_help=True)
app.add_typer(games_app, name="games")
app.add_typer(programs_app, name="programs")
app.add_typer(tournaments_app, name="tournaments")
app.add_typer(providers_app, name="providers")

DbOpt = Annotated[Optional[Path], typer.Option("--db", help="SQLite database (default: $ARENA_DB or ./arena.db)")]


class Display(str, Enum):
    rich = "rich"
    plain = "plain"
    none = "none"


class Simulation(str, Enum):
    run = "run"
    imagine = "imagine"


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"arena: error: {message}", err=True)
    raise typer.Exit(code)


def _store(db: Path | None):
    import os

    from arena.store.database import Store, default_db_path

    wait = os.environ.get("ARENA_DB_TIMEOUT", "10")
    try:
        timeout = float(wait)
    except ValueError:
        fail(f"ARENA_DB_TIMEOUT must be a number of seconds, got {wait!r}")
    return Store(db or default_db_path(), timeout=timeout)


@app.callback(invoke_without_command=True)
def root(ctx: typer.Context, db: DbOpt = None) -> None:
    """With no command, open the app."""
    if ctx.invoked_subcommand is None:
        from arena.tui import launch

        launch(db=db, attach=True)
        raise typer.Exit(0)


# --- run / resume ------------------------------------------------------------------------------------
@app.command()
def run(
    grid: Annotated[Optional[str], typer.Option(help="preset grid: smoke | headline | full (default smoke)")] = None,
    game: Annotated[Optional[list[str]], typer.Option("--game", "-g", help="game id (repeatable)")] = None,
    program: Annotated[Optional[list[str]], typer.Option("--program", "-p", help="program id or YAML path (repeatable)")] = None,
    epsilon: Annotated[Optional[list[float]], typer.Option("--epsilon", "-e", help="grounding probability in (0, 1] (repeatable)")] = None,
    max_depth: Annotated[Optional[list[int]], typer.Option("--max-depth", "-d", help="simulation depth cap (repeatable)")] = None,
    trials: Annotated[Optional[int], typer.Option("--trials", "-n", help="trials per cell")] = None,
    temperature: Annotated[Optional[list[float]], typer.Option("--temperature", help="override LLM temperature (repeatable)")] = None,
    seed: Annotated[int, typer.Option(help="tournament seed: same seed, same trials")] = 0,
    concurrency: Annotated[int, typer.Option(help="LLM calls in flight at once (each provider's own limit applies too)")] = 8,
    simulation: Annotated[Simulation, typer.Option(help="run: simulate opponents by running them; imagine: the LLM imagines")] = Simulation.run,
    provider: Annotated[Optional[str], typer.Option(help="run every LLM program on this provider (model aliases mapped)")] = None,
    model: Annotated[Optional[list[str]], typer.Option("--model", help="PROGRAM=provider/model override (repeatable)")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="do not read the response cache")] = False,
    name: Annotated[str, typer.Option(help="a name for the tournament")] = "",
    new: Annotated[bool, typer.Option("--new", help="record a new tournament even if an identical one is stored")] = False,
    db: DbOpt = None,
    display: Annotated[Display, typer.Option(help="progress display")] = Display.rich,
    detach: Annotated[bool, typer.Option("--detach", help="run it in a background runner process: print its id and return")] = False,
) -> None:
    """Run a tournament headless and print its summary table.

    Running the same tournament again (same options, same program and game files) continues the
    stored one instead of duplicating it: only missing trials run. With --detach it runs in a runner
    process of its own that outlives this command (follow it with `arena attach`).
    """
    from pydantic import ValidationError

    from arena.errors import ArenaError
    from arena.engine.grid import TournamentConfig, from_preset
    from arena.library.catalog import load_library

    paths = [Path(p) for p in program or [] if p.endswith((".yaml", ".yml")) or Path(p).is_file()]
    try:
        lib = load_library(extra_programs=paths)
        ids = []
        for p in program or []:
            if Path(p) in paths:
                ids += [k for k, e in lib.entries.items() if e.file.resolve() == Path(p).resolve()]
            else:
                ids.append(p)
        models = {}
        for m in model or []:
            if "=" not in m:
                fail(f"--model expects PROGRAM=provider/model, got '{m}'")
            k, v = m.split("=", 1)
            models[k.strip()] = v.strip()
        fields = from_preset(
            grid or "smoke", programs=ids, games=game, epsilons=epsilon, max_depths=max_depth, trials=trials,
            temperatures=temperature,
        )
        if "programs" not in fields:
            fields["programs"] = list(lib.entries)
            if not lib.entries:
                fail(f"no programs to play: {lib.programs_path} holds none; add YAML files there or pass --program FILE")
        config = TournamentConfig(
            **fields, seed=seed, concurrency=concurrency, simulation=simulation.value, provider=provider,
            models=models, cache=not no_cache, name=name,
        )
        with _store(db) as store:
            if detach:
                _detach(store, config, lib, new=new)
            else:
                _run_tournament(store, config, lib, display, new=new)
    except ValidationError as exc:
        fail(_config_error(exc))
    except ArenaError as exc:
        fail(str(exc))


@app.command()
def resume(
    tournament: Annotated[Optional[int], typer.Argument(help="tournament id (default: the latest)")] = None,
    db: DbOpt = None,
    display: Annotated[Display, typer.Option(help="progress display")] = Display.rich,
    detach: Annotated[bool, typer.Option("--detach", help="resume it in a background runner process and return")] = False,
) -> None:
    """Finish exactly the missing trials of an interrupted or cancelled tournament."""
    from arena.errors import ArenaError

    try:
        with _store(db) as store:
            if detach:
                _detach(store, None, None, resume_id=tournament)
            else:
                _run_tournament(store, None, None, display, resume_id=tournament)
    except ArenaError as exc:
        fail(str(exc))


@app.command()
def attach(
    tournament: Annotated[Optional[int], typer.Argument(help="tournament id (default: the newest running one)")] = None,
    db: DbOpt = None,
) -> None:
    """Open the app on a tournament running in a runner process (Live, as if started there)."""
    from arena.errors import ArenaError
    from arena.runner.process import running_runner

    try:
        with _store(db) as store:
            row = running_runner(store, tournament)
    except ArenaError as exc:
        fail(str(exc))
    if row is None:
        fail(f"tournament {tournament} is not running in a runner process" if tournament is not None
             else "no tournament is running in a runner process (start one with: arena run --detach)")
    from arena.tui import launch

    launch(db=db, attach=row.id)


def _detach(store, config, lib, new: bool = False, resume_id: int | None = None) -> None:
    """Start the tournament (or resume `resume_id`) in a runner process; print its id and return."""
    from arena.runner.process import resume_detached, start_detached

    if config is None:
        started = resume_detached(store, resume_id, backend=_backend(store))
    else:
        started = start_detached(store, config, lib.programs, lib.games, new=new, backend=_backend(store))
        if started.reused:
            typer.echo(f"Same tournament as stored tournament {started.tournament_id}: running only its missing "
                       "trials (--new records a fresh one).", err=True)
    tid = started.tournament_id
    typer.echo(str(tid))
    typer.echo(f"tournament {tid} runs in the background (runner pid {started.pid}); follow it with: "
               f"arena attach {tid}{_db_flag(store)}; stop it with: kill {started.pid}", err=True)


# TournamentConfig fields as the `arena run` options that set them
_OPTIONS = {"programs": "--program", "games": "--game", "epsilons": "--epsilon", "max_depths": "--max-depth",
            "temperatures": "--temperature", "trials": "--trials", "concurrency": "--concurrency", "models": "--model"}


def _config_error(exc) -> str:
    parts = []
    for e in exc.errors(include_url=False):
        loc = e["loc"]
        msg = e["msg"].removeprefix("Value error, ")
        if loc and loc[0] in _OPTIONS:
            value = f" {e['input']}" if len(loc) > 1 or not isinstance(e["input"], (list, dict)) else ""
            parts.append(f"{_OPTIONS[loc[0]]}{value}: {msg}")
        else:
            where = ".".join(str(x) for x in loc)
            parts.append(f"{where}: {msg}" if where else msg)
    return "invalid tournament: " + "; ".join(parts)


def _run_tournament(store, config, lib, display: Display, resume_id: int | None = None, new: bool = False) -> None:
    import asyncio
    import signal

    from arena.runner.tournament import TournamentRunner
    from arena.cli.progress import ProgressDisplay

    shown = ProgressDisplay(display.value)
    backend = _backend(store, shown.event)
    if resume_id is not None or config is None:
        runner = TournamentRunner.resume(store, resume_id, backend=backend, sink=shown.event)
    else:
        runner = TournamentRunner.create(store, config, lib.programs, lib.games, new=new, backend=backend, sink=shown.event)
        if runner.reused and display != Display.none:
            typer.echo(f"Same tournament as stored tournament {runner.tournament_id}: running only its missing trials "
                       "(--new records a fresh one).", err=True)
    stopped_by: list[int] = []

    async def main():
        # SIGTERM (kill, docker stop) stops like Ctrl-C: in-flight trials are abandoned, the rest is kept
        loop, task = asyncio.get_running_loop(), asyncio.current_task()

        def stop() -> None:
            stopped_by.append(signal.SIGTERM)
            task.cancel()

        try:
            loop.add_signal_handler(signal.SIGTERM, stop)
        except (NotImplementedError, RuntimeError):  # not on this platform / not the main thread
            pass
        return await runner.run()

    try:
        with shown:
            result = asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        typer.echo(
            f"\nInterrupted: {runner.done}/{runner.config.total_trials} trials stored; trials in flight were "
            f"abandoned. Resume with: arena resume {runner.tournament_id}" + _db_flag(store), err=True)
        raise typer.Exit(143 if stopped_by else 130)
    shown.summary(store, result)
    if result.status == "failed":
        fail(result.error or "tournament failed", 1)
    if result.status == "cancelled":
        typer.echo(f"Resume with: arena resume {result.tournament_id}{_db_flag(store)}", err=True)


def _db_flag(store) -> str:
    from arena.store.database import default_db_path

    return "" if store.path == default_db_path() else f" --db {store.path}"


def _backend(store, sink=None):
    from arena.llm.service import LLMService

    return LLMService(store, sink=sink)


# --- libraries -----------------------------------------------------------------------------------------
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
        t.add_row(g.id, g.name, " ".join(g.actions), " ".join(f"({a},{b})" for a, b in g.cooperative), g.default_action)
    console().print(t)


@games_app.command("show")
def games_show(game_id: str) -> None:
    """Show one game's description and payoff matrix."""
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
    typer.echo(f"{g.name} ({g.id})\n\n{g.description.strip()}\n\n{g.matrix_text()}\n")
    typer.echo(f"cooperative: {', '.join(f'({a}, {b})' for a, b in g.cooperative)}; "
               f"default action: {g.default_action}; defect action: {g.defect_action}")


@programs_app.command("list")
def programs_list() -> None:
    """List the programs: id, kind, model or strategy, temperature, epsilon."""
    from rich.table import Table

    from arena.cli.progress import console

    from arena.errors import ArenaError
    from arena.library.catalog import programs_dir
    from arena.library.programs import load_program_entries

    try:
        entries = load_program_entries([programs_dir()])
    except ArenaError as exc:
        fail(str(exc))
    t = Table("id", "kind", "model / strategy", "temp", "epsilon", "file", title=f"Programs in {programs_dir()}")
    for e in entries.values():
        p = e.program
        what = p.model if p.kind == "llm" else p.strategy + "".join(f" {k}={v}" for k, v in p.params.items())
        temp = f"{p.temperature:g}" if p.kind == "llm" else "-"
        eps = "-" if p.epsilon is None else f"{p.epsilon:g}"
        t.add_row(p.id, p.kind, what, temp, eps, e.file.name)
    console().print(t)


@programs_app.command("validate")
def programs_validate(paths: Annotated[Optional[list[Path]], typer.Argument(help="files or directories (default: the library)")] = None) -> None:
    """Check program YAML files; problems are printed as file:line: field: message."""
    from arena.errors import ConfigError
    from arena.library.catalog import programs_dir
    from arena.library.programs import load_program_entries

    try:
        entries = load_program_entries(list(paths or [programs_dir()]))
    except ConfigError as exc:
        for p in exc.problems:
            typer.echo(str(p), err=True)
        typer.echo(f"{len(exc.problems)} problem(s)", err=True)
        raise typer.Exit(2)
    typer.echo(f"ok: {len(entries)} program(s) valid")


# --- stored tournaments -------------------------------------------------------------------------------
@tournaments_app.command("list")
def tournaments_list(db: DbOpt = None) -> None:
    """Tournaments in the database, newest first."""
    import datetime as dt

    from rich.table import Table

    from arena.cli.progress import console

    from arena.errors import ArenaError

    try:
        with _store(db) as store:
            rows = store.tournaments()
    except ArenaError as exc:
        fail(str(exc))
    t = Table("id", "name", "status", "trials", "games", "programs", "started", "runner pid")
    for r in rows:
        started = dt.datetime.fromtimestamp(r.created_at).strftime("%Y-%m-%d %H:%M")
        status = r.display_status
        t.add_row(str(r.id), r.name or "", status, f"{r.done}/{r.total_trials}",
                  ",".join(r.config["games"]), str(len(r.config["programs"])), started,
                  str(r.runner_pid) if status == "running" else "-")
    console().print(t)


@tournaments_app.command("show")
def tournaments_show(tournament: Annotated[Optional[int], typer.Argument()] = None, db: DbOpt = None) -> None:
    """The summary table of a stored tournament (default: the latest)."""
    from arena.errors import ArenaError
    from arena.cli.progress import print_summary

    try:
        with _store(db) as store:
            row = store.tournament(tournament)
            print_summary(store, row.id)
    except ArenaError as exc:
        fail(str(exc))


class ExportFormat(str, Enum):
    csv = "csv"
    json = "json"
    markdown = "markdown"
    latex = "latex"
    png = "png"
    svg = "svg"


class ExportTable(str, Enum):
    summary = "summary"
    pairs = "pairs"
    programs = "programs"
    matrix = "matrix"
    equilibria = "equilibria"
    calls = "calls"
    all = "all"


class ExportPlot(str, Enum):
    coop_vs_eps = "coop-vs-eps"
    payoff_heatmap = "payoff-heatmap"
    depth_hist = "depth-hist"
    all = "all"


@app.command("export")
def export_cmd(
    format: Annotated[Optional[ExportFormat], typer.Option("--format", "-f", help="csv, json, markdown, latex: tables; png, svg: plots")] = None,
    tournament: Annotated[Optional[int], typer.Option("--tournament", "-t", help="tournament id (default: the latest)")] = None,
    table: Annotated[Optional[ExportTable], typer.Option(help="the table (default: pairs for csv, all otherwise)")] = None,
    plot: Annotated[Optional[ExportPlot], typer.Option(help="the plot (default: all)")] = None,
    out: Annotated[Optional[str], typer.Option("--out", "-o", help="file to write; '-' or none: stdout for text formats; a directory for all plots")] = None,
    schema: Annotated[bool, typer.Option("--schema", help="print the JSON Schema of --format json exports and exit")] = False,
    db: DbOpt = None,
) -> None:
    """Export a stored tournament's tables or plots (see README, "Analysis and export")."""
    import json

    from arena.analysis import export as ex
    from arena.errors import ArenaError

    if schema:
        typer.echo(json.dumps(ex.json_schema(), indent=2))
        return
    if format is None:
        fail(f"--format is required: {' | '.join(ex.FORMATS)}")
    fmt = format.value
    try:
        with _store(db) as store:
            tid = store.tournament(tournament).id
            if fmt in ex.TEXT_FORMATS and (out is None or out == "-"):
                if plot is not None:
                    fail("--plot goes with --format png or svg")
                sys.stdout.write(ex.render(store, tid, fmt, table.value if table else None))
                return
            if fmt in ex.PLOT_FORMATS and out == "-":
                fail(f"{fmt} plots need a file: --out PATH (or no --out for the default names)")
            paths = ex.export(store, tid, fmt, Path(out) if out else None, table.value if table else None,
                              plot.value if plot else None)
    except ArenaError as exc:
        fail(str(exc))
    for p in paths:
        typer.echo(f"wrote {p}", err=True)


@providers_app.command("list")
def providers_list() -> None:
    """Providers, their endpoints, key variables (never the keys), limits and model aliases."""
    import os

    from rich.table import Table

    from arena.errors import ArenaError
    from arena.llm.providers import load_providers, split_credentials
    from arena.cli.progress import console

    try:
        registry = load_providers()
    except ArenaError as exc:
        fail(str(exc))
    t = Table("provider", "endpoint", "key", "concurrency", "rpm", "constraint", "aliases")
    for p in registry.values():
        key = "-" if not p.key_env else f"{p.key_env} ({'set' if os.environ.get(p.key_env) else 'NOT SET'})"
        url, secret = split_credentials(p.url(os.environ))
        url = (url + " (credentials hidden)" if secret else url) or (
            "embedded" if p.name == "local" else f"set {p.base_url_env}")
        aliases = ", ".join(f"{a}={m}" for a, m in p.aliases.items() if a != m) or "-"
        t.add_row(p.name, url, key, str(p.concurrency), f"{p.rpm:g}" if p.rpm else "-", p.structured, aliases)
    console().print(t)


@providers_app.command("check")
def providers_check(
    names: Annotated[Optional[list[str]], typer.Argument(help="providers to check (default: local and every provider whose key is set)")] = None,
) -> None:
    """Ask each provider one tiny question and report latency or the error."""
    import asyncio

    from arena.errors import ArenaError
    from arena.llm.service import check_providers

    try:
        results = asyncio.run(check_providers(names))
    except ArenaError as exc:
        fail(str(exc))
    bad = 0
    for name, ok, detail in results:
        typer.echo(f"{name:10} {'ok  ' if ok else 'FAIL'} {detail}")
        bad += not ok
    raise typer.Exit(1 if bad else 0)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
