"""Decisions are pure functions of their ctx (issue 24): each decision starts from the program's freshly loaded
module state (globals, module-level lists, class attributes, mutable defaults, load-time draws of `random`),
and its ctx is its own (the fixed part shared by a batch, the history of a repeated game). So a program that
keeps state answers the same whatever the batch size, the number of workers, a failure earlier in its batch,
or the tournament's size; and the modules the static check allows are those the sandbox has."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from arena.engine.sandbox import Sandbox
from arena.errors import ConfigError
from arena.library.codecheck import ALLOWED_MODULES, check_source
from arena.library.programs import CodeProgram, parse_program_text

ROOT = Path(__file__).resolve().parents[1]

# every kind of module state a decision could leave to the next: a global rebound, a module-level list,
# a class attribute, a mutable default, a closure's cell, a load-time draw, and the ctx's own lists
STATEFUL = """\
import random
count = 0
seen = []
class Tally:
    n = 0
def bump(acc=[]):
    acc.append(1)
    return len(acc)
def counter():
    cell = [0]
    def step():
        cell[0] += 1
        return cell[0]
    return step
step = counter()
load_draw = random.random()
NOTE = '''two
lines'''
def decide(ctx):
    global count
    count += 1
    seen.append(ctx["u"])
    Tally.n += 1
    ctx["game"]["actions"].append("extra")
    ctx["history"].append({"me": "extra"})
    state = [count, len(seen), Tally.n, bump(), step(), len(ctx["game"]["actions"]), len(ctx["history"]),
             load_draw, NOTE]
    if ctx["u"] > 0.99:
        raise ValueError("a failing node")
    if ctx["u"] > 0.98:
        while True:
            pass
    return state + [random.random()]
"""
FRESH = [1, 1, 1, 1, 1, 3, 1]  # what a decision sees from a fresh load: each counter once, its own ctx


def program(source: str = STATEFUL, **kw) -> CodeProgram:
    return CodeProgram.model_validate({"id": "stateful", "kind": "code", "source": source, "time_limit_ms": 200, **kw})


def requests(n: int, seed: int = 5) -> list:
    import random

    rng = random.Random(seed)
    base = {"game": {"actions": ["cooperate", "defect"], "default_action": "cooperate"}, "seat": "row",
            "history": []}
    return [(base, None, 0, 0.1, rng.random() * 0.97, None) for _ in range(n)]


def view(outcomes) -> list:
    return [(o.value, o.output, o.error) for o in outcomes]


def test_each_decision_of_a_batch_starts_from_the_freshly_loaded_program():
    """Before: the second decision of a batch saw count 2, seen of length 2, the first one's ctx edits..."""
    with Sandbox([program()], workers=1) as sb:
        out = sb.run_many(program_ := sb.programs["stateful"], requests(50))
        again = sb.run_many(program_, requests(50))  # a second batch on the same warm session
    assert all(o.error is None for o in out)
    assert {tuple(o.value[:7]) for o in out} == {tuple(FRESH)}
    assert len({o.value[7] for o in out}) == 1 and out[0].value[8] == "two\nlines"  # the load draw: one value
    assert view(again) == view(out)


@pytest.mark.parametrize("batch,workers", [(1, 1), (7, 1), (400, 1), (400, 2)])
def test_the_same_answers_whatever_the_batch_size_and_the_workers(monkeypatch, batch, workers):
    """Before: with a warm module-level counter, each decision's answer depended on how many came before it in
    its session, so on the batch size and on how a batch was split over the workers."""
    from arena.engine import sandbox as sandbox_module

    monkeypatch.setattr(sandbox_module, "PARALLEL_MIN", 16)  # 400 decisions split over 2 sessions
    reqs = requests(400)
    with Sandbox([program()], workers=1) as sb:
        reference = view(sb.run_one(sb.programs["stateful"], _ctx(r)) for r in reqs)
    with Sandbox([program()], workers=workers) as sb:
        p = sb.programs["stateful"]
        got = []
        for i in range(0, len(reqs), batch):
            got.extend(sb.run_many(p, reqs[i:i + batch]))
        assert bool(sb._helpers.get("stateful")) == (workers > 1 and batch >= 32)
    assert view(got) == reference


def _ctx(request) -> dict:
    from arena.engine.sandbox import full_ctx

    return full_ctx(request)


