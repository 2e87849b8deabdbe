"""Malformed input: a corpus of bad program and game files, and bad command lines and databases.

Each corpus file starts with `# expect: LINE FIELD MESSAGE` (`-` where there is no line or field; a
directory case holds a.yaml and b.yaml, the expectation in b.yaml). Every case goes through the real
loaders and through the CLI: exit code 2, the message names file:line and field, no traceback.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from arena.store.database import SCHEMA_VERSION
from typer.testing import CliRunner

from arena.cli.main import app
from arena.errors import ConfigError
from arena.library.games import load_games
from arena.library.programs import load_program_entries
from arena.library.yamlio import MAX_FILE_BYTES

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus"
HEADER = re.compile(rb"^# expect: (\S+) (\S+) (.+)\n")


def cases(kind: str) -> list[Path]:
    d = CORPUS / kind
    return sorted([p for p in d.glob("*.yaml")] + [p for p in d.iterdir() if p.is_dir()])


def expectation(case: Path) -> tuple[Path, int | None, str | None, str]:
    """(file the problem is reported in, line, field, message part) from the case's header."""
    reported = case / "b.yaml" if case.is_dir() else case
    m = HEADER.match(reported.read_bytes())
    assert m, f"{reported} has no '# expect:' header"
    line, field, message = (x.decode() for x in m.groups())
    return reported, None if line == "-" else int(line), None if field == "-" else field, message


def prefix(file: Path | str, line: int | None, field: str | None) -> str:
    where = f"{file}:{line}" if line is not None else str(file)
    return f"{where}: " + (f"field '{field}': " if field else "")


def invoke(*args: str, env: dict | None = None):
    return CliRunner().invoke(app, list(args), env=env)


def assert_reported(result, expected_prefix: str, message: str) -> None:
    out = result.output
    assert result.exit_code == 2, out
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # no traceback: a clean exit
    assert "Traceback" not in out
    lines = [x.removeprefix("arena: error: ") for x in out.splitlines()]
    assert any(x.startswith(expected_prefix) and message in x for x in lines), out


def test_the_corpus_is_big_enough():
    assert len(cases("bad_programs")) + len(cases("bad_games")) >= 30


@pytest.mark.parametrize("case", cases("bad_programs"), ids=lambda p: p.stem)
def test_bad_program(case, tmp_path):
    reported, line, field, message = expectation(case)
    files = sorted(case.glob("*.yaml")) if case.is_dir() else [case]
    # the loader
    with pytest.raises(ConfigError) as e:
        load_program_entries([case])
    assert any((p.file, p.line, p.field) == (str(reported), line, field) and message in p.message
               for p in e.value.problems), e.value.problems
    # `arena programs validate FILE|DIR`
    assert_reported(invoke("programs", "validate", str(case)), prefix(reported, line, field), message)
    # `arena run -p FILE ...` (a library copy outside the repository's programs/)
    args = ["run", *[a for f in files for a in ("-p", str(f))], "--db", str(tmp_path / "a.db")]
    assert_reported(invoke(*args), prefix(reported, line, field), message)
    assert not (tmp_path / "a.db").exists()  # nothing was recorded


@pytest.mark.parametrize("case", cases("bad_games"), ids=lambda p: p.stem)
def test_bad_game(case, tmp_path):
    games = tmp_path / "games"
    shutil.copytree(case, games) if case.is_dir() else (games.mkdir(), shutil.copy(case, games))
    reported, line, field, message = expectation(case)
    reported = games / reported.name
    with pytest.raises(ConfigError) as e:
        load_games(games)
    assert any((p.file, p.line, p.field) == (str(reported), line, field) and message in p.message
               for p in e.value.problems), e.value.problems
    env = {"ARENA_GAMES": str(games)}
    assert_reported(invoke("games", "list", env=env), prefix(reported, line, field), message)
    assert_reported(invoke("run", "--db", str(tmp_path / "a.db"), env=env), prefix(reported, line, field), message)


