"""Iterate results a referee can trust (issue 24): resuming prompt runs, error trials, the current program as a
candidate, the kept program re-evaluated on fresh episodes, the run's claim, sandbox sessions released."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time

from tests.support.fake_llm import FakeLLMServer, Script, Status
from tests.support.cli import arena
from tests.test_iterate import _steps, _trials, writer_env

PLAYS = "```python\ndef decide(ctx):\n    return '{}'\n```"


def _code_start(tmp_path, name: str, body: str, simulates: bool = False):
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"id: {name}\nkind: code\nsimulates: {str(simulates).lower()}\nsource: |\n"
                    + "".join(f"  {line}\n" for line in body.splitlines()))
    return path


# -- resume of a --kind prompt run -------------------------------------------------------------------------
def _prompt_responder(fail_after: int | None = None):
    """Row writes 'Always play c.', column 'Always play a.'; the players answer their prompt's action.
    fail_after: the writer's requests after that many are refused (the run stops there)."""
    writer_calls = []

    def responder(req):
        system = req.messages[0]["content"]
        if system.startswith("You are an expert game theorist"):
            writer_calls.append(1)
            if fail_after is not None and len(writer_calls) > fail_after:
                return Status(404)
            seat = "c" if "You are the row player" in req.messages[1]["content"] else "a"
            return f"```\nAlways play {seat}.\n```"
        for action in "abc":
            if f"Always play {action}." in system:
                return f"ACTION: {action}"
        return "ACTION: b"
    return responder


def test_resume_of_a_prompt_run_routes_the_kept_candidates(tmp_path):
    """The row's kept prompt candidate is the column's opponent after the resume: it is played, not a
    KeyError (routes were made only for the writer and the starting programs)."""
    start_col = tmp_path / "col.yaml"
    start_col.write_text("id: col\nkind: llm\nmodel: custom/m\nsystem_prompt: Always play a.\n")
    args = ["iterate", "--game", "penalty", "--model", "custom/m", "--kind", "prompt", "--rounds", "2", "--steps",
            "1", "--episodes", "2", "--seed", "3", "--start-col", str(start_col)]
    whole, cut = tmp_path / "whole.db", tmp_path / "cut.db"
    with FakeLLMServer(_prompt_responder()) as srv:
        res = arena(*args, "--db", str(whole), env=writer_env(srv))
        assert res.returncode == 0, res.stderr
    with FakeLLMServer(_prompt_responder(fail_after=1)) as srv:
        res = arena(*args, "--db", str(cut), env=writer_env(srv))
    assert res.returncode == 2 and "refused model" in res.stderr
    with FakeLLMServer(_prompt_responder()) as srv:
        res = arena("iterate", "--resume", "1", "--db", str(cut), env=writer_env(srv))
    assert res.returncode == 0, res.stderr
    assert "final social welfare: 20" in res.stdout
    assert _steps(cut) == _steps(whole)
    assert _trials(cut) == _trials(whole)


# -- a resume is claimed like a tournament's ------------------------------------------------------------------
def test_a_second_resume_of_a_running_run_is_refused(tmp_path):
    db = tmp_path / "c.db"
    with FakeLLMServer(lambda req: PLAYS.format("c")) as srv:
        res = arena("iterate", "--game", "vanilla_coordination", "--model", "custom/w", "--rounds", "1", "--steps",
                    "1", "--episodes", "2", "--db", str(db), "--quiet", env=writer_env(srv))
        assert res.returncode == 0, res.stderr
        other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            con = sqlite3.connect(db)
            con.execute("UPDATE tournaments SET status='running', runner_pid=?, started_at=?", (other.pid, time.time()))
            con.execute("UPDATE iterate_runs SET status='running'")
            con.commit()
            res = arena("iterate", "--resume", "1", "--db", str(db), env=writer_env(srv))
            assert res.returncode == 2
            assert f"tournament 1 is being run by another process (pid {other.pid})" in res.stderr
            assert con.execute("SELECT runner_pid FROM tournaments").fetchone() == (other.pid,)
        finally:
            other.kill()
            other.wait()
        res = arena("iterate", "--resume", "1", "--db", str(db), env=writer_env(srv))  # its process is gone
        assert res.returncode == 0, res.stderr


# -- an episode that ended in an error scores the game's worst payoffs ------------------------------------------
FAILS_HIGH = "def decide(ctx):\n    if ctx['u'] > 0.6:\n        raise ValueError('boom')\n    return 'b'\n"


