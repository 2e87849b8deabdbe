"""The data behind the plots (for the TUI and for files) and their drawing as figures (`DRAW`; written as
PNG/SVG files by export.write_figure).

Plots:
- coop-vs-eps: cooperation rate against ε, one line per unordered pair (both seatings pooled) with
  95% Wilson intervals; one panel per (game, depth cap, temperature).
- payoff-heatmap: the meta-game payoff matrix U (mean payoff of the row program against the column
  program, both seats averaged), empirical program equilibria marked * and uncertain ones ? by the
  meta-game bootstrap's verdicts (bootstrap.py, DEFAULT_RESAMPLES); one panel per condition.
- depth-hist: share of top-level decisions (both seats) by the simulation depth they reached, one
  series per ε; one panel per (game, depth cap, temperature).
- replicator: the discrete replicator dynamics of each condition's meta-game from the uniform mix
  (dynamics.py), each program's share against the step; one panel per condition.
- coop-by-round (repeated games only): the share of matches whose round t was a cooperative outcome,
  one line per ordered pair with 95% Wilson intervals; one panel per condition (its match rules included).
- value-of-disclosure (grids with a disclosure level besides full): per ordered pair, the difference in
  cooperation from `full` under each other level, with its stratified bootstrap 95% interval; one panel per
  condition (analysis/disclosure.py).

matplotlib is imported only when a file is drawn (never at start-up) and used through its object API
(Figure, no pyplot state) with the Agg/SVG canvases.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import BaseModel

from arena.analysis.disclosure import DisclosureRow, disclosure_rows, disclosure_tournament
from arena.analysis.rounds import RoundRow, match_tournament, round_rows
from arena.analysis.rows import CoopPoint, DepthBin, PairRow
from arena.analysis.tables import Outcomes, _condition_rank, coop_points, depth_histogram, load_outcomes, pairs
from arena.analysis.dynamics import ReplicatorRow, replicator_rows
from arena.analysis.metagame import MatrixRow, add_bootstrap, equilibrium_mark, matrix_rows, meta_matrices
from arena.store.database import Store


class PlotData(BaseModel):
    tournament_id: int
    title: str
    coop: list[CoopPoint]
    matrix: list[MatrixRow]
    depths: list[DepthBin]
    replicator: list[ReplicatorRow] = []
    rounds: list[RoundRow] = []  # cooperation by round (a tournament of matches; [] otherwise)
    disclosure: list[DisclosureRow] = []  # the value of disclosure (a grid with several levels; [] otherwise)


def plot_data(store: Store, tournament_id: int, outcomes: Outcomes | None = None,
              pair_list: list[PairRow] | None = None) -> PlotData:
    """Everything the three plots show (`outcomes`/`pair_list`: already loaded for this tournament)."""
    row = store.tournament(tournament_id)
    out = outcomes or load_outcomes(store, row.id)
    pair_list = pair_list if pair_list is not None else pairs(out)
    mats = meta_matrices(out.programs, pair_list, nash=False)
    from arena.analysis.bootstrap import DEFAULT_RESAMPLES

    # the heat map marks equilibria by the bootstrap's verdicts, as the matrix table does (pure pairs only: ms)
    add_bootstrap(mats, out.groups, DEFAULT_RESAMPLES, int(out.config.get("seed", 0) or 0), nash=False)
    return PlotData(
        tournament_id=row.id, title=f"Arena tournament {row.id}" + (f": {row.name}" if row.name else ""),
        coop=coop_points(out, pair_list), matrix=matrix_rows(mats), depths=depth_histogram(store, row.id),
        replicator=[r for cond, m in mats.items() if m.complete for r in replicator_rows(cond, m.programs, m.U)],
        rounds=round_rows(store, row.id) if match_tournament(store, row.id) else [],
        disclosure=disclosure_rows(out.groups, out.programs, out.config.get("disclosures", ["full"]),
                                   _condition_rank(out.config), mats, DEFAULT_RESAMPLES,
                                   int(out.config.get("seed", 0) or 0)) if disclosure_tournament(out.config) else [],
    )


def panel_label(game: str, max_depth: int, temperature: float | None, epsilon: float | None = None) -> str:
    eps = "" if epsilon is None else f", ε = {epsilon:g}"
    temp = "" if temperature is None else f", T = {temperature:g}"
    return f"{game}{eps}, cap {max_depth}{temp}"


def coop_series(points: Sequence[CoopPoint]) -> dict[str, dict[str, list[CoopPoint]]]:
    """panel label -> pair -> points sorted by ε."""
    panels: dict[str, dict[str, list[CoopPoint]]] = {}
    for p in points:
        panels.setdefault(panel_label(p.game, p.max_depth, p.temperature), {}).setdefault(p.pair, []).append(p)
    for series in panels.values():
        for pts in series.values():
            pts.sort(key=lambda p: p.epsilon)
    return panels


def depth_series(bins: Sequence[DepthBin]) -> dict[str, dict[float, list[tuple[int, float]]]]:
    """panel label -> ε -> [(depth, share of decisions)]."""
    totals: dict[tuple, int] = {}
    for b in bins:
        totals[b.condition] = totals.get(b.condition, 0) + b.decisions
    panels: dict[str, dict[float, list[tuple[int, float]]]] = {}
    for b in bins:
        label = panel_label(b.game, b.max_depth, b.temperature)
        panels.setdefault(label, {}).setdefault(b.epsilon, []).append((b.depth, b.decisions / totals[b.condition]))
    return panels


def replicator_series(rows: Sequence[ReplicatorRow]) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """panel label (with ε) -> program -> [(step, share)] in step order."""
    panels: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for r in rows:
        label = panel_label(r.game, r.max_depth, r.temperature, r.epsilon)
        panels.setdefault(label, {}).setdefault(r.program, []).append((r.step, r.share))
    return panels


def round_series(rows: Sequence[RoundRow]) -> dict[str, dict[str, list[RoundRow]]]:
    """panel label (with ε) -> 'row/col' -> rows in round order."""
    panels: dict[str, dict[str, list[RoundRow]]] = {}
    for r in rows:
        label = panel_label(r.game, r.max_depth, r.temperature, r.epsilon)
        panels.setdefault(label, {}).setdefault(f"{r.row_program}/{r.col_program}", []).append(r)
    for series in panels.values():
        for pts in series.values():
            pts.sort(key=lambda r: r.round)
    return panels


def matrices(rows: Sequence[MatrixRow]) -> dict[str, tuple[list[str], list[list[float | None]], list[list[str]]]]:
    """panel label -> (programs, U, program-equilibrium marks: '*', '?' or '', metagame.equilibrium_mark)."""
    by: dict[str, list[MatrixRow]] = {}
    for r in rows:
        by.setdefault(panel_label(r.game, r.max_depth, r.temperature, r.epsilon), []).append(r)
    out = {}
    for label, rs in by.items():
        programs = list(dict.fromkeys(r.program for r in rs))
        cell = {(r.program, r.opponent): r for r in rs}
        U = [[cell[(a, b)].payoff if (a, b) in cell else None for b in programs] for a in programs]
        eq = [[equilibrium_mark(cell[(a, b)]) if (a, b) in cell else "" for b in programs] for a in programs]
        out[label] = (programs, U, eq)
    return out


# --- drawing ---------------------------------------------------------------------------------------------
def _figure(n_panels: int, panel_w: float, panel_h: float, title: str, subtitle: str = ""):
    from matplotlib.figure import Figure

    cols = max(1, min(3, n_panels))
    rows = max(1, math.ceil(n_panels / cols))
    fig = Figure(figsize=(panel_w * cols, panel_h * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    fig.suptitle(f"{title}\n{subtitle}" if subtitle else title, fontsize="medium")
    return fig, axes


def _empty(title: str):
    fig, (ax,) = _figure(1, 6, 3, title)
    ax.text(0.5, 0.5, "no trials stored", ha="center", va="center")
    ax.set_axis_off()
    return fig


def draw_coop_vs_eps(data: PlotData):
    panels = coop_series(data.coop)
    if not panels:
        return _empty(data.title)
    wide = max(len(s) for s in panels.values()) > 6  # many lines: the legend goes beside the panel
    fig, axes = _figure(len(panels), 8.5 if wide else 6.0, 4.5, data.title,
                        "cooperation rate vs ε, each pair both seatings pooled (95% Wilson intervals)")
    for ax, (label, series) in zip(axes, panels.items()):
        colours = _colours(len(series))
        eps = [p.epsilon for pts in series.values() for p in pts]
        for k, (pair, pts) in enumerate(series.items()):
            xs = [p.epsilon for p in pts if p.cooperation is not None]
            ys = [p.cooperation for p in pts if p.cooperation is not None]
            lo = [p.cooperation - p.wilson_low for p in pts if p.cooperation is not None]
            hi = [p.wilson_high - p.cooperation for p in pts if p.cooperation is not None]
            ax.errorbar(xs, ys, yerr=[lo, hi], marker=_MARKERS[k % len(_MARKERS)], markersize=4, capsize=3,
                        linewidth=1.2, color=colours[k], label=pair)
        label_axes(ax, label, "ε (grounding probability)", "cooperation rate")
        ax.set_xlim(0, min(1.0, max(eps) * 1.1) if len(set(eps)) > 1 else min(1.0, max(eps) * 2))
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
        _legend(ax, len(series), wide)
    return fig


_MARKERS = "osD^vP*Xh<>"


def label_axes(ax, title: str, xlabel: str, ylabel: str | None = None) -> None:
    """A panel's title and its axes' labels."""
    ax.set_title(title, fontsize="medium")
    ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)


def _legend(ax, lines: int, wide: bool) -> None:
    """A panel's legend: inside it, or beside it when the panel has many lines (`wide`)."""
    if wide:
        ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0), ncol=1 + lines // 18)
    else:
        ax.legend(fontsize="x-small")


