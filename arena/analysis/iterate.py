"""Exports of an iterate run: the steps table (every text format) and the PIBR-style welfare plot.

The plot shows social welfare per step: each episode's welfare (row + column payoff; in a grid world the sum of
both seats' returns over the episode's steps) as a point, the step's mean as a line; a step whose candidate
failed its unit tests has no point (the gap the PIBR paper's plots show for code that did not run).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from arena.analysis.export import write_figure
from arena.analysis.runexport import run_json, run_table
from arena.store import iterate as db
from arena.store.database import Store


class StepRow(BaseModel):
    run: int
    round: int
    player: str
    step: int
    candidate: str
    candidate_hash: str | None
    valid: bool
    kept: bool
    row_utility: float | None
    col_utility: float | None
    welfare: float | None
    episodes: list[float]  # each episode's social welfare (a grid world's: the sum of both returns; empty: invalid)
    error: str | None


def step_rows(store: Store, run_id: int | None = None) -> list[StepRow]:
    run = db.run_row(store, run_id)
    rows = []
    worst = _worst(store, run)  # an episode that ended in an error scores each seat's worst payoff
    for s in db.steps(store, run["id"]):
        episodes: list[float] = []
        if s["valid"]:
            first = db.first_seq(run["config"], s["round"], s["player"], s["step"])
            trials = store.query(
                "SELECT CASE WHEN row_payoff IS NULL THEN NULL ELSE coalesce(row_total, row_payoff) END AS row_payoff, "
                "CASE WHEN col_payoff IS NULL THEN NULL ELSE coalesce(col_total, col_payoff) END AS col_payoff "
                "FROM trials WHERE tournament_id=? AND seq >= ? AND seq < ? "
                "ORDER BY seq", (run["tournament_id"], first, first + run["config"]["episodes"]))
            episodes = [(worst[0] if t["row_payoff"] is None else t["row_payoff"])
                        + (worst[1] if t["col_payoff"] is None else t["col_payoff"]) for t in trials]
        rows.append(StepRow(run=run["id"], round=s["round"], player=s["player"], step=s["step"],
                            candidate=s["program_id"], candidate_hash=s["program_hash"], valid=bool(s["valid"]),
                            kept=bool(s["kept"]), row_utility=s["row_utility"], col_utility=s["col_utility"],
                            welfare=s["welfare"], episodes=episodes, error=s["validation"]))
    return rows


def _worst(store: Store, run: dict) -> tuple[float, float]:
    from arena.iterate.feedback import worst_payoffs
    from arena.library.games import parse_game

    _programs, games = store.snapshot(run["tournament_id"])
    return worst_payoffs(parse_game(games[run["config"]["game"]]))


HEADERS = ["round", "player", "step", "candidate", "hash", "valid", "kept", "row utility", "col utility", "welfare"]
RIGHT = [True, False, True, False, False, False, False, True, True, True]


def _cells(r: StepRow) -> list[str]:
    f = lambda x: "" if x is None else f"{x:.4g}"
    return [str(r.round), r.player, str(r.step), r.candidate, r.candidate_hash or "", "yes" if r.valid else "no",
            "yes" if r.kept else "", f(r.row_utility), f(r.col_utility), f(r.welfare)]


def render(store: Store, run_id: int | None, fmt: str) -> str:
    rows = step_rows(store, run_id)
    if fmt == "json":
        return run_json(db.run_row(store, run_id), steps=rows)
    return run_table(fmt, rows, StepRow, HEADERS, [_cells(r) for r in rows], RIGHT)


def draw_welfare(rows: list[StepRow], title: str):
    from matplotlib.figure import Figure

    from arena.analysis.plots import label_axes

    fig = Figure(figsize=(max(6.0, 0.45 * len(rows) + 2), 3.6), layout="constrained")
    ax = fig.add_subplot()
    xs, means = [], []
    for x, r in enumerate(rows):
        if r.valid:
            ax.scatter([x] * len(r.episodes), r.episodes, s=12, alpha=0.5, color="tab:blue", zorder=2)
        xs.append(x)
        means.append(r.welfare if r.valid else float("nan"))  # invalid: a gap in the line
    ax.plot(xs, means, color="tab:orange", marker="o", zorder=3, label="mean welfare")
    ax.set_xticks(range(len(rows)), [("start" if r.player == "start" else f"{r.round}{r.player[0]}{r.step}")
                                     for r in rows], rotation=90, fontsize="small")
    label_axes(ax, title, "step (round, player, step)", "social welfare")
    ax.legend(loc="lower right", fontsize="small")
    return fig


def save_plot(store: Store, run_id: int | None, path: Path, fmt: str) -> Path:
    run = db.run_row(store, run_id)
    title = f"iterate run {run['id']}: {run['config']['game']}, writer {run['config']['model']}"
    return write_figure(draw_welfare(step_rows(store, run["id"]), title), path, fmt)
