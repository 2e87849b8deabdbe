"""`arena iterate`: the PIBR loop headless (start or resume), progress lines, the final pair and welfare."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from arena.errors import ArenaError


def _program_arg(lib, value: str | None) -> dict | None:
    from arena.library.programs import load_program_entries

    if value is None:
        return None
    if value.endswith((".yaml", ".yml")) or Path(value).is_file():
        entries = load_program_entries([Path(value)])
        if len(entries) != 1:
            raise ArenaError(f"{value}: expected exactly one program, found {len(entries)}")
        prog = next(iter(entries.values())).program
    elif value in lib.programs:
        prog = lib.programs[value]
    else:
        raise ArenaError(f"unknown program '{value}'. Known: {', '.join(sorted(lib.programs))}")
    return prog.model_dump(mode="json", by_alias=True)


def run_iterate(store, *, fields: dict | None, resume: int | None, out: Path | None, quiet: bool) -> None:
    from arena.iterate.loop import IterateConfig, IterateRunner, StepView
    from arena.library.catalog import load_library
    from arena.llm.service import LLMService

    def show(v: StepView) -> None:
        if quiet:
            return
        what = (f"utility {v.utility:.3g}, welfare {v.welfare:.3g}" if v.valid
                else "invalid: " + v.feedback.splitlines()[1].removeprefix("- ") if "\n" in v.feedback else "invalid")
        typer.echo(f"round {v.round} {v.player:3} step {v.step}: {v.program_id}: {what}", err=True)

    service = LLMService(store)
    if resume is not None:
        runner = IterateRunner.resume(store, resume, service, on_step=show)
    else:
        lib = load_library()
        if fields["game"] not in lib.games:
            raise ArenaError(f"unknown game '{fields['game']}'. Known: {', '.join(sorted(lib.games))}")
        fields["start_row"] = _program_arg(lib, fields.pop("start_row_arg"))
        fields["start_col"] = _program_arg(lib, fields.pop("start_col_arg"))
        fields["out"] = str(out.resolve()) if out is not None else None
        cfg = IterateConfig(**fields)
        runner = IterateRunner.create(store, cfg, lib.games[cfg.game], service, on_step=show)
        if not quiet:
            typer.echo(f"iterate run {runner.run_id} (tournament {runner.tid} holds its trials)", err=True)
    if out is None and runner.cfg.out:
        out = Path(runner.cfg.out)
    try:
        result = asyncio.run(runner.run(out))
    except KeyboardInterrupt:
        typer.echo(f"\nInterrupted: every finished step is stored. Resume with: arena iterate --resume "
                   f"{runner.run_id} --db {store.path}", err=True)
        raise typer.Exit(130)
    for p in result.files:
        typer.echo(f"wrote {p}", err=True)
    w, k, player = result.best
    typer.echo(f"final social welfare: {result.welfare:g}")
    typer.echo(f"best profile in the history (the paper's choice): welfare {w:g} after round {k} ({player})")
    typer.echo(f"writer calls: {result.calls} (not cached)")


def export_iterate(open_store, db: Path | None, run_id: int, fmt: str, out: str | None) -> None:
    """`arena export --iterate RUN`: the steps table (csv, json, markdown, latex) or the welfare plot."""
    import sys

    from arena.analysis import iterate as ex
    from arena.analysis.export import PLOT_FORMATS

    try:
        with open_store(db) as store:
            if fmt in PLOT_FORMATS:
                path = Path(out) if out and out != "-" else Path(f"arena-iterate-{run_id}-welfare.{fmt}")
                ex.save_plot(store, run_id, path, fmt)
                typer.echo(f"wrote {path}", err=True)
                return
            text = ex.render(store, run_id, fmt)
    except ArenaError as exc:
        typer.echo(f"arena: error: {exc}", err=True)
        raise typer.Exit(2)
    if out is None or out == "-":
        sys.stdout.write(text)
    else:
        try:
            Path(out).write_text(text, encoding="utf-8")
        except OSError as exc:
            typer.echo(f"arena: error: cannot write {out}: {exc.strerror or exc}", err=True)
            raise typer.Exit(2)
        typer.echo(f"wrote {out}", err=True)


def list_runs(store) -> None:
    from arena.store import iterate as db

    runs = db.runs(store)
    if not runs:
        typer.echo(f"no iterate runs in {store.path} yet")
        return
    typer.echo(f"{'run':>4}  {'game':22} {'writer':28} {'kind':6} {'K×T×N':9} {'status':9} {'welfare':>8} {'best':>8}")
    for r in runs:
        c = r["config"]
        w = lambda x: "" if x is None else f"{x:g}"
        typer.echo(f"{r['id']:>4}  {c['game']:22} {c['model']:28} {c['kind']:6} "
                   f"{c['rounds']}×{c['steps']}×{c['episodes']:<5} {r['status']:9} {w(r['welfare']):>8} "
                   f"{w(r['best_welfare']):>8}")


def iterate_run_of(store, tournament: int | None) -> int | None:
    """The iterate run whose trials tournament `tournament` (None: the latest) holds, if it is one."""
    row = store.tournament(tournament)
    if row.fingerprint != "iterate":
        return None
    runs = store.query("SELECT id FROM iterate_runs WHERE tournament_id=?", (row.id,))
    return runs[0]["id"] if runs else None
