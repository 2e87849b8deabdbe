"""`arena iterate --game foraging_pibr`: iterated best response on the grid world with a scripted writer on the
loopback server (iterate/gridworld.py): the writer is shown the env's rules, the observation layout and the
contract; its feedback is the episodes' trajectories; welfare is the sum of both agents' episode returns; the
final pair runs in `arena run`; the export and the welfare plot work as for matrix games."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import yaml

from arena.engine.records import RoundRecord, TrialResult, TrialSpec
from arena.iterate import gridworld
from tests.support.fake_llm import FakeLLMServer, Script
from tests.support.cli import arena, play_final_pair
from tests.test_iterate import writer_env

ROOT = Path(__file__).resolve().parents[1]
PAPER = yaml.safe_load((ROOT / "programs/papers/pibr-lbf-shared-food.yaml").read_text())["source"]
SHARED_PAPER = f"Both agents head for the same food (the paper's signature).\n```python\n{PAPER}```\n"
SHARED_DECIDE = """I read ctx["state"].
```python
def decide(ctx):
    s = ctx["state"]
    me = [a["pos"] for a in s["agents"] if a["me"]][0]
    others = [a["pos"] for a in s["agents"] if not a["me"]]
    if not s["foods"]:
        return "none"
    def dist(a, b):
        return abs(a[0] - b[0]) + abs(a[1] - b[1])
    target = min(s["foods"], key=lambda f: (dist(f["pos"], me) + sum(dist(f["pos"], o) for o in others),
                                            f["pos"]))["pos"]
    dr, dc = target[0] - me[0], target[1] - me[1]
    if abs(dr) + abs(dc) == 1:
        return "load"
    if dr < 0 and (dc != 0 or dr < -1):
        return "north"
    if dr > 0 and (dc != 0 or dr > 1):
        return "south"
    return "west" if dc < 0 else "east"
```
"""
LOAD = "```python\ndef decide(ctx):\n    return 'load'\n```"


def test_iterate_on_foraging_pibr_improves_welfare_and_hands_back_a_pair_that_runs(tmp_path):
    db, out = tmp_path / "it.db", tmp_path / "final"
    with FakeLLMServer(Script([LOAD, SHARED_PAPER, LOAD, SHARED_DECIDE])) as srv:
        res = arena("iterate", "--game", "foraging_pibr", "--model", "custom/writer", "--rounds", "1", "--steps",
                    "2", "--episodes", "6", "--seed", "3", "--db", str(db), "--out", str(out), env=writer_env(srv))
        assert res.returncode == 0, res.stderr
        reqs = [r.body["messages"] for r in srv.chat_requests]
    assert len(reqs) == 4
    system, task = reqs[0][0]["content"], reqs[0][1]["content"]
    # the contract: the observation layout, the parsed state, the paper's signature
    assert 'ctx["state"]: what your agent sees now:' in system and '"obs": the package\'s observation vector' in system
    assert "history_dependent_policy_0(game_history)" in system and "one-shot" not in system
    # the env's rules and parameters, the seat
    assert ("Parameters: a 5x5 field, 2 agents of level 1 to 2, up to 2 foods, sight 5 cells, at most 50 steps; "
            "every food needs both agents loading at the same step (force_coop).") in task
    assert "lowered by 0.5 x L / 50" in task and "You write the row agent (the package's agent 0)." in task
    # the feedback: trajectories (joint actions and rewards per step, folded), returns, welfare
    feedback = reqs[1][-1]["content"]
    assert feedback.count("  episode ") == 6 and "Mean return: you " in feedback
    assert "    step 1: you load, other " in feedback
    # the always-load column against the row's shared-food program: nothing collected, the penalty at step 50
    load_col = reqs[3][-1]["content"]
    assert "  episode 4: 50 steps, food collected at 0 step(s); return you -0.5, other -0.5, welfare -1." in load_col
    assert "step 50: you load, other " in load_col and ": rewards you -0.5, other -0.5" in load_col

    con = sqlite3.connect(db)
    steps = con.execute("SELECT round, player, step, welfare, kept, program_id FROM iterate_steps ORDER BY id").fetchall()
    start = steps[0]
    assert start[:3] == (0, "start", 0)
    # welfare is the sum of both agents' episode returns (the stored trials' totals), averaged over the episodes
    totals = con.execute("SELECT row_total + col_total, n_rounds FROM trials WHERE seq < 6 ORDER BY seq").fetchall()
    assert start[3] == sum(w for w, _ in totals) / 6 and all(n > 1 for _, n in totals)
    final = steps[-1]
    assert final[:3] == (1, "col", 3) and final[3] > start[3] + 0.5  # the kept pair on fresh episodes
    assert [s[4] for s in steps if s[1] == "col"] == [0, 0, 1, 0]  # the decide-shaped shared food is kept
    assert f"final social welfare: {final[3]:g}" in res.stdout

    # the final pair runs in `arena run`
    rows = play_final_pair(out, "foraging_pibr", 10, tmp_path / "r.db").execute(
        "SELECT status, row_total + col_total FROM trials WHERE row_program='iterate1-row' AND "
        "col_program='iterate1-col'").fetchall()
    assert len(rows) == 10 and all(s == "ok" for s, _ in rows)
    assert sum(w for _, w in rows) / 10 > start[3] + 0.5

    # the export and the welfare plot, as for matrix games: each episode's welfare is its two returns' sum
    doc = json.loads(arena("export", "--iterate", "1", "--format", "json", "--db", str(db)).stdout)
    assert doc["steps"][0]["episodes"] == [w for w, _ in totals]
    assert doc["steps"][0]["welfare"] == start[3]
    csv = arena("export", "--iterate", "1", "--format", "csv", "--db", str(db))
    assert csv.returncode == 0 and len(csv.stdout.splitlines()) == 1 + len(steps)
    png = tmp_path / "w.png"
    assert arena("export", "--iterate", "1", "--format", "png", "--out", str(png), "--db", str(db)).returncode == 0
    assert png.stat().st_size > 1000


def _episode(steps, rewards_at, error=None):
    rounds = [RoundRecord(t, a, b, a, b, *rewards_at.get(t, (0.0, 0.0)), t in rewards_at) for t, (a, b) in enumerate(steps)]
    spec = TrialSpec(0, "foraging_pibr", "r", "c", 0.2, 5, None, 0, 0)
    r = TrialResult(spec, [], steps[-1][0], steps[-1][1], 0.0, 0.0, 0.0, rounds=rounds)
    if error:
        r.row_payoff = r.col_payoff = None
        r.error = error
    return r


def test_feedback_folds_long_trajectories_and_scores_errors_the_worst_return(games):
    g = games["foraging_pibr"]
    wander = [("east", "west"), ("west", "east")] * 20 + [("load", "load")] * 9 + [("load", "none")]
    ep = _episode(wander, {44: (0.5, 0.5), 49: (-0.5, -0.5)})
    lines = gridworld.trajectory_lines(ep, 0)
    assert lines[:2] == ["    step 1: you east, other west", "    step 2: you west, other east"]
    assert len(lines) == gridworld.SEGMENTS + 1 + 2
    assert lines[-3:] == ["    ... 26 more lines without a reward (up to step 50); the lines with one:",
                          "    step 45: you load, other load: rewards you 0.5, other 0.5",
                          "    step 50: you load, other none: rewards you -0.5, other -0.5"]
    # the column's view swaps the seats
    assert gridworld.trajectory_lines(ep, 1)[0] == "    step 1: you west, other east"
    assert gridworld.episode_returns(ep) == (0.0, 0.0)
    # an episode that ended in an error scores each seat's worst return: the full-length penalty (no load penalty)
    failed = _episode([("none", "none")] * 3, {}, error="round 3: col program failed")
    assert gridworld.worst_returns(g) == (-0.5, -0.5)
    assert gridworld.utilities([ep, failed], g) == (-0.25, -0.25)
    text = gridworld.utility_text([ep, failed], g, "row", None)
    assert "  episode 2: error after 3 steps: round 3: col program failed" in text
    assert "An episode that ended in an error scores the worst return: you -0.5, other -0.5." in text
    assert "Mean return: you -0.25, other -0.25, both together (social welfare) -0.5." in text