@pytest.mark.parametrize("failure", ["raises", "times out"])
def test_a_failing_decision_leaves_the_others_answers_as_they_were(failure):
    """Before: a batch with a failure was rerun decision by decision on the same (or a new) session, so the
    decisions after it saw another count than in a batch without the failure."""
    reqs = requests(60)
    u = 0.995 if failure == "raises" else 0.985
    bad = (reqs[0][0], None, 0, 0.1, u, None)
    with Sandbox([program()], workers=1) as sb:
        p = sb.programs["stateful"]
        clean = sb.run_many(p, reqs)
        hit = sb.run_many(p, reqs[:30] + [bad] + reqs[30:])
    assert hit[30].error is not None
    assert ("ValueError" if failure == "raises" else "TimeoutError") in hit[30].error
    assert view(hit[:30] + hit[31:]) == view(clean)


def test_shared_history_of_a_repeated_game_is_each_decisions_own():
    """The round's keys (the 6th element of a request) may be one object for several decisions: a decision
    appending to its history must not show in another's."""
    shared = {"round": 1, "rounds": 3, "history": [("cooperate", "defect", 0.0, 5.0)]}  # (Play.rows' form)
    base = {"game": {"actions": ["cooperate", "defect"], "default_action": "cooperate"}, "seat": "row"}
    src = "def decide(ctx):\n    ctx['history'].append(1)\n    return len(ctx['history'])\n"
    p = program(src)
    with Sandbox([p], workers=1) as sb:
        out = sb.run_many(p, [(base, None, 0, 0.1, 0.5, shared)] * 5)
    assert [o.value for o in out] == [2] * 5
    assert shared["history"] == [("cooperate", "defect", 0.0, 5.0)]


def test_errors_name_the_programs_own_line_after_a_fresh_load():
    src = "def helper(ctx):\n    return ctx['missing']\ndef decide(ctx):\n    return helper(ctx)\n"
    p = program(src)
    with Sandbox([p], workers=1) as sb:
        many = sb.run_many(p, requests(3))
        one = sb.run_one(p, _ctx(requests(1)[0]))
    for o in [*many, one]:
        assert o.line == 2 and "line 2: `return ctx['missing']`" in o.error


def test_reload_form_keeps_strings_and_indentation():
    from arena.library.codestate import RELOAD_HEADER, reload_form

    src = "x = '''a\n  b\n'''\nif True:\n\ty = 1\ndef decide(ctx):\n\treturn x\n"
    form = reload_form(src)
    lines = form.split("\n")
    assert lines[0] == "def _arena_fresh():" and lines[1] == "\tglobal decide, x, y"
    assert lines[RELOAD_HEADER:RELOAD_HEADER + 3] == ["\tx = '''a", "  b", "'''"]  # inside the string: as is
    assert lines[RELOAD_HEADER + 4] == "\t\ty = 1"
    p = program(src)
    with Sandbox([p], workers=1) as sb:
        assert sb.run_one(p, _ctx(requests(1)[0])).value == "a\n  b\n"


# --- the static check ---------------------------------------------------------------------------------
def test_a_global_that_no_module_statement_sets_is_refused():
    """A fresh load could not undo a global only a decision sets: refused at load, naming the line."""
    src = "def decide(ctx):\n    global n\n    n = 1\n    return 'cooperate'\n"
    findings = check_source(src)
    assert [f.line for f in findings] == [2] and "`global n` needs `n` set at the top" in findings[0].message
    assert check_source("n = 0\n" + src) == []
    findings = check_source("n = 0\nglobal n\n" + src)
    assert [f.line for f in findings] == [2] and "`global` statement at module level" in findings[0].message


def test_the_allowed_modules_are_those_the_sandbox_has():
    """Before: statistics, string and fractions passed the static check and failed in the sandbox."""
    with pytest.raises(ConfigError) as e:
        parse_program_text("id: s\nkind: code\nsource: |\n  import statistics\n  def decide(ctx):\n"
                           "      return 'cooperate'\n", "s.yaml")
    assert "import of 'statistics'" in e.value.problems[0].message
    src = "".join(f"import {m}\n" for m in sorted(ALLOWED_MODULES)) + "def decide(ctx):\n    return 'cooperate'\n"
    p = program(src)
    assert check_source(src) == []
    with Sandbox([p], workers=1) as sb:
        o = sb.run_one(p, _ctx(requests(1)[0]))
    assert (o.value, o.error) == ("cooperate", None)


