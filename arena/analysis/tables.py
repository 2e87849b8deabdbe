"""Tournament statistics from stored trials: cooperation rates with confidence intervals, payoffs,
per-pair and per-program tables, LLM call statistics, and the data behind the plots.

Everything is aggregated in SQLite: one GROUP BY over a tournament's trials by cell *and joint
outcome* (row action, column action, status) gives a few rows per cell, from which every pair,
program and condition statistic follows exactly (payoffs are fixed by the joint outcome, so even the
median payoff is exact). No trial row is loaded into Python, whatever the tournament's size.

Definitions (also in docs/analysis.md):
- a *condition* is (game, epsilon, max_depth, temperature); a *cell* is a condition and an ordered
  (row program, column program) pair, self-play included;
- outcome statistics (cooperation, payoffs, actions) are over *valid* trials (status ok); refusal,
  error, call and depth statistics are over all stored trials;
- per program, both seats are pooled: a trial gives one observation per seat the program plays
  (a self-play trial gives two).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import BaseModel

from arena.analysis.conditions import base_game, condition_disclosure, condition_game, without_disclosure
from arena.library.games import Game, parse_game
from arena.store.database import Store

if TYPE_CHECKING:
    from arena.analysis.metagame import MetaMatrix

from arena.analysis.stats import (Condition, wald_ci, wilson_ci, mean_ci, share_stratum, stratified_ci,
                                  values_stratum, _opt, _share, _shares)
from arena.analysis.rows import (PairRow, ProgramRow, ConditionRow, CallRow, CoopPoint, DepthBin,
                                 DepthRow)

@dataclass(slots=True)
class _Group:
    """Trials of one cell with one joint outcome and status (a row of the GROUP BY)."""

    cond: Condition
    row: str
    col: str
    status: str
    row_action: str | None
    col_action: str | None
    n: int
    coop: int
    rp: float  # payoff sums (0 without payoffs)
    cp: float
    rp2: float
    cp2: float
    calls: int
    calls_max: int
    rd: int
    rd_max: int
    cd: int
    cd_max: int
    row_top: int  # row decisions that did not simulate (chain depth 0)
    col_top: int
    first: int


_AGGREGATES = """
       count(*) AS n, sum(coalesce(cooperative, 0)) AS coop,
       total(row_payoff) AS rp, total(col_payoff) AS cp,
       total(row_payoff * row_payoff) AS rp2, total(col_payoff * col_payoff) AS cp2,
       sum(n_calls) AS calls, max(n_calls) AS calls_max,
       sum(row_depth) AS rd, max(row_depth) AS rd_max, sum(col_depth) AS cd, max(col_depth) AS cd_max,
       sum(row_depth = 0) AS row_top, sum(col_depth = 0) AS col_top, min(seq) AS first"""
# A trial's match rules are part of its condition: grouped on, then folded into the condition's game as a
# label ("prisoners_dilemma (10 rounds)"; a one-shot trial keeps the game's id), see `_label_games`.
_MATCH = "rounds, continuation, noise, recall, disclosure"
_KEYS = f"game, epsilon, max_depth, temperature, {_MATCH}, row_program, col_program, status, row_action, col_action"
# The plain form: correct for any rows, but SQLite sorts a nine-column text key per trial.
_OUTCOMES_SQL = f"SELECT {_KEYS}, {_AGGREGATES} FROM trials WHERE tournament_id = ? GROUP BY {_KEYS}"
_ROUND_KEYS = ("t.game, t.epsilon, t.max_depth, t.temperature, t.rounds, t.continuation, t.noise, t.recall, "
               "t.disclosure, "
               "t.row_program, t.col_program, r.row_action, r.col_action")
_ROUND_ACTIONS_SQL = (f"SELECT {_ROUND_KEYS}, count(*) AS n FROM rounds r JOIN trials t ON t.id = r.trial_id "
                      f"WHERE t.tournament_id = ? AND t.status = 'ok' GROUP BY {_ROUND_KEYS}")


def _case(column: str, values: Sequence, params: list) -> str:
    """SQL mapping `column` to the index of its value in `values` (NULL for any other value)."""
    parts = []
    for i, v in enumerate(values):
        if v is None:
            parts.append(f"WHEN {column} IS NULL THEN {i}")
        else:
            parts.append(f"WHEN {column} = ? THEN {i}")
            params.append(v)
    return f"(CASE {' '.join(parts)} END)"


def _coded_query(config: dict, tournament_id: int, lo: int, hi: int, select: str,
                 by: Sequence[tuple[str, Sequence]], cells: bool = True, group: str = "") -> tuple[str, list]:
    """A GROUP BY over the tournament's trials keyed by one integer: the trial's cell coordinates in
    the tournament's own grid and `by`'s extra columns, each as the index of its value. Grouping on one
    integer is several times faster than on the text columns. A value outside the lists gives a NULL
    key (the caller then falls back to the plain query). Trials are read in rowid order over the
    tournament's id range, faster than in an index's order."""
    params: list = []
    programs = config["programs"]
    dims = [("game", config["games"]), ("epsilon", config["epsilons"]), ("max_depth", config["max_depths"]),
            ("temperature", config.get("temperatures", [None])), ("rounds", config.get("rounds", [1])),
            ("continuation", config.get("continuations", [None])), ("noise", config.get("noises", [0.0])),
            ("recall", config.get("recalls", [None])), ("disclosure", config.get("disclosures", ["full"]))]
    if cells:
        dims += [("row_program", programs), ("col_program", programs)]
    key = "0"
    for column, values in [*dims, *by]:
        key = f"({key}) * {len(values)} + {_case(column, values, params)}"
    sql = (f"SELECT {key} AS code, {select} FROM trials WHERE id BETWEEN ? AND ? AND +tournament_id = ? "
           f"GROUP BY code{', ' + group if group else ''}")
    return sql, [*params, lo, hi, tournament_id]


def _grouped(store: Store, tournament_id: int, config: dict, select: str, plain: str,
             by: Sequence[tuple[str, Sequence]] = (), cells: bool = True, group: str = "",
             fast: bool = True) -> list[dict]:
    """Rows of `select` grouped by condition (and cell, and `by`, and `group`) on the fast path, or the
    rows of the plain query (any rows, any grid)."""
    lo, hi = store.query("SELECT min(id) AS lo, max(id) AS hi FROM trials WHERE tournament_id = ?",
                         (tournament_id,))[0].values()
    if lo is None:
        return []
    if not fast:
        return _label_games(store.query(plain, (tournament_id,)))
    try:
        sql, params = _coded_query(config, tournament_id, lo, hi, select, by, cells, group)
    except (KeyError, TypeError):  # not a grid this version knows
        sql = None
    if sql is not None:
        rows = store.query(sql, params)
        if all(r["code"] is not None for r in rows):
            return _label_games(rows)
    return _label_games(store.query(plain, (tournament_id,)))


def _label_games(rows: list[dict]) -> list[dict]:
    for r in rows:
        if "rounds" in r:
            r["game"] = condition_game(r["game"], r.pop("rounds"), r.pop("continuation"), r.pop("noise"),
                                       r.pop("recall"), r.pop("disclosure", "full"))
    return rows


class Outcomes:
    """A tournament's trials aggregated by cell and joint outcome; every table is computed from it."""

    def __init__(self, store: Store, tournament_id: int, fast: bool = True):
        self.tournament_id = tournament_id
        self.store = store
        row = store.tournament(tournament_id)
        self.config = row.config
        _, games = store.snapshot(tournament_id)
        self.games: dict[str, Game] = {k: parse_game(v) for k, v in games.items()}
        actions = [*dict.fromkeys(a for g in self.games.values() for a in g.actions), None]  # None: no action
        by = [("status", ("ok", "refused", "error")), ("row_action", actions), ("col_action", actions)]
        rows = _grouped(store, tournament_id, self.config, f"{_KEYS}, {_AGGREGATES}", _OUTCOMES_SQL, by, fast=fast)
        self.groups = [
            _Group((r["game"], r["epsilon"], r["max_depth"], r["temperature"]), r["row_program"], r["col_program"],
                   r["status"], r["row_action"], r["col_action"], r["n"], r["coop"], r["rp"], r["cp"], r["rp2"],
                   r["cp2"], r["calls"], r["calls_max"], r["rd"], r["rd_max"], r["cd"], r["cd_max"], r["row_top"],
                   r["col_top"], r["first"])
            for r in rows
        ]
        self.groups.sort(key=lambda g: g.first)
        # a match's actions are its rounds' (the trial row holds its last round's)
        self.round_actions: dict[tuple[Condition, str, str], tuple[Counter, Counter, int]] = {}
        if any(g.cond[0] != base_game(g.cond[0]) for g in self.groups):
            for r in _label_games(store.query(_ROUND_ACTIONS_SQL, (tournament_id,))):
                key = ((r["game"], r["epsilon"], r["max_depth"], r["temperature"]), r["row_program"], r["col_program"])
                rc, cc, n = self.round_actions.get(key) or (Counter(), Counter(), 0)
                rc[r["row_action"]] += r["n"]
                cc[r["col_action"]] += r["n"]
                self.round_actions[key] = (rc, cc, n + r["n"])
        # The tournament's program order, then any program only found in trials.
        order = list(self.config.get("programs", []))
        for g in self.groups:
            for p in (g.row, g.col):
                if p not in order:
                    order.append(p)
        self.programs = order

    def actions(self, game: str) -> list[str]:
        g = self.games.get(base_game(game))
        if g is not None:
            return list(g.actions)
        seen = {a for x in self.groups if x.cond[0] == game for a in (x.row_action, x.col_action) if a}
        return sorted(seen)

    @property
    def conditions(self) -> list[Condition]:
        return list(dict.fromkeys(g.cond for g in self.groups))


