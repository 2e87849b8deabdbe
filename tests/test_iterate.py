"""`arena iterate` (the PIBR loop) against a scripted writer on the loopback OpenAI-compatible server."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from arena.iterate.prompts import extract
from tests.support.fake_llm import FakeLLMServer, Script
from tests.support.cli import arena, play_final_pair

ROOT = Path(__file__).resolve().parents[1]

BROKEN = "Here is my program:\n```python\ndef decide(ctx)\n    return 'a'\n```\n"
PLAYS_B = "```python\ndef decide(ctx):\n    return 'b'\n```"
PLAYS_A = "Let me fix that.\n```python\ndef decide(ctx):\n    return 'a'\n```\nThis coordinates on (a, a)."


def writer_env(srv) -> dict:
    return {"LLM_BASE_URL": srv.base_url, "LLM_API_KEY": "sk-iterate-test"}


def test_extract_reads_the_last_python_block_or_the_whole_reply():
    assert extract(PLAYS_A) == "def decide(ctx):\n    return 'a'\n"
    assert extract("```\nx = 1\n```\n```python\ny = 2\n```\n```text\nz\n```") == "y = 2\n"
    assert extract("def decide(ctx):\n    return 'c'") == "def decide(ctx):\n    return 'c'\n"
    # cut off by the length cap inside its block (a small model's usual answer): the block so far
    assert extract("```python\ndef decide(ctx):\n    return 'a'\n\nctx = {") == \
        "def decide(ctx):\n    return 'a'\n\nctx = {\n"


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
    assert len(steps) == 21  # the start pair's evaluation, then a turn: the current program, 3 writer steps, the kept
    r1row = steps[1:6]  # the current (random) program, broken, b, a, and a again on fresh episodes
    assert [s[3] for s in r1row] == [1, 0, 1, 1, 1] and [s[7] for s in r1row] == [0, 0, 0, 1, 0]
    assert [s[6] for s in r1row] == [-5.2, None, -12.0, 4.4, 8.8]
    r1col = steps[6:11]  # against the row's a: the random start 6.6, b earns -30, a earns 11, a is kept
    assert [(s[5], s[6], s[7]) for s in r1col] == [(6.6, 13.2, 0), (None, None, 0), (-30.0, -60.0, 0), (11.0, 22.0, 1),
                                                   (11.0, 22.0, 0)]
    assert [s[7] for s in steps[11:]] == [1, 0, 0, 0, 0] * 2  # round 2: a again ties the current a, which stays
    # every writer call is in llm_calls, linked to its candidate, without the key
    calls = con.execute("SELECT program, status FROM llm_calls ORDER BY id").fetchall()
    assert len(calls) == 12 and calls[0] == ("it1-r1-row-s1", "ok")
    assert not any("sk-iterate-test" in str(r) for r in con.execute("SELECT * FROM llm_calls"))
    # candidates' trials are ordinary trials of the run's tournament
    assert con.execute("SELECT col_program, count(*) FROM trials WHERE row_program='it1-r1-row-s3' "
                       "GROUP BY col_program").fetchall() == [("it1-r1-col-s2", 5), ("it1-r1-col-s3", 30),
                                                              ("it1-r2-col-s2", 5), ("it1-r2-col-s3", 5),
                                                              ("it1-start-col", 15)]
    rows = play_final_pair(out, "climbing", 3, tmp_path / "r.db").execute(
        "SELECT row_action, col_action, row_payoff + col_payoff FROM trials "
        "WHERE row_program='iterate1-row' AND col_program='iterate1-col'").fetchall()
    assert rows == [("a", "a", 22.0)] * 3


def _steps(db) -> list[tuple]:
    return sqlite3.connect(db).execute(
        "SELECT round, player, step, program_id, program_hash, source, reply, valid, validation, row_utility, "
        "col_utility, welfare, kept, feedback FROM iterate_steps ORDER BY id").fetchall()


def _trials(db) -> list[tuple]:
    return sqlite3.connect(db).execute(
        "SELECT seq, row_program, col_program, seed, row_action, col_action, row_payoff, col_payoff FROM trials "
        "ORDER BY row_program, col_program, trial_index").fetchall()


ITERATE = ["iterate", "--game", "vanilla_coordination", "--model", "custom/writer", "--rounds", "1", "--steps", "3",
           "--episodes", "4", "--seed", "9"]
PLAYS_C = "```python\ndef decide(ctx):\n    return 'c'\n```"


def test_resume_continues_an_interrupted_run_exactly(tmp_path):
    from tests.support.fake_llm import Status

    whole, cut = tmp_path / "whole.db", tmp_path / "cut.db"
    answers = [PLAYS_B, BROKEN, PLAYS_C, PLAYS_C, PLAYS_B, PLAYS_A]
    with FakeLLMServer(Script(answers)) as srv:
        assert arena(*ITERATE, "--db", str(whole), env=writer_env(srv)).returncode == 0
    # the provider refuses the third request: the run stops, its two finished steps stay stored
    with FakeLLMServer(Script(answers[:2], fallback=Status(404))) as srv:
        res = arena(*ITERATE, "--db", str(cut), env=writer_env(srv))
    assert res.returncode == 2 and "refused model" in res.stderr
    con = sqlite3.connect(cut)
    assert con.execute("SELECT status FROM iterate_runs").fetchone() == ("failed",)
    assert len(_steps(cut)) == 4  # the start pair, the row's current program and two steps
    with FakeLLMServer(Script(answers[2:])) as srv:
        res = arena("resume", "--db", str(cut), env=writer_env(srv))  # the latest tournament: the run's
        assert res.returncode == 0, res.stderr
        # the resumed conversation holds the stored replies and feedback of the first two steps
        first = srv.chat_requests[0].body["messages"]
        assert [m["role"] for m in first] == ["system", "user", "assistant", "user", "assistant", "user"]
        assert first[4]["content"] == BROKEN and "syntax error" in first[5]["content"]
    assert _steps(cut) == _steps(whole)
    assert _trials(cut) == _trials(whole)
    assert "final social welfare: 6" in res.stdout
    assert con.execute("SELECT status FROM iterate_runs").fetchone() == ("finished",)


def test_vanilla_coordination_reaches_6_and_exports(tmp_path):
    db = tmp_path / "v.db"
    with FakeLLMServer(Script([PLAYS_B, BROKEN, PLAYS_C, PLAYS_C, PLAYS_B, PLAYS_A])) as srv:
        res = arena(*ITERATE, "--db", str(db), env=writer_env(srv))
    assert res.returncode == 0, res.stderr
    assert "final social welfare: 6" in res.stdout
    csv = arena("export", "--iterate", "1", "--format", "csv", "--db", str(db))
    assert csv.returncode == 0, csv.stderr
    lines = csv.stdout.splitlines()
    assert lines[0] == ("run,round,player,step,candidate,candidate_hash,valid,kept,row_utility,col_utility,welfare,"
                        "episodes,error")
    # row: its current (random) program, b (vs the random start), broken, c, then c on fresh episodes; the
    # column answers c against the row's c: welfare 6
    assert lines[2].startswith("1,1,row,0,it1-start-row,35fccff807f15bb8,true,false,0.5,0.5,1.0,4.0; 0.0; 0.0; 0.0,")
    assert lines[4].startswith("1,1,row,2,it1-r1-row-s2,,false,false,,,,,candidate.py:1: syntax error")
    assert lines[6].startswith("1,1,row,4,it1-r1-row-s3,f8b94ceba7b0ad6f,true,false,0.75,0.75,1.5,0.0; 0.0; 6.0; 0.0,")
    assert lines[8].startswith("1,1,col,1,it1-r1-col-s1,") and ",true,true,3.0,3.0,6.0,6.0; 6.0; 6.0; 6.0," in lines[8]
    md = arena("export", "--iterate", "1", "--format", "markdown", "--db", str(db)).stdout
    assert "| 1 | col | 1 | it1-r1-col-s1 |" in md and "| yes | yes | 3 | 3 | 6 |" in md
    doc = json.loads(arena("export", "--iterate", "1", "--format", "json", "--db", str(db)).stdout)
    assert doc["run"]["config"]["game"] == "vanilla_coordination" and len(doc["steps"]) == 11
    assert doc["steps"][3]["valid"] is False and doc["steps"][3]["episodes"] == []
    assert "\\begin{tabular}" in arena("export", "--iterate", "1", "--format", "latex", "--db", str(db)).stdout
    for fmt in ("png", "svg"):
        out = tmp_path / f"w.{fmt}"
        assert arena("export", "--iterate", "1", "--format", fmt, "--out", str(out), "--db", str(db)).returncode == 0
        assert out.stat().st_size > 1000
    assert "social welfare" in (tmp_path / "w.svg").read_text()
    missing = arena("export", "--iterate", "5", "--format", "csv", "--db", str(db))
    assert missing.returncode == 2 and "no iterate run 5" in missing.stderr


def test_prompt_kind_rewrites_a_system_prompt_and_reaches_20_on_penalty(tmp_path):
    """--kind prompt: the writer writes an LLM program's system prompt; the candidates are played by the
    same model (one loopback server answers both the writer and the players). The column starts at c (from
    (b, b) neither player can gain alone, so the current programs would stay)."""
    def responder(req):
        system = req.messages[0]["content"]
        if system.startswith("You are an expert game theorist"):
            seat = "a" if "You are the row player" in req.messages[1]["content"] else "c"
            return f"Here is the prompt:\n```\nAlways play {seat}.\n```"
        for action in "abc":
            if f"Always play {action}." in system:
                return f"ACTION: {action}"
        return "ACTION: b"  # the default starting prompt plays the safe action

    db, out = tmp_path / "p.db", tmp_path / "final"
    start_col = tmp_path / "col.yaml"
    start_col.write_text("id: col\nkind: llm\nmodel: custom/m\nsystem_prompt: Always play c.\n")
    with FakeLLMServer(responder) as srv:
        res = arena("iterate", "--game", "penalty", "--model", "custom/m", "--kind", "prompt", "--rounds", "3",
                    "--steps", "1", "--episodes", "3", "--seed", "2", "--start-col", str(start_col), "--db", str(db),
                    "--out", str(out), env=writer_env(srv))
    assert res.returncode == 0, res.stderr
    assert "final social welfare: 20" in res.stdout
    con = sqlite3.connect(db)
    # round 1: the row's a against the column's c (20) beats its current b (0); the column's c ties its current
    # c, which stays; round 2 changes nothing
    assert con.execute("SELECT round, player, step, welfare, kept FROM iterate_steps ORDER BY id").fetchall() == [
        (0, "start", 0, 0.0, 1),
        (1, "row", 0, 0.0, 0), (1, "row", 1, 20.0, 1), (1, "row", 2, 20.0, 0),
        (1, "col", 0, 20.0, 1), (1, "col", 1, 20.0, 0), (1, "col", 2, 20.0, 0),
        (2, "row", 0, 20.0, 1), (2, "row", 1, 20.0, 0), (2, "row", 2, 20.0, 0),
        (2, "col", 0, 20.0, 1), (2, "col", 1, 20.0, 0), (2, "col", 2, 20.0, 0)]
    # the candidates' decisions are LLM calls of ordinary trials; the writer's are linked to the candidates
    assert con.execute("SELECT count(*) FROM llm_calls WHERE trial_id = 0").fetchone() == (4,)
    assert con.execute("SELECT count(*) FROM llm_calls WHERE trial_id > 0").fetchone()[0] >= 3 * 2 * 5
    row = (out / "iterate1-row.yaml").read_text()
    assert "kind: llm" in row and "system_prompt: Always play a." in row and "model: custom/m" in row


@pytest.mark.parametrize("game, row, col, welfare", [("vanilla_coordination", "c", "c", 6), ("climbing", "a", "a", 22),
                                                     ("penalty", "a", "c", 20)])
def test_the_loop_reaches_the_optimal_welfare(tmp_path, game, row, col, welfare):
    """A seat-aware scripted writer: its first answer of a turn does not run, the next coordinates."""
    def responder(req):
        if len(req.messages) == 2:
            return BROKEN
        action = row if "You are the row player" in req.messages[1]["content"] else col
        return f"```python\ndef decide(ctx):\n    return '{action}'\n```"

    with FakeLLMServer(responder) as srv:
        res = arena("iterate", "--game", game, "--model", "custom/w", "--rounds", "3", "--steps", "2",
                    "--episodes", "3", "--seed", "1", "--db", str(tmp_path / "g.db"), "--quiet", env=writer_env(srv))
    assert res.returncode == 0, res.stderr
    assert f"final social welfare: {welfare}\n" in res.stdout


def test_list_and_the_tournament_holding_the_trials(tmp_path):
    db = tmp_path / "l.db"
    with FakeLLMServer(lambda req: PLAYS_C) as srv:
        assert arena(*ITERATE, "--db", str(db), "--quiet", env=writer_env(srv)).returncode == 0
    listed = arena("iterate", "--list", "--db", str(db))
    assert listed.stdout.splitlines()[1].split() == ["1", "vanilla_coordination", "custom/writer", "code", "1×3×4",
                                                     "finished", "6", "6"]
    # the run's trials are a tournament's: listed as such, analysable, but resumed only as an iterate run
    shown = arena("tournaments", "list", "--db", str(db))
    assert shown.returncode == 0 and "iterate run 1: vanilla_coordination" in shown.stdout
    assert arena("tournaments", "show", "1", "--db", str(db)).returncode == 0
    from arena.runner.tournament import TournamentRunner
    from arena.errors import ArenaError
    from arena.store.database import Store

    with Store(db) as store, pytest.raises(ArenaError, match="arena iterate --resume"):
        TournamentRunner.resume(store, 1)  # the app's resume key: refused, never a grid of candidates
    bad = arena("iterate", "--game", "nope", "--model", "custom/w", "--db", str(db))
    assert bad.returncode == 2 and "unknown game 'nope'" in bad.stderr
    bad = arena("iterate", "--game", "climbing", "--model", "custom/w", "--episodes", "0", "--db", str(db))
    assert bad.returncode == 2 and "--episodes" in bad.stderr


FAILS_SOMETIMES = ("```python\ndef decide(ctx):\n    if ctx['u'] > 0.6:\n        raise ValueError('boom')\n"
                   "    return 'c'\n```")


def test_a_runtime_error_while_playing_goes_back_with_its_line_and_earns_nothing(tmp_path):
    """The smoke calls pass (u = 0.5); the trials' draws reach the failing line."""
    db = tmp_path / "f.db"
    with FakeLLMServer(Script([FAILS_SOMETIMES, PLAYS_C, PLAYS_C, PLAYS_C, PLAYS_C, PLAYS_C])) as srv:
        res = arena(*ITERATE, "--db", str(db), env=writer_env(srv))
        second = srv.chat_requests[1].body["messages"][-1]["content"]
    assert res.returncode == 0, res.stderr
    assert "failed its unit tests, so it earns nothing" in second
    assert "ValueError: boom (line 3: `raise ValueError('boom')`)" in second
    con = sqlite3.connect(db)
    assert con.execute("SELECT valid, welfare, kept FROM iterate_steps WHERE program_id='it1-r1-row-s1'").fetchone() \
        == (0, None, 0)
    # its trials are stored as they went (ordinary error trials), never as a success
    assert con.execute("SELECT count(*) FROM trials WHERE row_program='it1-r1-row-s1' AND status='error'"
                       ).fetchone()[0] >= 1