def test_an_opponents_error_scores_the_worst_payoff_not_zero(tmp_path):
    """Climbing, the column fails on some draws: the row's b earns 7 where the column plays b and -30 (the
    game's worst) where it failed; 0 for those episodes would make the failure pay."""
    db = tmp_path / "e.db"
    col = _code_start(tmp_path, "flaky", FAILS_HIGH)
    # simulating like the writer's candidates (a simulating program's coins shift the draws after them)
    row = _code_start(tmp_path, "rowb", "def decide(ctx):\n    return 'b'\n", simulates=True)
    with FakeLLMServer(lambda req: PLAYS.format("b")) as srv:
        res = arena("iterate", "--game", "climbing", "--model", "custom/w", "--rounds", "1", "--steps", "1",
                    "--episodes", "6", "--seed", "5", "--start-row", str(row), "--start-col", str(col), "--db", str(db),
                    "--quiet", env=writer_env(srv))
        assert res.returncode == 0, res.stderr
    con = sqlite3.connect(db)
    boom = "it1-start-col: ValueError: boom (line 3: `raise ValueError('boom')`)"
    note = "{} of 6 episodes ended in an error (scored the game's worst payoffs, -30 and -30): col depth {} " + boom
    steps = con.execute("SELECT round, player, step, program_id, valid, row_utility, col_utility, kept, validation "
                        "FROM iterate_steps ORDER BY id").fetchall()
    assert steps == [
        (0, "start", 0, "it1-start-row", 1, -143 / 6, -143 / 6, 1, note.format(5, 0) + "; col depth 1 " + boom),
        (1, "row", 0, "it1-start-row", 1, -143 / 6, -143 / 6, 1, note.format(5, 0) + "; col depth 1 " + boom),
        # the candidate is valid (the failures are the column's, while the row simulates it or not); a tie
        # keeps the current program
        (1, "row", 1, "it1-r1-row-s1", 1, -143 / 6, -143 / 6, 0, note.format(5, 0) + "; col depth 1 " + boom),
        (1, "row", 2, "it1-start-row", 1, -11.5, -11.5, 0, note.format(3, 1) + "; col depth 0 " + boom),
        # the flaky column's own failures score it the worst payoff too: its candidate b (7 each) is kept
        (1, "col", 0, "it1-start-col", 1, -16 / 3, -16 / 3, 0, note.format(2, 0) + "; col depth 1 " + boom),
        (1, "col", 1, "it1-r1-col-s1", 1, 7.0, 7.0, 1, None),
        (1, "col", 2, "it1-r1-col-s1", 1, 7.0, 7.0, 0, None)]
    assert con.execute("SELECT count(*) FROM trials WHERE seq < 6 AND status='error'").fetchone() == (5,)
    # the feedback (stored; with one step a turn it is not sent) says what an error scores
    feedback = con.execute("SELECT feedback FROM iterate_steps WHERE program_id='it1-r1-row-s1'").fetchone()[0]
    assert "An episode that ended in an error scores the game's worst payoff: you -30, opponent -30." in feedback


# -- the current program competes; the kept one is reported on fresh episodes --------------------------------------
def test_the_current_program_is_a_candidate_of_its_own_turn(tmp_path):
    """Both start at a (climbing's optimum, 22); the writer offers b: it earns -30 against a, the current
    program 11, so the current program is kept and the round changes nothing."""
    db = tmp_path / "k.db"
    a = _code_start(tmp_path, "plays-a", "def decide(ctx):\n    return 'a'\n")
    with FakeLLMServer(lambda req: PLAYS.format("b")) as srv:
        res = arena("iterate", "--game", "climbing", "--model", "custom/w", "--rounds", "3", "--steps", "1",
                    "--episodes", "3", "--seed", "1", "--start-row", str(a), "--start-col", str(a), "--db", str(db),
                    env=writer_env(srv))
    assert res.returncode == 0, res.stderr
    assert "final social welfare: 22" in res.stdout
    steps = sqlite3.connect(db).execute(
        "SELECT round, player, step, program_id, row_utility, col_utility, welfare, kept FROM iterate_steps "
        "ORDER BY id").fetchall()
    assert steps == [
        (0, "start", 0, "it1-start-row", 11.0, 11.0, 22.0, 1),
        (1, "row", 0, "it1-start-row", 11.0, 11.0, 22.0, 1),  # the current program on the turn's episodes
        (1, "row", 1, "it1-r1-row-s1", -30.0, -30.0, -60.0, 0),
        (1, "row", 2, "it1-start-row", 11.0, 11.0, 22.0, 0),  # the kept one on fresh episodes
        (1, "col", 0, "it1-start-col", 11.0, 11.0, 22.0, 1),
        (1, "col", 1, "it1-r1-col-s1", -30.0, -30.0, -60.0, 0),
        (1, "col", 2, "it1-start-col", 11.0, 11.0, 22.0, 0)]


