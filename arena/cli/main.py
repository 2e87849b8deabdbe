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
    help="Arena: tournaments of programs that read (and simulate) each other's source, on one-shot games.\n\n"
         "`arena` alone opens the app (the terminal UI: Library, Setup, Live, Results, History) on ./arena.db "
         "(or $ARENA_DB); the commands below do the same work headless.",
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

DbOpt = Annotated[Optional[Path], typer.Option("--db", metavar="PATH", help="SQLite database (default: $ARENA_DB or ./arena.db)")]


class Display(str, Enum):
    rich = "rich"
    plain = "plain"
    none = "none"


class Simulation(str, Enum):
    run = "run"
    imagine = "imagine"


class Horizon(str, Enum):
    known = "known"
    hidden = "hidden"


class Level(str, Enum):  # engine/disclosure.py LEVELS
    full = "full"
    prompt = "prompt"
    model = "model"
    none = "none"
    obfuscated = "obfuscated"


class PromptObfuscation(str, Enum):
    shuffle = "shuffle"
    none = "none"


def fail(message: str, code: int = 2) -> None:
    from arena.llm.secrets import clean

    typer.echo(f"arena: error: {clean(message)}", err=True)  # never a key, bearer token or URL password
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
    grid: Annotated[Optional[str], typer.Option(metavar="PRESET", help="preset grid: bots (built-in bots, seconds; the default) | smoke | headline | full (LLM programs: the seed's experiments, see docs/headless.md)")] = None,
    game: Annotated[Optional[list[str]], typer.Option("--game", "-g", metavar="GAME", help="game id (repeatable)")] = None,
    program: Annotated[Optional[list[str]], typer.Option("--program", "-p", metavar="PROGRAM", help="program id or YAML path (repeatable)")] = None,
    epsilon: Annotated[Optional[list[float]], typer.Option("--epsilon", "-e", metavar="EPS", help="grounding probability in (0, 1] (repeatable)")] = None,
    max_depth: Annotated[Optional[list[int]], typer.Option("--max-depth", "-d", metavar="N", help="simulation depth cap (repeatable)")] = None,
    trials: Annotated[Optional[int], typer.Option("--trials", "-n", metavar="N", help="trials per cell")] = None,
    temperature: Annotated[Optional[list[float]], typer.Option("--temperature", metavar="T", help="override LLM temperature (repeatable)")] = None,
    rounds: Annotated[Optional[list[int]], typer.Option("--rounds", metavar="N", help="repeated game: rounds per match (repeatable; default 1, the one-shot game)")] = None,
    continuation: Annotated[Optional[list[float]], typer.Option("--continuation", metavar="P", help="repeated game: after each round the match goes on with probability P (repeatable; instead of --rounds)")] = None,
    max_rounds: Annotated[int, typer.Option("--max-rounds", metavar="N", help="cap on a match's rounds under --continuation")] = 1000,
    noise: Annotated[Optional[list[float]], typer.Option("--noise", metavar="X", help="chance each intended action is flipped to another (repeatable)")] = None,
    recall: Annotated[Optional[list[int]], typer.Option("--recall", metavar="K", help="past rounds a program is shown (repeatable; default all)")] = None,
    discount: Annotated[float, typer.Option("--discount", metavar="D", help="weight D^t of round t in the discounted total (changes no decision)")] = 1.0,
    horizon: Annotated[Horizon, typer.Option(help="known: programs are told the number of rounds; hidden: they are told None")] = Horizon.known,
    disclosure: Annotated[Optional[list[Level]], typer.Option("--disclosure", metavar="LEVEL", help="what each program is shown of its opponent: full (the default) | prompt | model | none | obfuscated (repeatable; docs/disclosure.md)")] = None,
    obfuscate_prompts: Annotated[Optional[PromptObfuscation], typer.Option("--obfuscate-prompts", help="under --disclosure obfuscated, an LLM opponent's prompt: shuffle its sentences, or none (unchanged)")] = None,
    seed: Annotated[int, typer.Option(metavar="N", help="tournament seed: same seed, same trials")] = 0,
    concurrency: Annotated[int, typer.Option(metavar="N", help="LLM calls in flight at once (each provider's own limit applies too)")] = 8,
    simulation: Annotated[Simulation, typer.Option(help="run: simulate opponents by running them; imagine: the LLM imagines")] = Simulation.run,
    provider: Annotated[Optional[str], typer.Option(metavar="PROVIDER", help="run every LLM program on this provider (model aliases mapped)")] = None,
    model: Annotated[Optional[list[str]], typer.Option("--model", metavar="PROGRAM=PROVIDER/MODEL", help="PROGRAM=provider/model override (repeatable)")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="do not read the response cache")] = False,
    name: Annotated[str, typer.Option(metavar="NAME", help="a name for the tournament")] = "",
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
    from arena.engine.grid import DEFAULT_PRESET, TournamentConfig, from_preset, preset_programs
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
            grid or DEFAULT_PRESET, programs=ids, games=game, epsilons=epsilon, max_depths=max_depth, trials=trials,
            temperatures=temperature,
        )
        if not lib.entries and not ids:
            fail(f"no programs to play: {lib.programs_path} holds none; add YAML files there or pass --program FILE")
        if "programs" not in fields:
            fields["programs"] = list(lib.entries)
        match = {k: v for k, v in (("rounds", rounds), ("continuations", continuation), ("noises", noise),
                                   ("recalls", recall)) if v}
        if disclosure:
            match["disclosures"] = [d.value for d in disclosure]
        if obfuscate_prompts is not None:
            match["obfuscate_prompts"] = obfuscate_prompts.value
        config = TournamentConfig(
            **fields, **match, max_rounds=max_rounds, discount=discount, horizon=horizon.value, seed=seed,
            concurrency=concurrency, simulation=simulation.value, provider=provider, models=models,
            cache=not no_cache, name=name,
        )
        _smoke(lib, config)
        programs = lib.programs
        if not ids:  # an LLM preset's own programs (prompt x model x temperature), unless --program chose
            programs = {**programs, **preset_programs(grid or DEFAULT_PRESET, programs)}
        with _store(db) as store:
            if detach:
                _detach(store, config, lib, new=new, programs=programs)
            else:
                _run_tournament(store, config, lib, display, new=new, programs=programs)
    except ValidationError as exc:
        fail(_config_error(exc))
    except ArenaError as exc:
        fail(str(exc))