def load_outcomes(store: Store, tournament_id: int, fast: bool = True) -> Outcomes:
    """The tournament's trials aggregated by cell and joint outcome (fast=False: the plain GROUP BY,
    the reference the fast path is tested against)."""
    return Outcomes(store, tournament_id, fast)


# --- pairs -------------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Cell:
    n: int = 0
    valid: int = 0
    coop: int = 0
    refused: int = 0
    errors: int = 0
    rp: float = 0.0
    cp: float = 0.0
    rp2: float = 0.0
    cp2: float = 0.0
    row_actions: Counter = field(default_factory=Counter)
    col_actions: Counter = field(default_factory=Counter)
    calls: int = 0
    calls_max: int = 0
    rd: int = 0
    rd_max: int = 0
    cd: int = 0
    cd_max: int = 0

    def add(self, g: _Group) -> None:
        self.n += g.n
        self.calls += g.calls
        self.calls_max = max(self.calls_max, g.calls_max)
        self.rd += g.rd
        self.cd += g.cd
        self.rd_max = max(self.rd_max, g.rd_max)
        self.cd_max = max(self.cd_max, g.cd_max)
        if g.status == "refused":
            self.refused += g.n
        elif g.status == "error":
            self.errors += g.n
        if g.status != "ok":
            return
        self.valid += g.n
        self.coop += g.coop
        self.rp += g.rp
        self.cp += g.cp
        self.rp2 += g.rp2
        self.cp2 += g.cp2
        self.row_actions[g.row_action] += g.n
        self.col_actions[g.col_action] += g.n


