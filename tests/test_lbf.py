"""Level-Based Foraging (engine/lbf.py): the lbforaging package's env stepped as a match's environment,
stored episodes replayed through the package itself, the PIBR variant's penalty, the built-ins, what code
programs are shown, the episode table."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from arena.analysis.rounds import episode_rows
from arena.engine.bots import BotAgent, heuristic
from arena.engine.code import CodeAgent
from arena.engine.grid import TournamentConfig
from arena.engine.lbf import CODES, Environment, env_seed, replay, terminal_penalty
from arena.engine.match import run_match_sync, run_matches_batched
from arena.engine.records import TrialSpec
from arena.engine.sandbox import Sandbox
from arena.library.games import LBF_ACTIONS, LBFGame, parse_game
from arena.library.programs import CodeProgram
from arena.runner.tournament import TournamentRunner

ROOT = Path(__file__).resolve().parents[1]


def tournament(store, programs, games, ids, game, trials, **cfg):
    config = TournamentConfig(**{"programs": ids, "games": [game], "epsilons": [0.2], "max_depths": [10],
                                 "trials": trials, **cfg})
    runner = TournamentRunner.create(store, config, programs, games)
    done = asyncio.run(runner.run())
    assert done.status == "finished", done.error
    return runner.tournament_id


def test_games_load_with_the_package_codes(games):
    pibr, reg = games["foraging_pibr"], games["foraging_5x5_2p_2f_coop"]
    assert isinstance(pibr, LBFGame) and pibr.markov and not games["climbing"].markov
    assert pibr.actions == LBF_ACTIONS == ["none", "north", "south", "west", "east", "load"]
    from lbforaging.foraging.environment import Action

    assert CODES == {a.name.lower(): a.value for a in Action}
    assert reg.env_kwargs()["force_coop"] is True and reg.horizon == 50 and pibr.terminal_penalty == 0.5
    for game in (pibr, reg):  # the stored JSON round-trips; a registered env's holds its id, not unused defaults
        assert parse_game(json.loads(game.model_dump_json())) == game
    assert reg.model_dump()["env_id"] == "Foraging-5x5-2p-2f-coop-v3" and "field_size" not in reg.model_dump()
    with pytest.raises(ValueError, match="env_id Foraging-5x5-2p-2f-coop-v3 with field_size, sight"):
        LBFGame.model_validate({**reg.model_dump(), "field_size": 8, "sight": 2})
    assert "pyglet" not in sys.modules


@pytest.mark.parametrize("game", ["foraging_5x5_2p_2f_coop", "foraging_pibr"])
def test_stored_episodes_replay_through_the_package(store, programs, games, game):
    """Two stored episodes, replayed through lbforaging directly (gymnasium.make of the registered id, or
    ForagingEnv with the game's parameters) with the stored seed and actions: the same states and rewards."""
    tid = tournament(store, programs, games, ["lbf-random", "lbf-h1"], game, 1)
    trials = [t for t in store.trial_rows(tid) if (t["row_program"], t["col_program"]) in
              {("lbf-random", "lbf-random"), ("lbf-h1", "lbf-random")}]
    assert len(trials) == 2
    for t in trials:
        rounds = store.rounds(t["id"])
        assert len(rounds) == t["n_rounds"] > 1
        states, rewards = replay(games[game], t["seed"], [(r["row_action"], r["col_action"]) for r in rounds])
        for r, obs in zip(rounds, states):
            row_view, col_view = json.loads(r["state"])
            assert [row_view["obs"], col_view["obs"]] == obs
        assert [(r["row_payoff"], r["col_payoff"]) for r in rounds] == rewards
        assert (t["row_total"], t["col_total"]) == (sum(a for a, _ in rewards), sum(b for _, b in rewards))
    # the analysis reads the game back from the store (a registered env's once failed: "not both")
    assert len(episode_rows(store, tid)) == 4


def test_always_load_collects_nothing_unless_born_next_to_a_food(store, programs, games):
    """Two programs that always load: they never move, so each episode lasts 50 steps and its welfare is the
    PIBR penalty of a full-length episode, -2 x 0.5 x 50/50 = -1, except where both agents start next to the
    same food (the package spawns food next to agents): then they collect it at the first step."""
    g = games["foraging_pibr"]
    assert terminal_penalty(g, 50) == 0.5 and terminal_penalty(g, 10) == 0.1
    tid = tournament(store, programs, games, ["lbf-load"], "foraging_pibr", 200)
    trials = store.trial_rows(tid)
    assert all(t["n_rounds"] == 50 for t in trials)
    nothing = [t for t in trials if t["row_total"] + t["col_total"] == -1.0]
    assert len(nothing) == 187
    for t in trials:
        if t in nothing:
            continue
        first = json.loads(store.rounds(t["id"])[0]["state"])[0]
        food = [f["pos"] for f in first["foods"]]
        adj = [[f for f in food if abs(f[0] - a["pos"][0]) + abs(f[1] - a["pos"][1]) == 1] for a in first["agents"]]
        assert set(map(tuple, adj[0])) & set(map(tuple, adj[1]))  # both next to the same food at the start
    (row,) = episode_rows(store, tid)
    assert (row.episodes, row.length, row.welfare) == (200, 50.0, -0.9675)


def test_random_against_random_200_episodes(store, programs, games):
    tid = tournament(store, programs, games, ["lbf-random"], "foraging_pibr", 200)
    (row,) = episode_rows(store, tid)
    assert (row.episodes, row.welfare, row.length, row.food, row.cleared) == (200, -0.9511, 49.805, 0.045, 0.005)
    assert (round(row.welfare_low, 4), round(row.welfare_high, 4)) == (-0.9765, -0.9257)
    # the normal interval of the length reaches 50.19: it is cut to the 1..50 steps an episode can last
    assert (round(row.length_low, 2), row.length_high) == (49.42, 50.0)
    assert (round(row.food_low, 4), round(row.food_high, 4)) == (0.0239, 0.0661)


def test_an_episode_interval_is_cut_to_its_quantity_range():
    """Food shares 0, 0, 0, 1: mean 0.25, s = 0.5, 0.25 ± 1.96·0.5/2 = (−0.24, 0.74): cut to [0, 1]."""
    from arena.analysis.rounds import _mean_ci, _within

    mean, low, high = _mean_ci([0.0, 0.0, 0.0, 1.0])
    assert (mean, round(low, 4), round(high, 4)) == (0.25, -0.24, 0.74)
    assert _within((mean, low, high), 0.0, 1.0) == (0.25, 0.0, high)
    assert _within((0.5, None, None), 0.0, 1.0) == (0.5, None, None)  # (one episode: no interval)


def test_an_episodes_welfare_lies_between_two_full_length_penalties_and_all_the_food(games):
    """foraging_pibr: c = 0.5, T = 50, no failed-load penalty: welfare in [−2 × 0.5 × 50/50, 1] = [−1, 1];
    the cooperative 5x5 env has no terminal penalty: [0, 1]. Welfares −1, −1, 0.06 (n = 3, s = 0.612):
    −0.647 ± 1.96·0.612/√3 = (−1.339, 0.046), cut to (−1, 0.046)."""
    from arena.analysis.rounds import _mean_ci, _within, welfare_range

    assert welfare_range(games["foraging_pibr"]) == (-1.0, 1.0)
    assert str(welfare_range(games["foraging_5x5_2p_2f_coop"])) == "(0.0, 1.0)"
    mean, low, high = _within(_mean_ci([-1.0, -1.0, 0.06]), *welfare_range(games["foraging_pibr"]))
    assert (round(mean, 4), low, round(high, 4)) == (-0.6467, -1.0, 0.0459)


def _package_heuristics(monkeypatch):
    """lbforaging 2.0.0's H1..H4 module, which its package cannot import: `lbforaging.agents` imports its Q
    agent (pandas, not a dependency) and heuristic_agent.py imports a `foraging` module that does not exist.
    For this test only: the package's folder without its __init__, and `foraging` aliased."""
    import importlib
    import types

    import lbforaging.foraging

    pkg = types.ModuleType("lbforaging.agents")
    pkg.__path__ = [str(Path(lbforaging.foraging.__file__).parents[1] / "agents")]
    monkeypatch.setitem(sys.modules, "lbforaging.agents", pkg)
    monkeypatch.setitem(sys.modules, "foraging", lbforaging.foraging)
    monkeypatch.setitem(sys.modules, "foraging.environment", lbforaging.foraging.environment)
    return importlib.import_module("lbforaging.agents.heuristic_agent")


def test_heuristics_equal_the_package_agents(games, monkeypatch):
    """Arena's H1..H4 give the package's agents' actions on 400 states of random episodes (wherever the
    package's agent does not fall back to its random choice, which Arena draws from the node's u)."""
    ha = _package_heuristics(monkeypatch)

    class Fallback(Exception):
        pass

    def no_random(_):
        raise Fallback

    g = games["foraging_pibr"]
    compared = 0
    for seed in range(8):
        env = Environment(g, seed)
        views = env.reset()
        for t in range(50):
            for i, view in enumerate(views):
                player = env.env.players[i]
                obs = env.env._make_obs(player)
                for h, cls in enumerate((ha.H1, ha.H2, ha.H3, ha.H4), start=1):
                    agent = cls(player)
                    agent.observed_position = next(p for p in obs.players if p.is_self).position
                    ha.random.choice, saved = no_random, ha.random.choice
                    try:
                        theirs = agent.step(obs).name.lower()
                    except Fallback:
                        continue
                    finally:
                        ha.random.choice = saved
                    assert heuristic(h, view, 0.5) == theirs, (seed, t, i, h)
                    compared += 1
            a, b = LBF_ACTIONS[(seed + t) % 6], LBF_ACTIONS[(seed * 7 + t * 3) % 6]
            views, _, done = env.step(a, b)
            if done:
                break
    assert compared > 1000


CODE_STATE = CodeProgram(id="state-reader", kind="code", simulates=False, source=(
    "def decide(ctx):\n"
    "    s = ctx['state']\n"
    "    assert s['step'] == ctx['round'] and ctx['rounds'] == s['max_steps'] == 50\n"
    "    assert len(ctx['history']) == ctx['round']\n"
    "    if ctx['history']:\n"
    "        assert ctx['history'][-1]['state']['step'] == ctx['round'] - 1\n"
    "    me = [a for a in s['agents'] if a['me']][0]\n"
    "    for f in s['foods']:\n"
    "        if abs(f['pos'][0] - me['pos'][0]) + abs(f['pos'][1] - me['pos'][1]) == 1:\n"
    "            return 'load'\n"
    "    return s['valid_actions'][int(ctx['u'] * len(s['valid_actions']))]\n"))


def test_code_programs_see_the_state_and_its_history(programs, games):
    g = games["foraging_pibr"]
    progs = {**programs, CODE_STATE.id: CODE_STATE}
    with Sandbox([CODE_STATE]) as sb:
        agents = {k: BotAgent(p) for k, p in programs.items() if p.kind == "builtin"}
        agents[CODE_STATE.id] = CodeAgent(CODE_STATE, sb)
        specs = [TrialSpec(i, g.id, CODE_STATE.id, opp, 0.2, 10, None, i, 40 + i)
                 for i, opp in enumerate(["lbf-random", "state-reader", "lbf-h4"])]
        res = run_matches_batched(specs, {g.id: g}, agents, progs)
    assert all(r.error is None and len(r.rounds) > 1 for r in res), [r.error for r in res]
    for r in res:  # the same episode through the package
        states, rewards = replay(g, r.spec.seed, [(x.row_action, x.col_action) for x in r.rounds])
        assert [(x.row_payoff, x.col_payoff) for x in r.rounds] == rewards


def test_a_matrix_game_match_is_unchanged_by_the_env_path(programs, games):
    pd = games["prisoners_dilemma"]
    agents = {k: BotAgent(p) for k, p in programs.items() if p.kind == "builtin"}
    from arena.engine.records import MatchRules

    r = run_match_sync(TrialSpec(0, pd.id, "titfortat", "defectbot", 0.2, 10, None, 0, 1, MatchRules(rounds=3)), pd,
                       agents, programs)
    assert [(x.row_action, x.col_action, x.state) for x in r.rounds] == [("cooperate", "defect", None)] + \
        [("defect", "defect", None)] * 2


def test_env_seed_is_derived_from_the_trial_seed():
    assert env_seed(0) == env_seed(0) != env_seed(1)
    assert 0 <= env_seed(12345) < 2**63


def test_the_episodes_table_in_every_export_format_and_the_run_summary(store, programs, games, capsys):
    """A grid-world tournament's exports hold the episodes table (welfare, returns, length, food with intervals)
    in every text format, and `arena run`'s summary prints it; a matrix game's have none."""
    from arena.analysis.export import render
    from arena.cli.progress import print_summary

    tid = tournament(store, programs, games, ["lbf-load", "pibr-lbf-shared-food"], "foraging_pibr", 10)
    rows = {(r.row_program, r.col_program): r for r in episode_rows(store, tid)}
    load, shared = rows[("lbf-load", "lbf-load")], rows[("pibr-lbf-shared-food", "pibr-lbf-shared-food")]
    # always-load: 50 steps each; one episode of ten starts both agents next to the same food
    assert (load.episodes, load.welfare, load.length, load.food, load.cleared) == (10, -0.95, 50.0, 0.05, 0.0)
    assert (shared.episodes, shared.welfare, shared.length, shared.food, shared.cleared) == (10, 0.086, 28.2, 0.65, 0.5)
    doc = json.loads(render(store, tid, "json"))
    assert [e for e in doc["tables"]["episodes"]] == [r.model_dump(mode="json") for r in episode_rows(store, tid)]
    csv = render(store, tid, "csv", "episodes").splitlines()
    assert csv[0] == ("game,epsilon,max_depth,temperature,row_program,col_program,episodes,welfare,welfare_low,"
                      "welfare_high,row_return,col_return,length,length_low,length_high,food,food_low,food_high,cleared")
    assert len(csv) == 5 and csv[1].startswith("foraging_pibr,0.2,10,,lbf-load,lbf-load,10,-0.95,")
    md = render(store, tid, "markdown")
    assert "## Grid-world episodes: welfare, length, food collected" in md
    assert ("| foraging_pibr | 0.2 | 10 | pibr-lbf-shared-food | pibr-lbf-shared-food | 10 | 0.086 | [-0.44, 0.61] | "
            "0.060 | 0.026 | 28.2 | [13.96, 42.44] | 65.0% | [39.5%, 90.5%] | 50.0% |") in md
    tex = render(store, tid, "latex")
    assert "% Grid-world episodes: welfare, length, food collected" in tex and "28.2" in tex
    print_summary(store, tid, plain=True)
    out = capsys.readouterr().out
    assert f"Tournament {tid}: episodes (means, 95% CI over the episodes)" in out
    assert "│ foraging_pibr │ pibr-lbf-shared-food │ pibr-lbf-shared-food │       10 │   0.086 │" in out
    pd = tournament(store, programs, games, ["titfortat"], "prisoners_dilemma", 2)
    assert "episodes" not in json.loads(render(store, pd, "json"))["tables"]
    print_summary(store, pd, plain=True)
    assert "episodes (means" not in capsys.readouterr().out


def test_a_code_programs_states_cross_as_json_text_and_arrive_as_its_own_dicts(games):
    """A sandbox request carries a grid world's states as JSON text (each view serialised once); the program
    gets dicts equal to the views, its own: one decision changing them changes nothing for the next."""
    from arena.engine.code import build_ctx, match_ctx
    from arena.engine.lbf import View, view_text
    from arena.engine.records import MatchRules, Play, RoundRecord
    from arena.engine.sandbox import full_ctx

    g = games["foraging_pibr"]
    env = Environment(g, 3)
    s0 = env.reset()
    s1, (a, b), _ = env.step("north", "west")
    assert isinstance(s0[0], View) and view_text(s0[0]) is view_text(s0[0])  # made once
    assert json.loads(view_text(s0[1])) == s0[1]
    play = Play(1, MatchRules(), (RoundRecord(0, "north", "west", "north", "west", a, b, False, s0),), s1)
    m = match_ctx(play, "col", rows=True)
    assert m["state"] == view_text(s1[1]) and m["history"][0][4] == view_text(s0[1])
    mutator = CodeProgram(id="mutator", kind="code", simulates=False, source=(
        "def decide(ctx):\n"
        "    h = ctx['history'][0]['state']\n"
        "    seen = (len(h['foods']), len(ctx['state']['agents']), h['obs'][0])\n"
        "    h['foods'].clear()\n"
        "    ctx['state']['agents'].append(1)\n"
        "    h['obs'][0] = -5.0\n"
        "    return 'load' if seen == (%d, 2, %r) else 'none'\n" % (len(s0[1]["foods"]), s0[1]["obs"][0])))
    base = build_ctx(g, "col", mutator, mutator, None, 0, 0.0, 0.0)
    ctx = full_ctx((base, None, 0, 0.2, 0.5, m))
    assert ctx["state"] == s1[1] and ctx["history"][0]["state"] == s0[1] and ctx["history"][0]["me"] == "west"
    with Sandbox([mutator], workers=1) as sb:
        out = sb.run_many(mutator, [(base, None, 0, 0.2, 0.5, m)] * 4)
    assert [(o.value, o.error) for o in out] == [("load", None)] * 4
