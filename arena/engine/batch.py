"""Many trials at once, with code programs' decisions batched (same semantics as run_trial_sync).

A trial's nodes are drawn before any program acts (simulator.plan), and a chain resolves from its leaf
up: the k-th step of every chain only needs the (k-1)-th. So the trials of a batch resolve step by step
together, and at each step every code program answers all its nodes in one sandbox feed. The draws,
the nodes and the results are exactly those of running the trials one by one.
"""

from __future__ import annotations

import time
from collections import defaultdict

from arena.engine.code import CodeAgent, ProgramFailed
from arena.engine.records import Node, TrialResult, TrialSpec
from arena.engine.simulator import PROPAGATED, Agent, _finish, plan
from arena.library.games import Game


def run_trials_batched(specs: list[TrialSpec], games: dict[str, Game], agents: dict[str, Agent],
                       programs: dict) -> list[TrialResult]:
    t0 = time.perf_counter()
    planned = [(spec, *plan(spec, agents)) for spec in specs]
    chains: list[tuple[TrialSpec, list[Node]]] = []
    for spec, _nodes, row, col in planned:
        chains.append((spec, row))
        chains.append((spec, col))
    resolve_batched(chains, games, agents, programs)
    results = []
    per_trial = (time.perf_counter() - t0) / max(len(specs), 1)
    for spec, nodes, row, col in planned:
        res = _finish(spec, games[spec.game], nodes, row, col, time.perf_counter())
        res.duration_ms = per_trial * 1000
        results.append(res)
    return results


def resolve_batched(chains: list[tuple[TrialSpec, list[Node]]], games: dict[str, Game], agents: dict[str, Agent],
                    programs: dict) -> None:
    """Resolve many chains (each with the spec of its trial's round) level by level from their leaves, code
    programs answering all their nodes of a level in one sandbox feed."""
    prev: list[str | None] = [None] * len(chains)  # the action each chain's last resolved node gave
    longest_first = sorted(range(len(chains)), key=lambda i: -len(chains[i][1]))
    active = len(chains)
    step = 0
    while True:
        # (chain index, spec, node) of every chain that has a node `step` levels above its leaf
        while active and len(chains[longest_first[active - 1]][1]) <= step:
            active -= 1
        if not active:
            break
        todo = []
        for i in sorted(longest_first[:active]):  # in chain order, so feeds do not depend on lengths
            spec, chain = chains[i]
            todo.append((i, spec, chain[len(chain) - 1 - step]))
        by_code: dict[str, list[tuple[int, TrialSpec, Node, str | None]]] = defaultdict(list)
        for i, spec, node in todo:
            opp_action = prev[i]
            if step > 0 and opp_action is None:
                node.error = PROPAGATED
                continue
            agent = agents[node.program]
            if isinstance(agent, CodeAgent):
                by_code[node.program].append((i, spec, node, opp_action))
                continue
            opp = programs[spec.col if node.side == "row" else spec.row]
            game = games[spec.game]
            try:
                action = (agent.ground(game, opp, node.u, spec, node) if step == 0
                          else agent.respond(game, opp, node.u, opp_action, spec, node))
            except ProgramFailed as exc:
                node.error, action = str(exc), None
            node.action = prev[i] = action
        for pid, items in by_code.items():
            agent = agents[pid]
            requests = [agent.request(games[spec.game], programs[spec.col if node.side == "row" else spec.row], node,
                                      spec, a) for _i, spec, node, a in items]
            outcomes = agent.sandbox.run_many(agent.program, requests)
            for (i, spec, node, _a), outcome in zip(items, outcomes):
                try:
                    action = agent.finish(games[spec.game], node, outcome)
                except ProgramFailed as exc:
                    node.error, action = str(exc), None
                node.action = prev[i] = action
        for i, spec, node in todo:
            if node.error is not None:
                prev[i] = None
        step += 1