def _cells(out: Outcomes) -> dict[tuple[Condition, str, str], _Cell]:
    cells: dict[tuple[Condition, str, str], _Cell] = {}
    for g in out.groups:
        key = (g.cond, g.row, g.col)
        cell = cells.get(key)
        if cell is None:
            cell = cells[key] = _Cell()
        cell.add(g)
    return cells


def pairs(out: Outcomes) -> list[PairRow]:
    rows = []
    for (cond, row, col), c in _cells(out).items():
        game, eps, depth, temp = cond
        actions = out.actions(game)
        ra, ca, n_act = c.row_actions, c.col_actions, c.valid
        if (cond, row, col) in out.round_actions:  # a match: shares of its rounds
            ra, ca, n_act = out.round_actions[(cond, row, col)]
        _, wl, wh = wald_ci(c.coop, c.valid)
        _, sl, sh = wilson_ci(c.coop, c.valid)
        rm, rl, rh = mean_ci(c.rp, c.rp2, c.valid)
        cm, cl, ch = mean_ci(c.cp, c.cp2, c.valid)
        rows.append(PairRow(
            game=game, epsilon=eps, max_depth=depth, temperature=temp, row_program=row, col_program=col,
            trials=c.n, valid=c.valid, cooperative=c.coop, cooperation=_share(c.coop, c.valid),
            wald_low=_opt(wl), wald_high=_opt(wh), wilson_low=_opt(sl), wilson_high=_opt(sh),
            row_payoff=rm, row_payoff_low=rl, row_payoff_high=rh, col_payoff=cm, col_payoff_low=cl, col_payoff_high=ch,
            row_actions=_shares(ra, n_act, actions), col_actions=_shares(ca, n_act, actions),
            row_actions_low=_wilson_bounds(ra, n_act, actions, 1),
            row_actions_high=_wilson_bounds(ra, n_act, actions, 2),
            col_actions_low=_wilson_bounds(ca, n_act, actions, 1),
            col_actions_high=_wilson_bounds(ca, n_act, actions, 2),
            refusal_rate=_share(c.refused, c.n), error_rate=_share(c.errors, c.n),
            calls_per_trial=_share(c.calls, c.n), calls_max=c.calls_max,
            row_depth_mean=_share(c.rd, c.n), row_depth_max=c.rd_max,
            col_depth_mean=_share(c.cd, c.n), col_depth_max=c.cd_max,
        ))
    return rows


