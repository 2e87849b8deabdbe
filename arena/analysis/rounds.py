"""Repeated games: tables over the rounds of matches (engine/match.py; the `rounds` table).

- `match_rows`: per cell, the matches' length, total and discounted payoffs (mean with a 95% interval over
  the matches), and each seat's first defection;
- `program_match_rows`: per condition and program, mean total and discounted payoff over its matches in
  both seats, with stratified intervals (each cell a stratum, as `program_rows` does for one-shot trials);
- `round_rows`: cooperation by round: the share of the cell's matches whose round t was a cooperative
  outcome (Wilson interval), and the share of each seat playing its cooperative action;
- `length_rows`: the distribution of match lengths, with the geometric law a continuation P implies;
- `episode_rows`: a grid world's episodes per cell: welfare, returns, length and food collected
  (`episode_tournament` says if a tournament has a grid world).

A condition's game carries its match rules (`condition_game`: "prisoners_dilemma (10 rounds)"). Only
trials with status ok count (a match with a failed round is an error and has no totals). A one-round
trial has no row in `rounds`; these tables cover matches only (`match_tournament` says if there are any).
"""

from __future__ import annotations

import math
from collections import defaultdict


from arena.analysis.rows import ConditionKey
from arena.analysis.stats import stratified_ci, values_stratum, wilson_ci
from arena.analysis.conditions import condition_game
from arena.library.games import Game, parse_game
from arena.store.database import Store

_COND = "t.game, t.epsilon, t.max_depth, t.temperature, t.rounds, t.continuation, t.noise, t.recall, t.disclosure"


class MatchRow(ConditionKey):
    row_program: str
    col_program: str
    matches: int  # matches stored with status ok
    mean_rounds: float
    row_total: float
    row_total_low: float | None
    row_total_high: float | None
    col_total: float
    col_total_low: float | None
    col_total_high: float | None
    row_discounted: float
    col_discounted: float
    row_first_defection: float | None  # mean 0-based round of the seat's first defect action, over the
    col_first_defection: float | None  # matches where it defected (None: it never did)
    row_defected: float  # share of matches in which the seat played the defect action at least once
    col_defected: float


class ProgramMatchRow(ConditionKey):
    program: str
    matches: int
    total: float | None
    total_low: float | None
    total_high: float | None
    discounted: float | None
    discounted_low: float | None
    discounted_high: float | None


class RoundRow(ConditionKey):
    row_program: str
    col_program: str
    round: int  # 0-based
    matches: int  # matches that reached this round
    cooperative: int
    cooperation: float
    wilson_low: float
    wilson_high: float
    row_c: float  # share of those matches in which the row seat played its cooperative (default) action
    col_c: float


class LengthRow(ConditionKey):
    n_rounds: int
    matches: int
    share: float
    expected: float | None  # under continuation P: P^(n-1)(1-P), the cap taking the tail; None: fixed horizon


def match_tournament(store: Store, tournament_id: int) -> bool:
    """Whether the tournament stored any match (a trial of more than one round, or with noise)."""
    return bool(store.query("SELECT 1 FROM trials WHERE tournament_id = ? AND (n_rounds > 1 OR rounds > 1 "
                            "OR continuation IS NOT NULL OR noise > 0) LIMIT 1", (tournament_id,)))


def _cond(r: dict) -> dict:
    return {"game": condition_game(r["game"], r["rounds"], r["continuation"], r["noise"], r["recall"],
                                   r.get("disclosure", "full")),
            "epsilon": r["epsilon"], "max_depth": r["max_depth"], "temperature": r["temperature"]}


def _games(store: Store, tournament_id: int) -> dict[str, Game]:
    _, games = store.snapshot(tournament_id)
    return {k: parse_game(v) for k, v in games.items()}


def _mean_ci(values: list[float]) -> tuple[float, float | None, float | None]:
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, None, None
    s2 = sum((v - mean) ** 2 for v in values) / (n - 1)
    half = 1.959963984540054 * math.sqrt(s2 / n)
    return mean, mean - half, mean + half


def _within(ci: tuple[float, float | None, float | None], low: float, high: float):
    """A mean's interval cut to the range its quantity can take (a share's [0, 1], a length's [1, T], a
    welfare's `welfare_range`): the normal interval of a mean near a bound reaches past it, where no mean
    can lie."""
    mean, lo, hi = ci
    return mean, (None if lo is None else max(low, lo)), (None if hi is None else min(high, hi))


def _matches(store: Store, tournament_id: int) -> list[dict]:
    return store.query(
        f"SELECT t.id, {_COND}, t.row_program, t.col_program, t.n_rounds, t.row_total, t.col_total, "
        "t.row_discounted, t.col_discounted FROM trials t WHERE t.tournament_id = ? AND t.status = 'ok' "
        "AND (t.n_rounds > 1 OR t.rounds > 1 OR t.continuation IS NOT NULL OR t.noise > 0) ORDER BY t.seq",
        (tournament_id,))


