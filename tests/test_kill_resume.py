"""Killing a running tournament (SIGKILL at several moments, SIGINT, SIGTERM) and resuming it.

Real `arena` processes on a real database: after every kill the database is consistent (integrity
check, no duplicate trial, every trial's nodes and calls present, nothing orphaned) and the tournament
shows as resumable; after the last resume the tournament holds exactly the trials of a clean,
uninterrupted run with the same seed, row for row and node for node.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from arena.store.database import Store
from tests.support.fake_llm import FakeLLMServer, action_responder
from llm_policies import mirror_policy as policy

ROOT = Path(__file__).resolve().parents[1]
BOTS = ["cooperatebot", "defectbot", "randombot", "fairbot", "cliquebot"]
# 5 bots (25 ordered pairs) x 2 games x 3 epsilons x 400 trials = 60,000 trials: a few seconds of work
BUILTIN_ARGS = ["run", *[a for b in BOTS for a in ("-p", b)], "-g", "prisoners_dilemma", "-g", "stag_hunt",
                "-e", "0.05", "-e", "0.1", "-e", "0.2", "-d", "50", "-n", "400", "--seed", "5"]
BUILTIN_TOTAL = 60_000


def spawn(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "arena.cli.main", *args], cwd=ROOT, env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def count(db: Path, sql: str = "SELECT count(*) FROM trials") -> int:
    """A read beside the running writer (WAL lets readers in while it writes)."""
    if not db.exists():
        return -1
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute(sql).fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:  # the schema is not there yet
        return -1


def kill_when(proc: subprocess.Popen, ready, what: str, timeout: float = 120) -> None:
    """SIGKILL `proc` as soon as `ready()` holds (polled every few milliseconds)."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"the run ended before {what}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"never reached: {what}"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, f"the run ended by itself before the kill at {what}"


def check_consistent(db: Path) -> dict:
    """Everything a killed run may leave: the invariants hold whatever the moment of the kill."""
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        dup = con.execute("SELECT count(*) - count(DISTINCT tournament_id || ':' || seq) FROM trials").fetchone()[0]
        assert dup == 0
        assert con.execute(
            "SELECT count(*) FROM (SELECT 1 FROM trials GROUP BY tournament_id, game, row_program, col_program, "
            "epsilon, max_depth, coalesce(temperature, -1), trial_index HAVING count(*) > 1)").fetchone()[0] == 0
        # every trial has exactly its nodes and its calls; nothing points at a missing row
        assert con.execute("SELECT count(*) FROM trials t WHERE n_nodes != "
                           "(SELECT count(*) FROM nodes n WHERE n.trial_id = t.id)").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM trials t WHERE n_calls != "
                           "(SELECT count(*) FROM llm_calls c WHERE c.trial_id = t.id)").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM nodes WHERE trial_id NOT IN (SELECT id FROM trials)").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM nodes n WHERE parent_id IS NOT NULL AND NOT EXISTS "
                           "(SELECT 1 FROM nodes p WHERE p.id = n.parent_id AND p.trial_id = n.trial_id)").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM llm_calls c WHERE NOT EXISTS (SELECT 1 FROM nodes n WHERE "
                           "n.id = c.node_id AND n.trial_id = c.trial_id)").fetchone()[0] == 0
        return {"trials": con.execute("SELECT count(*) FROM trials").fetchone()[0],
                "calls": con.execute("SELECT count(*) FROM llm_calls").fetchone()[0]}
    finally:
        con.close()


def check_resumable(db: Path, tid: int = 1) -> None:
    with Store(db) as store:
        row = store.tournament(tid)
        assert row.display_status == "interrupted"  # marked running, its process is gone
        assert [r.display_status for r in store.tournaments()] == ["interrupted"]


TRIAL_COLS = ("seq, game, row_program, col_program, epsilon, max_depth, temperature, trial_index, seed, row_action, "
              "col_action, row_payoff, col_payoff, cooperative, status, error, n_nodes, n_calls, row_depth, col_depth")
NODE_COLS = ("t.seq, n.idx, n.side, n.depth, n.program, n.mode, n.grounded, n.action, n.error, "
             "(SELECT p.idx FROM nodes p WHERE p.id = n.parent_id)")


def digest(db: Path) -> tuple[int, str, str, str]:
    """The tournament's content, independent of row ids and timings: trials, nodes, LLM calls."""
    con = sqlite3.connect(db)
    try:
        parts = []
        for sql in (f"SELECT {TRIAL_COLS} FROM trials ORDER BY seq",
                    f"SELECT {NODE_COLS} FROM nodes n JOIN trials t ON t.id = n.trial_id ORDER BY t.seq, n.idx",
                    "SELECT t.seq, n.idx, c.program, c.model, c.messages, c.response, c.parsed_action, c.status "
                    "FROM llm_calls c JOIN nodes n ON n.id = c.node_id JOIN trials t ON t.id = c.trial_id "
                    "ORDER BY t.seq, n.idx, c.id"):
            h = hashlib.sha256()
            for row in con.execute(sql):
                h.update(repr(row).encode())
            parts.append(h.hexdigest())
        return (con.execute("SELECT count(*) FROM trials").fetchone()[0], *parts)
    finally:
        con.close()


