"""Headless progress display and summary table for `arena run` / `arena resume` (rich or plain text)."""

from __future__ import annotations

import sys
import time

from arena.engine.events import Notice, TournamentFinished, TournamentStarted, TrialsFinished
from arena.llm.stats import stats_line


class ProgressDisplay:
    """A sink for tournament events: a rich progress bar, plain lines, or nothing."""

    def __init__(self, mode: str = "rich"):
        self.mode = mode
        self._progress = None
        self._task = None
        self._last = 0.0
        self._t0 = time.perf_counter()

    def __enter__(self) -> ProgressDisplay:
        if self.mode == "rich":
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                transient=False,
            )
            self._progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def event(self, e) -> None:
        if self.mode == "none":
            return
        if isinstance(e, TournamentStarted):
            self._t0 = time.perf_counter()
            self._done0 = e.already_done
            label = f"tournament {e.tournament_id}"
            if self._progress is not None:
                self._task = self._progress.add_task(label, total=e.total, completed=e.already_done, rate="")
            else:
                resumed = f" ({e.already_done} already stored)" if e.already_done else ""
                print(f"{label}: {e.total} trials{resumed}", flush=True)
        elif isinstance(e, TrialsFinished):
            now = time.perf_counter()
            rate = (e.done - self._done0) / max(now - self._t0, 1e-9)
            if self._progress is not None:
                self._progress.update(self._task, completed=e.done, rate=f"{_rate(rate)} trials/s")
            elif now - self._last >= 1.0 or e.done == e.total:
                self._last = now
                print(f"  {e.done}/{e.total} trials ({_rate(rate)}/s)", flush=True)
        elif isinstance(e, Notice) and e.message not in ("paused", "resumed"):
            out = self._progress.console if self._progress is not None else None
            msg = f"{e.level}: {e.message}"
            out.print(msg) if out else print(msg, file=sys.stderr, flush=True)

    def summary(self, store, result: TournamentFinished) -> None:
        if self.mode == "none":
            return
        counts = ", ".join(f"{v} {k}" for k, v in sorted(result.counts.items())) or "nothing new"
        print(f"tournament {result.tournament_id} {result.status}: {result.done}/{result.total} trials stored "
              f"({counts} this run) in {result.elapsed_s:.2f}s; database {store.path}")
        for name, s in sorted(result.providers.items()):
            print(stats_line(name, s))
        print_summary(store, result.tournament_id, plain=self.mode == "plain")


def console(plain: bool = False):
    """A rich console that never truncates tables when the output is piped or captured."""
    from rich.console import Console

    wide = None if sys.stdout.isatty() else 240
    return Console(width=wide, no_color=plain, highlight=not plain)


def print_summary(store, tournament_id: int, plain: bool = False) -> None:
    """Per game, condition and pair: trials, cooperation rate with 95% CI, mean payoffs."""
    from rich.table import Table

    from arena.analysis.conditions import base_game
    from arena.analysis.tables import pair_rows

    rows = pair_rows(store, tournament_id)
    _, games = store.snapshot(tournament_id)
    coop_action = {gid: g["default_action"] for gid, g in games.items()}  # an action, or {row: a, col: c}
    multi = len({(r.epsilon, r.max_depth, r.temperature) for r in rows}) > 1
    t = Table(title=f"Tournament {tournament_id}: cooperation rate (95% Wald CI) and mean payoffs",
              caption="coop: share of trials with a cooperative joint outcome; row C / col C: share of each "
                      "side's decisions playing the game's cooperative (default) action")
    right = ("trials", "coop", "row C", "col C", "row pay", "col pay", "failed", "eps", "cap")
    for col in ("game", *(["eps", "cap"] if multi else []), "row", "col", "trials", "coop", "95% CI", "row C", "col C",
                "row pay", "col pay", "failed"):
        t.add_column(col, justify="right" if col in right else "left")
    for r in rows:
        c = coop_action.get(base_game(r.game))
        rc, cc = (c.get("row"), c.get("col")) if isinstance(c, dict) else (c, c)
        t.add_row(
            r.game, *([f"{r.epsilon:g}", str(r.max_depth)] if multi else []), r.row_program, r.col_program,
            str(r.trials), _pct(r.cooperation), f"[{_pct(r.wald_low)}, {_pct(r.wald_high)}]",
            _pct(r.row_actions.get(rc) if r.valid else None), _pct(r.col_actions.get(cc) if r.valid else None),
            _num(r.row_payoff), _num(r.col_payoff), _pct((r.refusal_rate or 0) + (r.error_rate or 0)),
        )
    console(plain).print(t)
    _print_matches(store, tournament_id, plain)
    _print_episodes(store, tournament_id, plain)


