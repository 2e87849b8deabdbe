"""The store: one SQLite connection (WAL) to an Arena database, its transactions, and the facade callers use.

`Store` opens (or creates, or migrates in place: schema.py) a database and holds one connection behind one
lock. Its reads are queries.py's, its writes writes.py's; `write(fn, *args)` runs fn in one IMMEDIATE
transaction, and `defer(sql, params)` queues a row (an LLM answer for the response cache) for the next
transaction, which is at most WRITE_WINDOW_S away while an event loop runs (else at once): many rows
then share one commit.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any
from collections.abc import Sequence

from arena.errors import StoreError
from arena.store import schema
from arena.store.queries import Queries, TournamentRow
from arena.store.schema import SCHEMA, SCHEMA_VERSION
from arena.store.writes import TournamentBusy, Writes

__all__ = ["SCHEMA", "SCHEMA_VERSION", "Store", "TournamentBusy", "TournamentRow", "WRITE_WINDOW_S",
           "db_timeout", "default_db_path"]

WRITE_WINDOW_S = 0.02  # the longest a deferred row waits for its transaction while an event loop runs


def default_db_path() -> Path:
    return Path(os.environ.get("ARENA_DB") or "arena.db")


def db_timeout(env: dict | None = None) -> float:
    """Seconds to wait for a locked database: $ARENA_DB_TIMEOUT (default 10)."""
    value = (os.environ if env is None else env).get("ARENA_DB_TIMEOUT") or "10"
    try:
        seconds = float(value)
    except ValueError:
        raise StoreError(f"ARENA_DB_TIMEOUT must be a number of seconds, got {value!r}") from None
    if not seconds >= 0:
        raise StoreError(f"ARENA_DB_TIMEOUT must be a number of seconds, got {value!r}")
    return seconds



class Store(Queries, Writes):
    """One connection to an Arena database. Thread-safe through one lock (SQLite has one writer)."""

    def __init__(self, path: str | os.PathLike = "arena.db", *, timeout: float = 10.0):
        self.path = Path(path)
        self._lock = threading.RLock()
        self._deferred: list[tuple[str, tuple]] = []
        self._flush_timer: asyncio.TimerHandle | None = None
        self._flush_loop: asyncio.AbstractEventLoop | None = None
        self.commits = 0  # transactions committed by this Store (each one flushes the deferred rows)
        try:
            if self.path.parent and not self.path.parent.exists():
                raise StoreError(f"cannot open database {self.path}: directory {self.path.parent} does not exist")
            self.conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False,
                                        cached_statements=256)
            self.conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
            schema.check(self.conn, self.path)
            if self.conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            version = schema.stored_version(self.conn)
            if version is None or version < SCHEMA_VERSION or not schema.has_schema(self.conn):
                with self._lock:
                    schema.migrate(self.conn)
        except (sqlite3.DatabaseError, StoreError) as exc:
            if getattr(self, "conn", None) is not None:
                self.conn.close()
            if isinstance(exc, StoreError):
                raise
            raise StoreError(explain(self.path, exc)) from None

    # -- sqlite-utils view, for ad-hoc queries (analysis, exports) --------------------------------
    @property
    def db(self):
        import sqlite_utils

        return sqlite_utils.Database(self.conn)

    def close(self) -> None:
        with self._lock:
            if self._deferred:
                self.flush()
            self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def query(self, sql: str, params: Sequence[Any] | dict = (), *, deferred: bool = True) -> list[dict]:
        """Rows as dicts. The deferred rows are written first (`deferred=False`: not, for a read that
        looks them up itself, as the response cache does)."""
        with self._lock:
            if deferred and self._deferred:
                self.flush()
            try:
                cur = self.conn.execute(sql, params)
            except sqlite3.DatabaseError as exc:
                raise StoreError(explain(self.path, exc)) from None
            cols = [d[0] for d in cur.description or ()]
            return [dict(zip(cols, r)) for r in cur.fetchall()]

    def write(self, fn, *args):
        """Run fn(cursor, *args) inside one IMMEDIATE transaction (atomic, holds the write lock), after the
        deferred rows, which it commits with it."""
        with self._lock:
            cur = self.conn.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
                if self._deferred:
                    _insert_deferred(cur, self._deferred)
                out = fn(cur, *args)
                cur.execute("COMMIT")
                self._deferred.clear()
                self.commits += 1
                return out
            except BaseException as exc:
                if self.conn.in_transaction:
                    cur.execute("ROLLBACK")
                if isinstance(exc, sqlite3.DatabaseError):
                    raise StoreError(explain(self.path, exc)) from None
                raise

    def defer(self, sql: str, params: tuple) -> None:
        """Queue one row's INSERT for the next transaction: within WRITE_WINDOW_S while an event loop runs in
        this thread (a timer of that loop), at once otherwise. A row that fails to insert fails that
        transaction (the caller's write raises StoreError), so a deferred row is never silently lost."""
        with self._lock:
            self._deferred.append((sql, params))
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            if self._flush_timer is None or self._flush_loop is not loop:
                self._flush_loop = loop
                self._flush_timer = loop.call_later(WRITE_WINDOW_S, self._flush_due)

    def _flush_due(self) -> None:
        with self._lock:
            self._flush_timer = None
            if self._deferred:
                self.flush()

    def flush(self) -> None:
        """Write the deferred rows now (in a transaction of their own)."""
        with self._lock:
            if self._deferred:
                self.write(lambda cur: None)


def _insert_deferred(cur: sqlite3.Cursor, rows: list[tuple[str, tuple]]) -> None:
    """Deferred rows in order, consecutive rows of one statement in one executemany."""
    i = 0
    while i < len(rows):
        sql = rows[i][0]
        j = i + 1
        while j < len(rows) and rows[j][0] == sql:
            j += 1
        cur.executemany(sql, [r[1] for r in rows[i:j]])
        i = j


def explain(path: Path, exc: sqlite3.DatabaseError) -> str:
    msg = str(exc)
    if "locked" in msg or "busy" in msg:
        return f"database {path} is locked by another process (another `arena` running?): {msg}"
    if "not a database" in msg or "malformed" in msg or "corrupt" in msg:
        return f"{path} is not a usable SQLite database ({msg}); move it away or pass --db another path"
    if "readonly" in msg or "unable to open" in msg:
        return f"cannot write database {path}: {msg}"
    return f"database {path}: {msg}"