def test_sigkill_at_several_moments_then_resume_equals_a_clean_run(tmp_path):
    db = tmp_path / "killed.db"
    args = [*BUILTIN_ARGS, "--db", str(db), "--display", "plain"]

    # 1. killed at once, before it could store anything: nothing, or an empty consistent database
    proc = spawn(*args)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    if db.exists():
        assert check_consistent(db)["trials"] == 0

    # 2. the same command again: killed as soon as its tournament is recorded (very early)
    kill_when(spawn(*args), lambda: count(db, "SELECT count(*) FROM tournaments") >= 1, "the tournament row")
    stored = [check_consistent(db)["trials"]]
    check_resumable(db)

    # 3. and 4. `arena resume`, killed a third and two thirds of the way
    for share in (1 / 3, 2 / 3):
        kill_when(spawn("resume", "1", "--db", str(db), "--display", "plain"),
                  lambda: count(db) >= share * BUILTIN_TOTAL, f"{share:.0%} stored")
        stored.append(check_consistent(db)["trials"])
        check_resumable(db)
    assert stored[0] < stored[1] < stored[2] < BUILTIN_TOTAL

    # 5. the last resume finishes exactly the missing trials
    rc, out, err = finish(spawn("resume", "--db", str(db), "--display", "plain"))
    assert rc == 0, err
    assert f"tournament 1 finished: {BUILTIN_TOTAL}/{BUILTIN_TOTAL} trials stored ({BUILTIN_TOTAL - stored[2]} ok this run)" in out
    assert check_consistent(db)["trials"] == BUILTIN_TOTAL
    with Store(db) as store:
        assert store.tournament(1).status == "finished"

    # the same tournament run without interruption gives the same trials, nodes and actions
    clean = tmp_path / "clean.db"
    rc, out, err = finish(spawn(*BUILTIN_ARGS, "--db", str(clean), "--display", "none"))
    assert rc == 0, err
    assert digest(db) == digest(clean)


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_or_sigterm_stops_cleanly_and_says_how_to_resume(tmp_path, sig, code):
    db = tmp_path / "stopped.db"
    proc = spawn(*BUILTIN_ARGS, "--db", str(db), "--display", "plain")
    deadline = time.monotonic() + 120
    while count(db) < 2000:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.005)
    proc.send_signal(sig)
    rc, out, err = finish(proc)
    assert rc == code
    n = check_consistent(db)["trials"]
    assert 0 < n < BUILTIN_TOTAL
    assert f"Interrupted: {n}/{BUILTIN_TOTAL} trials stored; trials in flight were abandoned. " \
           f"Resume with: arena resume 1 --db {db}" in err
    assert "Traceback" not in err
    with Store(db) as store:
        row = store.tournament(1)
        assert (row.status, row.display_status, row.done) == ("cancelled", "cancelled", n)
    listing = subprocess.run([sys.executable, "-m", "arena.cli.main", "tournaments", "list", "--db", str(db)],
                             capture_output=True, text=True, cwd=ROOT, timeout=60).stdout
    assert "cancelled" in listing and f"{n}/{BUILTIN_TOTAL}" in listing


# --- LLM programs against the loopback server -------------------------------------------------------------
LLM_PROGRAMS = {
    "fair-llm": "You are fair: mirror what the simulated opponent did.",
    "mean-llm": "You always defect.",
}


@pytest.fixture
def llm_library(tmp_path):
    d = tmp_path / "programs"
    d.mkdir()
    for name in ("fairbot", "defectbot"):
        (d / f"{name}.yaml").write_text((ROOT / "programs" / f"{name}.yaml").read_text())
    for pid, prompt in LLM_PROGRAMS.items():
        (d / f"{pid}.yaml").write_text(f"id: {pid}\nkind: llm\nmodel: custom/fake-8b\ntemperature: 0.7\n"
                                       f"system_prompt: {json.dumps(prompt)}\n")
    return d


# 4 programs, 12 of the 16 ordered pairs involve an LLM program: 12 x 9 = 108 LLM trials (+ 36 built-in)
LLM_ARGS = ["run", "-p", "fair-llm", "-p", "mean-llm", "-p", "fairbot", "-p", "defectbot", "-g", "prisoners_dilemma",
            "-e", "0.3", "-d", "3", "-n", "9", "--seed", "9", "--concurrency", "6"]