@app.command()
def resume(
    tournament: Annotated[Optional[int], typer.Argument(metavar="ID", help="tournament id (default: the latest)")] = None,
    concurrency: Annotated[Optional[int], typer.Option(metavar="N", min=1, max=1024, help="LLM calls in flight at once for this run (default: the stored value)")] = None,
    name: Annotated[Optional[str], typer.Option(metavar="NAME", help="rename the tournament")] = None,
    db: DbOpt = None,
    display: Annotated[Display, typer.Option(help="progress display")] = Display.rich,
    detach: Annotated[bool, typer.Option("--detach", help="resume it in a background runner process and return")] = False,
) -> None:
    """Finish exactly the missing trials of an interrupted or cancelled tournament."""
    from arena.errors import ArenaError

    try:
        with _store(db) as store:
            from arena.cli.iterate import iterate_run_of, run_iterate

            run = iterate_run_of(store, tournament)
            if run is not None:  # an iterate run's tournament: continue the run
                return run_iterate(store, fields=None, resume=run, out=None, quiet=display == Display.none)
            if detach:
                _detach(store, None, None, resume_id=tournament)
            else:
                _run_tournament(store, None, None, display, resume_id=tournament,
                                settings={"concurrency": concurrency, "name": name})
    except ArenaError as exc:
        fail(str(exc))