def _wilson_bounds(counts: Counter, n: int, order: Sequence[str], end: int) -> dict[str, float]:
    """The low (end=1) or high (end=2) Wilson bound of each action's share (empty without valid trials)."""
    return {a: wilson_ci(counts.get(a, 0), n)[end] for a in order} if n else {}


def pair_rows(store: Store, tournament_id: int) -> list[PairRow]:
    """One row per (game, epsilon, max_depth, temperature, row, col) cell, in grid order."""
    return pairs(load_outcomes(store, tournament_id))


# --- programs ----------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Seat:
    """A program's observations under one condition, both seats pooled."""

    n: int = 0
    valid: int = 0
    coop: int = 0
    pay: float = 0.0
    pay2: float = 0.0
    payoffs: Counter = field(default_factory=Counter)  # payoff value -> observations (for the median)
    actions: Counter = field(default_factory=Counter)
    joint: Counter = field(default_factory=Counter)  # (own action, opponent action) -> observations
    top: Counter = field(default_factory=Counter)  # own action -> top-level decisions that did not simulate
    trial_wins: int = 0
    opponents: set = field(default_factory=set)
    cells: dict = field(default_factory=dict)  # (row, col) -> Counter of payoff value -> observations

    def strata(self) -> list[tuple[float, float, float]]:
        """Each cell it played as a stratum of its payoff; a self-play trial is one value (the mean of
        both seats' payoffs) weighing two observations."""
        out = []
        for (row, col), counts in self.cells.items():
            w, m, v = values_stratum(counts.items())
            out.append((w * (2 if row == col else 1), m, v))
        return out


def _seats(out: Outcomes) -> dict[tuple[Condition, str], _Seat]:
    seats: dict[tuple[Condition, str], _Seat] = defaultdict(_Seat)
    for g in out.groups:
        if g.status == "ok":
            if g.row == g.col:
                seats[(g.cond, g.row)].cells.setdefault((g.row, g.col), Counter())[(g.rp + g.cp) / (2 * g.n)] += g.n
            else:
                seats[(g.cond, g.row)].cells.setdefault((g.row, g.col), Counter())[g.rp / g.n] += g.n
                seats[(g.cond, g.col)].cells.setdefault((g.row, g.col), Counter())[g.cp / g.n] += g.n
        for me, opp, pay, pay2, own, other, top, opp_pay in (
            (g.row, g.col, g.rp, g.rp2, g.row_action, g.col_action, g.row_top, g.cp),
            (g.col, g.row, g.cp, g.cp2, g.col_action, g.row_action, g.col_top, g.rp),
        ):
            s = seats[(g.cond, me)]
            s.n += g.n
            s.opponents.add(opp)
            if g.status != "ok":
                continue
            s.valid += g.n
            s.coop += g.coop
            s.pay += pay
            s.pay2 += pay2
            s.payoffs[pay / g.n] += g.n  # the payoff is fixed by the joint outcome
            s.actions[own] += g.n
            s.joint[(own, other)] += g.n
            if top:
                s.top[own] += top
            if opp != me and pay > opp_pay:
                s.trial_wins += g.n
    return seats


def weighted_median(counts: Counter) -> float | None:
    """Median of values given as value -> count (the mean of the two middle values for an even count)."""
    total = sum(counts.values())
    if total == 0:
        return None
    values = sorted(counts)
    lo_rank, hi_rank = (total - 1) // 2, total // 2  # 0-based ranks of the middle value(s)
    seen, lo = 0, None
    for v in values:
        seen += counts[v]
        if lo is None and seen > lo_rank:
            lo = v
        if seen > hi_rank:
            return (lo + v) / 2
    raise AssertionError("unreachable")  # pragma: no cover