def _first_defections(store: Store, tournament_id: int, games: dict[str, Game]) -> dict[int, tuple]:
    """trial id -> (row's first defect round, col's), None where the seat never defected."""
    out: dict[int, list] = {}
    rows = store.query(
        "SELECT r.trial_id, t.game, r.round, r.row_action, r.col_action FROM rounds r JOIN trials t "
        "ON t.id = r.trial_id WHERE t.tournament_id = ? AND t.status = 'ok' ORDER BY r.trial_id, r.round",
        (tournament_id,))
    for r in rows:
        d = games[r["game"]].defect_action if r["game"] in games else None
        f = out.setdefault(r["trial_id"], [None, None])
        if f[0] is None and r["row_action"] == d:
            f[0] = r["round"]
        if f[1] is None and r["col_action"] == d:
            f[1] = r["round"]
    return {k: tuple(v) for k, v in out.items()}


def match_rows(store: Store, tournament_id: int) -> list[MatchRow]:
    games = _games(store, tournament_id)
    firsts = _first_defections(store, tournament_id, games)
    cells: dict[tuple, list[dict]] = defaultdict(list)
    for r in _matches(store, tournament_id):
        c = _cond(r)
        cells[(*c.values(), r["row_program"], r["col_program"])].append(r)
    out = []
    for (game, eps, depth, temp, row, col), ms in cells.items():
        rt, rl, rh = _mean_ci([m["row_total"] for m in ms])
        ct, cl, ch = _mean_ci([m["col_total"] for m in ms])
        fr = [firsts.get(m["id"], (None, None))[0] for m in ms]
        fc = [firsts.get(m["id"], (None, None))[1] for m in ms]
        dr, dc = [x for x in fr if x is not None], [x for x in fc if x is not None]
        out.append(MatchRow(
            game=game, epsilon=eps, max_depth=depth, temperature=temp, row_program=row, col_program=col,
            matches=len(ms), mean_rounds=sum(m["n_rounds"] for m in ms) / len(ms),
            row_total=rt, row_total_low=rl, row_total_high=rh, col_total=ct, col_total_low=cl, col_total_high=ch,
            row_discounted=sum(m["row_discounted"] for m in ms) / len(ms),
            col_discounted=sum(m["col_discounted"] for m in ms) / len(ms),
            row_first_defection=sum(dr) / len(dr) if dr else None, col_first_defection=sum(dc) / len(dc) if dc else None,
            row_defected=len(dr) / len(ms), col_defected=len(dc) / len(ms)))
    return out


