"""The papers' conventions, runnable unchanged (programs/papers/): the PIBR paper's
history_dependent_policy_0/1(game_history) and Sistla & Kleiman-Weiner's strategy_function(...), detected
by library/codecheck.py and called through the decide Arena adds in the sandbox (engine/sandbox.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from arena.engine.bots import BotAgent
from arena.engine.code import CodeAgent
from arena.engine.match import run_match_sync, run_matches_batched
from arena.engine.records import MatchRules, TrialSpec
from arena.engine.sandbox import Sandbox, adapter
from arena.library.codecheck import check_source, entry_point
from arena.library.programs import CodeProgram

ROOT = Path(__file__).resolve().parents[1]


def test_entry_points_are_detected_and_checked():
    assert entry_point("def decide(ctx):\n    return 'a'\n") == "decide"
    assert entry_point("def history_dependent_policy_1(game_history):\n    return [1.0]\n") == "pibr"
    assert entry_point("def strategy_function(a, b, c, d):\n    return 'C'\n") == "strategy_function"
    assert check_source("def strategy_function(a, b):\n    return 'C'\n")[0].message.startswith(
        "`strategy_function` must take exactly four arguments")
    assert "history_dependent_policy_0/1" in check_source("def f(x):\n    return 1\n")[0].message
    assert adapter("def decide(ctx):\n    return 'a'\n") is None
    only_one = adapter("def history_dependent_policy_1(game_history):\n    return [1.0]\n")
    assert "(history_dependent_policy_1 if _arena_row else history_dependent_policy_1)" in only_one


def test_the_climbing_policies_reach_welfare_22_in_arena_run(tmp_path):
    db = tmp_path / "a.db"
    out = subprocess.run([sys.executable, "-m", "arena", "run", "-g", "climbing", "-p", "pibr-climbing-0", "-p",
                          "pibr-climbing-1", "-n", "5", "--db", str(db), "--display", "plain"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    from arena.store.database import Store

    with Store(db) as s:
        rows = s.query("SELECT row_program, col_program, row_action, col_action, row_payoff + col_payoff AS w "
                       "FROM trials")
    assert len(rows) == 20
    assert {(r["row_action"], r["col_action"], r["w"]) for r in rows} == {("a", "a", 22.0)}


def test_strategy_function_titfortat_equals_the_builtin(programs, games):
    pd = games["prisoners_dilemma"]
    osgt = programs["osgt-titfortat"]
    rules = MatchRules(rounds=10)
    with Sandbox([osgt]) as sb:
        agents = {k: BotAgent(p) for k, p in programs.items() if p.kind == "builtin"}
        agents[osgt.id] = CodeAgent(osgt, sb)
        for opp in ("defectbot", "alternator", "randombot", "pavlov", "titfortat"):
            for seed in range(3):
                code = run_matches_batched([TrialSpec(0, pd.id, osgt.id, opp, 0.2, 10, None, 0, seed, rules)],
                                           {pd.id: pd}, agents, programs)[0]
                bot = run_match_sync(TrialSpec(0, pd.id, "titfortat", opp, 0.2, 10, None, 0, seed, rules), pd,
                                     agents, programs)
                assert code.error is None and len(code.rounds) == 10
                assert [(r.row_action, r.col_action, r.row_payoff) for r in code.rounds] == \
                       [(r.row_action, r.col_action, r.row_payoff) for r in bot.rounds]


def test_game_history_is_the_papers_shape(programs, games):
    """game_history = {"state": [s_0, ..., s_t], "action": [[a0, a1], ...]}: a matrix game's one state 0, the
    joint actions as indices in seat order, seen the same from both seats."""
    probe = CodeProgram(id="probe", kind="code", simulates=False, source=(
        "def history_dependent_policy_0(game_history):\n"
        "    print(game_history)\n"
        "    return [1.0, 0.0, 0.0]\n"
        "def history_dependent_policy_1(game_history):\n"
        "    print(game_history)\n"
        "    return [0.0, 0.0, 1.0]\n"))
    g = games["climbing"]
    progs = {**programs, probe.id: probe}
    with Sandbox([probe]) as sb:
        agents = {probe.id: CodeAgent(probe, sb)}
        r = run_matches_batched([TrialSpec(0, g.id, probe.id, probe.id, 0.2, 10, None, 0, 1, MatchRules(rounds=3))],
                                {g.id: g}, agents, progs)[0]
    assert [(x.row_action, x.col_action, x.row_payoff) for x in r.rounds] == [("a", "c", 0.0)] * 3
    last_row = [n for n in r.nodes if n.round == 2 and n.side == "row"][0]
    assert last_row.code["output"] == "{'state': [0, 0, 0], 'action': [[0, 2], [0, 2]]}\n"


def test_the_lbf_policy_in_the_papers_shape_collects_food(store, programs, games):
    import asyncio

    from arena.analysis.rounds import episode_rows
    from arena.engine.grid import TournamentConfig
    from arena.engine.lbf import replay
    from arena.runner.tournament import TournamentRunner

    config = TournamentConfig(programs=["pibr-lbf-shared-food"], games=["foraging_pibr"], epsilons=[0.2],
                              max_depths=[10], trials=20)
    runner = TournamentRunner.create(store, config, programs, games)
    assert asyncio.run(runner.run()).status == "finished"
    (row,) = episode_rows(store, runner.tournament_id)
    # random programs collect 0.045 of the food (tests/test_lbf.py); this one 0.475, all of it in 6 of 20
    assert (row.episodes, row.food, row.cleared) == (20, 0.475, 0.3)
    t = store.trial_rows(runner.tournament_id)[0]
    rounds = store.rounds(t["id"])
    _, rewards = replay(games["foraging_pibr"], t["seed"], [(x["row_action"], x["col_action"]) for x in rounds])
    assert [(x["row_payoff"], x["col_payoff"]) for x in rounds] == rewards