def competition_ranks(scores: Sequence[float | None], tol: float = 1e-9) -> list[int | None]:
    """1 for the highest score; equal scores (within tol) share a rank and the next rank skips (1, 2, 2, 4).
    A missing score has no rank."""
    order = sorted((s, i) for i, s in enumerate(scores) if s is not None)
    order.reverse()
    ranks: list[int | None] = [None] * len(scores)
    prev, rank = None, 0
    for pos, (s, i) in enumerate(order, 1):
        if prev is None or prev - s > tol:
            rank = pos
        ranks[i] = rank
        prev = s
    return ranks


def programs(out: Outcomes, matrices: dict[Condition, MetaMatrix] | None = None) -> list[ProgramRow]:
    """One row per (condition, program), ranked within each condition by mean payoff."""
    from arena.analysis.metagame import meta_matrices

    if matrices is None:
        matrices = meta_matrices(out.programs, pairs(out))
    seats = _seats(out)
    rows: list[ProgramRow] = []
    for cond in out.conditions:
        game, eps, depth, temp = cond
        g = out.games.get(game)
        actions = out.actions(game)
        m = matrices.get(cond)
        cond_rows = []
        for p in out.programs:
            s = seats.get((cond, p))
            if s is None:
                continue
            mean = _share(s.pay, s.valid)
            _, low, high = stratified_ci(s.strata())
            n_top = sum(s.top.values())
            two = g is not None and g.is_2x2 and isinstance(g.default_action, str)  # C, D: one action for both seats
            c_act = g.default_action if two else None
            d_act = next((a for a in actions if a != c_act), None) if two else None
            joint = (lambda a, b: _share(s.joint.get((a, b), 0), s.valid)) if two else (lambda a, b: None)
            cond_rows.append(ProgramRow(
                game=game, epsilon=eps, max_depth=depth, temperature=temp, rank=None, program=p,
                opponents=len(s.opponents), trials=s.n, valid=s.valid, mean_payoff=mean, payoff_low=low,
                payoff_high=high, median_payoff=weighted_median(s.payoffs), cooperation_rating=_share(s.coop, s.valid),
                wins=m.wins(p) if m is not None else 0, trial_wins=s.trial_wins,
                actions=_shares(s.actions, s.valid, actions), actions_low=_wilson_bounds(s.actions, s.valid, actions, 1),
                actions_high=_wilson_bounds(s.actions, s.valid, actions, 2), initial_rate=_share(n_top, s.valid),
                initial_actions=_shares(s.top, n_top, actions),
                cc=joint(c_act, c_act), cd=joint(c_act, d_act), dc=joint(d_act, c_act), dd=joint(d_act, d_act),
            ))
        for r, rank in zip(cond_rows, competition_ranks([r.mean_payoff for r in cond_rows])):
            r.rank = rank
        cond_rows.sort(key=lambda r: (r.rank is None, r.rank or 0, out.programs.index(r.program)))
        rows += cond_rows
    return rows


# --- conditions --------------------------------------------------------------------------------------
def conditions(out: Outcomes, program_rows: list[ProgramRow] | None = None,
               matrices: dict[Condition, MetaMatrix] | None = None) -> list[ConditionRow]:
    from arena.analysis.metagame import meta_matrices

    if matrices is None:
        matrices = meta_matrices(out.programs, pairs(out))
    if program_rows is None:
        program_rows = programs(out, matrices)
    acc: dict[Condition, _Cell] = {}
    for g in out.groups:
        acc.setdefault(g.cond, _Cell()).add(g)
    coop_strata: dict[Condition, list] = defaultdict(list)
    for (cond, _, _), cell in _cells(out).items():
        if cell.valid:
            coop_strata[cond].append(share_stratum(cell.coop, cell.valid))
    rows = []
    for cond, c in acc.items():
        game, eps, depth, temp = cond
        _, wl, wh = wald_ci(c.coop, c.valid)
        _, sl, sh = wilson_ci(c.coop, c.valid)
        m = matrices.get(cond)
        cond_programs = [r for r in program_rows if r.condition == cond]
        _, coop_low, coop_high = stratified_ci(coop_strata[cond])
        rows.append(ConditionRow(
            game=game, epsilon=eps, max_depth=depth, temperature=temp,
            programs=len(cond_programs), trials=c.n, valid=c.valid, cooperative=c.coop,
            cooperation=_share(c.coop, c.valid), cooperation_low=coop_low, cooperation_high=coop_high,
            wald_low=_opt(wl), wald_high=_opt(wh), wilson_low=_opt(sl), wilson_high=_opt(sh),
            mean_payoff=_share(c.rp + c.cp, 2 * c.valid), refusal_rate=_share(c.refused, c.n),
            error_rate=_share(c.errors, c.n), calls_per_trial=_share(c.calls, c.n),
            depth_mean=_share(c.rd + c.cd, 2 * c.n), depth_max=max(c.rd_max, c.cd_max),
            best=[r.program for r in cond_programs if r.rank == 1],
            nash_equilibria=len(m.equilibria) if m is not None else 0,
            degenerate=m.degenerate if m is not None else None,
            **_named(m),
        ))
    return rows


