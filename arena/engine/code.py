"""Code programs as agents of the simulator: the ctx a program sees, and what its answer means.

The recursion stays the simulator's: `decide(ctx)` is called at every node the program occupies, with
`opponent_action` the simulated opponent's action (None when grounded, capped or acting directly). The
answer is an action name, or a list of probabilities over `game.actions` sampled with the node's `u`.
"""

from __future__ import annotations

import json
import math
from typing import Any

from arena.engine.disclosure import FULL_DISCLOSURE, Disclosure, opponent_label, opponent_source, shown
from arena.engine.records import FIRST_ROUND, GROUNDED, SIMULATED, MatchRules, Node, Play, RoundRecord, TrialSpec
from arena.engine.sandbox import DecisionOutcome, Request, Sandbox, full_ctx
from arena.engine.seeds import round_seed
from arena.library.games import Game
from arena.library.programs import BuiltinProgram, CodeProgram, LLMProgram

AnyProgram = BuiltinProgram | LLMProgram | CodeProgram
PROB_TOLERANCE = 1e-6


class ProgramFailed(Exception):
    """A program could not give an action at a node (recorded on the node; the trial is an error)."""


def game_view(game: Game, seat: str) -> dict:
    """The game from one seat: payoffs[i][j] = [mine, theirs] when I play actions[i] and they play j."""
    n = len(game.actions)
    if seat == "row":
        payoffs = [[[game.payoffs[i][j][0], game.payoffs[i][j][1]] for j in range(n)] for i in range(n)]
        coop = [[a, b] for a, b in game.cooperative]
    else:
        payoffs = [[[game.payoffs[j][i][1], game.payoffs[j][i][0]] for j in range(n)] for i in range(n)]
        coop = [[b, a] for a, b in game.cooperative]
    return {"id": game.id, "actions": list(game.actions), "payoffs": payoffs, "default_action": game.default_for(seat),
            "defect_action": game.defect_action, "cooperative": coop}


def build_ctx(game: Game, seat: str, me: CodeProgram, opp: AnyProgram, opp_action: str | None, depth: int,
              epsilon: float, u: float, play: Play | None = None, disclosure: Disclosure = FULL_DISCLOSURE,
              seed: int = 0) -> dict:
    """The ctx dict of one node (the same function serves the run, the smoke test and the app): the opponent
    as `disclosure` shows it (obfuscated from the trial's `seed`), `me` always the program's own code."""
    if disclosure.full:
        source, opp_id, opp_kind = opponent_source(opp), opp.id, opp.kind
    else:
        source = shown(opp, disclosure, seed, for_code=True)
        opp_id, opp_kind = opponent_label(opp, disclosure)
    ctx = {"game": game_view(game, seat), "seat": seat, "me": me.code, "opponent": source,
           "opponent_id": opp_id, "opponent_kind": opp_kind, "opponent_action": opp_action, "depth": depth,
           "epsilon": epsilon, "u": u, **match_ctx(FIRST_ROUND, seat)}
    if play is not None:
        ctx.update(match_ctx(play, seat))
    return ctx


def match_ctx(play: Play, seat: str, rows: bool = False) -> dict:
    """The keys of ctx that tell a program where the match is: round (0-based), rounds (the horizon, None when
    hidden or open-ended; a Markov game's episode length), continuation, history (the last `recall` rounds from
    this seat, oldest first; in a Markov game each with the state it was decided on) and state (a Markov game's
    state from this seat, engine/lbf.py; None in a matrix game). `rows`: a Request's form, the history as Play.rows
    tuples and a Markov game's states as JSON text (lbf.view_text: each view is serialised once, and one string
    crosses into the sandbox where a state's two dozen objects would, to be parsed there into the program's own
    copy); sandbox.full_ctx and the sandbox's helpers turn them into the dicts."""
    st = play.state
    if st is None:
        return {"round": play.round, "rounds": play.rounds, "continuation": play.rules.continuation,
                "history": play.rows(seat) if rows else play.seen(seat), "state": None}
    i = 0 if seat == "row" else 1
    if not rows:
        return {"round": play.round, "rounds": play.rounds, "continuation": play.rules.continuation,
                "history": play.seen(seat), "state": st[i]}
    from arena.engine.lbf import view_text

    return {"round": play.round, "rounds": play.rounds, "continuation": play.rules.continuation,
            "history": [(a, b, x, y, view_text(v)) for a, b, x, y, v in play.rows(seat)], "state": view_text(st[i])}