def program_match_rows(store: Store, tournament_id: int) -> list[ProgramMatchRow]:
    """Per condition and program: its mean total and discounted payoff per match (both seats), each cell a
    stratum of the interval (the cells are fixed by the design; only the matches within them vary)."""
    strata: dict[tuple, dict[tuple, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    for r in _matches(store, tournament_id):
        c = tuple(_cond(r).values())
        cell = (r["row_program"], r["col_program"])
        strata[(*c, r["row_program"])][(cell, "row")].append((r["row_total"], r["row_discounted"]))
        strata[(*c, r["col_program"])][(cell, "col")].append((r["col_total"], r["col_discounted"]))
    out = []
    for (game, eps, depth, temp, program), by_cell in strata.items():
        tot = stratified_ci([values_stratum([(v[0], 1) for v in vs]) for vs in by_cell.values()])
        dis = stratified_ci([values_stratum([(v[1], 1) for v in vs]) for vs in by_cell.values()])
        out.append(ProgramMatchRow(game=game, epsilon=eps, max_depth=depth, temperature=temp, program=program,
                                   matches=sum(len(vs) for vs in by_cell.values()), total=tot[0], total_low=tot[1],
                                   total_high=tot[2], discounted=dis[0], discounted_low=dis[1], discounted_high=dis[2]))
    return out


def round_rows(store: Store, tournament_id: int) -> list[RoundRow]:
    """Cooperation by round, per cell."""
    games = _games(store, tournament_id)
    rows = store.query(
        f"SELECT {_COND}, t.row_program, t.col_program, r.round, count(*) AS n, sum(r.cooperative) AS coop, "
        "r.row_action AS ra, r.col_action AS ca FROM rounds r JOIN trials t ON t.id = r.trial_id "
        f"WHERE t.tournament_id = ? AND t.status = 'ok' GROUP BY {_COND}, t.row_program, t.col_program, r.round, "
        "r.row_action, r.col_action ORDER BY min(t.seq), r.round", (tournament_id,))
    acc: dict[tuple, list] = {}
    for r in rows:
        key = (*_cond(r).values(), r["row_program"], r["col_program"], r["round"])
        a = acc.setdefault(key, [0, 0, 0, 0])
        g = games.get(r["game"])
        a[0] += r["n"]
        a[1] += r["coop"]
        if g is not None:
            a[2] += r["n"] * (r["ra"] == g.default_for("row"))
            a[3] += r["n"] * (r["ca"] == g.default_for("col"))
    out = []
    for (game, eps, depth, temp, row, col, t), (n, k, rc, cc) in acc.items():
        p, lo, hi = wilson_ci(k, n)
        out.append(RoundRow(game=game, epsilon=eps, max_depth=depth, temperature=temp, row_program=row,
                            col_program=col, round=t, matches=n, cooperative=k, cooperation=p, wilson_low=lo,
                            wilson_high=hi, row_c=rc / n, col_c=cc / n))
    out.sort(key=lambda x: (x.game, x.epsilon, x.max_depth, str(x.temperature), x.row_program, x.col_program, x.round))
    return out


def length_rows(store: Store, tournament_id: int) -> list[LengthRow]:
    """How many matches lasted n rounds, per condition, next to the continuation's geometric law."""
    config = store.tournament(tournament_id).config
    cap = config.get("max_rounds", 1000)
    counts: dict[tuple, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    conts: dict[tuple, float | None] = {}
    for r in _matches(store, tournament_id):
        c = tuple(_cond(r).values())
        counts[c][r["n_rounds"]] += 1
        conts[c] = r["continuation"]
    out = []
    for c, by_n in counts.items():
        total = sum(by_n.values())
        p = conts[c]
        for n in sorted(by_n):
            exp = None
            if p is not None:
                exp = p ** (n - 1) if n >= cap else p ** (n - 1) * (1 - p)
            out.append(LengthRow(game=c[0], epsilon=c[1], max_depth=c[2], temperature=c[3], n_rounds=n,
                                 matches=by_n[n], share=by_n[n] / total, expected=exp))
    return out


# --- games with a state (Level-Based Foraging): episodes ---------------------------------------------
class EpisodeRow(ConditionKey):
    """Per cell of a Markov game: its episodes' return (each seat's, and their sum, the social welfare),
    length and food collected, means with 95% intervals over the episodes."""

    row_program: str
    col_program: str
    episodes: int
    welfare: float
    welfare_low: float | None
    welfare_high: float | None
    row_return: float
    col_return: float
    length: float
    length_low: float | None
    length_high: float | None
    food: float  # the share of the food's value collected (1: all of it): the welfare without the PIBR penalty
    food_low: float | None
    food_high: float | None
    cleared: float  # share of episodes that collected all the food


def welfare_range(game) -> tuple[float, float]:
    """The range of an episode's welfare: all the food's value (1, the rewards are normalised) at most; at
    least a full-length episode's terminal penalty on both agents and a failed load's penalty at each of its
    steps (the package's `penalty`, 0 in the shipped games)."""
    from arena.engine.lbf import terminal_penalty

    steps = game.horizon
    return 0.0 - 2 * (terminal_penalty(game, steps) + steps * game.env_kwargs()["penalty"]), 1.0  # (0.0, not -0.0)


def episode_tournament(store: Store, tournament_id: int) -> bool:
    """Whether the tournament plays a game with a state (a grid world): then it has the episodes table."""
    return any(g.markov for g in _games(store, tournament_id).values())


def episode_rows(store: Store, tournament_id: int) -> list[EpisodeRow]:
    """The episodes of the tournament's Markov games, per cell (matrix games have none)."""
    from arena.engine.lbf import terminal_penalty

    games = _games(store, tournament_id)
    cells: dict[tuple, list[dict]] = defaultdict(list)
    for r in _matches(store, tournament_id):
        if r["game"] in games and games[r["game"]].markov:
            cells[(*_cond(r).values(), r["row_program"], r["col_program"])].append(r)
    out = []
    for (game, eps, depth, temp, row, col), rs in cells.items():
        g = games[rs[0]["game"]]
        welfare = [r["row_total"] + r["col_total"] for r in rs]
        food = [w + 2 * terminal_penalty(g, r["n_rounds"]) for w, r in zip(welfare, rs)]
        w, wl, wh = _within(_mean_ci(welfare), *welfare_range(g))
        n, nl, nh = _within(_mean_ci([float(r["n_rounds"]) for r in rs]), 1.0, float(g.horizon))
        f, fl, fh = _within(_mean_ci(food), 0.0, 1.0)
        out.append(EpisodeRow(game=game, epsilon=eps, max_depth=depth, temperature=temp, row_program=row,
                              col_program=col, episodes=len(rs), welfare=w, welfare_low=wl, welfare_high=wh,
                              row_return=sum(r["row_total"] for r in rs) / len(rs),
                              col_return=sum(r["col_total"] for r in rs) / len(rs), length=n, length_low=nl,
                              length_high=nh, food=f, food_low=fl, food_high=fh,
                              cleared=sum(x > 1 - 1e-9 for x in food) / len(rs)))
    return out