def _colours(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def draw_payoff_heatmap(data: PlotData):
    import numpy as np

    panels = matrices(data.matrix)
    if not panels:
        return _empty(data.title)
    n = max(len(p) for p, _, _ in panels.values())
    size = max(4.0, 0.75 * n + 2.5)
    fig, axes = _figure(len(panels), size, size * 0.85, data.title,
                        "meta-game payoffs: program (row) against opponent (column); * program equilibrium, "
                        "? uncertain (bootstrap)")
    for ax, (label, (programs, U, eq)) in zip(axes, panels.items()):
        values = np.ma.masked_invalid(np.array([[math.nan if x is None else x for x in row] for row in U], dtype=float))
        im = ax.imshow(values, cmap="viridis", aspect="equal")
        fig.colorbar(im, ax=ax, shrink=0.8, label="mean payoff")
        lo, hi = (float(values.min()), float(values.max())) if values.count() else (0.0, 1.0)
        for i, row in enumerate(U):
            for j, x in enumerate(row):
                if x is None:
                    continue
                dark = hi > lo and (x - lo) / (hi - lo) < 0.5
                ax.text(j, i, f"{x:.2f}{eq[i][j]}", ha="center", va="center", fontsize="small",
                        color="white" if dark else "black", fontweight="bold" if eq[i][j] == "*" else "normal")
        ax.set_xticks(range(len(programs)), programs, rotation=45, ha="right", fontsize="small")
        ax.set_yticks(range(len(programs)), programs, fontsize="small")
        label_axes(ax, label, "opponent", "program")
    return fig


def draw_depth_hist(data: PlotData):
    panels = depth_series(data.depths)
    if not panels:
        return _empty(data.title)
    fig, axes = _figure(len(panels), 6.0, 4.2, data.title, "simulation depth reached by top-level decisions")
    for ax, (label, series) in zip(axes, panels.items()):
        k = len(series)
        width = 0.8 / k
        for s, (eps, pts) in enumerate(sorted(series.items())):
            xs = [d + (s - (k - 1) / 2) * width for d, _ in pts]
            ax.bar(xs, [share for _, share in pts], width=width, label=f"ε = {eps:g}")
        label_axes(ax, label, "depth reached (0 = did not simulate)", "share of decisions")
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize="small")
    return fig


