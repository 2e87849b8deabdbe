"""The `arena` command: the TUI by default, subcommands for headless work.

The app object and its wiring: each command group lives in a module of its own (runs.py: run, resume,
replay, attach; library.py: games, programs; tournaments.py; export.py; providers.py; iterate.py). Heavy
modules (pydantic models, sqlite-utils, openai, textual) are imported inside the commands so that
`arena --help` starts fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from arena.cli import export, runs
from arena.cli.common import DbOpt, fail
from arena.cli.common import open_store as _store
from arena.cli.library import games_app, programs_app
from arena.cli.providers import providers_app
from arena.cli.tournaments import tournaments_app

app = typer.Typer(
    help="Arena: tournaments of programs that read (and simulate) each other's source, on one-shot, repeated and Markov games.\n\n"
         "`arena` alone opens the app (the terminal UI: Library, Setup, Live, Results, History) on ./arena.db "
         "(or $ARENA_DB); the commands below do the same work headless.",
    no_args_is_help=False,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
app.add_typer(games_app, name="games")
app.add_typer(programs_app, name="programs")
app.add_typer(tournaments_app, name="tournaments")
app.add_typer(providers_app, name="providers")

__all__ = ["app", "fail", "main"]


@app.callback(invoke_without_command=True)
def root(ctx: typer.Context, db: DbOpt = None) -> None:
    """With no command, open the app."""
    if ctx.invoked_subcommand is None:
        from arena.tui import launch

        launch(db=db, attach=True)
        raise typer.Exit(0)


app.command()(runs.run)
app.command()(runs.resume)
app.command()(runs.replay)
app.command()(runs.attach)


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
    temperature: Annotated[Optional[float], typer.Option("--temperature", metavar="T", help="the writer's sampling temperature (default 0.7; 0.2 suits local/writer)")] = None,
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
        if temperature is not None:
            fields["temperature"] = temperature
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


app.command("export")(export.export_cmd)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