@app.command()
def replay(
    tournament: Annotated[int, typer.Argument(metavar="ID", help="the tournament to replay")],
    db: DbOpt = None,
    display: Annotated[Display, typer.Option(help="progress display")] = Display.rich,
) -> None:
    """Rebuild a tournament's trials from its own stored LLM calls (no provider contacted) and check them.

    Records a new tournament marked as a replay of TOURNAMENT; exits 0 when every trial equals the stored
    one, 1 (listing where) when any differs.
    """
    from arena.errors import ArenaError
    from arena.runner.replay import compare, replay_runner

    try:
        with _store(db) as store:
            source = store.tournament(tournament).id
            made = []

            def make(backend, sink):
                made.append(replay_runner(store, source, sink=sink))
                return made[0]

            _run_tournament(store, None, None, display, make_runner=make)
            differ = compare(store, source, made[0].tournament_id)
            stored = store.count_trials(source)
    except ArenaError as exc:
        fail(str(exc))
    rid = made[0].tournament_id
    if differ:
        typer.echo(f"Replay {rid} of tournament {source}: {len(differ)} of {stored} trials differ "
                   f"(grid positions {', '.join(map(str, differ[:10]))}{', ...' if len(differ) > 10 else ''})")
        raise typer.Exit(1)
    typer.echo(f"Replay {rid} of tournament {source}: {stored}/{stored} trials identical, no provider contacted")


