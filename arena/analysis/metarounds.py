"""Exports of a meta-rounds run: the per-meta-round table, payoffs over seeds, every program's source, the
payoff-over-meta-rounds plot, and the evolutionary dynamics of a persona × model population.

- `round_rows`: one row per (seed, meta-round): both programs (ids, hashes, whether the writer failed),
  their payoffs (mean per round and mean match total over the matches) and the played programs' metrics
  (library/codemetrics.py) and judge labels.
- `seed_rows`: per meta-round and seat, the mean payoff per round over the seeds with its 95% interval
  (mean ± 1.96·s/√n, stats.mean_ci; none for one seed).
- `population`: the types are (persona, writer model) pairs; U[i][j] is type i's mean payoff per round
  against type j over every stored meta-round (all seeds) of the finished meta-rounds runs of the same
  condition (game, ε, depth, match rules) in which i sat at one seat and j at the other (i's payoff from
  whichever seat it sat in). With every cell of U known, the replicator dynamics and Moran fixation
  probabilities of analysis/dynamics.py; otherwise the pairs still missing.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from arena.analysis.dynamics import MoranRow, ReplicatorRow, moran_rows, replicator_rows
from arena.analysis.export import markdown_table, write_figure
from arena.analysis.runexport import run_json, run_table
from arena.analysis.stats import mean_ci
from arena.store import iterate as db
from arena.store.database import Store

SEATS = ("row", "col")


class MetaRoundRow(BaseModel):
    run: int
    seed: int
    meta_round: int
    row_program: str
    col_program: str
    row_hash: str
    col_hash: str
    row_failed: bool
    col_failed: bool
    row_payoff: float | None  # mean per round over the matches
    col_payoff: float | None
    row_total: float | None  # mean match total
    col_total: float | None
    row_sloc: int | None
    col_sloc: int | None
    row_complexity: int | None
    col_complexity: int | None
    row_halstead: float | None
    col_halstead: float | None
    row_opponent_use: int | None
    col_opponent_use: int | None
    row_ctx_fields: list[str]
    col_ctx_fields: list[str]
    row_label: str | None
    col_label: str | None


class SeedRow(BaseModel):
    """A meta-round's payoff per round for one seat over the run's seeds."""

    meta_round: int
    seat: str
    seeds: int
    mean: float | None
    ci_low: float | None
    ci_high: float | None


class ProgramSource(BaseModel):
    seed: int
    meta_round: int
    seat: str
    attempt: int
    program: str
    hash: str | None
    valid: bool
    error: str | None
    label: str | None
    source: str | None


class Population(BaseModel):
    types: list[str]
    payoffs: list[list[float | None]]  # U[i][j]: type i's mean payoff per round against type j
    missing: list[list[str]]  # [i, j] pairs with no meta-round yet (then no dynamics)
    runs: list[int]
    replicator: list[ReplicatorRow] = []
    moran: list[MoranRow] = []


def round_rows(store: Store, run_id: int | None = None) -> list[MetaRoundRow]:
    run = db.run_row(store, run_id)
    progs = {p["program_id"]: p for p in db.meta_programs(store, run["id"])}
    rows = []
    for r in db.meta_rounds(store, run["id"]):
        seat = {s: progs.get(r[f"{s}_program"]) or _start_metrics(store, r[f"{s}_hash"]) for s in SEATS}
        extra = {}
        for s in SEATS:
            p = seat[s]
            extra |= {f"{s}_sloc": p.get("sloc"), f"{s}_complexity": p.get("complexity"),
                      f"{s}_halstead": p.get("halstead_volume"), f"{s}_opponent_use": p.get("opponent_use"),
                      f"{s}_ctx_fields": p.get("ctx_fields") or [],
                      # a label describes the rewrite of this meta-round, not a program played again
                      f"{s}_label": None if r[f"{s}_failed"] else p.get("label")}
        rows.append(MetaRoundRow(run=run["id"], seed=r["seed"], meta_round=r["meta_round"],
                                 row_program=r["row_program"], col_program=r["col_program"], row_hash=r["row_hash"],
                                 col_hash=r["col_hash"], row_failed=bool(r["row_failed"]),
                                 col_failed=bool(r["col_failed"]), row_payoff=r["row_payoff"],
                                 col_payoff=r["col_payoff"], row_total=r["row_total"], col_total=r["col_total"],
                                 **extra))
    return rows


def _start_metrics(store: Store, program_hash: str) -> dict:
    """The metrics of a program no writer wrote (the random start a failed writer's seat plays)."""
    from arena.library.codemetrics import metrics

    found = store.query("SELECT definition FROM programs WHERE hash=?", (program_hash,))
    source = json.loads(found[0]["definition"]).get("code") if found else None
    m = metrics(source) if isinstance(source, str) else None
    return m.model_dump() if m is not None else {}


def seed_rows(rows: list[MetaRoundRow]) -> list[SeedRow]:
    out = []
    for k in sorted({r.meta_round for r in rows}):
        for s in SEATS:
            vals = [getattr(r, f"{s}_payoff") for r in rows if r.meta_round == k]
            vals = [v for v in vals if v is not None]
            mean, lo, hi = mean_ci(sum(vals), sum(v * v for v in vals), len(vals))
            out.append(SeedRow(meta_round=k, seat=s, seeds=len(vals), mean=mean, ci_low=lo, ci_high=hi))
    return out


def sources(store: Store, run_id: int | None = None) -> list[ProgramSource]:
    run = db.run_row(store, run_id)
    return [ProgramSource(seed=p["seed"], meta_round=p["meta_round"], seat=p["seat"], attempt=p["attempt"],
                          program=p["program_id"], hash=p["program_hash"], valid=bool(p["valid"]),
                          error=p["validation"], label=p["label"], source=p["source"])
            for p in db.meta_programs(store, run["id"])]


def type_of(config: dict, seat: str) -> str:
    """A seat's type in the population: its persona's name × its writer's model."""
    persona = config.get(f"persona_{seat}") or {"name": "pm"}
    model = config["model"] if seat == "row" else (config.get("model_col") or config["model"])
    return f"{persona['name']} × {model}"


def _condition(config: dict) -> tuple:
    return (config["game"], config["epsilon"], config["max_depth"], config.get("rounds"), config.get("continuation"),
            config.get("noise", 0.0))


def population_matrix(entries: list[tuple[str, str, float, float]]) -> tuple[list[str], list[list[float | None]]]:
    """Types (sorted) and U from (row type, col type, row payoff, col payoff) entries."""
    types = sorted({t for a, b, _pa, _pb in entries for t in (a, b)})
    sums: dict[tuple[str, str], list[float]] = {}
    for a, b, pa, pb in entries:
        sums.setdefault((a, b), []).append(pa)
        sums.setdefault((b, a), []).append(pb)
    U = [[(sum(v) / len(v)) if (v := sums.get((i, j))) else None for j in types] for i in types]
    return types, U


def population(store: Store, run_id: int | None = None, N: int = 10) -> Population:
    run = db.run_row(store, run_id)
    cond = _condition(run["config"])
    entries, ids = [], []
    for r in db.runs(store):
        c = r["config"]
        if c.get("protocol") != "meta-rounds" or _condition(c) != cond or (r["status"] != "finished"
                                                                           and r["id"] != run["id"]):
            continue
        ids.append(r["id"])
        a, b = type_of(c, "row"), type_of(c, "col")
        entries += [(a, b, m["row_payoff"], m["col_payoff"]) for m in db.meta_rounds(store, r["id"])
                    if m["row_payoff"] is not None]
    types, U = population_matrix(entries)
    missing = [[types[i], types[j]] for i in range(len(types)) for j in range(len(types)) if U[i][j] is None]
    pop = Population(types=types, payoffs=U, missing=missing, runs=sorted(ids))
    if not missing and len(types) >= 2:
        key = (cond[0], run["config"]["epsilon"], run["config"]["max_depth"], None)
        pop.replicator = replicator_rows(key, types, U)
        pop.moran = moran_rows(key, types, U, N)
    return pop


HEADERS = ["seed", "meta-round", "row program", "col program", "row payoff", "col payoff", "row SLOC", "col SLOC",
           "row CC", "col CC", "row opp. use", "col opp. use", "row label", "col label"]
RIGHT = [True, True, False, False, True, True, True, True, True, True, True, True, False, False]


def _cells(r: MetaRoundRow) -> list[str]:
    f = lambda x: "" if x is None else f"{x:.4g}"
    prog = lambda s: f"{getattr(r, f'{s}_program')} ({getattr(r, f'{s}_hash')[:8]})" + (
        " failed" if getattr(r, f"{s}_failed") else "")
    return [str(r.seed), str(r.meta_round), prog("row"), prog("col"), f(r.row_payoff), f(r.col_payoff),
            f(r.row_sloc), f(r.col_sloc), f(r.row_complexity), f(r.col_complexity), f(r.row_opponent_use),
            f(r.col_opponent_use), r.row_label or "", r.col_label or ""]


def render(store: Store, run_id: int | None, fmt: str) -> str:
    rows = round_rows(store, run_id)
    if fmt == "json":
        return run_json(db.run_row(store, run_id), meta_rounds=rows, over_seeds=seed_rows(rows),
                        programs=sources(store, run_id), population=population(store, run_id))
    body = [_cells(r) for r in rows]
    if fmt != "markdown":
        return run_table(fmt, rows, MetaRoundRow, HEADERS, body, RIGHT)
    f = lambda x: "—" if x is None else f"{x:.4g}"
    parts = [markdown_table(HEADERS, body, RIGHT), "",
             markdown_table(["meta-round", "seat", "seeds", "mean payoff", "95% interval"],
                            [[str(s.meta_round), s.seat, str(s.seeds), f(s.mean),
                              "" if s.ci_low is None else f"[{s.ci_low:.4g}, {s.ci_high:.4g}]"]
                             for s in seed_rows(rows)], [True, False, True, True, False]), ""]
    for p in sources(store, run_id):
        state = "valid" if p.valid else f"failed: {p.error.splitlines()[0] if p.error else ''}"
        parts += [f"### {p.program} (seed {p.seed}, meta-round {p.meta_round}, {p.seat}, attempt {p.attempt}: "
                  f"{state})", "", "```python", (p.source or "").rstrip(), "```", ""]
    return "\n".join(parts)


def draw_payoffs(rows: list[MetaRoundRow], title: str):
    """Payoff per round over meta-rounds: each seed's as a point, the mean over seeds as a line with its interval."""
    from matplotlib.figure import Figure

    from arena.analysis.plots import label_axes

    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.add_subplot()
    summary = seed_rows(rows)
    for s, color in zip(SEATS, ("tab:blue", "tab:orange")):
        pts = [(r.meta_round, getattr(r, f"{s}_payoff")) for r in rows if getattr(r, f"{s}_payoff") is not None]
        ax.scatter([x for x, _ in pts], [y for _, y in pts], s=12, alpha=0.4, color=color, zorder=2)
        ss = [x for x in summary if x.seat == s and x.mean is not None]
        ax.plot([x.meta_round for x in ss], [x.mean for x in ss], color=color, marker="o", zorder=3,
                label=f"{s} (mean over seeds)")
        band = [x for x in ss if x.ci_low is not None]
        if band:
            ax.fill_between([x.meta_round for x in band], [x.ci_low for x in band], [x.ci_high for x in band],
                            color=color, alpha=0.15, linewidth=0)
    ks = sorted({r.meta_round for r in rows})
    ax.set_xticks(ks)
    label_axes(ax, title, "meta-round", "payoff per round")
    ax.legend(loc="best", fontsize="small")
    return fig


def save_plot(store: Store, run_id: int | None, path: Path, fmt: str) -> Path:
    run = db.run_row(store, run_id)
    c = run["config"]
    title = f"meta-rounds run {run['id']}: {c['game']}, {type_of(c, 'row')} vs {type_of(c, 'col')}"
    return write_figure(draw_payoffs(round_rows(store, run["id"]), title), path, fmt)
