"""A grid world through the `arena` command: a run killed (SIGKILL) and resumed holds exactly a clean run's
episodes, step for step and state for state; `arena replay` of it finds no difference; `arena games show`
lists its parameters; `arena export` writes its episodes table and its plots."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

from test_kill_resume import check_consistent, check_resumable, count, digest, finish, kill_when, spawn

ARGS = ["run", "-g", "foraging_pibr", "-p", "lbf-random", "-p", "lbf-h1", "-n", "150", "--seed", "4"]
TOTAL = 4 * 150


def steps_digest(db: Path) -> tuple[int, str]:
    """Every stored step (joint actions intended and played, rewards, food, the state), by trial position."""
    con = sqlite3.connect(db)
    try:
        h = hashlib.sha256()
        rows = con.execute("SELECT t.seq, r.round, r.row_intended, r.col_intended, r.row_action, r.col_action, "
                           "r.row_payoff, r.col_payoff, r.cooperative, r.state FROM rounds r JOIN trials t "
                           "ON t.id = r.trial_id ORDER BY t.seq, r.round").fetchall()
        for row in rows:
            h.update(repr(row).encode())
        return len(rows), h.hexdigest()
    finally:
        con.close()


def test_a_killed_lbf_run_resumes_to_the_clean_runs_episodes(tmp_path):
    db = tmp_path / "killed.db"
    kill_when(spawn(*ARGS, "--db", str(db), "--display", "plain"), lambda: count(db) >= TOTAL // 3,
              "a third of the episodes stored")
    stored = check_consistent(db)["trials"]
    assert TOTAL // 3 <= stored < TOTAL
    check_resumable(db)
    assert count(db, "SELECT count(*) FROM rounds r WHERE r.trial_id NOT IN (SELECT id FROM trials)") == 0
    rc, out, err = finish(spawn("resume", "--db", str(db), "--display", "plain"))
    assert rc == 0, err
    assert f"tournament 1 finished: {TOTAL}/{TOTAL} trials stored ({TOTAL - stored} ok this run)" in out
    clean = tmp_path / "clean.db"
    rc, out, err = finish(spawn(*ARGS, "--db", str(clean), "--display", "none"))
    assert rc == 0, err
    assert digest(db) == digest(clean)
    n, steps = steps_digest(db)
    assert (n, steps) == steps_digest(clean) and n == count(db, "SELECT sum(n_rounds) FROM trials") > 20 * TOTAL
    rc, out, err = finish(spawn("replay", "1", "--db", str(db), "--display", "plain"))
    assert rc == 0, err
    assert f"Replay 2 of tournament 1: {TOTAL}/{TOTAL} trials identical, no provider contacted" in out
    rc, out, err = finish(spawn("games", "show", "foraging_pibr"))
    assert rc == 0, err
    assert "field: 5\nplayers: 2\nfoods: 2\nevery food needs both: True\nsight: 5\nsteps: 50\n" in out
    assert "terminal penalty c (c·L/T): 0.5\nactions: none north south west east load\n" in out and "0, 0" not in out
    rc, out, err = finish(spawn("export", "-f", "csv", "--table", "episodes", "-t", "1", "--db", str(clean)))
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("game,epsilon,max_depth,temperature,row_program,col_program,episodes,welfare,")
    assert len(lines) == 5 and all(",150," in line for line in lines[1:])
    rc, out, err = finish(spawn("export", "-f", "png", "-t", "1", "--db", str(clean), "-o", str(tmp_path / "plots")))
    assert rc == 0, err
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        f"arena-tournament-1-{p}.png" for p in ("coop-by-round", "coop-vs-eps", "depth-hist", "payoff-heatmap",
                                                "replicator")]