def interpret(value: Any, actions: list[str], u: float) -> tuple[str | None, str | None]:
    """(action, None) for a valid answer, else (None, why): an action name, or probabilities over
    `actions` (finite, non-negative, summing to 1) sampled with the node's draw `u`."""
    if isinstance(value, str):
        if value in actions:
            return value, None
        return None, f"returned {_show(value)}, which is not an action of this game {actions}"
    if isinstance(value, (list, tuple)):
        if len(value) != len(actions):
            return None, f"returned {len(value)} probabilities for the {len(actions)} actions {actions}"
        for p in value:
            if not isinstance(p, (int, float)) or isinstance(p, bool) or not math.isfinite(p) or p < 0:
                return None, f"returned probabilities {_show(value)}: each must be a finite number >= 0"
        total = math.fsum(value)
        if abs(total - 1) > PROB_TOLERANCE:
            return None, f"returned probabilities {_show(value)} that sum to {total:g}, not 1"
        acc = 0.0
        for a, p in zip(actions, value):
            acc += p
            if u < acc:
                return a, None
        return [a for a, p in zip(actions, value) if p > 0][-1], None
    return None, (f"returned {_show(value)}: decide must return an action name {actions} or a list of "
                  f"{len(actions)} probabilities")


def _show(value: Any, n: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= n else text[: n - 1] + "…"


def node_record(outcome: DecisionOutcome, action: str | None) -> dict | None:
    """What is kept on a node beyond its action: a value that is not just the action name, the printed
    output, None when there is nothing more to say."""
    rec = {}
    if outcome.value is not None and outcome.value != action:
        rec["value"] = outcome.value if isinstance(outcome.value, (str, int, float, list)) else repr(outcome.value)
    if outcome.output:
        rec["output"] = outcome.output
    return rec or None


class CodeAgent:
    """The runtime form of a CodeProgram: asks the sandbox, one node or a batch of nodes at a time."""

    is_async = False

    def __init__(self, program: CodeProgram, sandbox: Sandbox):
        self.program = program
        self.epsilon = program.epsilon
        self.simulates = program.simulates
        self.sandbox = sandbox
        self._fixed: dict[tuple, dict] = {}

    def request(self, game: Game, opp: AnyProgram, node: Node, spec: TrialSpec | None,
                opp_action: str | None) -> Request:
        """A node's decision for the sandbox: the ctx's fixed part (built once per game, seat and
        opponent) and the node's own opponent_action, depth, epsilon and u."""
        eps = self.epsilon if self.epsilon is not None else (spec.epsilon if spec is not None else 0.0)
        d = spec.disclosure if spec is not None else FULL_DISCLOSURE
        if d.level == "obfuscated" and opp.kind == "code":  # obfuscated from each trial's seed
            key = (game.id, node.side, opp.id, d, spec.seed)
            base = self._fixed.get(key)
            if base is None:
                if len(self._fixed) > 4096:
                    self._fixed.clear()
                base = self._fixed[key] = build_ctx(game, node.side, self.program, opp, None, 0, 0.0, 0.0, None, d,
                                                    spec.seed)
        else:
            key = (game.id, node.side, opp.id) if d.full else (game.id, node.side, opp.id, d)
            base = self._fixed.get(key)
            if base is None:
                base = self._fixed[key] = build_ctx(game, node.side, self.program, opp, None, 0, 0.0, 0.0, None, d,
                                                    spec.seed if spec is not None else 0)
        play = None if spec is None or spec.play is None else match_ctx(spec.play, node.side, rows=True)
        return (base, opp_action, node.depth, eps, node.u, play)

    def ctx(self, game: Game, opp: AnyProgram, node: Node, spec: TrialSpec | None, opp_action: str | None) -> dict:
        """The ctx dict `decide` gets at a node (== build_ctx)."""
        return full_ctx(self.request(game, opp, node, spec, opp_action))

    def finish(self, game: Game, node: Node, outcome: DecisionOutcome) -> str:
        """The node's action from an outcome; records the value/output; raises ProgramFailed."""
        if outcome.error is not None:
            node.code = {"output": outcome.output} if outcome.output else None
            raise ProgramFailed(outcome.error)
        action, why = interpret(outcome.value, game.actions, node.u)
        node.code = node_record(outcome, action)
        if action is None:
            raise ProgramFailed(why)
        return action

    def ground(self, game: Game, opp: AnyProgram, u: float, spec: TrialSpec | None = None,
               node: Node | None = None) -> str:
        return self._decide(game, opp, spec, node, None)

    def respond(self, game: Game, opp: AnyProgram, u: float, opp_action: str, spec: TrialSpec | None = None,
                node: Node | None = None) -> str:
        return self._decide(game, opp, spec, node, opp_action)

    def _decide(self, game: Game, opp: AnyProgram, spec: TrialSpec | None, node: Node | None,
                opp_action: str | None) -> str:
        if node is None:
            raise TypeError("a code program decides at a node: pass the node")
        ctx = self.ctx(game, opp, node, spec, opp_action)
        return self.finish(game, node, self.sandbox.run_one(self.program, ctx))


def node_draws(seed: int, modes: list[str]) -> list[float]:
    """The `u` of each node of a stored trial, from its seed and its nodes' modes in order (the draws of
    simulator.plan: each node draws u, then an epsilon coin unless it acts directly or is capped)."""
    from _random import Random

    rng = Random(seed)
    us = []
    for m in modes:
        us.append(rng.random())
        if m in (GROUNDED, SIMULATED):
            rng.random()
    return us


def stored_ctx(nodes: list, index: int, seed: int, epsilon: float, row: str, col: str, programs: dict,
               game: Game, rounds: list[dict] | None = None, rules: MatchRules | None = None,
               disclosure: Disclosure = FULL_DISCLOSURE) -> dict | None:
    """The ctx a code program's node was given, rebuilt from a stored trial: its nodes (index, parent,
    side, depth, program, mode, action, round, in order), seed, ε and seats, and the tournament's programs;
    for a match also its stored rounds and rules (each round's nodes draw from the round's seed), and the
    trial's disclosure. A Markov game's step: the stored states, the one the step was decided on as
    ctx["state"] and those before it in the history (a step with no stored row, where the episode ended in an
    error, has its state from the env stepped again with the stored actions).
    None if the node is not a code program's."""
    node = nodes[index]
    me = programs.get(node.program)
    if not isinstance(me, CodeProgram):
        return None
    t = getattr(node, "round", 0)
    same = [n for n in nodes if getattr(n, "round", 0) == t]
    us = dict(zip((n.index for n in same), node_draws(round_seed(seed, t), [n.mode for n in same])))
    opp = programs[col if node.side == "row" else row]  # as the simulator's: the program in the other seat
    child = next((n for n in nodes if n.parent == node.index), None)
    eps = me.epsilon if me.epsilon is not None else epsilon
    play = None
    if game.markov:  # (a step's rounds row, or none where the episode failed at step t: none at all at step 0)
        states = [tuple(json.loads(r["state"])) for r in (rounds or [])[:t + 1]]
        past = tuple(RoundRecord(r["round"], r["row_intended"], r["col_intended"], r["row_action"], r["col_action"],
                                 r["row_payoff"], r["col_payoff"], bool(r["cooperative"]), s)
                     for r, s in zip((rounds or [])[:t], states))
        state = states[t] if len(states) > t else _state_before(game, seed, past)
        play = Play(t, rules or MatchRules(), past, state)
    elif rounds and rules is not None:
        past = tuple(RoundRecord(r["round"], r["row_intended"], r["col_intended"], r["row_action"], r["col_action"],
                                 r["row_payoff"], r["col_payoff"], bool(r["cooperative"])) for r in rounds[:t])
        play = Play(t, rules, past)
    return build_ctx(game, node.side, me, opp, child.action if child is not None else None, node.depth, eps,
                     us[node.index], play, disclosure, seed)


def _state_before(game: Game, seed: int, past: tuple[RoundRecord, ...]) -> tuple[dict, dict]:
    """A Markov game's state after the stored steps `past` (both seats' views), from the trial's env stepped again
    with the actions played (the env is a function of the trial's seed, engine/lbf.py)."""
    from arena.engine.lbf import Environment

    env = Environment(game, seed)
    state = env.reset()
    for r in past:
        state, _, _ = env.step(r.row_action, r.col_action)
    return state