def _named(m: MetaMatrix | None) -> dict:
    """A summary's program equilibria: by the bootstrap's verdicts when the matrix has one (metagame.named_equilibria)."""
    from arena.analysis.metagame import named_equilibria

    if m is None:
        return {"program_equilibria": []}
    eq, uncertain, basis = named_equilibria(m)
    return {"program_equilibria": eq, "uncertain_equilibria": uncertain, "equilibria_basis": basis}


# --- LLM calls ---------------------------------------------------------------------------------------
# a provider whose attempts went to several replicas (an endpoint pool) gets a row per replica (cached
# answers, which reached none, a row of their own); any other provider one row
_CALLS_SQL = """
WITH c AS (
  SELECT *, CASE WHEN (SELECT count(DISTINCT replica) FROM llm_calls o
                       WHERE o.tournament_id = l.tournament_id AND o.provider = l.provider) > 1
                 THEN replica END AS pool_replica
  FROM llm_calls l WHERE tournament_id = ?
)
SELECT provider, model, program, pool_replica AS replica,
       sum(attempt = 1) AS calls, count(*) AS attempts, sum(attempt > 1) AS retries,
       CASE WHEN pool_replica IS NULL THEN sum(status = 'error') - sum(attempt > 1)
            ELSE sum(status = 'error') END AS failures,
       sum(status = 'refusal') AS refusals, sum(status = 'unparsed') AS unparsed, sum(cached) AS cached,
       count(CASE WHEN json_extract(params, '$.purpose') = 'answer' AND json_extract(params, '$.answer') = 'bare word'
                  THEN 1 END) AS bare_words,
       count(CASE WHEN json_extract(params, '$.purpose') = 'answer' AND json_extract(params, '$.answer') = 'prose'
                  THEN 1 END) AS prose,
       count(CASE WHEN json_extract(params, '$.purpose') = 'answer'
                  AND json_extract(params, '$.answer') = 'invalid action' THEN 1 END) AS invalid,
       count(CASE WHEN json_extract(params, '$.purpose') = 'answer' AND json_extract(params, '$.answer') = 'empty'
                  THEN 1 END) AS empty,
       avg(CASE WHEN cached = 0 THEN latency_ms END) AS latency_ms_mean,
       total(prompt_tokens) AS prompt_tokens, total(completion_tokens) AS completion_tokens
FROM c
GROUP BY provider, model, program, pool_replica ORDER BY provider, model, program, pool_replica
"""


def call_rows(store: Store, tournament_id: int) -> list[CallRow]:
    """Per (provider, model, program), and replica for a pool. A failed request has every attempt in error and a successful one
    all but its last, and only errors are retried: so failures = error attempts − retries."""
    return [CallRow(**{**r, "prompt_tokens": int(r["prompt_tokens"]), "completion_tokens": int(r["completion_tokens"])})
            for r in store.query(_CALLS_SQL, (tournament_id,))]


# --- plot data ---------------------------------------------------------------------------------------
def coop_points(out: Outcomes, pair_list: Iterable[PairRow] | None = None) -> list[CoopPoint]:
    """Cooperation per unordered pair and epsilon (both seatings pooled), with Wilson intervals."""
    order = {p: i for i, p in enumerate(out.programs)}
    acc: dict[tuple, list[int]] = {}
    for r in pair_list if pair_list is not None else pairs(out):
        a, b = sorted((r.row_program, r.col_program), key=lambda p: order.get(p, len(order)))
        k = acc.setdefault((r.game, r.max_depth, r.temperature, f"{a}/{b}", r.epsilon), [0, 0])
        k[0] += r.cooperative
        k[1] += r.valid
    points = []
    for (game, depth, temp, pair, eps), (k, n) in acc.items():
        p, lo, hi = wilson_ci(k, n)
        points.append(CoopPoint(game=game, max_depth=depth, temperature=temp, pair=pair, epsilon=eps, valid=n,
                                cooperative=k, cooperation=_opt(p), wilson_low=_opt(lo), wilson_high=_opt(hi)))
    rank = _condition_rank(out.config)
    pair_rank = {pair: i for i, pair in enumerate(dict.fromkeys(p.pair for p in sorted(
        points, key=lambda p: [order.get(x, len(order)) for x in p.pair.split("/")])))}
    points.sort(key=lambda x: (rank((x.game, 0.0, x.max_depth, x.temperature)), pair_rank[x.pair], x.epsilon))
    return points