def draw_replicator(data: PlotData):
    panels = replicator_series(data.replicator)
    if not panels:
        return _empty(data.title)
    fig, axes = _figure(len(panels), 6.0, 4.2, data.title,
                        "replicator dynamics of the meta-game from the uniform mix (share of each program)")
    for ax, (label, series) in zip(axes, panels.items()):
        colours = _colours(len(series))
        for k, (program, pts) in enumerate(series.items()):
            ax.plot([t for t, _ in pts], [x for _, x in pts], color=colours[k], linewidth=1.4, label=program)
        ax.set_xscale("symlog", linthresh=10)
        label_axes(ax, label, "step", "population share")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small")
    return fig


def draw_coop_by_round(data: PlotData):
    panels = round_series(data.rounds)
    if not panels:
        return _empty(data.title)
    wide = max(len(s) for s in panels.values()) > 6
    fig, axes = _figure(len(panels), 8.5 if wide else 6.0, 4.5, data.title,
                        "cooperation by round: share of the matches whose round was a cooperative outcome (95% Wilson)")
    for ax, (label, series) in zip(axes, panels.items()):
        colours = _colours(len(series))
        for k, (pair, pts) in enumerate(series.items()):
            xs = [p.round + 1 for p in pts]
            ys = [p.cooperation for p in pts]
            ax.errorbar(xs, ys, yerr=[[p.cooperation - p.wilson_low for p in pts],
                                      [p.wilson_high - p.cooperation for p in pts]],
                        marker=_MARKERS[k % len(_MARKERS)], markersize=3, capsize=2, linewidth=1.2,
                        color=colours[k], label=pair)
        label_axes(ax, label, "round", "cooperation")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
        _legend(ax, len(series), wide)
    return fig


