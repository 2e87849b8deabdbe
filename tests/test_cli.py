"""The `arena` command as a user runs it (real process for the headline command, CliRunner otherwise)."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from arena.cli.main import app
from tests.support.cli import arena

ROOT = Path(__file__).resolve().parents[1]
HEADLINE = ["run", "--game", "prisoners_dilemma", "--program", "fairbot", "--program", "defectbot", "--epsilon", "0.2",
            "--max-depth", "50", "--trials", "2000", "--seed", "7"]


def invoke(*args):
    return CliRunner().invoke(app, list(args))


def test_headline_command(tmp_path):
    db = tmp_path / "x.db"
    out = arena(*HEADLINE, "--db", str(db), "--display", "plain")
    assert out.returncode == 0, out.stderr
    assert "8000/8000 trials stored" in out.stdout
    con = sqlite3.connect(db)
    share = dict(con.execute(
        "SELECT col_program, avg(row_action = 'cooperate') FROM trials WHERE row_program = 'fairbot' GROUP BY col_program"))
    assert share["fairbot"] == 1.0
    assert abs(share["defectbot"] - 0.2) < 4 * (0.2 * 0.8 / 2000) ** 0.5
    # the summary shows that share (row C) beside the joint cooperation rate
    line = next(x for x in out.stdout.splitlines() if "│ fairbot   │ defectbot │" in x)
    assert f"{100 * share['defectbot']:.1f}%" in line.split("│")[7]
    before = con.execute("SELECT * FROM trials ORDER BY seq").fetchall()
    # Same command again: continues the stored tournament, adds nothing.
    again = arena(*HEADLINE, "--db", str(db), "--display", "plain")
    assert again.returncode == 0 and "Same tournament as stored tournament 1" in again.stderr
    assert con.execute("SELECT count(*), count(DISTINCT tournament_id) FROM trials").fetchone() == (8000, 1)
    # Same seed into a fresh database: identical rows (ids, actions, payoffs, seeds).
    db2 = tmp_path / "y.db"
    assert arena(*HEADLINE, "--db", str(db2), "--display", "none").returncode == 0
    after = sqlite3.connect(db2).execute("SELECT * FROM trials ORDER BY seq").fetchall()
    strip = lambda rows: [r[:21] for r in rows]  # all but duration_ms and finished_at
    assert strip(after) == strip(before)
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_new_flag_records_a_second_tournament(tmp_path):
    db = str(tmp_path / "a.db")
    args = ["run", "-p", "fairbot", "-p", "cooperatebot", "-n", "3", "--db", db, "--display", "none"]
    assert invoke(*args).exit_code == 0
    assert invoke(*args, "--new").exit_code == 0
    assert sqlite3.connect(db).execute("SELECT count(DISTINCT tournament_id), count(*) FROM trials").fetchone() == (2, 24)


def test_program_given_as_yaml_path(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("id: mybot\nkind: builtin\nstrategy: random\nparams: {p: 1.0}\n")
    r = invoke("run", "-p", str(f), "-p", "defectbot", "-n", "2", "--db", str(tmp_path / "a.db"), "--display", "plain")
    assert r.exit_code == 0, r.output
    assert "mybot" in r.output


@pytest.mark.parametrize("args,message", [
    (["run", "--game", "nope"], "unknown game(s): nope"),
    (["run", "--game", "prisoners_dilema"], "unknown game(s): prisoners_dilema (did you mean prisoners_dilemma?)"),
    (["run", "--program", "fairbott"], "unknown program(s): fairbott (did you mean fairbot?)"),
    (["run", "--program", "nobody"], "unknown program(s): nobody"),
    (["run", "--epsilon", "0"], "--epsilon 0.0: Input should be greater than 0"),
    (["run", "--epsilon", "1.5"], "--epsilon 1.5: Input should be less than or equal to 1"),
    (["run", "--grid", "giant"], "unknown grid 'giant'"),
    (["run", "--trials", "0"], "--trials 0: Input should be greater than or equal to 1"),
    (["run", "-p", "fairbot", "-p", "fairbot"], "--program: programs repeats fairbot"),
])
def test_bad_input_exits_2_with_a_message(tmp_path, args, message):
    r = invoke(*args, "--db", str(tmp_path / "a.db"))
    assert r.exit_code == 2
    assert message in r.output
    assert "Traceback" not in r.output


def test_malformed_program_file_names_file_and_line(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("id: b\nkind: builtin\nstrategy: fairbot\nepsilon: two\n")
    r = invoke("run", "-p", str(f), "--db", str(tmp_path / "a.db"))
    assert r.exit_code == 2
    assert f"{f}:4: field 'epsilon': Input should be a valid number" in r.output


def test_corrupt_database(tmp_path):
    db = tmp_path / "a.db"
    db.write_bytes(b"garbage" * 1000)
    r = invoke("run", "--db", str(db))
    assert r.exit_code == 2 and "is not a usable SQLite database" in r.output


def test_programs_validate(tmp_path):
    assert invoke("programs", "validate").output.startswith("ok: ")
    (tmp_path / "bad.yaml").write_text("id: b\nkind: builtin\nstrategy: nope\n")
    r = invoke("programs", "validate", str(tmp_path))
    assert r.exit_code == 2 and "bad.yaml:3: field 'strategy'" in r.output and "1 problem(s)" in r.output


def test_listings():
    assert "prisoners_dilemma" in invoke("games", "list").output
    assert "cliquebot" in invoke("programs", "list").output
    shown = invoke("games", "show", "climbing").output
    assert "11, 11" in shown and "-30, -30" in shown


def test_tournaments_list_and_show(tmp_path):
    db = str(tmp_path / "a.db")
    invoke("run", "-n", "2", "--db", db, "--display", "none")
    listing = invoke("tournaments", "list", "--db", db).output
    assert "finished" in listing and "50/50" in listing
    assert "cooperatebot" in invoke("tournaments", "show", "--db", db).output
    r = invoke("tournaments", "show", "7", "--db", db)
    assert r.exit_code == 2 and "no tournament 7" in r.output


def test_resume_of_a_finished_tournament_adds_nothing(tmp_path):
    db = str(tmp_path / "a.db")
    invoke("run", "-n", "2", "--db", db, "--display", "none")
    r = invoke("resume", "--db", db, "--display", "plain")
    assert r.exit_code == 0 and "nothing new this run" in r.output


def test_python_dash_m_arena_is_the_cli_with_arguments():
    out = subprocess.run([sys.executable, "-m", "arena", "--help"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0 and "Usage: " in out.stdout and "run" in out.stdout and "resume" in out.stdout


@pytest.mark.parametrize("command", ["run", "resume", "replay", "attach", "iterate", "export"])
def test_help_names_values_not_python_types(command):
    """Options read GAME, PROGRAM, EPS, N ... in --help, never Python types such as <list[str]>."""
    from typer.testing import CliRunner

    from arena.cli.main import app

    out = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "160"}).stdout
    assert "--db PATH" in out
    options = [line for line in out.splitlines() if line.lstrip().startswith("-")]
    assert not [o for o in options if re.search(r"<(list\[|str>|int>|float>|path>)", o)]