_DEPTH_KEYS = f"game, epsilon, max_depth, temperature, {_MATCH}, row_depth, col_depth"
_DEPTHS_SQL = f"SELECT {_DEPTH_KEYS}, count(*) AS n FROM trials WHERE tournament_id = ? GROUP BY {_DEPTH_KEYS}"


def depth_histogram(store: Store, tournament_id: int, fast: bool = True) -> list[DepthBin]:
    """Top-level decisions (both seats) by the depth their simulation chain reached."""
    config = store.tournament(tournament_id).config
    rows = _grouped(store, tournament_id, config, f"{_DEPTH_KEYS}, count(*) AS n", _DEPTHS_SQL, cells=False,
                    group="row_depth, col_depth", fast=fast)
    counts: Counter = Counter()
    for r in rows:
        cond = (r["game"], r["epsilon"], r["max_depth"], r["temperature"])
        counts[(cond, r["row_depth"])] += r["n"]
        counts[(cond, r["col_depth"])] += r["n"]
    rank = _condition_rank(config)
    return [DepthBin(game=c[0], epsilon=c[1], max_depth=c[2], temperature=c[3], depth=k, decisions=n)
            for (c, k), n in sorted(counts.items(), key=lambda kv: (rank(kv[0][0]), kv[0][1]))]


_SEAT_KEYS = f"game, epsilon, max_depth, temperature, {_MATCH}, row_program, col_program, row_depth, col_depth"
_SEAT_DEPTHS_SQL = f"SELECT {_SEAT_KEYS}, count(*) AS n FROM trials WHERE tournament_id = ? GROUP BY {_SEAT_KEYS}"


def depth_rows(store: Store, tournament_id: int, programs: Sequence[str] | None = None,
               fast: bool = True) -> list[DepthRow]:
    """Per condition, program, seat and opponent: top-level decisions by the depth their simulation chain
    reached (every stored trial, any status). Per opponent because the chain depends on it: against a
    program that does not simulate it stops at depth 1; P(depth = k) = (1−ε)^k·ε holds for an ε-grounded
    program against a simulating opponent of the same ε (itself, say), and not pooled over opponents."""
    config = store.tournament(tournament_id).config
    rows = _grouped(store, tournament_id, config, f"{_SEAT_KEYS}, count(*) AS n", _SEAT_DEPTHS_SQL,
                    group="row_depth, col_depth", fast=fast)
    counts: Counter = Counter()
    for r in rows:
        cond = (r["game"], r["epsilon"], r["max_depth"], r["temperature"])
        counts[(cond, r["row_program"], r["col_program"], "row", r["row_depth"])] += r["n"]
        counts[(cond, r["col_program"], r["row_program"], "col", r["col_depth"])] += r["n"]
    rank = _condition_rank(config)
    order = list(programs or config.get("programs", []))
    prog = lambda p: order.index(p) if p in order else len(order)  # noqa: E731
    keys = sorted(counts, key=lambda k: (rank(k[0]), prog(k[1]), k[1], k[3] != "row", prog(k[2]), k[2], k[4]))
    return [DepthRow(game=c[0], epsilon=c[1], max_depth=c[2], temperature=c[3], program=p, opponent=o, seat=seat,
                     depth=d, decisions=counts[(c, p, o, seat, d)]) for c, p, o, seat, d in keys]


def _condition_rank(config: dict):
    """Sort key of a condition: its position in the tournament's grid (unknown values last)."""
    axes = [config.get("games", []), config.get("epsilons", []), config.get("max_depths", []),
            config.get("temperatures", [None])]

    levels = list(config.get("disclosures", ["full"]))

    def rank(cond: Condition) -> tuple:
        level = condition_disclosure(cond[0])
        label = without_disclosure(cond[0])
        cond = (base_game(cond[0]), *cond[1:])
        return (*(axis.index(v) if v in axis else len(axis) for axis, v in zip(axes, cond)), label,
                levels.index(level) if level in levels else len(levels))

    return rank


