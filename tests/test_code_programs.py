"""Code programs: loading (file:line refusals), the ctx contract, answers, and play through the simulator."""

from __future__ import annotations

import textwrap
from collections import Counter

import pytest

from arena.engine.bots import BotAgent
from arena.engine.code import CodeAgent, build_ctx, interpret
from arena.engine.grid import TournamentConfig
from arena.engine.records import DIRECT, ERROR, SIMULATED
from arena.engine.sandbox import Sandbox
from arena.engine.simulator import run_trial_sync
from arena.errors import ConfigError
from arena.library.programs import BuiltinProgram, CodeProgram, load_programs, parse_program_text

from conftest import ROOT

FAIR_SRC = (ROOT / "programs" / "code" / "fair-code.yaml")


def code(id_: str, source: str, **kw) -> CodeProgram:
    return CodeProgram.model_validate({"id": id_, "kind": "code", "source": textwrap.dedent(source), **kw})


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox([]) as sb:
        yield sb


def play(game, programs: dict, agents: dict, row: str, col: str, eps: float, n: int, seed: int = 7, depth: int = 50):
    cfg = TournamentConfig(programs=list(dict.fromkeys([row, col])), games=[game.id], epsilons=[eps],
                           max_depths=[depth], trials=n, seed=seed)
    specs = [s for s in cfg.iter_specs() if s.row == row and s.col == col]
    return [run_trial_sync(s, game, agents, programs) for s in specs]


# --- loading ---------------------------------------------------------------------------------------
def test_library_code_programs_load():
    progs = load_programs([ROOT / "programs" / "code"])
    assert progs["fair-code"].kind == "code" and progs["fair-code"].simulates is True
    assert progs["defect-code"].simulates is False
    assert progs["fair-code"].source().startswith("def decide(ctx):")


def test_syntax_error_names_file_line_and_the_code_line():
    text = "id: bad\nkind: code\nsource: |\n  def decide(ctx):\n      return ctx[\"u\"\n"
    with pytest.raises(ConfigError) as e:
        parse_program_text(text, "bad.yaml")
    (p,) = e.value.problems
    assert (p.file, p.field) == ("bad.yaml", "source")
    assert p.line == 5 and "syntax error" in p.message and '`return ctx["u"`' in p.message


@pytest.mark.parametrize("line, what", [
    ("import os", "import of 'os'"), ("import socket", "import of 'socket'"),
    ("import subprocess", "import of 'subprocess'"), ("from os import path", "import from 'os'"),
    ("x = __import__('os')", "'__import__'"), ("x = eval('1')", "'eval'"), ("exec('x = 1')", "'exec'"),
    ("x = ().__class__.__bases__", "dunder attribute '__bases__'"),
])
def test_refused_constructs_are_load_time_errors(line, what):
    text = f"id: bad\nkind: code\nsource: |\n  {line}\n  def decide(ctx):\n      return 'cooperate'\n"
    with pytest.raises(ConfigError) as e:
        parse_program_text(text, "bad.yaml")
    p = e.value.problems[0]
    assert p.line == 4 and what in p.message and f"`{line}`" in p.message


def test_decide_must_exist_with_one_argument():
    with pytest.raises(ConfigError, match="must define a top-level function `decide"):
        parse_program_text("id: bad\nkind: code\nsource: |\n  def choose(ctx):\n      return 1\n", "b.yaml")
    with pytest.raises(ConfigError, match="exactly one argument"):
        parse_program_text("id: bad\nkind: code\nsource: |\n  def decide(a, b):\n      return 1\n", "b.yaml")


def test_limits_have_hard_caps():
    with pytest.raises(ConfigError, match="time_limit_ms"):
        parse_program_text("id: x\nkind: code\ntime_limit_ms: 60000\nsource: |\n  def decide(ctx):\n"
                           "      return 1\n", "x.yaml")


