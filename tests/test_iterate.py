"""`arena iterate` (the PIBR loop) against a scripted writer on the loopback OpenAI-compatible server."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from arena.iterate.prompts import extract
from tests.support.fake_llm import FakeLLMServer, Script

ROOT = Path(__file__).resolve().parents[1]

BROKEN = "Here is my program:\n```python\ndef decide(ctx)\n    return 'a'\n```\n"
PLAYS_B = "```python\ndef decide(ctx):\n    return 'b'\n```"
PLAYS_A = "Let me fix that.\n```python\ndef decide(ctx):\n    return 'a'\n```\nThis coordinates on (a, a)."


def arena(*args, env=None, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "arena.cli.main", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300, env={**os.environ, **(env or {})})


def writer_env(srv) -> dict:
    return {"LLM_BASE_URL": srv.base_url, "LLM_API_KEY": "sk-iterate-test"}


def test_extract_reads_the_last_python_block_or_the_whole_reply():
    assert extract(PLAYS_A) == "def decide(ctx):\n    return 'a'\n"
    assert extract("```\nx = 1\n```\n```python\ny = 2\n```\n```text\nz\n```") == "y = 2\n"
    assert extract("def decide(ctx):\n    return 'c'") == "def decide(ctx):\n    return 'c'\n"


def test_must_show_climbing(tmp_path):
    """Error, b, a for every turn: the error goes back as feedback, the best candidate is kept, the final
    pair plays (a, a) in `arena run`: social welfare 22."""
    db, out = tmp_path / "x.db", tmp_path / "final"
    with FakeLLMServer(Script([BROKEN, PLAYS_B, PLAYS_A] * 4)) as srv:
        res = arena("iterate", "--game", "climbing", "--model", "custom/writer", "--rounds", "2", "--steps", "3",
                    "--episodes", "5", "--seed", "4", "--db", str(db), "--out", str(out), env=writer_env(srv))
        assert res.returncode == 0, res.stderr
        reqs = [r.body["messages"] for r in srv.chat_requests]
    # 2 rounds x 2 players x 3 steps; round 2 changes nothing, so the run stops there
    assert len(reqs) == 12
    # the syntax error went back as the next request's last user message, with its line
    feedback = reqs[1][-1]["content"]
    assert reqs[1][-2] == {"role": "assistant", "content": BROKEN}
    assert "failed its unit tests" in feedback and "candidate.py:1: syntax error" in feedback
    assert "def decide(ctx)" in feedback
    # the b candidate's utility feedback: 5 episodes against the opponent, mean utilities
    assert reqs[2][-1]["content"].count("episode ") == 5 and "Mean utility: you" in reqs[2][-1]["content"]
    # the column player's task shows the row's kept program (plays a)
    assert "return 'a'" in reqs[3][1]["content"] and "You are the column player" in reqs[3][1]["content"]
    assert "final social welfare: 22" in res.stdout
    assert "best profile in the history (the paper's choice): welfare 22" in res.stdout
    con = sqlite3.connect(db)
    steps = con.execute("SELECT round, player, step, valid, row_utility, col_utility, welfare, kept FROM iterate_steps "
                        "ORDER BY id").fetchall()
    assert len(steps) == 13  # the start pair's evaluation and 12 writer steps
    r1row = steps[1:4]
    assert [s[3] for s in r1row] == [0, 1, 1] and [s[7] for s in r1row] == [0, 0, 1]
    r1col = steps[4:7]  # against the row's a: b earns -30, a earns 11, a is kept
    assert [(s[5], s[6], s[7]) for s in r1col] == [(None, None, 0), (-30.0, -60.0, 0), (11.0, 22.0, 1)]
    # every writer call is in llm_calls, linked to its candidate, without the key
    calls = con.execute("SELECT program, status FROM llm_calls ORDER BY id").fetchall()
    assert len(calls) == 12 and calls[0] == ("it1-r1-row-s1", "ok")
    assert not any("sk-iterate-test" in str(r) for r in con.execute("SELECT * FROM llm_calls"))
    # candidates' trials are ordinary trials of the run's tournament
    assert con.execute("SELECT col_program, count(*) FROM trials WHERE row_program='it1-r1-row-s3' "
                       "GROUP BY col_program").fetchall() == [("it1-r1-col-s2", 5), ("it1-r1-col-s3", 5),
                                                              ("it1-start-col", 5)]
    files = sorted(out.iterdir())
    assert [f.name for f in files] == ["iterate1-col.yaml", "iterate1-row.yaml"]
    played = arena("run", "--program", str(files[1]), "--program", str(files[0]), "--game", "climbing",
                   "--trials", "3", "--db", str(tmp_path / "r.db"), "--display", "none")
    assert played.returncode == 0, played.stderr
    rows = sqlite3.connect(tmp_path / "r.db").execute(
        "SELECT row_action, col_action, row_payoff + col_payoff FROM trials "
        "WHERE row_program='iterate1-row' AND col_program='iterate1-col'").fetchall()
    assert rows == [("a", "a", 22.0)] * 3