# --- everything at once ------------------------------------------------------------------------------
TABLES = ("summary", "pairs", "programs", "matrix", "equilibria", "supports", "depths", "replicator", "moran",
          "calls")
MATCH_TABLES = ("matches", "match_programs", "rounds", "lengths")  # repeated games (analysis/rounds.py)
DISCLOSURE_TABLES = ("disclosure",)  # the value of disclosure (analysis/disclosure.py)
EPISODE_TABLES = ("episodes",)  # grid worlds' episodes (analysis/rounds.episode_rows)
EXTRA_TABLES = MATCH_TABLES + EPISODE_TABLES + DISCLOSURE_TABLES  # in 'all' when the tournament has them
_NEEDS_BOOT = ("matrix", "equilibria", "supports", "summary", "disclosure")  # the summary names equilibria by the verdicts


def tables(store: Store, tournament_id: int, names: Iterable[str] = TABLES, resamples: int | None = None,
           population: int | None = None) -> dict[str, list[BaseModel]]:
    """The named tables of a tournament, sharing one pass over its trials. `resamples`: bootstrap
    resamples behind the meta-game's intervals, verdicts and support frequencies (default 1000; 0: none);
    `population`: the Moran process's N (default 10)."""
    from arena.analysis import dynamics
    from arena.analysis.bootstrap import DEFAULT_RESAMPLES
    from arena.analysis.metagame import add_bootstrap, equilibrium_rows, matrix_rows, meta_matrices, support_rows

    names = list(names)
    unknown = [n for n in names if n not in TABLES and n not in EXTRA_TABLES]
    if unknown:
        raise ValueError(f"unknown table(s) {', '.join(unknown)}; tables: {', '.join(TABLES + EXTRA_TABLES)}")
    resamples = DEFAULT_RESAMPLES if resamples is None else resamples
    population = dynamics.DEFAULT_POPULATION if population is None else population
    out: dict[str, list[BaseModel]] = {}
    needs_outcomes = any(n not in ("calls", "depths", *MATCH_TABLES, *EPISODE_TABLES) for n in names)
    if needs_outcomes:
        o = load_outcomes(store, tournament_id)
        pair_list = pairs(o)
        lazy: dict[str, object] = {}

        def matrices():
            if "m" not in lazy:
                nash = any(n in names for n in ("equilibria", "summary", "supports"))
                lazy["m"] = m = meta_matrices(o.programs, pair_list, nash=nash)
                if any(n in names for n in _NEEDS_BOOT):
                    add_bootstrap(m, o.groups, resamples, int(o.config.get("seed", 0) or 0),
                                  nash="equilibria" in names or "supports" in names)
            return lazy["m"]

        def program_list():
            if "p" not in lazy:
                lazy["p"] = programs(o, matrices())
            return lazy["p"]

        for n in names:
            if n == "pairs":
                out[n] = pair_list
            elif n == "programs":
                out[n] = program_list()
            elif n == "summary":
                out[n] = conditions(o, program_list(), matrices())
            elif n == "matrix":
                out[n] = matrix_rows(matrices())
            elif n == "equilibria":
                out[n] = equilibrium_rows(matrices())
            elif n == "supports":
                out[n] = support_rows(matrices())
            elif n == "replicator":
                out[n] = [r for cond, m in matrices().items() if m.complete
                          for r in dynamics.replicator_rows(cond, m.programs, m.U)]
            elif n == "moran":
                out[n] = [r for cond, m in matrices().items() if m.complete
                          for r in dynamics.moran_rows(cond, m.programs, m.U, population)]
            elif n == "disclosure":
                from arena.analysis.disclosure import disclosure_rows

                out[n] = disclosure_rows(o.groups, o.programs, o.config.get("disclosures", ["full"]),
                                         _condition_rank(o.config), matrices(), resamples,
                                         int(o.config.get("seed", 0) or 0))
    if "depths" in names:
        out["depths"] = depth_rows(store, tournament_id)
    if "calls" in names:
        out["calls"] = call_rows(store, tournament_id)
    if any(n in MATCH_TABLES for n in names):
        from arena.analysis import rounds

        build = {"matches": rounds.match_rows, "match_programs": rounds.program_match_rows,
                 "rounds": rounds.round_rows, "lengths": rounds.length_rows}
        for n in MATCH_TABLES:
            if n in names:
                out[n] = build[n](store, tournament_id)
    if "episodes" in names:
        from arena.analysis.rounds import episode_rows

        out["episodes"] = episode_rows(store, tournament_id)
    return {n: out[n] for n in names}