def test_starting_programs_from_the_library_or_a_file(tmp_path):
    db = tmp_path / "s.db"
    start = tmp_path / "mine.yaml"
    start.write_text("id: mine\nkind: code\nsource: |\n  def decide(ctx):\n      return ctx['game']['default_action']\n")
    with FakeLLMServer(lambda req: PLAYS_C) as srv:
        res = arena(*ITERATE, "--start-row", str(start), "--start-col", "programs/code/fair-code.yaml", "--db", str(db), "--quiet",
                    env=writer_env(srv))
        assert res.returncode == 0, res.stderr
        # the row's writer reads the column's starting program: fair-code's source
        assert "copy the simulated opponent" in srv.chat_requests[0].body["messages"][1]["content"]
    con = sqlite3.connect(db)
    # vanilla coordination's default action is c: (c, c) from the start, welfare 6
    assert con.execute("SELECT program_id, welfare FROM iterate_steps WHERE player='start'").fetchone() == \
        ("it1-start-row", 6.0)
    bad = arena(*ITERATE, "--start-row", "nope", "--db", str(db))
    assert bad.returncode == 2 and "unknown program 'nope'" in bad.stderr


def test_the_writers_temperature_is_an_option(tmp_path):
    db = tmp_path / "t.db"
    with FakeLLMServer(Script([PLAYS_A] * 4)) as srv:
        res = arena("iterate", "--game", "vanilla_coordination", "--model", "custom/writer", "--rounds", "1",
                    "--steps", "1", "--episodes", "2", "--temperature", "0.2", "--db", str(db), env=writer_env(srv))
        assert res.returncode == 0, res.stderr
        assert {r.body["temperature"] for r in srv.chat_requests} == {0.2}
    config = json.loads(sqlite3.connect(db).execute("SELECT config FROM iterate_runs").fetchone()[0])
    assert config["temperature"] == 0.2
    bad = arena("iterate", "--game", "vanilla_coordination", "--model", "custom/writer", "--temperature", "3",
                "--db", str(tmp_path / "u.db"))
    assert bad.returncode == 2 and "--temperature: Input should be less than or equal to 2" in bad.stderr
    assert "Traceback" not in bad.stderr
