"""The epsilon-grounded recursion (ARCHITECTURE.md, "The εGrounded recursion, exactly").

    decide(me, opp, depth):
        if depth >= max_depth or rng() < eps_me:  -> ground(me)
        a_opp = decide(opp, me, depth + 1)
        return respond(me, a_opp)

Every decide() makes at most one nested call, so a top-level decision is a chain. We run it in two
phases with identical semantics: *descend* draws every coin on the way down (no program is asked
anything on the way down), then *resolve* asks the leaf to ground and each level above to respond,
deepest first. One seeded RNG per trial is consumed in a fixed order (row's chain, then column's),
so results never depend on scheduling, and the row and column decisions are independent.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from _random import Random as _MersenneTwister  # random.Random's C core: the same stream for an int seed
from collections.abc import Awaitable, Callable
from typing import Protocol

from arena.engine.code import CodeAgent, ProgramFailed
from arena.library.games import Game
from arena.engine.records import (
    CAPPED,
    DIRECT,
    ERROR,
    GROUNDED,
    OK,
    REFUSED,
    SIMULATED,
    CallRecord,
    Node,
    TrialResult,
    TrialSpec,
)

PROPAGATED = "simulation below failed"  # error of a node whose simulated opponent produced no action


class Move(Protocol):
    """What an asynchronous (LLM) agent returns: an action, or None with an error and its calls."""

    action: str | None
    error: str | None
    refused: bool
    calls: list[CallRecord]


class Agent(Protocol):
    program: object  # BuiltinProgram | LLMProgram
    epsilon: float | None  # the program's own epsilon, overriding the tournament's
    simulates: bool
    is_async: bool

    def ground(self, game: Game, opp: object, u: float, spec: TrialSpec | None = None,
               node: Node | None = None) -> str | Awaitable[Move]: ...

    def respond(self, game: Game, opp: object, u: float, opp_action: str, spec: TrialSpec | None = None,
                node: Node | None = None) -> str | Awaitable[Move]: ...


def descend(agents: dict[str, Agent], me: str, opp: str, side: str, epsilon: float, max_depth: int,
            rng: random.Random, nodes: list[Node]) -> list[Node]:
    """Draw one top-level decision's chain: nodes from depth 0 down to the acting leaf.

    Each node draws its own uniform `u` first, then (if it may simulate) its epsilon coin.
    """
    chain: list[Node] = []
    parent = None
    depth = 0
    rand = rng.random
    while True:
        u = rand()
        agent = agents[me]
        if not agent.simulates:
            mode = DIRECT
        elif depth >= max_depth:
            mode = CAPPED
        else:
            eps = agent.epsilon
            mode = GROUNDED if rand() < (epsilon if eps is None else eps) else SIMULATED
        node = Node(len(nodes), parent, side, depth, me, u, mode)
        nodes.append(node)
        chain.append(node)
        if mode != SIMULATED:
            return chain
        parent = node.index
        me, opp = opp, me
        side = "col" if side == "row" else "row"
        depth += 1


def plan(spec: TrialSpec, agents: dict[str, Agent], nodes: list[Node] | None = None, seed: int | None = None,
         round_: int = 0) -> tuple[list[Node], list[Node], list[Node]]:
    """All nodes of a trial (row chain then column chain), before any program acts. A match's later rounds
    append theirs to the match's `nodes`, drawn from the round's own `seed` (engine/match.py)."""
    rng = _MersenneTwister(spec.seed if seed is None else seed)
    if nodes is None:
        nodes = []
    first = len(nodes)
    row = descend(agents, spec.row, spec.col, "row", spec.epsilon, spec.max_depth, rng, nodes)
    col = descend(agents, spec.col, spec.row, "col", spec.epsilon, spec.max_depth, rng, nodes)
    if round_:
        for n in nodes[first:]:
            n.round = round_
    return nodes, row, col


def _opponent(node: Node, spec: TrialSpec) -> str:
    return spec.col if node.side == "row" else spec.row


def _finish(spec: TrialSpec, game: Game, nodes: list[Node], row: list[Node], col: list[Node], t0: float) -> TrialResult:
    res = TrialResult(spec, nodes, row[0].action, col[0].action)
    if res.row_action is not None and res.col_action is not None:
        res.row_payoff, res.col_payoff = game.payoff_table[(res.row_action, res.col_action)]
        res.cooperative = (res.row_action, res.col_action) in game.cooperative_set
    else:
        # The root cause is the deepest failure; the nodes above it only report that it failed.
        causes = [n for n in nodes if n.error and n.error != PROPAGATED]
        cause = causes[0] if causes else None
        res.status = REFUSED if cause is not None and _is_refusal(cause) else ERROR
        res.error = f"{cause.side} depth {cause.depth} {cause.program}: {cause.error}" if cause else "no action"
    res.duration_ms = (time.perf_counter() - t0) * 1000
    return res


def _is_refusal(node: Node) -> bool:
    return bool(node.calls) and node.calls[-1].status == "refusal"


# --- synchronous fast path: every program is a built-in bot ---------------------------------------
def resolve_sync(chain: list[Node], spec: TrialSpec, game: Game, agents: dict[str, Agent], programs: dict) -> None:
    vs_row, vs_col = programs[spec.col], programs[spec.row]  # the opponent of the row seat, of the column seat
    leaf = chain[-1]
    try:
        action = agents[leaf.program].ground(game, vs_row if leaf.side == "row" else vs_col, leaf.u, spec, leaf)
    except ProgramFailed as exc:  # a code program's failure is the node's, never the run's
        leaf.error, action = str(exc), None
    leaf.action = action
    for i in range(len(chain) - 2, -1, -1):
        node = chain[i]
        if action is None:
            node.error = PROPAGATED
            continue
        try:
            action = agents[node.program].respond(game, vs_row if node.side == "row" else vs_col, node.u, action,
                                                  spec, node)
        except ProgramFailed as exc:
            node.error, action = str(exc), None
        node.action = action


def run_trial_sync(spec: TrialSpec, game: Game, agents: dict[str, Agent], programs: dict) -> TrialResult:
    t0 = time.perf_counter()
    nodes, row, col = plan(spec, agents)
    resolve_sync(row, spec, game, agents, programs)
    resolve_sync(col, spec, game, agents, programs)
    return _finish(spec, game, nodes, row, col, t0)


# --- asynchronous path: LLM programs, node events as the tree resolves ---------------------------
NodeListener = Callable[[TrialSpec, Node], None]


async def _act(agent: Agent, node: Node, spec: TrialSpec, game: Game, opp: object, opp_action: str | None) -> None:
    # A program's own failure (a provider error, no parseable answer) comes back in the move, a code
    # program's as ProgramFailed (its error line in the message); any other exception is cancellation, a
    # systematic failure (ArenaError: bad key, unknown model) or a bug in Arena: each stops the run, none
    # is recorded as the program's failure.
    try:
        if opp_action is None:
            call = functools.partial(agent.ground, game, opp, node.u, spec, node)
        else:
            call = functools.partial(agent.respond, game, opp, node.u, opp_action, spec, node)
        if not agent.is_async:
            # a code program's decision is a sandbox feed (up to its time limit): in a thread, so that the event
            # loop goes on meanwhile (LLM calls in flight, pause, cancel); a built-in bot's is a rule, at once
            node.action = await asyncio.to_thread(call) if isinstance(agent, CodeAgent) else call()
            return
        move = await call()
    except ProgramFailed as exc:
        node.error = str(exc)
        return
    node.calls.extend(move.calls)
    if move.action is None:
        node.error = move.error or ("refused" if move.refused else "no action")
    else:
        node.action = move.action


async def resolve_async(chain: list[Node], spec: TrialSpec, game: Game, agents: dict[str, Agent], programs: dict,
                        on_node: NodeListener | None) -> None:
    action: str | None = None
    for depth_from_leaf, node in enumerate(reversed(chain)):
        if depth_from_leaf > 0 and action is None:
            # The simulated opponent produced no action: nothing to respond to.
            node.error = PROPAGATED
        else:
            agent = agents[node.program]
            await _act(agent, node, spec, game, programs[_opponent(node, spec)], action)
        action = node.action
        if on_node is not None:
            on_node(spec, node)


async def run_trial_async(spec: TrialSpec, game: Game, agents: dict[str, Agent], programs: dict,
                          on_plan: Callable[[TrialSpec, list[Node]], None] | None = None,
                          on_node: NodeListener | None = None,
                          on_decided: Callable[[], None] | None = None) -> TrialResult:
    """One trial; its row and column decisions resolve concurrently. `on_decided()` is called as each
    of the two top-level decisions is done (the runner keeps a number of decisions in flight)."""
    t0 = time.perf_counter()
    nodes, row, col = plan(spec, agents)
    if on_plan is not None:
        on_plan(spec, nodes)

    async def decide(chain: list[Node]) -> None:
        await resolve_async(chain, spec, game, agents, programs, on_node)
        if on_decided is not None:
            on_decided()

    await asyncio.gather(decide(row), decide(col))
    return _finish(spec, game, nodes, row, col, t0)


__all__ = [
    "Agent", "Move", "descend", "plan", "run_trial_sync", "run_trial_async", "resolve_sync", "resolve_async",
    "SIMULATED", "GROUNDED", "CAPPED", "DIRECT", "OK", "REFUSED", "ERROR",
]
