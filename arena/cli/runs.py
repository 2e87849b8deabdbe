"""`arena run`, `resume`, `replay` and `attach`: a tournament headless, in the foreground or in a runner
process, and the app attached to a running one."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from arena.cli.common import DbOpt, fail, open_store


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
        with open_store(db) as store:
            if detach:
                _detach(store, config, lib, new=new, programs=programs)
            else:
                _run_tournament(store, config, lib, display, new=new, programs=programs)
    except ValidationError as exc:
        fail(_config_error(exc))
    except ArenaError as exc:
        fail(str(exc))


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
        with open_store(db) as store:
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
        with open_store(db) as store:
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


def attach(
    tournament: Annotated[Optional[int], typer.Argument(metavar="ID", help="tournament id (default: the newest running one)")] = None,
    db: DbOpt = None,
) -> None:
    """Open the app on a tournament running in a runner process (Live, as if started there)."""
    from arena.errors import ArenaError
    from arena.runner.process import running_runner

    try:
        with open_store(db) as store:
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

    from arena.runner.gcsettle import settle

    settle()
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
