"""Code programs through the `arena` command: the headline run, load-time refusals (exit 2), the list."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.support.cli import arena

ROOT = Path(__file__).resolve().parents[1]
FAIR_CODE = str(ROOT / "programs" / "code" / "fair-code.yaml")


def test_code_fairbot_headline_cooperates_with_defectbot_eps_of_the_time(tmp_path):
    db = tmp_path / "x.db"
    out = arena("run", "-g", "prisoners_dilemma", "-p", FAIR_CODE, "-p", "defectbot", "-e", "0.2", "-d", "50",
                "-n", "2000", "--seed", "7", "--db", str(db), "--display", "plain")
    assert out.returncode == 0, out.stderr
    assert "8000/8000 trials stored (8000 ok this run)" in out.stdout
    con = sqlite3.connect(db)
    share = dict(con.execute("SELECT col_program, avg(row_action = 'cooperate') FROM trials "
                             "WHERE row_program = 'fair-code' GROUP BY col_program"))
    assert share["fair-code"] == 1.0
    assert abs(share["defectbot"] - 0.2) < 4 * (0.2 * 0.8 / 2000) ** 0.5
    # (trial for trial equality with the built-in FairBot: test_code_programs.py, same ids, same seeds)


def test_code_program_refused_at_load_exits_2_with_file_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: bad\nkind: code\nsource: |\n  import socket\n  def decide(ctx):\n      return 'defect'\n")
    out = arena("run", "-p", str(bad), "-p", "defectbot", "-n", "2", "--db", str(tmp_path / "a.db"))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"{bad}:4: field 'source': import of 'socket'" in out.stderr and "`import socket`" in out.stderr
    out = arena("programs", "validate", str(bad))
    assert out.returncode == 2 and f"{bad}:4: field 'source': import of 'socket'" in out.stderr


def test_smoke_test_refuses_a_program_that_fails_in_a_game(tmp_path):
    bad = tmp_path / "pd-only.yaml"
    bad.write_text("id: pd-only\nkind: code\nsimulates: false\nsource: |\n  def decide(ctx):\n      return 'cooperate'\n")
    out = arena("run", "-g", "stag_hunt", "-p", str(bad), "-p", "defectbot", "-n", "2", "--db", str(tmp_path / "a.db"))
    assert out.returncode == 2
    assert (f"{bad}:5: field 'source': smoke test failed (game 'stag_hunt' as row, opponent_action=None): "
            "returned 'cooperate', which is not an action of this game") in out.stderr
    assert not (tmp_path / "a.db").exists() or sqlite3.connect(tmp_path / "a.db").execute(
        "SELECT count(*) FROM sqlite_master WHERE name = 'trials'").fetchone()[0] in (0, 1)


def test_programs_validate_and_list_the_code_library(tmp_path):
    out = arena("programs", "validate", str(ROOT / "programs" / "code"))
    assert out.returncode == 0 and "ok: 6 program(s) valid" in out.stdout
    out = subprocess.run([sys.executable, "-m", "arena.cli.main", "programs", "list"], capture_output=True, text=True,
                         cwd=ROOT, timeout=120, env={**__import__("os").environ, "ARENA_PROGRAMS": str(ROOT / "programs" / "code"),
                                                     "COLUMNS": "200"})
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stdout.splitlines() if "defect-code" in x)
    assert "code (acts directly)" in line
