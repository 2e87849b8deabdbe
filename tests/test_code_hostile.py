"""Hostile code: each program is refused at load (file:line) or fails at run time with a clear error
stored on its node and its trials stored as `error`; nothing hangs, nothing reaches the host, and the
tournament goes on (the other cells are played and stored)."""

from __future__ import annotations

import asyncio
import textwrap

import pytest

from arena.engine.grid import TournamentConfig
from arena.errors import ConfigError
from arena.library.programs import BuiltinProgram, parse_program_text
from arena.runner.tournament import TournamentRunner


def yaml_of(source: str, id_: str = "hostile", **extra) -> str:
    head = "".join(f"{k}: {v}\n" for k, v in extra.items())
    return f"id: {id_}\nkind: code\n{head}source: |\n" + textwrap.indent(textwrap.dedent(source), "  ")


LOAD_REFUSED = {
    "import os": ("import os\ndef decide(ctx):\n    return os.listdir('/')\n", 4, "import of 'os'"),
    "import socket": ("def decide(ctx):\n    import socket\n    return 'cooperate'\n", 5, "import of 'socket'"),
    "import subprocess": ("import subprocess\ndef decide(ctx):\n    return 'defect'\n", 4, "import of 'subprocess'"),
    "__import__": ("def decide(ctx):\n    return __import__('os').name\n", 5, "'__import__'"),
    "eval": ("def decide(ctx):\n    return eval('\"defect\"')\n", 5, "'eval'"),
    "exec": ("def decide(ctx):\n    exec('x = 1')\n    return 'defect'\n", 5, "'exec'"),
    "dunder walk": ("def decide(ctx):\n    return ().__class__.__base__.__subclasses__()\n", 5, "dunder attribute"),
    "getattr walk": ("def decide(ctx):\n    return getattr((), '__class__')\n", 5, "'getattr'"),
}


@pytest.mark.parametrize("name", list(LOAD_REFUSED))
def test_refused_at_load_with_file_line(name):
    source, line, what = LOAD_REFUSED[name]
    with pytest.raises(ConfigError) as e:
        parse_program_text(yaml_of(source), "hostile.yaml")
    p = e.value.problems[0]
    assert str(p).startswith(f"hostile.yaml:{line}: field 'source': ") and what in p.message


RUNTIME = {
    "infinite loop": ("def decide(ctx):\n    while True:\n        pass\n",
                      "TimeoutError: decide took longer than its limit of 50 ms"),
    "memory bomb": ("def decide(ctx):\n    x = [0] * 10**9\n    return 'defect'\n",
                    "MemoryError: decide used more than its limit of 16 MB"),
    "deep recursion": ("def f(n):\n    return f(n + 1)\ndef decide(ctx):\n    return f(0)\n",
                       "RecursionError: maximum recursion depth exceeded (line 2: `return f(n + 1)`)"),
    "open a file": ("def decide(ctx):\n    with open('{path}', 'w') as f:\n        f.write('pwned')\n    return 'defect'\n",
                    "PermissionError: Permission denied: '{path}' (line 2: `with open('{path}', 'w') as f:`)"),
    "returns None": ("def decide(ctx):\n    return None\n",
                     "returned None: decide must return an action name ['cooperate', 'defect'] or a list of 2 probabilities"),
    "NaN probability": ("def decide(ctx):\n    return [float('nan'), 1.0]\n",
                        "returned probabilities [nan, 1.0]: each must be a finite number >= 0"),
    "negative probability": ("def decide(ctx):\n    return [-0.5, 1.5]\n",
                             "returned probabilities [-0.5, 1.5]: each must be a finite number >= 0"),
    "not summing to 1": ("def decide(ctx):\n    return [0.5, 0.25]\n",
                         "returned probabilities [0.5, 0.25] that sum to 0.75, not 1"),
    "wrong action name": ("def decide(ctx):\n    return 'Cooperate'\n",
                          "returned 'Cooperate', which is not an action of this game ['cooperate', 'defect']"),
}


@pytest.mark.parametrize("name", list(RUNTIME))
def test_runtime_failure_is_a_stored_error_and_the_run_goes_on(name, games, store, tmp_path):
    target = tmp_path / "pwned.txt"
    source, error = (s.replace("{path}", str(target)) for s in RUNTIME[name])
    hostile = parse_program_text(yaml_of(source, simulates="false", time_limit_ms=50, memory_mb=16), "h.yaml")
    defect = BuiltinProgram(id="defectbot", kind="builtin", strategy="defect")
    programs = {"hostile": hostile, "defectbot": defect}
    config = TournamentConfig(programs=["hostile", "defectbot"], games=["prisoners_dilemma"], epsilons=[0.2],
                              max_depths=[5], trials=3, seed=1)
    runner = TournamentRunner.create(store, config, programs, {"prisoners_dilemma": games["prisoners_dilemma"]})
    done = asyncio.run(runner.run())
    assert (done.status, done.done) == ("finished", 12)
    rows = store.query("SELECT row_program, col_program, status, error FROM trials ORDER BY seq")
    for r in rows:
        if "hostile" in (r["row_program"], r["col_program"]):
            side = "row" if r["row_program"] == "hostile" else "col"
            assert (r["status"], r["error"]) == ("error", f"{side} depth 0 hostile: {error}")
        else:
            assert r["status"] == "ok"
    nodes = store.query("SELECT DISTINCT error FROM nodes WHERE program = 'hostile'")
    assert [n["error"] for n in nodes] == [error]
    assert not target.exists()


def test_huge_print_is_capped_and_the_decision_stands(games, store):
    src = "def decide(ctx):\n    print('x' * 10**7)\n    print('never kept')\n    return 'defect'\n"
    loud = parse_program_text(yaml_of(src, "loud", simulates="false"), "loud.yaml")
    config = TournamentConfig(programs=["loud"], games=["prisoners_dilemma"], epsilons=[0.2], max_depths=[5],
                              trials=2, seed=1)
    runner = TournamentRunner.create(store, config, {"loud": loud}, {"prisoners_dilemma": games["prisoners_dilemma"]})
    assert asyncio.run(runner.run()).status == "finished"
    import json

    codes = [json.loads(n["code"]) for n in store.query("SELECT code FROM nodes")]
    assert len(codes) == 4 and all(c == {"output": "x" * 2000} for c in codes)
    assert {t["status"] for t in store.query("SELECT status FROM trials")} == {"ok"}


def test_a_runaway_program_gets_smaller_batches_and_every_decision_its_error(games):
    from arena.engine.code import CodeAgent
    from arena.engine.sandbox import Sandbox
    from arena.engine.records import Node

    loop = parse_program_text(yaml_of("def decide(ctx):\n    while True:\n        pass\n", "loop", time_limit_ms=20),
                              "loop.yaml")
    pd = games["prisoners_dilemma"]
    opp = BuiltinProgram(id="defectbot", kind="builtin", strategy="defect")
    with Sandbox([loop]) as sb:
        agent = CodeAgent(loop, sb)
        requests = [agent.request(pd, opp, Node(0, None, "row", 0, "loop", i / 40), None, None) for i in range(40)]
        outcomes = sb.run_many(loop, requests)
        assert [o.error for o in outcomes] == ["TimeoutError: decide took longer than its limit of 20 ms"] * 40
        assert sb.session(loop).max_batch == 1  # fed 40, then 5 (each timing out), then one at a time
        sb.run_many(loop, requests[:10])
        assert sb.session(loop).max_batch == 1