def disclosure_series(rows: Sequence[DisclosureRow]) -> dict[str, dict[str, dict[str, DisclosureRow]]]:
    """panel label (with ε) -> 'row/col' -> level -> its row, for the levels other than full."""
    panels: dict[str, dict[str, dict[str, DisclosureRow]]] = {}
    for r in rows:
        if r.disclosure == "full" or r.cooperation_diff is None:
            continue
        label = panel_label(r.game, r.max_depth, r.temperature, r.epsilon)
        panels.setdefault(label, {}).setdefault(f"{r.row_program}/{r.col_program}", {})[r.disclosure] = r
    return panels


def draw_value_of_disclosure(data: PlotData):
    panels = disclosure_series(data.disclosure)
    if not panels:
        return _empty(data.title)
    levels = list(dict.fromkeys(lv for series in panels.values() for by in series.values() for lv in by))
    n_pairs = max(len(s) for s in panels.values())
    height = max(3.0, 0.12 * n_pairs * (len(levels) + 1) + 1.0)
    fig, axes = _figure(len(panels), 6.5, height, data.title,
                        "value of disclosure: cooperation under each level minus under full (stratified bootstrap 95%)")
    colours = _colours(len(levels))
    width = 0.8 / len(levels)
    for ax, (label, series) in zip(axes, panels.items()):
        pairs_ = list(series)
        for k, level in enumerate(levels):
            ys, xs, lo, hi = [], [], [], []
            for i, pair in enumerate(pairs_):
                r = series[pair].get(level)
                if r is None:
                    continue
                ys.append(i - 0.4 + width * (k + 0.5))
                xs.append(r.cooperation_diff)
                lo.append(r.cooperation_diff - r.cooperation_diff_low if r.cooperation_diff_low is not None else 0.0)
                hi.append(r.cooperation_diff_high - r.cooperation_diff if r.cooperation_diff_high is not None else 0.0)
            ax.barh(ys, xs, height=width, xerr=[lo, hi], color=colours[k], label=level, capsize=1.5,
                    error_kw={"linewidth": 0.8})
        ax.set_yticks(range(len(pairs_)), pairs_, fontsize="x-small")
        ax.invert_yaxis()
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_xlim(-1.05, 1.05)
        label_axes(ax, label, "Δ cooperation (level − full)")
        ax.grid(alpha=0.3, axis="x")
        ax.legend(fontsize="x-small")
    return fig


DRAW = {"coop-vs-eps": draw_coop_vs_eps, "payoff-heatmap": draw_payoff_heatmap, "depth-hist": draw_depth_hist,
        "replicator": draw_replicator, "coop-by-round": draw_coop_by_round,
        "value-of-disclosure": draw_value_of_disclosure}