RANDOMS = [f"```python\ndef decide(ctx):\n    return [1 / 3] * 3  # take {k}\n```" for k in range(3)]


def test_the_kept_candidate_is_reported_on_fresh_episodes(tmp_path):
    """Three uniformly random candidates against a random opponent: the best of them on the turn's episodes
    is kept, and the turn reports its welfare on other episodes (fresh seeds), not the selected maximum."""
    db = tmp_path / "w.db"
    with FakeLLMServer(Script(RANDOMS * 2)) as srv:
        res = arena("iterate", "--game", "climbing", "--model", "custom/w", "--rounds", "1", "--steps", "3",
                    "--episodes", "4", "--seed", "2", "--db", str(db), env=writer_env(srv))
    assert res.returncode == 0, res.stderr
    con = sqlite3.connect(db)
    row = con.execute("SELECT step, program_id, welfare, kept FROM iterate_steps WHERE player='row' ORDER BY id"
                      ).fetchall()
    kept = [r for r in row if r[3]]
    assert len(kept) == 1 and row[-1][0] == 4 and row[-1][1] == kept[0][1]
    assert kept[0][2] == max(r[2] for r in row[:-1])
    fresh = con.execute("SELECT seed FROM trials WHERE seq >= ? AND seq < ?", (5 * 4, 6 * 4)).fetchall()
    turn = con.execute("SELECT seed FROM trials WHERE seq >= 4 AND seq < 8").fetchall()
    assert len(fresh) == 4 and not set(fresh) & set(turn)
    assert row == EXPECTED_ROW_TURN
    assert f"final social welfare: {EXPECTED_FINAL:g}\n" in res.stdout


# the three behave alike (the same draws give the same actions): 8.5 each on the turn's episodes, the first
# kept; on fresh episodes it earns -9.5, which the turn reports (the current random start program: -7)
EXPECTED_ROW_TURN = [(0, "it1-start-row", -7.0, 0), (1, "it1-r1-row-s1", 8.5, 1), (2, "it1-r1-row-s2", 8.5, 0),
                     (3, "it1-r1-row-s3", 8.5, 0), (4, "it1-r1-row-s1", -9.5, 0)]
EXPECTED_FINAL = 6.5


# -- sandbox sessions: released when a candidate is done ------------------------------------------------------
def test_sandbox_release_closes_a_programs_sessions():
    from arena.engine.sandbox import Sandbox
    from arena.library.programs import CodeProgram

    p = CodeProgram(id="p", kind="code", source="def decide(ctx):\n    return 'a'\n")
    with Sandbox([]) as sb:
        ctx = {"game": {"actions": ["a", "b"]}, "u": 0.5}
        assert sb.run_one(p, ctx).value == "a"
        assert list(sb._sessions) == ["p"]
        sb.release("p")
        assert sb._sessions == {} and sb._helpers == {} and sb._locks == {}
        sb.release("p")  # nothing open: nothing to do
        assert sb.run_one(p, ctx).value == "a"  # a new session when it plays again


def test_no_candidate_holds_a_sandbox_session_after_its_step(tmp_path, monkeypatch):
    from arena.iterate.loop import IterateConfig, IterateRunner
    from arena.library.catalog import load_library
    from arena.llm.service import LLMService
    from arena.store.database import Store

    game = load_library().games["climbing"]
    open_after: list[list[str]] = []
    with FakeLLMServer(Script(["```python\ndef decide(ctx)\n```", PLAYS.format("a"), PLAYS.format("c")] * 4)) as srv:
        for k, v in writer_env(srv).items():
            monkeypatch.setenv(k, v)
        with Store(tmp_path / "s.db") as store:
            cfg = IterateConfig(game="climbing", model="custom/w", rounds=2, steps=3, episodes=3, seed=1)
            runner = IterateRunner.create(store, cfg, game, LLMService(store),
                                          on_step=lambda v: open_after.append(sorted(runner.sandbox._sessions)))
            asyncio.run(runner.run())
    assert len(open_after) == 12 and open_after == [[]] * 12