# --- the ctx contract and answers -----------------------------------------------------------------
def test_ctx_from_the_column_seat_has_payoffs_from_that_seat(games):
    pd = games["prisoners_dilemma"]
    me = code("me", "def decide(ctx):\n    return 'cooperate'\n")
    opp = BuiltinProgram(id="defectbot", kind="builtin", strategy="defect")
    ctx = build_ctx(pd, "col", me, opp, None, 3, 0.2, 0.25)
    i, j = pd.actions.index("cooperate"), pd.actions.index("defect")
    # I (column) cooperate, they (row) defect: I get the sucker's payoff, they the temptation.
    assert ctx["game"]["payoffs"][i][j] == [pd.payoffs[j][i][1], pd.payoffs[j][i][0]]
    assert ctx["seat"] == "col" and ctx["depth"] == 3 and ctx["epsilon"] == 0.2 and ctx["u"] == 0.25
    assert ctx["opponent"] == "kind: builtin\nstrategy: defect\n"
    assert (ctx["opponent_id"], ctx["opponent_kind"], ctx["opponent_action"]) == ("defectbot", "builtin", None)
    assert ctx["me"] == me.code


@pytest.mark.parametrize("value, u, expected", [
    ("defect", 0.5, ("defect", None)),
    ([0.25, 0.75], 0.2, ("cooperate", None)),
    ([0.25, 0.75], 0.25, ("defect", None)),
    ([1, 0], 0.999, ("cooperate", None)),
])
def test_interpret_valid_answers(value, u, expected):
    assert interpret(value, ["cooperate", "defect"], u) == expected


@pytest.mark.parametrize("value, why", [
    (None, "returned None: decide must return an action name"),
    ("Cooperate", "returned 'Cooperate', which is not an action of this game"),
    ([float("nan"), 1.0], "each must be a finite number >= 0"),
    ([-0.5, 1.5], "each must be a finite number >= 0"),
    ([0.5, 0.6], "sum to 1.1, not 1"),
    ([1.0], "returned 1 probabilities for the 2 actions"),
])
def test_interpret_refuses_bad_answers(value, why):
    action, msg = interpret(value, ["cooperate", "defect"], 0.5)
    assert action is None and why in msg


# --- playing ---------------------------------------------------------------------------------------
def test_code_fairbot_matches_builtin_fairbot_trial_for_trial(games, sandbox):
    pd = games["prisoners_dilemma"]
    fair_code = load_programs([FAIR_SRC])["fair-code"]
    random_bot = BuiltinProgram(id="randombot", kind="builtin", strategy="random", params={"p": 0.3})
    fair_bot = BuiltinProgram(id="fairbot", kind="builtin", strategy="fairbot")
    for opp in (random_bot, BuiltinProgram(id="defectbot", kind="builtin", strategy="defect")):
        built = {"x": fair_bot.model_copy(update={"id": "x"}), opp.id: opp}
        coded = {"x": fair_code.model_copy(update={"id": "x"}), opp.id: opp}
        a = play(pd, built, {k: BotAgent(p) for k, p in built.items() if p.kind == "builtin"}, "x", opp.id, 0.2, 300)
        agents = {"x": CodeAgent(coded["x"], sandbox), opp.id: BotAgent(opp)}
        b = play(pd, coded, agents, "x", opp.id, 0.2, 300)
        assert [(r.row_action, r.col_action) for r in a] == [(r.row_action, r.col_action) for r in b]
        assert [[(n.mode, n.action) for n in r.nodes] for r in a] == [[(n.mode, n.action) for n in r.nodes] for r in b]


def test_code_fairbot_vs_code_defectbot_cooperates_with_probability_eps(games, sandbox):
    pd = games["prisoners_dilemma"]
    progs = load_programs([ROOT / "programs" / "code"])
    agents = {k: CodeAgent(p, sandbox) for k, p in progs.items()}
    res = play(pd, progs, agents, "fair-code", "defect-code", 0.2, 400)
    assert all(r.status == "ok" for r in res)
    k = sum(r.row_action == "cooperate" for r in res)
    assert abs(k / 400 - 0.2) < 4 * (0.2 * 0.8 / 400) ** 0.5
    assert all([n.mode for n in r.nodes][-1] == DIRECT for r in res)  # the defector acts directly