LLM_TOTAL, LLM_BUILTIN = 144, 36


def test_sigkill_during_llm_trials_then_resume(tmp_path, llm_library):
    with FakeLLMServer(action_responder(policy), latency=0.02) as srv:
        env = {"ARENA_PROGRAMS": str(llm_library), "LLM_BASE_URL": srv.base_url, "LLM_API_KEY": "kill-test-key"}
        db = tmp_path / "killed.db"
        args = [*LLM_ARGS, "--db", str(db), "--display", "plain"]
        # killed once the built-in trials and a first LLM trial are stored, then a third and two thirds in
        kill_when(spawn(*args, env=env), lambda: count(db) > LLM_BUILTIN, "a first LLM trial", timeout=60)
        stored = [check_consistent(db)["trials"]]
        check_resumable(db)
        for share in (1 / 3, 2 / 3):
            kill_when(spawn("resume", "--db", str(db), "--display", "plain", env=env),
                      lambda: count(db) >= share * LLM_TOTAL, f"{share:.0%} stored", timeout=60)
            stored.append(check_consistent(db)["trials"])
            check_resumable(db)
        assert LLM_BUILTIN < stored[0] < stored[1] < stored[2] < LLM_TOTAL
        # Ctrl-C while LLM calls are in flight: those trials are abandoned, the rest kept
        proc = spawn("resume", "--db", str(db), "--display", "plain", env=env)
        deadline = time.monotonic() + 60
        while count(db) <= stored[2]:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.005)
        proc.send_signal(signal.SIGINT)
        rc, out, err = finish(proc)
        n = check_consistent(db)["trials"]
        assert rc == 130 and f"Interrupted: {n}/{LLM_TOTAL} trials stored; trials in flight were abandoned. " \
                               f"Resume with: arena resume 1 --db {db}" in err
        with Store(db) as store:
            assert store.tournament(1).display_status == "cancelled"
        rc, out, err = finish(spawn("resume", "--db", str(db), "--display", "plain", env=env))
        assert rc == 0, err
        assert f"tournament 1 finished: {LLM_TOTAL}/{LLM_TOTAL} trials stored" in out
        counts = check_consistent(db)
        assert counts["trials"] == LLM_TOTAL
        # calls of trials that were in flight at a kill were cached: their redo is replayed, not re-asked
        con = sqlite3.connect(db)
        replayed = con.execute("SELECT count(*) FROM llm_calls WHERE cached = 1").fetchone()[0]
        asked = con.execute("SELECT count(*) FROM llm_calls WHERE cached = 0").fetchone()[0]
        con.close()
        assert replayed + asked == counts["calls"] and asked <= srv.count

        clean = tmp_path / "clean.db"
        rc, out, err = finish(spawn(*LLM_ARGS, "--db", str(clean), "--display", "none", env=env))
        assert rc == 0, err
    assert digest(db) == digest(clean)


# --- the TUI: the runner is a thread of the app's process ---------------------------------------------------
TUI_SCRIPT = """
import asyncio, sys
from arena.engine.grid import TournamentConfig
from arena.tui.app import ArenaApp

async def main():
    app = ArenaApp(db=sys.argv[1])
    async with app.run_test(size=(120, 40)) as pilot:
        app.start_tournament(TournamentConfig(programs={bots!r}, games=["prisoners_dilemma", "stag_hunt"],
                                              epsilons=[0.05, 0.1, 0.2], max_depths=[50], trials=400, seed=5))
        while True:
            await pilot.pause(0.05)

asyncio.run(main())
"""


def test_sigkill_of_the_tui_while_it_runs_a_tournament(tmp_path):
    db = tmp_path / "tui.db"
    proc = subprocess.Popen([sys.executable, "-c", TUI_SCRIPT.format(bots=BOTS), str(db)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    kill_when(proc, lambda: count(db) >= BUILTIN_TOTAL / 4, "a quarter stored")
    assert 0 < check_consistent(db)["trials"] < BUILTIN_TOTAL
    check_resumable(db)
    rc, out, err = finish(spawn("resume", "1", "--db", str(db), "--display", "none"))
    assert rc == 0, err
    assert check_consistent(db)["trials"] == BUILTIN_TOTAL
    clean = tmp_path / "clean.db"
    assert finish(spawn(*BUILTIN_ARGS, "--db", str(clean), "--display", "none"))[0] == 0
    assert digest(db) == digest(clean)


def test_children_of_the_suite_stop_on_sigint_even_when_it_started_with_sigint_ignored():
    """conftest.py: SIGINT ignored by the shell that started the suite is not passed on to its children."""
    probe = "import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "True"
