"""End to end on the real embedded model: a tiny tournament of two LLM programs (few calls)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def arena(args: list[str]) -> subprocess.CompletedProcess:
    """The CLI in a child process; past 240 s (inside pytest's own 300 s) the test fails with what the run
    printed so far and the embedded server's log, instead of a bare timeout."""
    try:
        return subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=240)
    except subprocess.TimeoutExpired as exc:
        said = "\n".join(x.decode(errors="replace") if isinstance(x, bytes) else x
                         for x in (exc.stdout or "", exc.stderr or ""))
        from arena.llm.localmodel import cache_dir

        logs = sorted((cache_dir().parent / "logs").glob("llama-server-*.log"),
                      key=lambda p: p.stat().st_mtime)[-1:]
        tail = logs[0].read_text(errors="replace")[-3000:] if logs else "(no server log)"
        pytest.fail(f"arena run took over 240 s\n--- its output ---\n{said[-3000:]}\n--- server log ---\n{tail}")


@pytest.mark.slow
def test_two_llm_programs_on_the_embedded_model(tmp_path):
    db = tmp_path / "e2e.db"
    args = [sys.executable, "-m", "arena.cli.main", "run", "-p", "fair-llm", "-p", "defect-llm", "-n", "1", "-e", "0.5",
            "-d", "2", "--seed", "3", "--model", "fair-llm=local/smollm2-135m", "--model", "defect-llm=local/smollm2-135m",
            "--db", str(db), "--display", "plain"]
    out = arena(args)
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
    again = arena([*args, "--new"])
    assert again.returncode == 0 and "provider local: " in again.stdout and "from cache, 0 attempts" in again.stdout
    table = "SELECT seq, row_action, col_action, n_nodes FROM trials WHERE tournament_id=? ORDER BY seq"
    assert con.execute(table, (1,)).fetchall() == con.execute(table, (2,)).fetchall()
