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


def parse_seeds(value: str) -> list[int]:
    """`--seeds`: a range A-B (inclusive) or a comma-separated list."""
    import re

    m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", value)
    try:
        seeds = list(range(int(m[1]), int(m[2]) + 1)) if m else [int(x) for x in value.split(",")]
    except ValueError:
        seeds = []
    if not seeds:
        raise ArenaError(f"--seeds: '{value}' is not a range A-B or a list A,B,... of integers")
    return seeds


def meta_fields(fields: dict) -> dict:
    """The meta-rounds fields of `arena iterate`'s options: personas loaded (a bad file: ConfigError naming
    it), seeds parsed, the match's rounds defaulted (10, or 1 under --continuation)."""
    from arena.library.personas import load_persona

    fields = dict(fields)
    for seat in ("row", "col"):
        arg = fields.pop(f"persona_{seat}_arg")
        fields[f"persona_{seat}"] = load_persona(arg, f"--persona-{seat}").model_dump() if arg is not None else None
    seeds = fields.pop("seeds_arg")
    fields["seeds"] = parse_seeds(seeds) if seeds is not None else None
    if fields["rounds"] is None:
        fields["rounds"] = 1 if fields.get("continuation") is not None else 10
    return {k: v for k, v in fields.items() if v is not None or k.startswith("persona_")}  # None: the default


def _runner(cls, store, resume: int | None, fields: dict | None, out: Path | None, on_step, protocol_fields):
    """A runner of `cls` (IterateRunner, MetaRoundsRunner): run `resume` resumed, or a new run of the options'
    `fields`: its game known to the library (else ArenaError), `protocol_fields(lib, fields)` the protocol's own
    fields from their options, --out made absolute."""
    from arena.iterate.loop import IterateConfig
    from arena.library.catalog import load_library
    from arena.llm.service import LLMService

    service = LLMService(store)
    if resume is not None:
        return cls.resume(store, resume, service, on_step=on_step)
    lib = load_library()
    if fields["game"] not in lib.games:
        raise ArenaError(f"unknown game '{fields['game']}'. Known: {', '.join(sorted(lib.games))}")
    fields = protocol_fields(lib, dict(fields))
    fields["out"] = str(out.resolve()) if out is not None else None
    cfg = IterateConfig(**fields)
    from arena.iterate.process import check_writer

    check_writer(store, cfg, service)  # a writer's provider without its key or URL: said before a run is recorded
    return cls.create(store, cfg, lib.games[cfg.game], service, on_step=on_step)


def _until_interrupted(coro, runner, store, what: str):
    """Run `coro` (the runner's run) to its end; Ctrl-C: how to resume, exit 130 (every finished `what` is
    stored)."""
    try:
        return asyncio.run(coro)
    except KeyboardInterrupt:
        typer.echo(f"\nInterrupted: every finished {what} is stored. Resume with: arena iterate --resume "
                   f"{runner.run_id} --db {store.path}", err=True)
        raise typer.Exit(130)


def run_iterate(store, *, fields: dict | None, resume: int | None, out: Path | None, quiet: bool) -> None:
    from arena.iterate.loop import IterateRunner, StepView
    from arena.store import iterate as db

    if resume is not None and db.run_row(store, resume)["config"].get("protocol") == "meta-rounds":
        return run_meta_rounds(store, fields=None, resume=resume, out=out, quiet=quiet)
    if fields is not None and fields.get("protocol") == "meta-rounds":
        return run_meta_rounds(store, fields=fields, resume=None, out=out, quiet=quiet)

    def show(v: StepView) -> None:
        if quiet:
            return
        what = (f"utility {v.utility:.3g}, welfare {v.welfare:.3g}" if v.valid
                else "invalid: " + v.feedback.splitlines()[1].removeprefix("- ") if "\n" in v.feedback else "invalid")
        typer.echo(f"round {v.round} {v.player:3} step {v.step}: {v.program_id}: {what}", err=True)

    def start_programs(lib, fields: dict) -> dict:
        fields["start_row"] = _program_arg(lib, fields.pop("start_row_arg"))
        fields["start_col"] = _program_arg(lib, fields.pop("start_col_arg"))
        return fields

    runner = _runner(IterateRunner, store, resume, fields, out, show, start_programs)
    if resume is None and not quiet:
        typer.echo(f"iterate run {runner.run_id} (tournament {runner.tid} holds its trials)", err=True)
    if out is None and runner.cfg.out:
        out = Path(runner.cfg.out)
    result = _until_interrupted(runner.run(out), runner, store, "step")
    for p in result.files:
        typer.echo(f"wrote {p}", err=True)
    w, k, player = result.best
    typer.echo(f"final social welfare: {result.welfare:g}")
    typer.echo(f"best profile in the history (the paper's choice): welfare {w:g} after round {k} ({player})")
    typer.echo(f"writer calls: {result.calls} (not cached)")