# --- through the runner and the command -----------------------------------------------------------
GAMBLER = """\
import random
calls = 0
def decide(ctx):
    global calls
    calls += 1
    if ctx["opponent_action"] is None:
        return "cooperate" if random.random() < 0.5 else "defect"
    return ctx["opponent_action"] if calls % 2 == 1 else "defect"
"""


def _trials(db: Path, first: int) -> list:
    con = sqlite3.connect(db)
    rows = con.execute(
        "SELECT t.row_program, t.col_program, t.trial_index, t.seed, t.status, t.row_action, t.col_action, "
        "group_concat(n.idx || ':' || n.mode || ':' || coalesce(n.action, '-') || ':' || coalesce(n.code, ''), '|') "
        "FROM trials t JOIN nodes n ON n.trial_id = t.id WHERE t.trial_index < ? "
        "GROUP BY t.id ORDER BY t.row_program, t.col_program, t.trial_index", (first,)).fetchall()
    con.close()
    return rows


def test_a_stateful_program_stores_the_same_first_trials_with_20_and_400(tmp_path):
    """`arena run -p <stateful> -p fair-code -n 20` and `-n 400`, same seed: the first 20 trials of every
    cell identical in the store. Before: `calls` grew over a batch, so trial i depended on the run's size."""
    yaml = tmp_path / "gambler.yaml"
    yaml.write_text("id: gambler\nkind: code\nsource: |\n" + textwrap.indent(GAMBLER, "  "))
    stored = []
    for n in (20, 400):
        db = tmp_path / f"n{n}.db"
        out = subprocess.run([sys.executable, "-m", "arena.cli.main", "run", "-p", str(yaml), "-p",
                              str(ROOT / "programs" / "code" / "fair-code.yaml"), "-e", "0.3", "-n", str(n),
                              "--seed", "11", "--db", str(db), "--display", "none"],
                             capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert out.returncode == 0, out.stderr
        stored.append(_trials(db, 20))
    assert len(stored[0]) == 4 * 20 and stored[0] == stored[1]
    assert {r[5] for r in stored[0]} == {"cooperate", "defect"}  # the draws do matter


def _runner_trials(tmp_path: Path, name: str, games: dict, workers: int, monkeypatch) -> list:
    import asyncio
    import functools

    from arena.engine.grid import TournamentConfig
    from arena.library.programs import load_programs
    from arena.runner import tournament
    from arena.runner.tournament import TournamentRunner
    from arena.store.database import Store

    monkeypatch.setattr(tournament, "Sandbox", functools.partial(Sandbox, workers=workers))
    progs = {**load_programs([ROOT / "programs" / "code"]),
             "gambler": CodeProgram.model_validate({"id": "gambler", "kind": "code", "source": GAMBLER})}
    config = TournamentConfig(programs=["gambler", "fair-code"], games=["prisoners_dilemma"], epsilons=[0.3],
                              max_depths=[20], trials=60, seed=4)
    db = tmp_path / f"{name}.db"
    with Store(db) as store:
        runner = TournamentRunner.create(store, config, progs, games)
        done = asyncio.run(runner.run())
    assert done.status == "finished"
    return _trials(db, 60)


def test_the_runner_stores_the_same_trials_whatever_its_code_batch_and_workers(tmp_path, monkeypatch, games):
    """CODE_BATCH (trials resolved together) 500, 7 and 1, and the sandbox's workers 1 or 2 (a large batch
    split over two sessions): the same stored trials. Before: `calls` counted the decisions of a session."""
    from arena.engine import sandbox as sandbox_module
    from arena.runner import tournament

    reference = _runner_trials(tmp_path, "ref", games, 1, monkeypatch)
    monkeypatch.setattr(sandbox_module, "PARALLEL_MIN", 8)
    for batch in (7, 1):
        monkeypatch.setattr(tournament, "CODE_BATCH", batch)
        assert _runner_trials(tmp_path, f"b{batch}", games, 2, monkeypatch) == reference


def test_which_modules_load_afresh_and_which_seed_random_first():
    """A module no decision can change (imports, plain defs, constants) is not loaded again before each decision
    (that would give the same state); one with a list, a class, a mutable default, a decorator or a `global`
    is. `random` is seeded before the fresh load only when loading calls something."""
    from arena.library.codestate import calls_at_load, constant_module

    decide = "def decide(ctx):\n    return 'cooperate'\n"
    assert constant_module("import random\nK = 3\nPAIR = (1, -2.5, 'a')\n\"\"\"doc\"\"\"\n" + decide)
    for state in ("seen = []\n", "class C:\n    n = 0\n", "def f(a=[]):\n    return a\n",
                  "import functools\n@functools.cache\ndef f(x):\n    return x\n", "n = 0\ndef g():\n    global n\n",
                  "table = dict(a=1)\n"):
        assert not constant_module(state + decide), state
    assert not calls_at_load("import random\nn = 0\n" + decide + "def f(x=1):\n    return random.random()\n")
    for load in ("x = random.random()\n", "def f(x=random.random()):\n    pass\n", "class C:\n    y = 1\n",
                 "def deco(f):\n    random.random()\n    return f\n@deco\ndef g():\n    pass\n"):
        assert calls_at_load("import random\n" + load + decide), load


def test_the_decimal_context_is_fresh_at_each_decision():
    """decimal's context is module state outside the program's own names: a decision setting its precision
    must not change the next one's. Before: the second decision saw prec 3."""
    src = ("import decimal\ndef decide(ctx):\n    before = decimal.getcontext().prec\n"
           "    decimal.getcontext().prec = 3\n    return before\n")
    p = program(src)
    with Sandbox([p], workers=1) as sb:
        many = sb.run_many(p, requests(4))
        one = sb.run_one(p, _ctx(requests(1)[0]))
    assert [o.value for o in [*many, one]] == [28] * 5


@pytest.mark.parametrize("body,shares", [
    ("return ctx['opponent_action'] or ctx['game']['default_action']", True),  # fair-code
    ("return 'defect'", True),
    ("return ctx.get('opponent_action') or ctx['game']['actions'][ctx['depth'] % 2]", True),
    ("return ctx['history'][-1]['opponent'] if ctx['history'] else 'cooperate'", False),  # the list itself
    ("return ctx['history'][-1]['opponent'] if ctx['round'] else 'cooperate'", True),  # a repeated game's titfortat
    ("return ctx['game'][ctx['seat']]", False),  # a key not known: maybe a list
    ("a = ctx['game']['actions']\n    a.append('x')\n    return a[0]", False),
    ("ctx['game']['actions'][0] = 'x'\n    return 'x'", False),
    ("print(ctx)\n    return 'cooperate'", False),
    ("return helper(ctx)", False),
    ("return ctx['game']['actions'][:1][0]", False),
    ("return ctx.get(ctx['seat'])", False),
    # a name bound once to a part of ctx is followed like ctx itself (clique-code, seat-coordinator)
    ("game = ctx['game']\n    return game['default_action'] if ctx['opponent'] == ctx['me'] else game['defect_action']",
     True),
    ("mine, theirs = ctx['game']['cooperative'][0]\n    return mine", True),
    ("for a in ctx['game']['actions']:\n        pass\n    return a if 'x' not in ctx['game']['actions'] else 'y'",
     True),
    ("g = ctx['game']\n    acts = g['actions']\n    return acts[0]", True),
    ("g = ctx['game']\n    g = {}\n    return 'x'", False),  # bound twice: not followed
    ("g = ctx['game']\n    g['actions'].append(1)\n    return 'x'", False),
    ("acts = ctx['game']['actions']\n    acts.sort()\n    return acts[0]", False),
    ("for row in ctx['game']['payoffs']:\n        row.append(0)\n    return 'x'", False),  # items are lists
    ("if ctx['opponent_action'] in ctx['game']['actions']:\n        return 'x'\n    return 'y'", True),
])
def test_which_programs_share_the_fixed_part_of_the_ctx(body, shares):
    """A program that reads only immutable leaves of its ctx shares the batch's fixed part (no copy: the
    headline programs keep their speed); one that may reach a list or dict gets its own copies."""
    from arena.engine.sandbox import CTX_LEAVES
    from arena.library.codestate import reads_only

    assert reads_only(f"def decide(ctx):\n    {body}\n", CTX_LEAVES) is shares
