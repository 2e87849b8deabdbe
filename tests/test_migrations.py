"""A database written by an earlier release opens in place: migrated, nothing lost, analysable, resumable.

tests/fixtures/arena-v1.db was written by schema 1 (the release before subpackages): tournament 1 is
FairBot/DefectBot/CooperateBot on the Prisoner's Dilemma (ε 0.2, cap 10, 20 trials, seed 3), tournament 2
fair-llm/defect-llm/fairbot on a loopback server (ε 0.5, cap 3, 2 trials, seed 5: 49 LLM calls).
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from arena.analysis.tables import tables
from arena.store.database import SCHEMA_VERSION, Store, SCHEMA
from arena.store.schema import statements

FIXTURE = Path(__file__).parent / "fixtures" / "arena-v1.db"


@pytest.fixture
def old_db(tmp_path):
    path = tmp_path / "arena.db"
    shutil.copy(FIXTURE, path)
    return path


def _counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as c:
        return {t: c.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("tournaments", "trials", "nodes", "llm_calls", "response_cache", "programs", "games")}


def test_fixture_is_schema_1():
    with sqlite3.connect(FIXTURE) as c:
        assert c.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("1",)
    assert _counts(FIXTURE)["trials"] == 198 and _counts(FIXTURE)["llm_calls"] == 49


def test_old_database_is_migrated_in_place_with_every_row(old_db):
    before = _counts(old_db)
    with Store(old_db) as s:
        version = s.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
        assert int(version) == SCHEMA_VERSION
        assert s.conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        # every table and index of the current schema exists
        names = {r[0] for r in s.conn.execute("SELECT name FROM sqlite_master")}
        for statement in statements(SCHEMA):
            name = statement.split("IF NOT EXISTS", 1)[1].split()[0]
            assert name in names
        t1 = tables(s, 1)
        coop = {(r.row_program, r.col_program): r.cooperation for r in t1["pairs"]}
        assert coop[("fairbot", "fairbot")] == 1.0 and coop[("defectbot", "defectbot")] == 0.0
        assert len(tables(s, 2)["calls"]) >= 1
    assert _counts(old_db) == before
    with Store(old_db):  # opening again is a no-op
        pass
    assert _counts(old_db) == before


def test_old_database_answers_the_cli(old_db):
    out = subprocess.run([sys.executable, "-m", "arena", "tournaments", "list", "--db", str(old_db)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "finished" in out.stdout
    out = subprocess.run([sys.executable, "-m", "arena", "run", "-g", "prisoners_dilemma", "-p", "fairbot", "-p",
                          "defectbot", "-p", "cooperatebot", "-e", "0.2", "-d", "10", "-n", "20", "--seed", "3",
                          "--db", str(old_db), "--display", "none"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert _counts(old_db)["trials"] == 198  # the same tournament: nothing missing, nothing added


def test_a_store_opened_while_another_creates_the_file_waits_and_finds_the_whole_schema(tmp_path, monkeypatch):
    """Two processes opening one new file (the app and the runner process it starts): the second one's open
    must not see half the first one's tables, take the file for an old database and migrate it ('duplicate
    column name: reason'). The first Store's creation is held here after half its statements."""
    import threading

    from arena.store import schema

    path = tmp_path / "new.db"
    halfway, go_on = threading.Event(), threading.Event()
    parts = statements(SCHEMA)

    def held(script):  # the first Store's statements, the creation held after half of them
        if threading.current_thread().name != "first":
            yield from parts
            return
        yield from parts[:len(parts) // 2]
        halfway.set()
        go_on.wait(10)
        yield from parts[len(parts) // 2:]

    monkeypatch.setattr(schema, "statements", held)
    opened: dict = {}
    first = threading.Thread(target=lambda: opened.update(first=Store(path)), name="first")
    first.start()
    assert halfway.wait(10)
    second = threading.Thread(target=lambda: opened.update(second=Store(path)), name="second")
    second.start()
    second.join(0.3)
    assert second.is_alive() and "second" not in opened  # it waits for the first one's transaction
    go_on.set()
    first.join(10)
    second.join(10)
    assert sorted(opened) == ["first", "second"]
    for store in opened.values():
        with store:
            assert schema.stored_version(store.conn) == SCHEMA_VERSION and schema.has_schema(store.conn)
            assert store.query("SELECT count(*) AS n FROM pragma_table_info('tournaments') WHERE name='reason'") \
                == [{"n": 1}]