def test_a_huge_file_is_refused_unread(tmp_path):
    f = tmp_path / "huge.yaml"
    f.write_text("id: huge\nkind: llm\nmodel: custom/x\nsystem_prompt: |\n" + ("  " + "x" * 98 + "\n") * 50_000)
    size = f.stat().st_size
    assert size > MAX_FILE_BYTES
    assert_reported(invoke("programs", "validate", str(f)), f"{f}: ",
                    f"file is too large ({size:,} bytes; the limit is {MAX_FILE_BYTES:,})")


def test_a_real_process_reports_the_worst_files_cleanly():
    """The same through a real `arena` process: no traceback reaches the terminal."""
    for name in ("billion_laughs", "binary_garbage", "deep_nesting"):
        case = CORPUS / "bad_programs" / f"{name}.yaml"
        reported, line, field, message = expectation(case)
        out = subprocess.run([sys.executable, "-m", "arena.cli.main", "programs", "validate", str(case)],
                             capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert out.returncode == 2 and "Traceback" not in out.stderr
        assert out.stderr.startswith(prefix(case, line, field)) and message in out.stderr


# --- bad command lines, providers files and databases ------------------------------------------------------
@pytest.fixture
def llm_library(tmp_path):
    d = tmp_path / "programs"
    d.mkdir()
    (d / "fairbot.yaml").write_text((ROOT / "programs" / "fairbot.yaml").read_text())
    (d / "odd-llm.yaml").write_text("id: odd-llm\nkind: llm\nmodel: nowhere/some-model\nsystem_prompt: hi\n")
    (d / "fair-llm.yaml").write_text("id: fair-llm\nkind: llm\nmodel: custom/m\nsystem_prompt: hi\n")
    return d


@pytest.mark.parametrize("args,message", [
    (["--epsilon", "nan"], "invalid tournament: --epsilon nan: Input should be a finite number"),
    (["--epsilon", "two"], "Invalid value for '--epsilon' / '-e': Input should be a valid number"),
    (["--max-depth", "-1"], "invalid tournament: --max-depth -1: Input should be greater than or equal to 0"),
    (["--temperature", "3"], "invalid tournament: --temperature 3.0: Input should be less than or equal to 2"),
    (["--concurrency", "0"], "invalid tournament: --concurrency 0: Input should be greater than or equal to 1"),
    (["-p", "fair-llm", "--model", "fair-llm"], "--model expects PROGRAM=provider/model, got 'fair-llm'"),
    (["-p", "fair-llm", "--provider", "nope"], "unknown provider 'nope'. Providers: local, ollama,"),
    (["-p", "odd-llm"], "unknown provider 'nowhere' in model 'nowhere/some-model'"),
    (["-p", "fair-llm", "--model", "fair-llm=zzz/x"], "unknown provider 'zzz' in model 'zzz/x'"),
    (["-p", "fair-llm"], "provider 'custom' needs the environment variable LLM_API_KEY"),
])
def test_bad_run_options(tmp_path, llm_library, args, message):
    env = {"ARENA_PROGRAMS": str(llm_library), "LLM_API_KEY": "", "LLM_BASE_URL": "http://127.0.0.1:9/v1"}
    r = invoke("run", *args, "--db", str(tmp_path / "a.db"), env=env)
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output, r.output


def test_no_programs_at_all(tmp_path):
    (tmp_path / "empty").mkdir()
    r = invoke("run", "--grid", "headline", "--db", str(tmp_path / "a.db"), env={"ARENA_PROGRAMS": str(tmp_path / "empty")})
    assert r.exit_code == 2
    assert f"no programs to play: {tmp_path / 'empty'} holds none; add YAML files there or pass --program FILE" in r.output


@pytest.mark.parametrize("text,message", [
    ("- custom: {}\n", "providers.yaml:1: expected a mapping of provider names to their settings"),
    ("- custom\n", "providers.yaml:1: list item 1 is not a mapping"),
    ("custom:\n  concurency: 3\n", "providers.yaml:2: field 'custom.concurency': unknown field (did you mean 'concurrency'?)"),
    ("custom:\n  api_key: sk-123\n", "providers.yaml:1: field 'custom': keys never go in files"),
    ("custom:\n  max_attempts: 0\n", "providers.yaml:2: field 'custom.max_attempts': Input should be greater than or equal to 1"),
])
def test_bad_providers_file(tmp_path, text, message):
    f = tmp_path / "providers.yaml"
    f.write_text(text)
    r = invoke("providers", "list", env={"ARENA_PROVIDERS": str(f)})
    assert r.exit_code == 2 and f"{tmp_path}/{message}" in r.output, r.output


def make_db(path: Path) -> None:
    assert invoke("run", "-n", "1", "--db", str(path), "--display", "none").exit_code == 0


def corrupt(path: Path) -> None:
    make_db(path)
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # the schema page
    path.write_bytes(bytes(data))


def not_arena(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE trials (x)")
    con.commit()
    con.close()


def newer(path: Path) -> None:
    make_db(path)
    con = sqlite3.connect(path)
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.commit()
    con.close()


@pytest.mark.parametrize("prepare,args,message", [
    (corrupt, ["tournaments", "list"], "is not a usable SQLite database (database disk image is malformed)"),
    (lambda p: p.write_bytes(b"garbage" * 1000), ["resume"], "is not a usable SQLite database (file is not a database)"),
    (not_arena, ["run"], "is an SQLite database but not Arena's (its tables: trials); pass --db another path"),
    (newer, ["tournaments", "list"], f"was written by a newer Arena (schema 99; this one reads {SCHEMA_VERSION})"),
    (lambda p: p.mkdir(), ["tournaments", "list"], "cannot write database"),
    (None, ["resume", "999"], "no tournaments in"),
    (make_db, ["resume", "999"], "no tournament 999 in"),
    (make_db, ["tournaments", "show", "999"], "no tournament 999 in"),
])
def test_bad_databases(tmp_path, prepare, args, message):
    db = tmp_path / "x.db"
    if prepare is not None:
        prepare(db)
    if args == ["resume", "999"] and prepare is None:
        args = ["resume"]  # an empty database: nothing to resume
    r = invoke(*args, "--db", str(db))
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output, r.output


def test_database_in_a_missing_directory(tmp_path):
    db = tmp_path / "nowhere" / "x.db"
    r = invoke("run", "--db", str(db))
    assert r.exit_code == 2
    assert f"cannot open database {db}: directory {db.parent} does not exist" in r.output
    assert not db.parent.exists()


def test_locked_database(tmp_path):
    db = tmp_path / "x.db"
    make_db(db)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process writing, for longer than we wait
    try:
        r = invoke("run", "-n", "2", "--db", str(db), env={"ARENA_DB_TIMEOUT": "0.2"})
        assert r.exit_code == 2 and "Traceback" not in r.output
        assert f"database {db} is locked by another process (another `arena` running?)" in r.output
        r = invoke("run", "--db", str(db), env={"ARENA_DB_TIMEOUT": "soon"})
        assert r.exit_code == 2 and "ARENA_DB_TIMEOUT must be a number of seconds, got 'soon'" in r.output
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    # a read-only command does not need the write lock: it works while another process writes
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        r = invoke("tournaments", "list", "--db", str(db), env={"ARENA_DB_TIMEOUT": "0.2"})
        assert r.exit_code == 0 and "finished" in r.output
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_resume_refuses_a_tournament_another_live_process_runs(tmp_path):
    db = tmp_path / "x.db"
    make_db(db)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        con = sqlite3.connect(db)
        con.execute("UPDATE tournaments SET status = 'running', runner_pid = ?, started_at = ?",
                    (sleeper.pid, 4_000_000_000.0))  # started 'after' the sleeper did: it is the runner
        con.commit()
        con.close()
        r = invoke("resume", "1", "--db", str(db))
        assert r.exit_code == 2
        assert f"tournament 1 is being run by another process (pid {sleeper.pid}); stop that one first" in r.output
    finally:
        sleeper.kill()
        sleeper.wait()
    # once that process is gone, the tournament shows as interrupted and resumes
    r = invoke("tournaments", "list", "--db", str(db))
    assert "interrupted" in r.output
    assert invoke("resume", "1", "--db", str(db), "--display", "none").exit_code == 0
