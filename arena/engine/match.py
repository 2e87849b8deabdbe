"""A trial as a match: rounds t = 0, 1, ... until the fixed horizon, a failed continuation draw or
`max_rounds` (DESIGN.md, "Games over time").

At each round both programs decide by the εGrounded recursion exactly as in a one-shot game
(simulator.py), with the rounds so far in every node's context (`TrialSpec.play`): a simulated opponent
decides at the same round on the same history, seen from its own seat. Every draw comes from the trial's
seed and the round, never from scheduling: round t's nodes draw from `round_seed(seed, t)` (round 0 from
the trial seed itself, so a one-round match is the one-shot trial), and the noise and continuation draws
from one stream of the match (`match_seed`), consumed in a fixed order: each round, the row seat's noise
coin (and which other action, when it flips and there are more than two), the column's, then the
continuation draw.

A game with a state (a Markov game: Level-Based Foraging, engine/lbf.py) steps an `Environment` instead of
looking up a payoff table: created from the game and seeded from the trial's seed, reset before round 0,
stepped with the played actions after each round; its episode ends the match (the rules' rounds and
continuation do not apply; noise and recall do). Each round's programs are told the state (`Play.state`),
and the round is stored with it. A matrix game is the one-state case and goes the path it always went.

A one-shot trial never comes here (run_trial_*, batch.py): its records stay bit for bit what they were.
The match's nodes are numbered across rounds (`Node.round` says which); the trial's payoffs are the means
per round, `cooperative` the share of cooperative rounds, `rounds` the rounds as played.
"""

from __future__ import annotations

import time
from _random import Random
from collections.abc import Callable

from arena.engine.batch import resolve_batched
from arena.engine.seeds import match_seed, round_seed
from arena.engine.records import Node, Play, RoundRecord, TrialResult, TrialSpec
from arena.engine.simulator import Agent, _finish, plan, resolve_async, resolve_sync
from arena.library.games import Game


def is_match(spec: TrialSpec, game: Game) -> bool:
    """Whether a trial runs as a match: its rules say more than one round (or noise), or its game has a state."""
    return not spec.match.one_shot or game.markov


class Match:
    """One match under way: its nodes and rounds so far, and the draws that end it or flip its actions."""

    __slots__ = ("spec", "game", "rules", "nodes", "rounds", "rng", "over", "failed", "env", "state", "_chains",
                 "_t0")

    def __init__(self, spec: TrialSpec, game: Game):
        self.spec = spec
        self.game = game
        self.rules = spec.match
        self.nodes: list[Node] = []
        self.rounds: list[RoundRecord] = []
        self.rng = Random(match_seed(spec.seed))
        self.over = False
        self.failed: tuple[list[Node], list[Node]] | None = None  # the chains of a round that gave no action
        self._chains: tuple[list[Node], list[Node]] = ([], [])
        self._t0 = time.perf_counter()
        self.env = self.state = None
        if game.markov:
            from arena.engine.lbf import Environment

            self.env = Environment(game, spec.seed)
            self.state = self.env.reset()

    @property
    def round(self) -> int:
        return len(self.rounds)

    def round_spec(self) -> TrialSpec:
        """The spec the programs of the next round decide under: the trial's, with the match so far."""
        s = self.spec  # (the constructor: dataclasses.replace costs a third of a built-in round)
        return TrialSpec(s.seq, s.game, s.row, s.col, s.epsilon, s.max_depth, s.temperature, s.index, s.seed, s.match,
                         Play(len(self.rounds), self.rules, tuple(self.rounds), self.state), s.disclosure)

    def plan_round(self, spec: TrialSpec, agents: dict[str, Agent]) -> tuple[list[Node], list[Node]]:
        """The next round's row and column chains, appended to the match's nodes."""
        t = self.round
        _, row, col = plan(spec, agents, self.nodes, round_seed(self.spec.seed, t), t)
        self._chains = (row, col)
        return row, col

    def close_round(self) -> None:
        """Score the round just resolved (noise applied to the intended actions); decide whether the match
        goes on."""
        row, col = self._chains
        a, b = row[0].action, col[0].action
        if a is None or b is None:
            self.failed, self.over = (row, col), True
            return
        rules, rng, game = self.rules, self.rng, self.game
        pa, pb = a, b
        if rules.noise:
            pa = self._noisy(a)
            pb = self._noisy(b)
        if self.env is not None:
            state, (rp, cp), done = self.env.step(pa, pb)
            self.rounds.append(RoundRecord(len(self.rounds), a, b, pa, pb, rp, cp, rp > 0 or cp > 0, self.state))
            self.state = state
            self.over = done
            return
        rp, cp = game.payoff_table[(pa, pb)]
        self.rounds.append(RoundRecord(len(self.rounds), a, b, pa, pb, rp, cp, (pa, pb) in game.cooperative_set))
        n = len(self.rounds)
        if rules.continuation is not None:
            self.over = n >= rules.max_rounds or rng.random() >= rules.continuation
        else:
            self.over = n >= rules.rounds

    def _noisy(self, action: str) -> str:
        if self.rng.random() >= self.rules.noise:
            return action
        others = [x for x in self.game.actions if x != action]
        if len(others) == 1:
            return others[0]
        return others[min(int(self.rng.random() * len(others)), len(others) - 1)]

    def result(self) -> TrialResult:
        """The trial: the match's nodes and rounds; payoffs are means per round, `cooperative` the share of
        cooperative rounds; an error if a round gave no action (the rounds before it are kept)."""
        if self.failed is not None:
            row, col = self.failed
            res = _finish(self.spec, self.game, self.nodes, row, col, self._t0)
            res.error = f"round {self.round}: {res.error}"
            res.row_action = res.col_action = None
            res.row_payoff = res.col_payoff = res.cooperative = None
        else:
            last = self.rounds[-1]
            n = len(self.rounds)
            res = TrialResult(self.spec, self.nodes, last.row_action, last.col_action,
                              sum(r.row_payoff for r in self.rounds) / n, sum(r.col_payoff for r in self.rounds) / n,
                              sum(r.cooperative for r in self.rounds) / n)
        res.rounds = self.rounds
        res.duration_ms = (time.perf_counter() - self._t0) * 1000
        return res


