"""Repeated games: matches of many rounds (engine/match.py), stored (rounds table), analysed, and shown to
programs (built-in, code, LLM on a loopback server). Values are closed forms of the strategies."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from arena.analysis.rounds import length_rows, match_rows, program_match_rows, round_rows
from arena.analysis.tables import tables
from arena.engine.bots import BotAgent
from arena.engine.code import CodeAgent
from arena.engine.grid import TournamentConfig
from arena.engine.match import run_match_sync, run_matches_batched
from arena.engine.records import MatchRules, TrialSpec
from arena.engine.sandbox import Sandbox
from arena.library.programs import CodeProgram, LLMProgram
from arena.runner.tournament import TournamentRunner, fingerprint
from arena.store.database import Store
from tests.support.fake_llm import FakeLLMServer, action_responder

ROOT = Path(__file__).resolve().parents[1]
CODE_TFT = CodeProgram(id="tft-code", kind="code", simulates=False, source=(
    "def decide(ctx):\n"
    "    return ctx['history'][-1]['opponent'] if ctx['history'] else ctx['game']['default_action']\n"))


def tournament(store, programs, games, ids, **cfg):
    config = TournamentConfig(**{"programs": ids, "games": ["prisoners_dilemma"], "epsilons": [0.2],
                                 "max_depths": [10], "trials": 50, **cfg})
    runner = TournamentRunner.create(store, config, programs, games)
    done = asyncio.run(runner.run())
    assert done.status == "finished", done.error
    return runner.tournament_id


def by_pair(store, tid):
    out = {}
    for t in store.trial_rows(tid):
        out.setdefault((t["row_program"], t["col_program"]), []).append(t)
    return out


def test_titfortat_against_defectbot_ten_rounds_closed_form(store, programs, games):
    tid = tournament(store, programs, games, ["titfortat", "defectbot"], rounds=[10])
    pairs = by_pair(store, tid)
    assert {k: len(v) for k, v in pairs.items()} == {(a, b): 50 for a in ("titfortat", "defectbot")
                                                     for b in ("titfortat", "defectbot")}
    for t in pairs[("titfortat", "defectbot")]:  # C then D nine times against D: 0 + 9x1, and 5 + 9x1
        assert (t["n_rounds"], t["row_total"], t["col_total"], t["cooperative"]) == (10, 9.0, 14.0, 0.0)
        assert (t["row_payoff"], t["col_payoff"]) == (0.9, 1.4)
        rounds = store.rounds(t["id"])
        assert [(r["row_action"], r["col_action"]) for r in rounds] == [("cooperate", "defect")] + [("defect", "defect")] * 9
    for t in pairs[("titfortat", "titfortat")]:
        assert (t["row_total"], t["col_total"], t["cooperative"]) == (30.0, 30.0, 1.0)
    by_round = {(r.row_program, r.col_program, r.round): r for r in round_rows(store, tid)}
    assert [by_round[("titfortat", "defectbot", t)].row_c for t in range(10)] == [1.0] + [0.0] * 9
    assert [by_round[("titfortat", "titfortat", t)].cooperation for t in range(10)] == [1.0] * 10
    m = {(r.row_program, r.col_program): r for r in match_rows(store, tid)}
    assert (m[("titfortat", "defectbot")].row_first_defection, m[("titfortat", "defectbot")].col_first_defection) == (1, 0)
    assert m[("titfortat", "titfortat")].row_first_defection is None
    prog = {r.program: r for r in program_match_rows(store, tid)}
    # TitForTat: 30 against itself (both seats), 9 against DefectBot (both seats): mean 19.5 over 200 matches
    assert prog["titfortat"].total == pytest.approx(19.5) and prog["titfortat"].matches == 200
    assert prog["defectbot"].total == pytest.approx(12.0)
    # the summary's condition carries the rules, and the action shares are the rounds'
    pair = {(p.row_program, p.col_program): p for p in tables(store, tid)["pairs"]}
    assert pair[("titfortat", "defectbot")].game == "prisoners_dilemma (10 rounds)"
    assert pair[("titfortat", "defectbot")].row_actions["cooperate"] == pytest.approx(0.1)


def test_the_cli_command_of_the_issue(tmp_path):
    db = tmp_path / "a.db"
    out = subprocess.run([sys.executable, "-m", "arena", "run", "-g", "prisoners_dilemma", "--rounds", "10", "-p",
                          "titfortat", "-p", "defectbot", "-n", "50", "--db", str(db), "--display", "plain"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "matches (totals over the rounds" in out.stdout
    line = next(x for x in out.stdout.splitlines() if "│ titfortat │ defectbot │" in x and "10 rounds" in x and "9.00" in x)
    assert "14.00" in line and "1.00 0.00" not in line  # the cell's rounds are never a cooperative outcome
    with Store(db) as s:
        assert s.query("SELECT count(*) AS n FROM rounds")[0]["n"] == 4 * 50 * 10


def test_one_shot_stays_what_it_was(store, programs, games):
    """--rounds 1 is the default: the same fingerprint, seeds, nodes and records as before repeated games."""
    base = TournamentConfig(programs=["fairbot", "defectbot"], games=["prisoners_dilemma"], epsilons=[0.5],
                            max_depths=[5], trials=3)
    assert base.matches[0].one_shot and base.total_trials == 12
    ps = [programs["fairbot"], programs["defectbot"]]
    same = TournamentConfig(**{**base.model_dump(), "rounds": [1], "noises": [0.0]})
    assert fingerprint(base, ps, [games["prisoners_dilemma"]]) == fingerprint(same, ps, [games["prisoners_dilemma"]])
    # the seed of a one-shot trial has no match part (the value the previous release gave this trial)
    from arena.engine.grid import trial_seed
    assert base.spec_at(0).seed == trial_seed(0, "prisoners_dilemma", "fairbot", "fairbot", 0.5, 5, None, 0)
    tid = tournament(store, programs, games, ["fairbot", "defectbot"], epsilons=[0.5], max_depths=[5], trials=3)
    assert store.query("SELECT count(*) AS n FROM rounds")[0]["n"] == 0
    assert {t["n_rounds"] for t in store.trial_rows(tid)} == {1}
    assert all(t["row_total"] == t["row_payoff"] for t in store.trial_rows(tid))


def test_continuation_gives_geometric_lengths(store, programs, games):
    tid = tournament(store, programs, games, ["titfortat"], continuations=[0.9], trials=2000)
    lengths = [t["n_rounds"] for t in store.trial_rows(tid)]
    mean = sum(lengths) / len(lengths)
    assert abs(mean - 10) < 0.3  # 1/(1-P); the standard error over 2,000 matches is 0.21
    rows = {r.n_rounds: r for r in length_rows(store, tid)}
    assert rows[1].expected == pytest.approx(0.1) and rows[2].expected == pytest.approx(0.09)
    assert abs(rows[1].share - 0.1) < 0.025  # 3 standard errors of a share of 0.1 over 2,000
    assert max(lengths) <= 1000


def test_continuation_capped_by_max_rounds(store, programs, games):
    tid = tournament(store, programs, games, ["titfortat"], continuations=[0.99], max_rounds=5, trials=40)
    assert {t["n_rounds"] for t in store.trial_rows(tid)} <= {1, 2, 3, 4, 5}
    assert [t["n_rounds"] for t in store.trial_rows(tid)].count(5) > 30  # 0.99^4 of them reach the cap


def test_noise_flips_about_the_share_asked(store, programs, games):
    tid = tournament(store, programs, games, ["titfortat"], rounds=[20], noises=[0.1], trials=200)
    r = store.query("SELECT avg(row_intended != row_action) AS row, avg(col_intended != col_action) AS col, "
                    "count(*) AS n FROM rounds")[0]
    assert r["n"] == 4000 and 0.085 < r["row"] < 0.115 and 0.085 < r["col"] < 0.115
    # the history holds the played action: after a flip, the other TitForTat answers what was played
    for t in store.trial_rows(tid)[:50]:
        rounds = store.rounds(t["id"])
        for a, b in zip(rounds, rounds[1:]):
            assert b["col_intended"] == a["row_action"] and b["row_intended"] == a["col_action"]


def test_recall_limits_what_grimtrigger_remembers(programs, games):
    pd = games["prisoners_dilemma"]
    ids = ["grimtrigger", "alternator"]
    agents = {k: BotAgent(programs[k]) for k in ids}
    play = lambda rules: [(r.row_action[0], r.col_action[0]) for r in run_match_sync(  # noqa: E731
        TrialSpec(0, pd.id, *ids, 0.2, 10, None, 0, 1, rules), pd, agents, programs).rounds]
    assert play(MatchRules(rounds=6)) == [("c", "c"), ("c", "d"), ("d", "c"), ("d", "d"), ("d", "c"), ("d", "d")]
    # shown one round only, GrimTrigger forgives: it defects right after the alternator's defection only
    assert play(MatchRules(rounds=6, recall=1)) == [("c", "c"), ("c", "d"), ("d", "c"), ("c", "d"), ("d", "c"),
                                                     ("c", "d")]


def test_pavlov_and_titfortwotats(programs, games):
    pd = games["prisoners_dilemma"]
    agents = {k: BotAgent(programs[k]) for k in ("pavlov", "titfortwotats", "defectbot")}

    def play(a, b):
        res = run_match_sync(TrialSpec(0, pd.id, a, b, 0.2, 10, None, 0, 1, MatchRules(rounds=5)), pd, agents, programs)
        return "".join(r.row_action[0] for r in res.rounds)

    assert play("pavlov", "defectbot") == "cdcdc"  # lose-shift, then (d, d) agree: back to C
    assert play("titfortwotats", "defectbot") == "ccddd"


def test_code_titfortat_equals_the_builtin_match_for_match(programs, games):
    pd = games["prisoners_dilemma"]
    progs = {**programs, CODE_TFT.id: CODE_TFT}
    rules = MatchRules(rounds=12, noise=0.1)
    with Sandbox([CODE_TFT]) as sb:
        agents = {k: BotAgent(p) for k, p in programs.items() if p.kind == "builtin"}
        agents[CODE_TFT.id] = CodeAgent(CODE_TFT, sb)
        for opp in ("defectbot", "alternator", "randombot", "pavlov"):
            for seed in range(5):
                code = run_matches_batched([TrialSpec(0, pd.id, CODE_TFT.id, opp, 0.2, 10, None, 0, seed, rules)],
                                           {pd.id: pd}, agents, progs)[0]
                bot = run_match_sync(TrialSpec(0, pd.id, "titfortat", opp, 0.2, 10, None, 0, seed, rules), pd,
                                     agents, progs)
                assert [(r.row_intended, r.col_intended, r.row_action, r.col_action) for r in code.rounds] == \
                       [(r.row_intended, r.col_intended, r.row_action, r.col_action) for r in bot.rounds]


def test_matches_do_not_depend_on_batching(programs, games):
    """The same code matches resolved together (one sandbox feed per round and level) and one by one."""
    pd = games["prisoners_dilemma"]
    fair = CodeProgram(id="fair-tft", kind="code", simulates=True, source=(
        "def decide(ctx):\n"
        "    if ctx['opponent_action'] is not None:\n"
        "        return ctx['opponent_action']\n"
        "    h = ctx['history']\n"
        "    return h[-1]['opponent'] if h else ctx['game']['default_action']\n"))
    progs = {**programs, fair.id: fair}
    specs = [TrialSpec(i, pd.id, fair.id, opp, 0.3, 6, None, i, 100 + i, MatchRules(rounds=8, noise=0.05))
             for i, opp in enumerate(["fairbot", "defectbot", "fair-tft", "randombot"] * 3)]
    with Sandbox([fair]) as sb:
        agents = {k: BotAgent(p) for k, p in programs.items() if p.kind == "builtin"}
        agents[fair.id] = CodeAgent(fair, sb)
        together = run_matches_batched(specs, {pd.id: pd}, agents, progs)
        alone = [run_matches_batched([s], {pd.id: pd}, agents, progs)[0] for s in specs]
    key = lambda r: ([(n.index, n.parent, n.round, n.mode, n.action) for n in r.nodes], r.rounds)  # noqa: E731
    assert [key(r) for r in together] == [key(r) for r in alone]
    assert all(len(r.rounds) == 8 for r in together)


def test_code_ctx_round_horizon_and_hidden(programs, games):
    pd = games["prisoners_dilemma"]
    probe = CodeProgram(id="probe", kind="code", simulates=False, source=(
        "def decide(ctx):\n"
        "    print(ctx['round'], ctx['rounds'], ctx['continuation'], len(ctx['history']), ctx['state'])\n"
        "    return ctx['game']['default_action']\n"))
    progs = {**programs, probe.id: probe}
    with Sandbox([probe]) as sb:
        agents = {"defectbot": BotAgent(programs["defectbot"]), probe.id: CodeAgent(probe, sb)}
        for rules, first, last in [(MatchRules(rounds=3, recall=1), "0 3 None 0 None\n", "2 3 None 1 None\n"),
                                   (MatchRules(rounds=3, hidden=True), "0 None None 0 None\n", "2 None None 2 None\n")]:
            res = run_matches_batched([TrialSpec(0, pd.id, probe.id, "defectbot", 0.2, 10, None, 0, 7, rules)],
                                      {pd.id: pd}, agents, progs)[0]
            outputs = [n.code["output"] for n in res.nodes if n.program == probe.id]
            assert (outputs[0], outputs[-1]) == (first, last)


def test_an_llm_program_is_shown_the_last_rounds(store, programs, games):
    llm = LLMProgram(id="fair", kind="llm", model="custom/fake-8b", temperature=0.7,
                     system_prompt="You cooperate with cooperators.")
    from arena.llm.registry import BUILTIN
    from arena.llm.service import LLMService

    with FakeLLMServer(action_responder("cooperate")) as srv:
        reg = {**BUILTIN, "custom": BUILTIN["custom"].model_copy(update=dict(base_url=srv.base_url, timeout=2.0))}
        config = TournamentConfig(programs=["fair", "defectbot"], games=["prisoners_dilemma"], epsilons=[1.0],
                                  max_depths=[0], trials=1, rounds=[4], recalls=[2])
        runner = TournamentRunner.create(store, config, {**programs, "fair": llm}, games,
                                         backend=LLMService(store, reg, {"LLM_API_KEY": "k"}))
        done = asyncio.run(runner.run())
    assert done.status == "finished", done.error
    t = next(t for t in store.trial_rows(runner.tournament_id) if (t["row_program"], t["col_program"]) == ("fair", "defectbot"))
    calls = store.calls(trial_id=t["id"])
    assert len(calls) == 4  # one decision a round (ε = 1: grounded)
    users = [c["messages"][1]["content"] for c in calls]
    assert users[0].startswith("You are playing a repeated game") and users[0].endswith("This is round 1 of 4. It is the first round.")
    assert users[3].endswith("This is round 4 of 4. The last 2 round(s), oldest first (actions as played):\n"
                             "round | you | opponent | your payoff | opponent's payoff\n"
                             "2 | cooperate | defect | 0 | 5\n3 | cooperate | defect | 0 | 5")
    # the stable part first: every round's prompt shares everything before the round line
    assert len({u.rsplit("\n\nThis is round", 1)[0] for u in users}) == 1
    assert [n["round"] for n in store.nodes(t["id"])] == [0, 0, 1, 1, 2, 2, 3, 3]
    # a replay rebuilds each round's prompt (with its history) and answers it from the stored calls
    from arena.runner.replay import compare, replay_runner

    replay = replay_runner(store, runner.tournament_id)
    assert asyncio.run(replay.run()).status == "finished"
    assert compare(store, runner.tournament_id, replay.tournament_id) == []


def test_config_refuses_rounds_with_continuation():
    with pytest.raises(ValueError, match="rounds and continuations are alternatives"):
        TournamentConfig(programs=["titfortat"], games=["prisoners_dilemma"], epsilons=[0.5], max_depths=[1],
                         trials=1, rounds=[10], continuations=[0.9])


def test_cli_bad_noise_is_a_clear_error(tmp_path):
    out = subprocess.run([sys.executable, "-m", "arena", "run", "-p", "titfortat", "--noise", "1.5", "--db",
                          str(tmp_path / "a.db"), "--display", "none"], capture_output=True, text=True, timeout=60,
                         cwd=ROOT)
    assert out.returncode == 2 and "--noise 1.5" in out.stderr and "Traceback" not in out.stderr


def test_a_schema_7_database_is_migrated_and_resumed(tmp_path, programs, games):
    """The previous release's database: opened, analysed, its one-shot tournament found again (not
    duplicated), and a repeated-game tournament added beside it."""
    db = tmp_path / "arena.db"
    shutil.copy(Path(__file__).parent / "fixtures" / "arena-v7.db", db)
    with Store(db) as s:
        before = s.count_trials(1)
        assert before == 75 and s.query("SELECT count(*) AS n FROM trials WHERE row_total IS NULL")[0]["n"] == 0
        assert {r["n_rounds"] for r in s.trial_rows(1)} == {1}
        assert tables(s, 1)["pairs"]
    out = subprocess.run([sys.executable, "-m", "arena", "run", "--grid", "bots", "-n", "3", "--db", str(db),
                          "--display", "none"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    with Store(db) as s:
        assert sorted(t.id for t in s.tournaments()) == [1, 2] and s.count_trials(1) == before
        tid = tournament(s, programs, games, ["titfortat", "fairbot"], rounds=[3], trials=2)
        assert tid == 3 and s.query("SELECT count(*) AS n FROM rounds")[0]["n"] == 4 * 2 * 3


@pytest.mark.parametrize("rules", [MatchRules(), MatchRules(rounds=10), MatchRules(rounds=1, recall=0),
                                   MatchRules(continuation=0.95, noise=0.05, recall=3), MatchRules(rounds=200, noise=0.1)])
def test_condition_game_labels_round_trip(rules):
    from arena.analysis.conditions import condition_game, split_condition_game

    label = condition_game("stag_hunt", *rules.coordinates)
    assert split_condition_game(label) == ("stag_hunt", *rules.coordinates)
    assert (label == "stag_hunt") == (rules.coordinates == MatchRules().coordinates)


def test_the_live_tally_of_matches_equals_the_stored_tables(store, programs, games):
    """Live counts (seeded from the store, or added from results as they come) per match condition,
    cooperation as the share of rounds: the numbers of the stored analysis."""
    from arena.analysis.tally import LiveTally
    from arena.engine.events import TrialsFinished

    seen = []
    config = TournamentConfig(programs=["titfortat", "alternator"], games=["prisoners_dilemma"], epsilons=[0.2],
                              max_depths=[10], trials=7, rounds=[1, 6], noises=[0.0, 0.2])
    runner = TournamentRunner.create(store, config, programs, games,
                                     sink=lambda e: seen.extend(e.results) if isinstance(e, TrialsFinished) else None)
    asyncio.run(runner.run())
    stored = {(p.game, p.row_program, p.col_program): p for p in tables(store, runner.tournament_id)["pairs"]}
    assert len(stored) == 4 * 4  # 2 x 2 rules (1 round, 6 rounds; noise 0, 0.2) x 4 pairs
    seeded, added = LiveTally(), LiveTally()
    seeded.seed(store, runner.tournament_id)
    added.add(seen)
    for live in (seeded, added):
        rows = {(r.game, r.row_program, r.col_program): r for r in live.rows()}
        assert set(rows) == set(stored)
        for k, p in stored.items():
            assert rows[k].cooperation == pytest.approx(p.cooperation)
            assert rows[k].row_payoff == pytest.approx(p.row_payoff)
    # C/C, C/D, D/C, C/D, D/C, C/D: one cooperative round in six
    assert stored[("prisoners_dilemma (6 rounds)", "titfortat", "alternator")].cooperation == pytest.approx(1 / 6)