def _print_matches(store, tournament_id: int, plain: bool) -> None:
    """Repeated games: per cell, the matches' totals and cooperation by round (nothing for one-shot games)."""
    from rich.table import Table

    from arena.analysis.rounds import match_rows, match_tournament, round_rows

    if not match_tournament(store, tournament_id):
        return
    by_round: dict[tuple, list] = {}
    for r in round_rows(store, tournament_id):
        by_round.setdefault((r.condition, r.row_program, r.col_program), []).append(r)
    t = Table(title=f"Tournament {tournament_id}: matches (totals over the rounds, 95% CI over the matches)",
              caption="coop by round: share of the matches whose round 1, 2, ... was a cooperative outcome (first 10 "
                      "rounds); first D: mean round (from 1) of a seat's first defect action, where it defected")
    for col in ("game", "row", "col", "matches", "rounds", "row total", "col total", "row disc.", "col disc.",
                "first D row", "first D col", "coop by round"):
        t.add_column(col, justify="left" if col in ("game", "row", "col", "coop by round") else "right")
    for m in match_rows(store, tournament_id):
        rounds = by_round.get((m.condition, m.row_program, m.col_program), [])
        t.add_row(m.game, m.row_program, m.col_program, str(m.matches), f"{m.mean_rounds:.3g}",
                  _num(m.row_total), _num(m.col_total), _num(m.row_discounted), _num(m.col_discounted),
                  _num1(m.row_first_defection), _num1(m.col_first_defection),
                  " ".join(f"{r.cooperation:.2f}" for r in rounds[:10]) + (" ..." if len(rounds) > 10 else ""))
    console(plain).print(t)


def _print_episodes(store, tournament_id: int, plain: bool) -> None:
    """Grid worlds: per cell, the episodes' welfare, returns, length and food collected (nothing otherwise)."""
    from rich.table import Table

    from arena.analysis.rounds import episode_rows, episode_tournament

    if not episode_tournament(store, tournament_id):
        return
    t = Table(title=f"Tournament {tournament_id}: episodes (means, 95% CI over the episodes)",
              caption="welfare: both agents' returns together; food: the share of the food's value collected; "
                      "all food: the share of episodes that collected all of it")
    for col in ("game", "row", "col", "episodes", "welfare", "95% CI", "row return", "col return", "length",
                "95% CI ", "food", "95% CI  ", "all food"):
        t.add_column(col, justify="left" if col in ("game", "row", "col") else "right")
    ci = lambda lo, hi, f: "-" if lo is None or hi is None else f"[{f(lo)}, {f(hi)}]"
    n3 = lambda x: f"{x:.3f}"
    n1 = lambda x: f"{x:.1f}"
    for e in episode_rows(store, tournament_id):
        t.add_row(e.game, e.row_program, e.col_program, str(e.episodes), n3(e.welfare),
                  ci(e.welfare_low, e.welfare_high, n3), n3(e.row_return), n3(e.col_return), n1(e.length),
                  ci(e.length_low, e.length_high, n1), _pct(e.food), ci(e.food_low, e.food_high, _pct),
                  _pct(e.cleared))
    console(plain).print(t)


def _num1(x: float | None) -> str:
    return "-" if x is None else f"{x + 1:.3g}"


def _rate(x: float) -> str:
    return f"{x:,.0f}" if x >= 10 else f"{x:.2g}"


def _pct(x: float | None) -> str:
    return "-" if x is None or x != x else f"{100 * x:.1f}%"


def _num(x: float | None) -> str:
    return "-" if x is None or x != x else f"{x:.2f}"