def test_runtime_failure_is_recorded_on_the_node_with_the_program_line(games, sandbox):
    pd = games["prisoners_dilemma"]
    bad = code("bad", """\
        def decide(ctx):
            if ctx["opponent_action"] is None:
                return "cooperate"
            return {"a": 1}["b"]
        """)
    progs = {"bad": bad, "defectbot": BuiltinProgram(id="defectbot", kind="builtin", strategy="defect")}
    agents = {"bad": CodeAgent(bad, sandbox), "defectbot": BotAgent(progs["defectbot"])}
    res = play(pd, progs, agents, "bad", "defectbot", 0.5, 40, depth=5)
    statuses = Counter(r.status for r in res)
    assert statuses["ok"] > 0 and statuses[ERROR] > 0
    failed = next(r for r in res if r.status == ERROR)
    root = failed.nodes[0]
    assert root.mode == SIMULATED and root.action is None
    assert root.error == "KeyError: b (line 4: `return {\"a\": 1}[\"b\"]`)"
    assert failed.error == "row depth 0 bad: " + root.error


MIXED = """\
import random
def decide(ctx):
    if ctx["opponent_action"] == "defect" and ctx["u"] < 0.1:
        return ctx["missing"]                       # fails now and then
    if ctx["opponent_action"] is None:
        return [0.7, 0.3]                           # a policy: sampled with the node's u
    print("saw", ctx["opponent_action"])
    return "cooperate" if random.random() < 0.5 else "defect"
"""


@pytest.mark.parametrize("split", [False, True])
def test_batched_trials_equal_trials_one_by_one(games, sandbox, monkeypatch, split):
    from arena.engine import sandbox as sandbox_module
    from arena.engine.batch import run_trials_batched

    if split:  # batches split over two sessions fed in parallel
        monkeypatch.setattr(sandbox_module, "PARALLEL_MIN", 4)
        monkeypatch.setattr(sandbox, "workers", 2)

    pd = games["prisoners_dilemma"]
    mixed = code("mixed", MIXED)
    rnd = BuiltinProgram(id="randombot", kind="builtin", strategy="random")
    progs = {"mixed": mixed, "randombot": rnd, "fair-code": load_programs([FAIR_SRC])["fair-code"]}
    agents = {"mixed": CodeAgent(mixed, sandbox), "randombot": BotAgent(rnd),
              "fair-code": CodeAgent(progs["fair-code"], sandbox)}
    cfg = TournamentConfig(programs=list(progs), games=["prisoners_dilemma"], epsilons=[0.3], max_depths=[6],
                           trials=40, seed=3)
    specs = list(cfg.iter_specs())
    one = [run_trial_sync(s, pd, agents, progs) for s in specs]
    many = run_trials_batched(specs, {"prisoners_dilemma": pd}, agents, progs)

    def view(r):
        return (r.status, r.error, r.row_action, r.col_action,
                [(n.mode, n.action, n.error, n.code) for n in r.nodes])

    assert [view(r) for r in one] == [view(r) for r in many]
    assert bool(sandbox._helpers.get("mixed")) == split  # the split run used a second session
    statuses = Counter(r.status for r in many)
    assert statuses["ok"] > 0 and statuses[ERROR] > 0
    assert any(n.code == {"value": [0.7, 0.3]} for r in many for n in r.nodes)
    assert any(n.code == {"output": "saw defect\n"} for r in many for n in r.nodes)


def test_stored_ctx_rebuilds_each_nodes_ctx_from_the_trial(games, sandbox):
    from arena.engine.code import stored_ctx

    pd = games["prisoners_dilemma"]
    spy = code("spy", "def decide(ctx):\n    print(ctx)\n    return ctx['opponent_action'] or 'cooperate'\n")
    rnd = BuiltinProgram(id="randombot", kind="builtin", strategy="random")
    progs = {"spy": spy, "randombot": rnd}
    agents = {"spy": CodeAgent(spy, sandbox), "randombot": BotAgent(rnd)}
    for r in play(pd, progs, agents, "spy", "randombot", 0.3, 20, depth=6) + play(pd, progs, agents, "randombot", "spy", 0.3, 20, depth=6):
        for n in r.nodes:
            ctx = stored_ctx(r.nodes, n.index, r.spec.seed, r.spec.epsilon, r.spec.row, r.spec.col, progs, pd)
            if n.program == "spy":
                assert n.code["output"] == str(ctx) + "\n"
            else:
                assert ctx is None
