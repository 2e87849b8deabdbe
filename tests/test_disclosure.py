"""Disclosure conditions (engine/disclosure.py): what each program is shown of its opponent."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from arena.analysis.conditions import condition_disclosure, condition_game, condition_where, without_disclosure
from arena.analysis.export import render
from arena.analysis.tables import tables
from arena.engine.code import build_ctx
from arena.engine.disclosure import (LEVELS, Disclosure, obfuscate_code, sentences, shown, shuffle_sentences)
from arena.engine.grid import TournamentConfig
from arena.engine.sandbox import Sandbox
from arena.library.programs import CodeProgram, LLMProgram
from arena.llm import prompts
from arena.runner.tournament import TournamentRunner, fingerprint
from arena.store.database import Store
from tests.support.fake_llm import FakeLLMServer, action_responder

ROOT = Path(__file__).resolve().parents[1]


def run(store, programs, games, ids, **cfg):
    config = TournamentConfig(**{"programs": ids, "games": ["prisoners_dilemma"], "epsilons": [0.2],
                                 "max_depths": [10], "trials": 20, **cfg})
    runner = TournamentRunner.create(store, config, programs, games)
    done = asyncio.run(runner.run())
    assert done.status == "finished", done.error
    return runner.tournament_id


def coop(store, tid) -> dict[tuple[str, str, str], tuple[int, int]]:
    """(disclosure, row, col) -> (cooperative trials, trials)."""
    rows = store.query("SELECT disclosure, row_program, col_program, sum(cooperative) AS k, count(*) AS n FROM trials "
                       "WHERE tournament_id=? GROUP BY 1, 2, 3", (tid,))
    return {(r["disclosure"], r["row_program"], r["col_program"]): (r["k"], r["n"]) for r in rows}


# --- the grid -----------------------------------------------------------------------------------------------
def test_the_default_grid_is_unchanged():
    base = dict(programs=["fairbot", "defectbot"], games=["prisoners_dilemma"], epsilons=[0.2], max_depths=[10],
                trials=3)
    plain, full = TournamentConfig(**base), TournamentConfig(**base, disclosures=["full"])
    assert [(s.seq, s.seed, s.key) for s in plain.iter_specs()] == [(s.seq, s.seed, s.key) for s in full.iter_specs()]
    assert fingerprint(plain, [], []) == fingerprint(full, [], [])
    assert "disclosures" not in plain.model_dump(mode="json", exclude_defaults=True)
    both = TournamentConfig(**base, disclosures=["full", "none"])
    assert fingerprint(both, [], []) != fingerprint(plain, [], [])
    specs = list(both.iter_specs())
    assert both.total_trials == len(specs) == 2 * plain.total_trials
    assert [both.spec_at(s.seq) for s in specs] == specs
    # a cell draws the same coins at every level (paired), so the difference from full is disclosure's own
    assert [s.seed for s in specs if s.disclosure.level == "none"] == [s.seed for s in plain.iter_specs()]
    assert [s.disclosure.level for s in specs[:8]] == ["full"] * 4 + ["none"] * 4


def test_config_refuses_an_unknown_level():
    with pytest.raises(ValueError, match="disclosures"):
        TournamentConfig(programs=["fairbot"], games=["prisoners_dilemma"], epsilons=[0.2], max_depths=[1], trials=1,
                         disclosures=["partial"])


def test_condition_labels_carry_the_level():
    label = condition_game("prisoners_dilemma", 10, None, 0.0, None, "obfuscated")
    assert label == "prisoners_dilemma (10 rounds, disclosure obfuscated)"
    assert condition_disclosure(label) == "obfuscated" and without_disclosure(label) == "prisoners_dilemma (10 rounds)"
    assert condition_game("stag_hunt", disclosure="none") == "stag_hunt (disclosure none)"
    assert condition_game("stag_hunt", disclosure="full") == "stag_hunt" and condition_disclosure("stag_hunt") == "full"
    assert condition_where("stag_hunt (disclosure none)")[1] == ("stag_hunt", 1, None, 0.0, None, "none")


# --- what is shown ------------------------------------------------------------------------------------------
LLM = LLMProgram(id="fair", kind="llm", model="custom/fake-8b", temperature=0.7,
                 system_prompt="You are fair. You cooperate with cooperators!\nYou defect against defectors?\n\nBe brief.")


def test_what_each_level_shows_of_an_llm_and_a_bot(programs):
    bot = programs["cliquebot"]
    show = {lv: shown(LLM, Disclosure(lv), 7, for_code=True) for lv in LEVELS}
    assert show["full"] == LLM.source()
    assert show["prompt"] == "System prompt:\n" + LLM.system_prompt
    assert show["model"] == "Model: custom/fake-8b\nTemperature: 0.7\n"
    assert show["none"] == "an opponent program"
    assert show["obfuscated"] == "Model: custom/fake-8b\nTemperature: 0.7\nSystem prompt:\n" + shuffle_sentences(
        LLM.system_prompt, 7)
    assert shown(LLM, Disclosure("obfuscated", "none"), 7, True) == LLM.source()
    assert sentences(LLM.system_prompt) == ["You are fair.", "You cooperate with cooperators!",
                                            "You defect against defectors?", "Be brief."]
    assert sorted(shuffle_sentences(LLM.system_prompt, 7).split("\n")) == sorted(sentences(LLM.system_prompt))
    assert shuffle_sentences(LLM.system_prompt, 7) == shuffle_sentences(LLM.system_prompt, 7)
    assert len({shuffle_sentences(LLM.system_prompt, s) for s in range(20)}) > 1
    # a bot: its YAML (code) / its description (LLM), its kind under `model`
    assert [shown(bot, Disclosure(lv), 7, True) for lv in LEVELS] == [
        "kind: builtin\nstrategy: cliquebot\n", "kind: builtin\nstrategy: cliquebot\n", "kind: builtin\n",
        "an opponent program", "kind: builtin\nstrategy: cliquebot\n"]


def test_a_code_programs_ctx_per_level(programs, games):
    me, opp = programs["clique-code"], programs["fair-code"]
    pd = games["prisoners_dilemma"]
    ctx = {lv: build_ctx(pd, "row", me, opp, None, 0, 0.2, 0.5, None, Disclosure(lv), 99) for lv in LEVELS}
    assert [(c["opponent_id"], c["opponent_kind"]) for c in ctx.values()] == [
        ("fair-code", "code"), ("opponent", "code"), ("opponent", "code"), ("opponent", "program"),
        ("opponent", "code")]
    assert ctx["full"] == build_ctx(pd, "row", me, opp, None, 0, 0.2, 0.5)  # today's ctx, bit for bit
    assert ctx["full"]["opponent"] == ctx["prompt"]["opponent"] == opp.code
    assert ctx["model"]["opponent"] == "kind: code\n" and ctx["none"]["opponent"] == "an opponent program"
    assert ctx["obfuscated"]["opponent"] == obfuscate_code(opp.code, 99)
    assert all(c["me"] == me.code for c in ctx.values())  # its own source as written, at every level


def test_obfuscation_renames_and_strips_exactly(programs):
    src = programs["clique-code"].code
    assert obfuscate_code(src, 1) == (
        "def decide(v1):\n"
        "    v0 = v1['game']\n"
        "    if v1['opponent'] == v1['me']:\n"
        "        return v0['default_action']\n"
        "    return v0['defect_action']\n")
    assert obfuscate_code(src, 1) == obfuscate_code(src, 1)
    assert {obfuscate_code(src, s) for s in range(10)} == {obfuscate_code(src, 1), obfuscate_code(src, 1).replace(
        "v1", "vX").replace("v0", "v1").replace("vX", "v0")}
    documented = ('"""A module docstring."""\nimport math\n\n'
                  'def helper(x, scale=2):\n    """Its docstring."""\n    # a comment\n    return math.floor(x * scale)\n\n'
                  'def decide(ctx):\n    total = helper(ctx["u"], scale=3)  # keyword kept\n'
                  '    return [p for p in ctx["game"]["actions"]][total % 2]\n')
    out = obfuscate_code(documented, 5)
    assert "docstring" not in out and "#" not in out and "helper" not in out and "total" not in out
    assert "import math" in out and "scale=3" in out and "def decide(" in out and "math.floor" in out


# every code program of the library, and a few constructs renaming must get right
EXTRA = [
    "import math\n\nclass Box:\n    size = 2\n\n    def grow(self, k):\n        return self.size * k\n\n"
    "def decide(ctx):\n    b = Box()\n    n = b.grow(3)\n    acts = ctx['game']['actions']\n"
    "    try:\n        x = acts[n]\n    except IndexError as err:\n        x = acts[math.floor(ctx['u'] * len(acts))]\n"
    "    return x\n",
    "count = 0\n\ndef bump(step=1):\n    global count\n    count = step * 2\n    return count\n\n"
    "def decide(ctx):\n    '''docs'''\n    f = lambda a, b=2: a * b\n    s = sorted(ctx['game']['actions'], key=len)\n"
    "    print('seen', len(ctx['opponent']), bump(step=2))\n    return s[f(0)] if ctx['opponent_action'] is None "
    "else ctx['opponent_action']\n",
]


def test_obfuscation_preserves_behaviour_in_the_sandbox(programs, games):
    """Each code program and its obfuscated copies (3 seeds) run in the sandbox on the same ctxs: the same
    value, output and error every time."""
    # (the programs written for a game played here: a paper's grid-world policy is checked in its own game)
    originals = [p for p in programs.values() if p.kind == "code" and not p.games]
    originals += [CodeProgram(id=f"extra-{i}", kind="code", source=s) for i, s in enumerate(EXTRA)]
    copies = [CodeProgram(id=f"{p.id}-obf{seed}", kind="code", simulates=p.simulates,
                          source=obfuscate_code(p.code, seed)) for p in originals for seed in (0, 1, 2)]
    assert all(c.code != o.code for c in copies for o in originals if c.id.startswith(o.id + "-"))
    opponents = [programs["fairbot"], programs["defectbot"], programs["fair-code"], LLM]
    sandbox = Sandbox(originals + copies)
    sandbox.open()
    try:
        for o in originals:
            for c in (c for c in copies if c.id.startswith(o.id + "-obf")):
                for game in (games["prisoners_dilemma"], games["stag_hunt"]):
                    for opp in opponents:
                        for seat, action, u in (("row", None, 0.1), ("col", game.actions[0], 0.7),
                                                ("row", game.actions[-1], 0.95)):
                            ctx = build_ctx(game, seat, o, opp, action, 1, 0.2, u)
                            a, b = sandbox.run_one(o, ctx), sandbox.run_one(c, dict(ctx, me=c.code))
                            assert (a.value, a.output, a.error) == (b.value, b.output, b.error), (o.id, c.id)
    finally:
        sandbox.close()


# --- the acceptance runs ---------------------------------------------------------------------------------------
def test_code_cliquebot_and_fairbot_over_1000_trials(store, programs, games):
    """CliqueBot (as code) cooperates with itself under full and prompt, defects under model, none and
    obfuscated (its copy's renamed source is not its own); FairBot (as code) relies on simulation only:
    unchanged at every level. Exact over 1,000 trials a cell."""
    tid = run(store, programs, games, ["clique-code", "fair-code"], trials=1000, disclosures=list(LEVELS))
    c = coop(store, tid)
    assert {lv: c[(lv, "clique-code", "clique-code")] for lv in LEVELS} == {
        "full": (1000, 1000), "prompt": (1000, 1000), "model": (0, 1000), "none": (0, 1000), "obfuscated": (0, 1000)}
    assert {lv: c[(lv, "fair-code", "fair-code")] for lv in LEVELS} == {lv: (1000, 1000) for lv in LEVELS}
    # FairBot against CliqueBot: the same trials at every level (the same seeds, and it reads nothing)
    per_level = {lv: store.query("SELECT group_concat(col_action) AS a FROM (SELECT col_action FROM trials WHERE "
                                 "tournament_id=? AND disclosure=? AND row_program='clique-code' AND "
                                 "col_program='fair-code' ORDER BY trial_index)", (tid, lv))[0]["a"] for lv in LEVELS}
    assert len(set(per_level.values())) == 1


def test_builtin_cliquebot_reads_what_it_is_shown(store, programs, games):
    tid = run(store, programs, games, ["cliquebot", "fairbot"], trials=5, disclosures=list(LEVELS))
    c = coop(store, tid)
    assert {lv: c[(lv, "cliquebot", "cliquebot")][0] for lv in LEVELS} == {
        "full": 5, "prompt": 5, "model": 0, "none": 0, "obfuscated": 5}  # a bot's description is not code


def test_value_of_disclosure_table_and_exports(store, programs, games, tmp_path):
    tid = run(store, programs, games, ["clique-code", "fair-code", "defectbot"], trials=30,
              disclosures=["full", "none", "obfuscated"])
    rows = tables(store, tid, ["disclosure"], resamples=200)["disclosure"]
    assert len(rows) == 9 * 3
    cc = {r.disclosure: r for r in rows if (r.row_program, r.col_program) == ("clique-code", "clique-code")}
    assert [cc[lv].cooperation for lv in ("full", "none", "obfuscated")] == [1.0, 0.0, 0.0]
    assert cc["full"].cooperation_diff is None
    assert (cc["none"].cooperation_diff, cc["none"].cooperation_diff_low, cc["none"].cooperation_diff_high) == (-1, -1, -1)
    assert (cc["none"].row_payoff_diff, cc["none"].row_payoff) == (-2.0, 1.0)
    assert cc["full"].verdict == cc["none"].verdict == "equilibrium"  # C,C under full; D,D (as DefectBots) under none
    fd = {r.disclosure: r for r in rows if (r.row_program, r.col_program) == ("fair-code", "defectbot")}
    assert fd["none"].cooperation_diff == 0.0 and fd["none"].row_payoff_diff == 0.0  # paired: the same seeds
    assert fd["none"].row_payoff_diff_low < 0 < fd["none"].row_payoff_diff_high  # the strata resampled apart
    assert [r.game for r in rows] == ["prisoners_dilemma"] * 27
    # in every format ('all' includes it for a grid with several levels)
    md = render(store, tid, "markdown", resamples=200)
    assert "## Value of disclosure: each level against full" in md
    assert "| prisoners_dilemma | 0.2 | 10 | clique-code | clique-code | none | 30 | 0.0% |" in md
    doc = json.loads(render(store, tid, "json", resamples=200))
    assert len(doc["tables"]["disclosure"]) == 27
    assert "value of disclosure" not in render(store, tid, "csv", "disclosure", resamples=200).lower()
    assert render(store, tid, "csv", "disclosure", resamples=200).splitlines()[0].startswith(
        "game,epsilon,max_depth,temperature,row_program,col_program,disclosure,valid,cooperation")
    assert "\\begin{tabular}" in render(store, tid, "latex", "disclosure", resamples=200)
    from arena.analysis.export import export

    out = export(store, tid, "png", tmp_path / "vod.png", plot="value-of-disclosure")
    assert out[0].read_bytes()[:4] == b"\x89PNG"
    names = sorted(p.name for p in export(store, tid, "svg", tmp_path / "plots"))
    assert f"arena-tournament-{tid}-value-of-disclosure.svg" in names


def test_a_one_level_tournament_has_no_disclosure_table_in_all(store, programs, games):
    tid = run(store, programs, games, ["fairbot", "defectbot"], trials=2)
    assert "Value of disclosure" not in render(store, tid, "markdown", resamples=0)


# --- LLM programs: prompts, cache, replay ---------------------------------------------------------------------
SECRET_PROMPT = "You are the purple walrus. You cooperate with cooperators."


def _llm_programs():
    a = LLMProgram(id="walrus", kind="llm", model="custom/walrus-9b", temperature=0.3, system_prompt=SECRET_PROMPT)
    b = LLMProgram(id="otter", kind="llm", model="custom/otter-7b", temperature=0.6,
                   system_prompt="You are the green otter. You defect unless the opponent cooperates.")
    return a, b


def _llm_run(store, programs, games, levels, **cfg):
    from arena.llm.registry import BUILTIN
    from arena.llm.service import LLMService

    a, b = _llm_programs()
    with FakeLLMServer(action_responder("cooperate")) as srv:
        reg = {**BUILTIN, "custom": BUILTIN["custom"].model_copy(update=dict(base_url=srv.base_url, timeout=2.0))}
        config = TournamentConfig(programs=["walrus", "otter"], games=["prisoners_dilemma"], epsilons=[0.5],
                                  max_depths=[2], trials=2, disclosures=levels, **cfg)
        runner = TournamentRunner.create(store, config, {**programs, "walrus": a, "otter": b}, games,
                                         backend=LLMService(store, reg, {"LLM_API_KEY": "k"}))
        done = asyncio.run(runner.run())
        asked = srv.count
    assert done.status == "finished", done.error
    return runner.tournament_id, asked


def test_llm_prompts_under_full_and_none(store, programs, games):
    tid, _ = _llm_run(store, programs, games, ["full", "none"])
    calls = store.query("SELECT t.disclosure, c.program, c.messages, c.params, CASE n.side WHEN 'row' THEN "
                        "t.col_program ELSE t.row_program END AS opponent FROM llm_calls c JOIN trials t "
                        "ON t.id = c.trial_id JOIN nodes n ON n.id = c.node_id WHERE c.tournament_id=?", (tid,))
    prompt_of = {"walrus": SECRET_PROMPT, "otter": "You are the green otter."}
    by = {lv: [c for c in calls if c["disclosure"] == lv] for lv in ("full", "none")}
    assert by["full"] and by["none"]
    for c in by["none"]:
        user = json.loads(c["messages"])[1]["content"]
        other = c["opponent"]
        assert not any(p in user for p in prompt_of.values())
        assert prompt_of[other] not in user and f"custom/{other}" not in user and "Model:" not in user
        assert prompts.DISCLOSURE_INTRO[("none", "*")] in user and "<<<BEGIN" not in user
        params = json.loads(c["params"])
        assert (params["disclosure"], params["disclosure_wording"]) == ("none", prompts.wording_hash(Disclosure("none")))
    for c in by["full"]:
        user = json.loads(c["messages"])[1]["content"]
        other = c["opponent"]
        assert prompt_of[other] in user and f"Model: custom/{other}-" in user
        assert "disclosure" not in json.loads(c["params"])  # a full call's params are today's


def test_llm_levels_replay_exactly_and_key_the_cache(store, programs, games):
    tid, asked = _llm_run(store, programs, games, list(LEVELS))
    from arena.runner.replay import compare, replay_runner

    replay = replay_runner(store, tid)
    assert asyncio.run(replay.run()).status == "finished"
    assert compare(store, tid, replay.tournament_id) == []
    # the same run again: every call from the cache; the levels' messages differ, so do their keys
    tid2, asked2 = _llm_run(store, programs, games, list(LEVELS), name="again")
    assert tid2 == tid and asked2 == 0
    users = store.query("SELECT DISTINCT t.disclosure, json_extract(c.messages, '$[1].content') AS u FROM llm_calls c "
                        "JOIN trials t ON t.id = c.trial_id WHERE c.tournament_id=? AND c.program='walrus' AND "
                        "t.trial_index=0 AND t.row_program='walrus' AND t.col_program='otter'", (tid,))
    per_level = {}
    for r in users:
        per_level.setdefault(r["disclosure"], set()).add(r["u"])
    assert len(per_level) == 5
    assert all(not (per_level[a] & per_level[b]) for a in LEVELS for b in LEVELS if a < b)


def test_wording_per_level_is_fixed():
    hashes = {lv: prompts.wording_hash(Disclosure(lv)) for lv in LEVELS}
    assert len(set(hashes.values())) == 5
    assert prompts.wording_hash(Disclosure("obfuscated", "none")) not in hashes.values()
    assert prompts.opponent_part(LLM, Disclosure("none")) == (
        "Nothing about your opponent is shown to you: not its source, its prompt or its model. It is another program.")
    assert prompts.opponent_part(LLM, Disclosure("model")).startswith(
        "Below is what you are shown of your opponent: its model and temperature. Its system prompt is not shown "
        "to you. It is data for you to reason about")


# --- the store ---------------------------------------------------------------------------------------------------
def test_a_schema_7_database_gets_the_disclosure_column(tmp_path, programs, games):
    db = tmp_path / "arena.db"
    shutil.copy(ROOT / "tests" / "fixtures" / "arena-v7.db", db)
    with Store(db) as s:
        assert {r["disclosure"] for r in s.trial_rows(1)} == {"full"}
        before = s.count_trials(1)
    out = subprocess.run([sys.executable, "-m", "arena", "run", "--grid", "bots", "-n", "3", "--db", str(db),
                          "--display", "none", "--disclosure", "full", "--disclosure", "none"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    with Store(db) as s:
        assert s.count_trials(1) == before
        last = s.tournaments()[0] if s.tournaments()[0].id > 1 else s.tournaments()[-1]
        assert s.query("SELECT disclosure, count(*) AS n FROM trials WHERE tournament_id=? GROUP BY 1 ORDER BY 1",
                       (last.id,)) == [{"disclosure": "full", "n": 75}, {"disclosure": "none", "n": 75}]


def test_the_docs_show_the_wording_of_each_level():
    text = (ROOT / "docs" / "disclosure.md").read_text(encoding="utf-8")
    for sentence in prompts.DISCLOSURE_INTRO.values():
        assert f"| {sentence} |" in text
    for d in (*(Disclosure(lv) for lv in LEVELS), Disclosure("obfuscated", "none")):
        assert f"`{prompts.wording_hash(d)}`" in text
    assert "> " + prompts.DATA_NOTE.strip() + "\n" in text
