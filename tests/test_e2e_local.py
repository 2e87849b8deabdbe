"""End to end on the real embedded model: a tiny tournament of two LLM programs (few calls)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_two_llm_programs_on_the_embedded_model(tmp_path):
    db = tmp_path / "e2e.db"
    args = [sys.executable, "-m", "arena.cli.main", "run", "-p", "fair-llm", "-p", "defect-llm", "-n", "1", "-e", "0.5",
            "-d", "2", "--seed", "3", "--model", "fair-llm=local/smollm2-135m", "--model", "defect-llm=local/smollm2-135m",
            "--db", str(db), "--display", "plain"]
    out = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "4/4 trials stored" in out.stdout
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    trials = con.execute("SELECT * FROM trials ORDER BY seq").fetchall()
    assert [t["status"] for t in trials] == ["ok"] * 4  # constrained replies always parse
    for t in trials:
        nodes = con.execute("SELECT * FROM nodes WHERE trial_id=? ORDER BY idx", (t["id"],)).fetchall()
        roots = [n for n in nodes if n["parent_id"] is None]
        assert [(r["side"], r["depth"]) for r in roots] == [("row", 0), ("col", 0)]
        assert (roots[0]["action"], roots[1]["action"]) == (t["row_action"], t["col_action"])
        for n in nodes:
            children = [c for c in nodes if c["parent_id"] == n["id"]]
            if n["mode"] == "simulated":  # one child, one level deeper, the other program
                (c,) = children
                assert c["depth"] == n["depth"] + 1 and c["program"] != n["program"] or t["row_program"] == t["col_program"]
            else:
                assert children == [] and n["mode"] in ("grounded", "capped")
            calls = con.execute("SELECT * FROM llm_calls WHERE node_id=?", (n["id"],)).fetchall()
            assert [(c["provider"], c["model"], c["status"], c["parsed_action"]) for c in calls] == [
                ("local", "smollm2-135m", "ok", n["action"])]
        assert t["n_calls"] == len(nodes)
    # the same tournament again (as a new one): replayed from the cache, same table
    again = subprocess.run([*args, "--new"], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert again.returncode == 0 and "provider local: " in again.stdout and "from cache, 0 attempts" in again.stdout
    table = "SELECT seq, row_action, col_action, n_nodes FROM trials WHERE tournament_id=? ORDER BY seq"
    assert con.execute(table, (1,)).fetchall() == con.execute(table, (2,)).fetchall()
