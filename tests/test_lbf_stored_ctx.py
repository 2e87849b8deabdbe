"""The ctx a stored grid-world code node was decided on (engine/code.py's stored_ctx, the app's node inspector):
the step's state and the history with its states, exactly what the program saw."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

from arena.engine.code import stored_ctx
from arena.engine.grid import TournamentConfig
from arena.engine.lbf import replay
from arena.engine.records import MatchRules
from arena.library.programs import CodeProgram
from arena.runner.tournament import TournamentRunner

SPY = CodeProgram(id="lbf-spy", kind="code", simulates=False, source=(
    "def decide(ctx):\n"
    "    s = str(ctx)\n"  # (printed whole, a ctx with its states would pass the output's limit)
    "    print(len(s), sum((i % 251 + 1) * ord(c) for i, c in enumerate(s)), ctx['state'])\n"
    "    if ctx['seat'] == 'col' and ctx['round'] == 4:\n"
    "        raise ValueError('step 4')\n"
    "    v = ctx['state']['valid_actions']\n"
    "    return v[int(ctx['u'] * len(v))]\n"))


def _digest(text: str) -> int:
    return sum((i % 251 + 1) * ord(c) for i, c in enumerate(text))


def _nodes(store, trial_id):
    rows = store.nodes(trial_id)
    idx = {n["id"]: n["idx"] for n in rows}
    return [SimpleNamespace(index=n["idx"], parent=idx.get(n["parent_id"]), side=n["side"], depth=n["depth"],
                            program=n["program"], mode=n["mode"], action=n["action"], round=n["round"],
                            code=json.loads(n["code"]) if n["code"] else None) for n in rows]


def test_a_stored_lbf_code_nodes_ctx_is_the_one_it_decided_on(store, programs, games):
    """lbf-spy prints its ctx's length, a digest of it and its state and, in the column seat, fails at step 4 (the episode ends there, steps 0-3
    stored). Every stored spy node's rebuilt ctx prints as the program's own output; one node's state and
    history are the stored rows' exactly; the failed step's state (no row stored) is the package's env's after
    step 3 (lbf.replay)."""
    g = games["foraging_pibr"]
    progs = {**programs, SPY.id: SPY}
    config = TournamentConfig(programs=["lbf-spy", "lbf-random"], games=["foraging_pibr"], epsilons=[0.2],
                              max_depths=[10], trials=1, recalls=[2])
    runner = TournamentRunner.create(store, config, progs, games)
    assert asyncio.run(runner.run()).status == "finished"
    trials = {(t["row_program"], t["col_program"]): t for t in store.trial_rows(runner.tournament_id)}
    checked = failed = 0
    for (row, col), t in trials.items():
        rounds = store.rounds(t["id"])
        nodes = _nodes(store, t["id"])
        rules = MatchRules(t["rounds"], t["continuation"], t["noise"], t["recall"])
        for n in nodes:
            ctx = stored_ctx(nodes, n.index, t["seed"], t["epsilon"], row, col, progs, g, rounds, rules)
            if n.program != SPY.id:
                assert ctx is None
                continue
            if n.code is None:  # the failing decision (its printed output is not kept): the state is the env's
                assert (n.round, n.side, n.action, len(rounds)) == (4, "col", None, 4)
                obs, _ = replay(g, t["seed"], [(r["row_action"], r["col_action"]) for r in rounds])
                assert (ctx["round"], ctx["state"]["step"], ctx["state"]["obs"]) == (4, 4, obs[4][1])
                assert [h["state"]["step"] for h in ctx["history"]] == [2, 3]
                failed += 1
                continue
            text = str(ctx)  # what the program printed: the ctx it was given
            assert n.code["output"] == f"{len(text)} {_digest(text)} {ctx['state']}\n"
            checked += 1
        if col == SPY.id:  # failed at step 4: steps 0..3 stored, the error the trial's
            assert (t["status"], len(rounds), t["error"].startswith("round 4: col depth 0 lbf-spy: ")) == \
                ("error", 4, True)
    assert checked > 50 and failed == 2  # (lbf-spy against itself and against lbf-random in the column)
    t = trials[("lbf-spy", "lbf-random")]
    rounds = store.rounds(t["id"])
    nodes = _nodes(store, t["id"])
    rules = MatchRules(t["rounds"], t["continuation"], t["noise"], t["recall"])
    (n3,) = [n for n in nodes if n.round == 3 and n.program == SPY.id]
    ctx = stored_ctx(nodes, n3.index, t["seed"], t["epsilon"], "lbf-spy", "lbf-random", progs, g, rounds, rules)
    states = [json.loads(r["state"]) for r in rounds]
    assert (ctx["round"], ctx["rounds"], ctx["seat"]) == (3, 50, "row")
    assert ctx["state"] == states[3][0] and ctx["state"]["step"] == 3
    assert ctx["history"] == [{"me": r["row_action"], "opponent": r["col_action"], "my_payoff": r["row_payoff"],
                               "opponent_payoff": r["col_payoff"], "state": s[0]}
                              for r, s in zip(rounds[1:3], states[1:3])]  # recall 2: steps 1 and 2
    assert [h["state"]["step"] for h in ctx["history"]] == [1, 2]