@app.command()
def attach(
    tournament: Annotated[Optional[int], typer.Argument(metavar="ID", help="tournament id (default: the newest running one)")] = None,
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


def _detach(store, config, lib, new: bool = False, resume_id: int | None = None, programs: dict | None = None) -> None:
    """Start the tournament (or resume `resume_id`) in a runner process; print its id and return."""
    from arena.runner.process import resume_detached, start_detached

    if config is None:
        started = resume_detached(store, resume_id, backend=_backend(store))
    else:
        started = start_detached(store, config, programs or lib.programs, lib.games, new=new, backend=_backend(store))
        if started.reused:
            typer.echo(f"Same tournament as stored tournament {started.tournament_id}: running only its missing "
                       "trials (--new records a fresh one).", err=True)
    tid = started.tournament_id
    typer.echo(str(tid))
    typer.echo(f"tournament {tid} runs in the background (runner pid {started.pid}); follow it with: "
               f"arena attach {tid}{_db_flag(store)}; stop it with: kill {started.pid}", err=True)


# TournamentConfig fields as the `arena run` options that set them
_OPTIONS = {"programs": "--program", "games": "--game", "epsilons": "--epsilon", "max_depths": "--max-depth",
            "temperatures": "--temperature", "trials": "--trials", "concurrency": "--concurrency", "models": "--model",
            "rounds": "--rounds", "continuations": "--continuation", "noises": "--noise", "recalls": "--recall",
            "max_rounds": "--max-rounds", "discount": "--discount", "disclosures": "--disclosure",
            "obfuscate_prompts": "--obfuscate-prompts"}


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


def _run_tournament(store, config, lib, display: Display, resume_id: int | None = None, new: bool = False,
                    settings: dict | None = None, programs: dict | None = None, make_runner=None) -> None:
    import asyncio
    import signal

    from arena.runner.tournament import TournamentRunner
    from arena.cli.progress import ProgressDisplay

    shown = ProgressDisplay(display.value)
    if make_runner is not None:
        runner = make_runner(None, shown.event)
    elif resume_id is not None or config is None:
        runner = TournamentRunner.resume(store, resume_id, backend=_backend(store, shown.event), sink=shown.event,
                                         **(settings or {}))
    else:
        runner = TournamentRunner.create(store, config, programs or lib.programs, lib.games, new=new,
                                         backend=_backend(store, shown.event), sink=shown.event)
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


def _smoke(lib, config) -> None:
    """Refuse code programs that fail their smoke test in the chosen games (file:line, exit 2)."""
    from arena.engine.smoke import smoke_problems
    from arena.errors import ConfigError

    entries = [lib.entries[p] for p in config.programs if p in lib.entries]
    problems = smoke_problems(entries, [lib.games[g] for g in config.games if g in lib.games])
    if problems:
        raise ConfigError(problems)


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
        t.add_row(g.id, g.name, " ".join(g.actions), " ".join(f"({a},{b})" for a, b in g.cooperative), g.default_label)
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
    t = Table("id", "name", "status", "trials", "games", "programs", "started", "reason", "runner pid")
    for r in rows:
        started = dt.datetime.fromtimestamp(r.started_at or r.created_at).strftime("%Y-%m-%d %H:%M")
        status = r.display_status
        t.add_row(str(r.id), r.name or "", status, f"{r.done}/{r.total_trials}",
                  ",".join(r.config["games"]), str(len(r.config["programs"])), started, r.reason or "",
                  str(r.runner_pid) if status == "running" else "-")
    console().print(t)


@tournaments_app.command("show")
def tournaments_show(tournament: Annotated[Optional[int], typer.Argument(metavar="ID")] = None, db: DbOpt = None) -> None:
    """The summary table of a stored tournament (default: the latest)."""
    from arena.errors import ArenaError
    from arena.cli.progress import print_summary

    try:
        with _store(db) as store:
            row = store.tournament(tournament)
            print_summary(store, row.id)
            if row.reason:
                typer.echo(f"{row.display_status}: {row.reason}")
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
    supports = "supports"
    depths = "depths"
    replicator = "replicator"
    moran = "moran"
    calls = "calls"
    matches = "matches"
    match_programs = "match_programs"
    rounds = "rounds"
    lengths = "lengths"
    disclosure = "disclosure"
    all = "all"


class ExportPlot(str, Enum):
    coop_vs_eps = "coop-vs-eps"
    payoff_heatmap = "payoff-heatmap"
    depth_hist = "depth-hist"
    replicator = "replicator"
    coop_by_round = "coop-by-round"
    value_of_disclosure = "value-of-disclosure"
    all = "all"


@app.command("iterate")
def iterate_cmd(
    game: Annotated[Optional[str], typer.Option("--game", "-g", metavar="GAME", help="game id")] = None,
    model: Annotated[Optional[str], typer.Option("--model", metavar="PROVIDER/MODEL", help="the writer: provider/model")] = None,
    rounds: Annotated[Optional[int], typer.Option("--rounds", metavar="K", help="best-response: K rounds (row then column each; default 2); meta-rounds: each match's rounds (default 10)")] = None,
    steps: Annotated[int, typer.Option("--steps", metavar="T", help="T: improvement steps per player and round")] = 3,
    episodes: Annotated[int, typer.Option("--episodes", metavar="N", help="N: trials per candidate against the opponent")] = 5,
    seed: Annotated[int, typer.Option(metavar="N", help="run seed")] = 0,
    start_row: Annotated[Optional[str], typer.Option("--start-row", metavar="PROGRAM", help="starting row program (id or YAML); default: uniformly random")] = None,
    start_col: Annotated[Optional[str], typer.Option("--start-col", metavar="PROGRAM", help="starting column program (id or YAML)")] = None,
    epsilon: Annotated[float, typer.Option("--epsilon", "-e", metavar="EPS", help="grounding probability in (0, 1]")] = 0.2,
    max_depth: Annotated[int, typer.Option("--max-depth", "-d", metavar="N", help="simulation depth cap")] = 5,
    kind: Annotated[str, typer.Option("--kind", metavar="code|prompt", help="code: the writer writes decide(ctx); prompt: an LLM program's system prompt")] = "code",
    max_tokens: Annotated[int, typer.Option("--max-tokens", metavar="N", help="the writer's answer length cap")] = 1024,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", metavar="PATH", help="directory for the final pair's program files")] = None,
    resume: Annotated[Optional[int], typer.Option("--resume", metavar="ID", help="continue a stored iterate run")] = None,
    list_runs: Annotated[bool, typer.Option("--list", help="list the stored iterate runs and exit")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress lines")] = False,
    protocol: Annotated[str, typer.Option("--protocol", metavar="best-response|meta-rounds", help="best-response: PIBR; meta-rounds: both writers rewrite each meta-round, then the pair plays a match")] = "best-response",
    meta_rounds: Annotated[Optional[int], typer.Option("--meta-rounds", metavar="K", help="meta-rounds: K meta-rounds (default 10)")] = None,
    persona_row: Annotated[Optional[str], typer.Option("--persona-row", metavar="PERSONA", help="meta-rounds: cpm, dpm, pm or a persona file (YAML, Markdown); default pm")] = None,
    persona_col: Annotated[Optional[str], typer.Option("--persona-col", metavar="PERSONA", help="meta-rounds: the column writer's persona")] = None,
    model_col: Annotated[Optional[str], typer.Option("--model-col", metavar="PROVIDER/MODEL", help="meta-rounds: the column's writer (default --model)")] = None,
    retries: Annotated[Optional[int], typer.Option("--retries", metavar="R", help="meta-rounds: rewrites of a program that fails its checks (default 2)")] = None,
    judge: Annotated[Optional[str], typer.Option("--judge", metavar="PROVIDER/MODEL", help="meta-rounds: an LLM judge labels each rewrite")] = None,
    seeds: Annotated[Optional[str], typer.Option("--seeds", metavar="A-B|A,B,...", help="meta-rounds: run the protocol once per seed")] = None,
    continuation: Annotated[Optional[float], typer.Option("--continuation", metavar="P", help="meta-rounds: matches go on after each round with probability P (instead of --rounds)")] = None,
    noise: Annotated[Optional[float], typer.Option("--noise", metavar="X", help="meta-rounds: chance each intended action is flipped")] = None,
    db: DbOpt = None,
) -> None:
    """Iterated programs: best response (PIBR, one player at a time) or meta-rounds (both at once)."""
    from pydantic import ValidationError

    from arena.cli.iterate import run_iterate
    from arena.errors import ArenaError

    fields = None
    if list_runs:
        from arena.cli.iterate import list_runs as show_runs

        with _store(db) as store:
            return show_runs(store)
    if resume is None:
        if game is None or model is None:
            fail("--game and --model are required (or --resume RUN)")
        fields = {"game": game, "model": model, "rounds": rounds, "steps": steps, "episodes": episodes, "seed": seed,
                  "epsilon": epsilon, "max_depth": max_depth, "kind": kind, "max_tokens": max_tokens, "start_row_arg": start_row,
                  "start_col_arg": start_col, "protocol": protocol}
        meta = {"meta_rounds": meta_rounds, "persona_row_arg": persona_row, "persona_col_arg": persona_col,
                "model_col": model_col, "retries": retries, "judge": judge, "seeds_arg": seeds,
                "continuation": continuation, "noise": noise}
        if protocol == "meta-rounds":  # resolved by cli/iterate.py (personas, seeds, defaults)
            fields |= meta
        else:
            given = [k for k, v in meta.items() if v is not None]
            if given:
                flag = "--" + given[0].removesuffix("_arg").replace("_", "-")
                fail(f"{flag} goes with --protocol meta-rounds")
            if rounds is None:
                fields["rounds"] = 2
    try:
        with _store(db) as store:
            run_iterate(store, fields=fields, resume=resume, out=out, quiet=quiet)
    except ValidationError as exc:
        fail("invalid iterate run: " + "; ".join(
            f"--{'.'.join(map(str, e['loc'])).replace('_', '-')}: {e['msg']}" for e in exc.errors(include_url=False)))
    except ArenaError as exc:
        fail(str(exc))


@app.command("export")
def export_cmd(
    format: Annotated[Optional[ExportFormat], typer.Option("--format", "-f", help="csv, json, markdown, latex: tables; png, svg: plots")] = None,
    tournament: Annotated[Optional[int], typer.Option("--tournament", "-t", metavar="ID", help="tournament id (default: the latest)")] = None,
    table: Annotated[Optional[ExportTable], typer.Option(help="the table (default: pairs for csv, all otherwise)")] = None,
    plot: Annotated[Optional[ExportPlot], typer.Option(help="the plot (default: all)")] = None,
    out: Annotated[Optional[str], typer.Option("--out", "-o", metavar="PATH", help="file to write; '-' or none: stdout for text formats; a directory for all plots")] = None,
    schema: Annotated[bool, typer.Option("--schema", help="print the JSON Schema of --format json exports and exit")] = False,
    bootstrap: Annotated[int, typer.Option("--bootstrap", metavar="B", min=0, help="bootstrap resamples behind the meta-game's intervals and verdicts (0: none)")] = 1000,
    population: Annotated[int, typer.Option("--population", metavar="N", min=2, help="population size N of the Moran table")] = 10,
    iterate: Annotated[Optional[int], typer.Option("--iterate", metavar="ID", help="an iterate run: its steps table, or its welfare plot (png, svg)")] = None,
    db: DbOpt = None,
) -> None:
    """Export a stored tournament's tables or plots (see docs/analysis.md)."""
    import json

    from arena.analysis import export as ex
    from arena.errors import ArenaError

    if schema:
        typer.echo(json.dumps(ex.json_schema(), indent=2))
        return
    if format is None:
        fail(f"--format is required: {' | '.join(ex.FORMATS)}")
    fmt = format.value
    if iterate is not None:
        from arena.cli.iterate import export_iterate

        return export_iterate(_store, db, iterate, fmt, out)
    try:
        with _store(db) as store:
            tid = store.tournament(tournament).id
            if fmt in ex.TEXT_FORMATS and (out is None or out == "-"):
                if plot is not None:
                    fail("--plot goes with --format png or svg")
                sys.stdout.write(ex.render(store, tid, fmt, table.value if table else None, bootstrap, population))
                return
            if fmt in ex.PLOT_FORMATS and out == "-":
                fail(f"{fmt} plots need a file: --out PATH (or no --out for the default names)")
            paths = ex.export(store, tid, fmt, Path(out) if out else None, table.value if table else None,
                              plot.value if plot else None, bootstrap, population)
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
    from arena.llm.redaction import public_url, split_credentials
    from arena.llm.registry import load_providers
    from arena.cli.progress import console

    try:
        registry = load_providers()
    except ArenaError as exc:
        fail(str(exc))
    t = Table("provider", "endpoint", "key", "concurrency", "rpm", "constraint", "aliases")
    for p in registry.values():
        key = "-" if not p.key_env else f"{p.key_env} ({'set' if os.environ.get(p.key_env) else 'NOT SET'})"
        raw = p.url(os.environ)
        url, secret = public_url(raw), split_credentials(raw)[1]
        url = (url + " (credentials hidden)" if secret else url) or (
            "embedded" if p.name == "local" else f"set {p.base_url_env}")
        if p.base_urls:  # an endpoint pool: its replicas, and concurrency per replica
            url = ", ".join(public_url(u) or "" for u in p.base_urls)
        n = len(p.base_urls or []) or p.replicas
        aliases = ", ".join(f"{a}={m}" for a, m in p.aliases.items() if a != m) or "-"
        t.add_row(p.name, url, key, f"{p.concurrency} x {n} replicas" if n > 1 else str(p.concurrency),
                  f"{p.rpm:g}" if p.rpm else "-", p.structured, aliases)
    console().print(t)


@providers_app.command("check")
def providers_check(
    names: Annotated[Optional[list[str]], typer.Argument(metavar="PROVIDER...", help="providers to check (default: local and every provider whose key is set)")] = None,
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