def run_meta_rounds(store, *, fields: dict | None, resume: int | None, out: Path | None, quiet: bool) -> None:
    """`arena iterate --protocol meta-rounds` (start or resume): a line per attempt and meta-round, then the
    per-meta-round payoffs; with --out, each seed's last pair as program files."""
    from arena.iterate.metarounds import MetaRoundView, MetaRoundsRunner, ProgramView

    def show(v: ProgramView | MetaRoundView) -> None:
        if quiet:
            return
        if isinstance(v, ProgramView):
            what = ("ok" if v.valid else "failed: " + (v.errors[0] if v.errors else "?"))
            if v.metrics:
                what += (f" (SLOC {v.metrics['sloc']}, complexity {v.metrics['complexity']}, opponent use "
                         f"{v.metrics['opponent_use']})")
            if v.label:
                what += f", judged: {v.label}"
            typer.echo(f"seed {v.seed} meta-round {v.meta_round} {v.seat:3} attempt {v.attempt}: {v.program_id}: "
                       f"{what}", err=True)
        else:
            typer.echo(f"seed {v.seed} meta-round {v.meta_round}: payoffs row {v.row_payoff:.4g}, col "
                       f"{v.col_payoff:.4g} per round (totals {v.row_total:.4g}, {v.col_total:.4g})", err=True)

    def no_start_programs(_lib, fields: dict) -> dict:
        for seat in ("row", "col"):
            if fields.pop(f"start_{seat}_arg") is not None:
                raise ArenaError(f"--start-{seat} goes with --protocol best-response (meta-rounds starts from "
                                 "what the writers write)")
        return meta_fields(fields)

    runner = _runner(MetaRoundsRunner, store, resume, fields, out, show, no_start_programs)
    if resume is None and not quiet:
        typer.echo(f"iterate run {runner.run_id} (meta-rounds; tournament {runner.tid} holds its matches)",
                   err=True)
    result = _until_interrupted(runner.run(), runner, store, "attempt and meta-round")
    if out is None and runner.cfg.out:
        out = Path(runner.cfg.out)
    if out is not None:
        from arena.iterate.metarounds import write_pairs

        for p in write_pairs(store, runner.run_id, out):
            typer.echo(f"wrote {p}", err=True)
    for r in result.rounds:
        typer.echo(f"seed {r['seed']} meta-round {r['meta_round']}: row {r['row_payoff']:.4g}, col "
                   f"{r['col_payoff']:.4g} per round")
    typer.echo(f"writer calls: {result.calls} (not cached)")


def export_iterate(open_store, db: Path | None, run_id: int, fmt: str, out: str | None) -> None:
    """`arena export --iterate RUN`: the steps table (csv, json, markdown, latex) or the welfare plot; of a
    meta-rounds run, the meta-rounds table (with the sources, the payoffs over seeds and the population's
    dynamics in json and markdown) or the payoff-over-meta-rounds plot."""
    import sys

    from arena.analysis import iterate as steps_export
    from arena.analysis import metarounds as meta_export
    from arena.analysis.export import PLOT_FORMATS
    from arena.store import iterate as runs_db

    try:
        with open_store(db) as store:
            meta = runs_db.run_row(store, run_id)["config"].get("protocol") == "meta-rounds"
            ex = meta_export if meta else steps_export
            if fmt in PLOT_FORMATS:
                what = "payoffs" if meta else "welfare"
                path = Path(out) if out and out != "-" else Path(f"arena-iterate-{run_id}-{what}.{fmt}")
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
        kind, size = c["kind"], f"{c['rounds']}×{c['steps']}×{c['episodes']:<5}"
        if c.get("protocol") == "meta-rounds":  # K meta-rounds × R rounds × N matches
            kind, size = "meta", f"{c['meta_rounds']}×{c['rounds']}×{c['episodes']:<5}"
        typer.echo(f"{r['id']:>4}  {c['game']:22} {c['model']:28} {kind:6} "
                   f"{size} {r['status']:9} {w(r['welfare']):>8} "
                   f"{w(r['best_welfare']):>8}")


def iterate_run_of(store, tournament: int | None) -> int | None:
    """The iterate run whose trials tournament `tournament` (None: the latest) holds, if it is one."""
    row = store.tournament(tournament)
    if row.fingerprint != "iterate":
        return None
    runs = store.query("SELECT id FROM iterate_runs WHERE tournament_id=?", (row.id,))
    return runs[0]["id"] if runs else None