def totals(rounds: list[RoundRecord], discount: float) -> tuple[float, float, float, float]:
    """(row total, column total, row discounted, column discounted): sums over the rounds, round t weighed
    by discount**t in the discounted ones."""
    rt = ct = rd = cd = 0.0
    w = 1.0
    for r in rounds:
        rt += r.row_payoff
        ct += r.col_payoff
        rd += w * r.row_payoff
        cd += w * r.col_payoff
        w *= discount
    return rt, ct, rd, cd


# --- the three ways a trial runs, for matches ------------------------------------------------------
def run_match_sync(spec: TrialSpec, game: Game, agents: dict[str, Agent], programs: dict) -> TrialResult:
    """A match of built-in programs, round by round."""
    m = Match(spec, game)
    while not m.over:
        rspec = m.round_spec()
        row, col = m.plan_round(rspec, agents)
        resolve_sync(row, rspec, game, agents, programs)
        resolve_sync(col, rspec, game, agents, programs)
        m.close_round()
    return m.result()


def run_any_batched(specs: list[TrialSpec], games: dict[str, Game], agents: dict[str, Agent],
                    programs: dict) -> list[TrialResult]:
    """Trials with code programs, one-shot or matches, results in the order of `specs`."""
    from arena.engine.batch import run_trials_batched

    shots = [s for s in specs if not is_match(s, games[s.game])]
    if len(shots) == len(specs):
        return run_trials_batched(specs, games, agents, programs)
    done = {id(r.spec): r for r in run_trials_batched(shots, games, agents, programs)} if shots else {}
    for r in run_matches_batched([s for s in specs if is_match(s, games[s.game])], games, agents, programs):
        done[id(r.spec)] = r
    return [done[id(s)] for s in specs]


def run_matches_batched(specs: list[TrialSpec], games: dict[str, Game], agents: dict[str, Agent],
                        programs: dict) -> list[TrialResult]:
    """Many matches with code programs: round t of every match still going resolves together (one sandbox
    feed per program and tree level), as batch.py does for one-shot trials."""
    matches = [Match(spec, games[spec.game]) for spec in specs]
    going = list(matches)
    while going:
        chains: list[tuple[TrialSpec, list[Node]]] = []
        for m in going:
            rspec = m.round_spec()
            row, col = m.plan_round(rspec, agents)
            chains.append((rspec, row))
            chains.append((rspec, col))
        resolve_batched(chains, games, agents, programs)
        for m in going:
            m.close_round()
        going = [m for m in going if not m.over]
    return [m.result() for m in matches]


async def run_match_async(spec: TrialSpec, game: Game, agents: dict[str, Agent], programs: dict,
                          on_plan: Callable[[TrialSpec, list[Node]], None] | None = None,
                          on_node: Callable[[TrialSpec, Node], None] | None = None,
                          on_decided: Callable[[], None] | None = None,
                          on_round: Callable[[TrialSpec, RoundRecord], None] | None = None) -> TrialResult:
    """A match with an LLM program: each round's two decisions resolve concurrently, as in run_trial_async.
    A match keeps two decisions going from its first round to its last, so `on_decided` is called twice when
    it ends (the runner counts decisions in flight); `on_round` as each round is scored."""
    import asyncio

    m = Match(spec, game)
    while not m.over:
        rspec = m.round_spec()
        first = len(m.nodes)
        row, col = m.plan_round(rspec, agents)
        if on_plan is not None:
            on_plan(rspec, m.nodes[first:])
        await asyncio.gather(resolve_async(row, rspec, game, agents, programs, on_node),
                             resolve_async(col, rspec, game, agents, programs, on_node))
        m.close_round()
        if on_round is not None and m.rounds and m.failed is None:
            on_round(rspec, m.rounds[-1])
    if on_decided is not None:
        on_decided()
        on_decided()
    return m.result()
