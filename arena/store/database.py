"""SQLite persistence (WAL): schema, the one-transaction trial write, and the queries others use.

A trial and its nodes and LLM calls are written together in one transaction when the trial
completes; a unique index on the trial's coordinates makes a second write of the same trial a no-op,
so re-running or resuming never duplicates a trial.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from arena.errors import ArenaError, LookupFailed, StoreError
from arena.engine.match import totals
from arena.engine.records import OK, ONE_SHOT, SIMULATED, CallRecord, TrialResult
from arena.store.metaschema import METAROUNDS_SCHEMA

SCHEMA_VERSION = 11

# Upgrades of a database written by an older Arena, applied in place when it is opened: MIGRATIONS[v]
# takes a database from version v - 1 to v (statements run in one transaction; new tables and indexes
# come from SCHEMA's CREATE ... IF NOT EXISTS afterwards). Append a step with each schema change, never
# edit one that has shipped; tests/fixtures/arena-v1.db is a database written by schema 1.
MIGRATIONS: dict[int, list[str]] = {
    # 2: why a tournament failed or was cancelled; replays; the response cache keyed per endpoint and append-only
    # (rows of the providers whose endpoint is fixed keep serving it; those of custom/ollama, whose server
    # is unknown, are kept but match no endpoint); fingerprints of schema 1 marked 'v1:' (they held the
    # name-less config with its preset and cache flag: the runner compares them by recomputing, see
    # Store.find_or_create_tournament).
    2: [
        "ALTER TABLE tournaments ADD COLUMN reason TEXT",
        "ALTER TABLE tournaments ADD COLUMN replay_of INTEGER",
        "UPDATE tournaments SET fingerprint = 'v1:' || fingerprint",
        "CREATE TABLE response_cache_v2 (key TEXT NOT NULL, endpoint TEXT NOT NULL, provider TEXT NOT NULL, "
        "model TEXT NOT NULL, response TEXT NOT NULL, prompt_tokens INTEGER, completion_tokens INTEGER, "
        "created_at REAL NOT NULL, PRIMARY KEY (key, endpoint))",
        "INSERT INTO response_cache_v2 SELECT key, CASE provider WHEN 'local' THEN 'local' "
        "WHEN 'nvidia' THEN 'https://integrate.api.nvidia.com/v1' WHEN 'cerebras' THEN 'https://api.cerebras.ai/v1' "
        "WHEN 'groq' THEN 'https://api.groq.com/openai/v1' WHEN 'openai' THEN 'https://api.openai.com/v1' "
        "ELSE 'unknown:' || provider END, provider, model, response, prompt_tokens, completion_tokens, created_at "
        "FROM response_cache",
        "DROP TABLE response_cache",
        "ALTER TABLE response_cache_v2 RENAME TO response_cache",
    ],
    3: ["ALTER TABLE llm_calls ADD COLUMN replica TEXT"],  # endpoint pools: which replica answered
    5: ["ALTER TABLE nodes ADD COLUMN code TEXT"],  # code programs: a node's value and printed output (JSON)
    6: [],  # iterate runs: new tables only (iterate_runs, iterate_steps; see arena/store/iterate.py)
    7: ["ALTER TABLE tournaments ADD COLUMN runner_socket TEXT"],  # where a runner process streams events
    # 8: repeated games. A trial is a match: its rules are part of its coordinates (and of the unique key,
    # rebuilt by SCHEMA), its totals are stored, its rounds in `rounds` (new table), its nodes say their
    # round. A stored one-shot trial is a one-round match: its totals are its payoffs.
    8: [
        "ALTER TABLE trials ADD COLUMN rounds INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE trials ADD COLUMN continuation REAL",
        "ALTER TABLE trials ADD COLUMN noise REAL NOT NULL DEFAULT 0",
        "ALTER TABLE trials ADD COLUMN recall INTEGER",
        "ALTER TABLE trials ADD COLUMN n_rounds INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE trials ADD COLUMN row_total REAL",
        "ALTER TABLE trials ADD COLUMN col_total REAL",
        "ALTER TABLE trials ADD COLUMN row_discounted REAL",
        "ALTER TABLE trials ADD COLUMN col_discounted REAL",
        "UPDATE trials SET row_total = row_payoff, col_total = col_payoff, row_discounted = row_payoff, "
        "col_discounted = col_payoff",
        "ALTER TABLE nodes ADD COLUMN round INTEGER NOT NULL DEFAULT 0",
        "DROP INDEX trials_key",
    ],
    # 9: disclosure (what each program is shown of its opponent) is part of a trial's coordinates and of its
    # unique key (rebuilt by SCHEMA); a stored trial showed everything: 'full'.
    9: [
        "ALTER TABLE trials ADD COLUMN disclosure TEXT NOT NULL DEFAULT 'full'",
        "DROP INDEX IF EXISTS trials_key",  # (gone already when step 8 ran in the same migration)
    ],
    # 10: games with a state: a Markov game's step is stored with the state it was decided on (both
    # seats' views, JSON; NULL for a matrix game's round).
    # (a database older than 8 has no `rounds` yet: schema 8's table is made first, SCHEMA's adds nothing)
    10: ["CREATE TABLE IF NOT EXISTS rounds (trial_id INTEGER NOT NULL REFERENCES trials(id), round INTEGER NOT NULL, "
        "row_intended TEXT NOT NULL, col_intended TEXT NOT NULL, row_action TEXT NOT NULL, col_action TEXT NOT NULL, "
        "row_payoff REAL NOT NULL, col_payoff REAL NOT NULL, cooperative INTEGER NOT NULL, "
        "PRIMARY KEY (trial_id, round)) WITHOUT ROWID",
        "ALTER TABLE rounds ADD COLUMN state TEXT"],
    11: [],  # iterate's meta-rounds protocol: new tables only (meta_programs, meta_rounds; store/metaschema.py)
}
LEGACY_FINGERPRINT = "v1:"  # prefix of a fingerprint computed by schema 1's rule

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS tournaments (
    id INTEGER PRIMARY KEY,
    name TEXT,
    config TEXT NOT NULL,
    status TEXT NOT NULL,            -- running | finished | cancelled | failed
    total_trials INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,                 -- when the latest run (process runner_pid) started it
    finished_at REAL,
    runner_pid INTEGER,
    arena_version TEXT,
    fingerprint TEXT NOT NULL,       -- hash of what determines the trials (runner.fingerprint)
    reason TEXT,                     -- why it failed or was cancelled
    replay_of INTEGER,               -- the tournament whose stored calls this one replayed
    runner_socket TEXT               -- where a runner process streams its events (arena/runner/process.py)
);
CREATE INDEX IF NOT EXISTS tournaments_fingerprint ON tournaments (fingerprint);
CREATE TABLE IF NOT EXISTS programs (
    hash TEXT PRIMARY KEY, id TEXT NOT NULL, kind TEXT NOT NULL, label TEXT, definition TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS games (hash TEXT PRIMARY KEY, id TEXT NOT NULL, definition TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tournament_programs (
    tournament_id INTEGER NOT NULL REFERENCES tournaments(id), program_id TEXT NOT NULL,
    program_hash TEXT NOT NULL REFERENCES programs(hash), PRIMARY KEY (tournament_id, program_id)
);
CREATE TABLE IF NOT EXISTS tournament_games (
    tournament_id INTEGER NOT NULL REFERENCES tournaments(id), game_id TEXT NOT NULL,
    game_hash TEXT NOT NULL REFERENCES games(hash), PRIMARY KEY (tournament_id, game_id)
);
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY,
    tournament_id INTEGER NOT NULL REFERENCES tournaments(id),
    seq INTEGER NOT NULL,
    game TEXT NOT NULL,
    row_program TEXT NOT NULL,
    col_program TEXT NOT NULL,
    epsilon REAL NOT NULL,
    max_depth INTEGER NOT NULL,
    temperature REAL,
    trial_index INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    row_action TEXT,
    col_action TEXT,
    row_payoff REAL,
    col_payoff REAL,
    cooperative INTEGER,
    status TEXT NOT NULL,            -- ok | refused | error
    error TEXT,
    n_nodes INTEGER NOT NULL,
    n_calls INTEGER NOT NULL,
    row_depth INTEGER NOT NULL,      -- deepest node of the row program's decision
    col_depth INTEGER NOT NULL,
    duration_ms REAL,
    finished_at REAL NOT NULL,
    rounds INTEGER NOT NULL DEFAULT 1,   -- the match's rules (coordinates): fixed horizon,
    continuation REAL,                   -- chance of going on after a round (NULL: fixed horizon),
    noise REAL NOT NULL DEFAULT 0,       -- chance an intended action is flipped,
    recall INTEGER,                      -- past rounds shown (NULL: all)
    n_rounds INTEGER NOT NULL DEFAULT 1, -- rounds played; row_payoff/col_payoff are means per round and
    row_total REAL,                      -- cooperative the share of cooperative rounds (one round: 0 or 1)
    col_total REAL,
    row_discounted REAL,                 -- sum of discount**t * payoff of round t (the config's discount)
    col_discounted REAL,
    disclosure TEXT NOT NULL DEFAULT 'full' -- what each program was shown of the other (engine/disclosure.py)
);
CREATE UNIQUE INDEX IF NOT EXISTS trials_key ON trials (
    tournament_id, game, row_program, col_program, epsilon, max_depth, coalesce(temperature, -1.0), trial_index,
    rounds, coalesce(continuation, -1.0), noise, coalesce(recall, -1), disclosure
);
-- which grid positions are stored (resume: an index-only scan, not a million row lookups)
CREATE INDEX IF NOT EXISTS trials_seq ON trials (tournament_id, seq);
CREATE TABLE IF NOT EXISTS nodes (
    id INTEGER PRIMARY KEY,
    trial_id INTEGER NOT NULL REFERENCES trials(id),
    parent_id INTEGER REFERENCES nodes(id),
    idx INTEGER NOT NULL,            -- position within the trial
    side TEXT NOT NULL,              -- seat of the deciding program: row | col
    depth INTEGER NOT NULL,
    program TEXT NOT NULL,
    mode TEXT NOT NULL,              -- simulated | grounded | capped | direct
    grounded INTEGER NOT NULL,
    action TEXT,
    error TEXT,
    code TEXT,                       -- code programs: JSON {value, output} beyond the action, or NULL
    round INTEGER NOT NULL DEFAULT 0 -- the round of the match the node decides in
);
CREATE INDEX IF NOT EXISTS nodes_trial ON nodes (trial_id);
-- the rounds of a match (a trial of more than one round, or with noise); a one-round trial is its own round
CREATE TABLE IF NOT EXISTS rounds (
    trial_id INTEGER NOT NULL REFERENCES trials(id),
    round INTEGER NOT NULL,
    row_intended TEXT NOT NULL,      -- what each program chose
    col_intended TEXT NOT NULL,
    row_action TEXT NOT NULL,        -- what was played (after noise): the history holds these
    col_action TEXT NOT NULL,
    row_payoff REAL NOT NULL,
    col_payoff REAL NOT NULL,
    cooperative INTEGER NOT NULL,    -- a Markov game's step: food was collected
    state TEXT,                      -- a Markov game: the state decided on (JSON, both seats' views)
    PRIMARY KEY (trial_id, round)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS llm_calls (
    id INTEGER PRIMARY KEY,
    tournament_id INTEGER NOT NULL,
    trial_id INTEGER NOT NULL REFERENCES trials(id),
    node_id INTEGER NOT NULL REFERENCES nodes(id),
    program TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    messages TEXT NOT NULL,          -- JSON list of {role, content}
    params TEXT,                     -- JSON: temperature, seed, constraint, ...
    response TEXT,
    parsed_action TEXT,
    attempt INTEGER NOT NULL,
    status TEXT NOT NULL,            -- ok | refusal | error
    error TEXT,
    latency_ms REAL,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    cached INTEGER NOT NULL,
    started_at REAL,
    replica TEXT                     -- the base URL (no credentials) the attempt went to; NULL: cached
);
CREATE INDEX IF NOT EXISTS llm_calls_node ON llm_calls (node_id);
CREATE INDEX IF NOT EXISTS llm_calls_trial ON llm_calls (trial_id);
CREATE INDEX IF NOT EXISTS llm_calls_tournament ON llm_calls (tournament_id);  -- analysis.call_rows
-- iterated best response (arena iterate): a run, and each writer step with its candidate program
CREATE TABLE IF NOT EXISTS iterate_runs (
    id INTEGER PRIMARY KEY,
    config TEXT NOT NULL,            -- JSON IterateConfig
    tournament_id INTEGER NOT NULL REFERENCES tournaments(id),  -- holds the candidates' trials
    status TEXT NOT NULL,            -- running | finished | failed
    created_at REAL NOT NULL,
    finished_at REAL,
    error TEXT,
    welfare REAL,                    -- the final pair's social welfare
    best_welfare REAL                -- the best profile's over the run's history (the PIBR paper's choice)
);
CREATE TABLE IF NOT EXISTS iterate_steps (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES iterate_runs(id),
    round INTEGER NOT NULL,          -- 0: the starting pair's evaluation
    player TEXT NOT NULL,            -- row | col | start
    step INTEGER NOT NULL,
    program_id TEXT NOT NULL,        -- the candidate (its trials are the tournament's trials with this id)
    program_hash TEXT REFERENCES programs(hash),  -- NULL when the reply held no valid program
    source TEXT,                     -- the candidate's code (or system prompt)
    reply TEXT,                      -- the writer's whole answer
    valid INTEGER NOT NULL,
    validation TEXT,                 -- the unit-test errors, NULL when valid
    row_utility REAL,                -- mean payoffs over the step's trials
    col_utility REAL,
    welfare REAL,
    kept INTEGER NOT NULL DEFAULT 0, -- the player's best candidate of its turn
    feedback TEXT,                   -- what was sent back to the writer after this step
    created_at REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS iterate_steps_key ON iterate_steps (run_id, round, player, step);
CREATE TABLE IF NOT EXISTS response_cache (
    key TEXT NOT NULL,               -- hash of (provider, model, messages, temperature, sample index, ...)
    endpoint TEXT NOT NULL,          -- which server answered (providers.endpoint_identity)
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    response TEXT NOT NULL,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    created_at REAL NOT NULL,
    PRIMARY KEY (key, endpoint)      -- append-only: the first answer stays
);
""" + METAROUNDS_SCHEMA

TRIAL_COLUMNS = (
    "tournament_id, seq, game, row_program, col_program, epsilon, max_depth, temperature, trial_index, seed, "
    "row_action, col_action, row_payoff, col_payoff, cooperative, status, error, n_nodes, n_calls, row_depth, "
    "col_depth, duration_ms, finished_at, row_total, col_total, row_discounted, col_discounted"
)
MATCH_COLUMNS = "rounds, continuation, noise, recall, n_rounds, disclosure"
# Only a second write of the same trial (its key, the trials_key index) is skipped: a NOT NULL or CHECK
# violation raises (INSERT OR IGNORE would swallow it and the trial would silently be missing).
_ON_TRIAL_KEY = (" ON CONFLICT (tournament_id, game, row_program, col_program, epsilon, max_depth, "
                 "coalesce(temperature, -1.0), trial_index, rounds, coalesce(continuation, -1.0), noise, "
                 "coalesce(recall, -1), disclosure) DO NOTHING")
_TRIAL_INSERT = f"INSERT INTO trials ({TRIAL_COLUMNS}) VALUES ({', '.join('?' * 27)})" + _ON_TRIAL_KEY
_MATCH_INSERT = (f"INSERT INTO trials ({TRIAL_COLUMNS}, {MATCH_COLUMNS}) VALUES ({', '.join('?' * 33)})"
                 + _ON_TRIAL_KEY)
# Binding None costs sqlite3 an adapter lookup per value, a large share of a node row's cost. The usual
# rows (a built-in trial: no error, no temperature; a node without error) have statements with NULL
# literals instead, and a root's parent is bound as 0 (node ids start at 1) and stored as NULL.
_NODE_COLUMNS = "id, trial_id, parent_id, idx, side, depth, program, mode, grounded, action, error, code, round"
_NODE_INSERT_NULLABLE = f"INSERT INTO nodes ({_NODE_COLUMNS}) VALUES (?, ?, nullif(?, 0), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_NODE_INSERT_OK = f"INSERT INTO nodes ({_NODE_COLUMNS}) VALUES (?, ?, nullif(?, 0), ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?)"
_ROUND_INSERT = "INSERT INTO rounds VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_TRIAL_INSERT_OK = (f"INSERT INTO trials ({TRIAL_COLUMNS}) VALUES "
                    f"(?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    + _ON_TRIAL_KEY)
_CALL_INSERT = "INSERT INTO llm_calls VALUES (" + ", ".join("?" * 20) + ")"


class TournamentBusy(ArenaError):
    """Another live process runs this tournament."""


class TournamentRow(BaseModel):
    id: int
    name: str | None
    config: dict
    status: str
    total_trials: int
    seed: int
    created_at: float
    started_at: float | None
    finished_at: float | None
    runner_pid: int | None
    arena_version: str | None
    fingerprint: str
    reason: str | None = None
    replay_of: int | None = None
    runner_socket: str | None = None
    done: int = 0

    @property
    def display_status(self) -> str:
        """'interrupted' for a tournament marked running whose process is gone (killed, crashed)."""
        if self.status == "running" and not _pid_alive(self.runner_pid, self.started_at):
            return "interrupted"
        return self.status


def _pid_alive(pid: int | None, since: float | None = None) -> bool:
    """Whether process `pid`, which marked a tournament running at `since`, still runs.

    A pid can be reused: a process that started after `since` (Linux: /proc) is another program.
    """
    if not pid:
        return False
    started = _process_start(pid)
    if started is not None and since is not None and started > since + 2.0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Process `pid` has exited and waits to be reaped (a runner killed while its parent still runs):
    os.kill(pid, 0) succeeds on it, but it runs nothing (Linux: /proc; elsewhere assumed not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def _process_start(pid: int) -> float | None:
    """When process `pid` started (epoch seconds), where /proc tells; None elsewhere or if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(float(x.split()[1]) for x in Path("/proc/stat").read_text().splitlines() if x.startswith("btime"))
        ticks = float(stat.rsplit(")", 1)[1].split()[19])  # field 22, counted after the command name
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _statements(script: str) -> list[str]:
    """The SQL statements of a script, each whole (as sqlite3 itself judges completeness)."""
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    return out


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


class Store:
    """One connection to an Arena database. Thread-safe through one lock (SQLite has one writer)."""

    def __init__(self, path: str | os.PathLike = "arena.db", *, timeout: float = 10.0):
        self.path = Path(path)
        self._lock = threading.RLock()
        try:
            if self.path.parent and not self.path.parent.exists():
                raise StoreError(f"cannot open database {self.path}: directory {self.path.parent} does not exist")
            self.conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
            self.conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
            self._check_schema()
            if self.conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            version = self._version()
            if version is None:
                self.conn.executescript(SCHEMA)
                self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif version < SCHEMA_VERSION or not self._has_schema():
                self._migrate(version)
        except (sqlite3.DatabaseError, StoreError) as exc:
            if getattr(self, "conn", None) is not None:
                self.conn.close()
            if isinstance(exc, StoreError):
                raise
            raise StoreError(_explain(self.path, exc)) from None

    def _tables(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}

    def _has_schema(self) -> bool:
        """Every table and index of SCHEMA exists (read-only commands then never need the write lock)."""
        names = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
        wanted = set(re.findall(r"CREATE (?:UNIQUE )?(?:TABLE|INDEX) IF NOT EXISTS (\w+)", SCHEMA))
        return wanted <= names

    def _version(self) -> int | None:
        """The stored schema version; None for a new (empty) database."""
        if "meta" not in self._tables():
            return None
        row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row[0]) if row and str(row[0]).isdigit() else 0

    def _migrate(self, version: int) -> None:
        """Bring a database of an older schema up to SCHEMA_VERSION in one transaction."""
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                version = self._version() or 0  # another process may have migrated it meanwhile
                for step in range(version + 1, SCHEMA_VERSION + 1):
                    for statement in MIGRATIONS.get(step, []):
                        self.conn.execute(statement)
                for statement in _statements(SCHEMA):
                    self.conn.execute(statement)
                self.conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def _check_schema(self) -> None:
        """Refuse a database that is not Arena's (other tables) or was written by a newer Arena."""
        tables = self._tables()
        if not tables:
            return
        if "meta" not in tables:
            shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
            raise StoreError(f"{self.path} is an SQLite database but not Arena's (its tables: {shown}); "
                             "pass --db another path")
        row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        version = int(row[0]) if row and str(row[0]).isdigit() else 0
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path} was written by a newer Arena (schema {version}; this one reads "
                             f"{SCHEMA_VERSION}): upgrade Arena or pass --db another path")

    # -- sqlite-utils view, for ad-hoc queries (analysis, exports) --------------------------------
    @property
    def db(self):
        import sqlite_utils

        return sqlite_utils.Database(self.conn)

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def query(self, sql: str, params: Sequence[Any] | dict = ()) -> list[dict]:
        with self._lock:
            try:
                cur = self.conn.execute(sql, params)
            except sqlite3.DatabaseError as exc:
                raise StoreError(_explain(self.path, exc)) from None
            cols = [d[0] for d in cur.description or ()]
            return [dict(zip(cols, r)) for r in cur.fetchall()]

    def _write(self, fn, *args):
        """Run fn(cursor, *args) inside one IMMEDIATE transaction (atomic, holds the write lock)."""
        with self._lock:
            cur = self.conn.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
                out = fn(cur, *args)
                cur.execute("COMMIT")
                return out
            except BaseException as exc:
                if self.conn.in_transaction:
                    cur.execute("ROLLBACK")
                if isinstance(exc, sqlite3.DatabaseError):
                    raise StoreError(_explain(self.path, exc)) from None
                raise

    # -- tournaments -------------------------------------------------------------------------------
    def create_tournament(self, config: BaseModel, programs: Iterable, games: Iterable, total: int, version: str,
                          fingerprint: str, replay_of: int | None = None) -> int:
        programs, games = list(programs), list(games)
        return self._write(_create_tournament, config, programs, games, total, version, fingerprint, replay_of)

    def find_or_create_tournament(self, fingerprint: str, legacy: Callable[[dict, list[str], list[str]], str],
                                  config: BaseModel, programs: Iterable, games: Iterable, total: int,
                                  version: str) -> tuple[int, bool]:
        """The newest tournament with this fingerprint, else a new one: (id, created), in one IMMEDIATE
        transaction, so two processes starting the same tournament at once make one tournament.

        A tournament stored by schema 1 (fingerprint 'v1:...') matches when `legacy(config, program
        hashes, game hashes)` (the current rule applied to its stored config and versions) equals
        `fingerprint`; it then takes the current fingerprint.
        """
        programs, games = list(programs), list(games)

        def tx(cur):
            row = cur.execute("SELECT max(id) FROM tournaments WHERE fingerprint=?", (fingerprint,)).fetchone()
            if row[0] is not None:
                return row[0], False
            old = cur.execute("SELECT id, config FROM tournaments WHERE fingerprint LIKE ? ORDER BY id DESC",
                              (LEGACY_FINGERPRINT + "%",)).fetchall()
            for tid, config_json in old:
                phash = [r[0] for r in cur.execute(
                    "SELECT program_hash FROM tournament_programs WHERE tournament_id=?", (tid,))]
                ghash = [r[0] for r in cur.execute(
                    "SELECT game_hash FROM tournament_games WHERE tournament_id=?", (tid,))]
                if legacy(json.loads(config_json), phash, ghash) == fingerprint:
                    cur.execute("UPDATE tournaments SET fingerprint=? WHERE id=?", (fingerprint, tid))
                    return tid, False
            return _create_tournament(cur, config, programs, games, total, version, fingerprint, None), True

        return self._write(tx)

    def claim(self, tid: int, since: float | None = None) -> None:
        """Mark tournament `tid` run by this process, unless another live process runs it: the check and
        the claim in one IMMEDIATE transaction, so two `resume`s can never both run its missing trials."""
        def tx(cur):
            row = cur.execute("SELECT status, runner_pid, started_at FROM tournaments WHERE id=?", (tid,)).fetchone()
            if row is None:
                raise LookupFailed(f"no tournament {tid} in {self.path}")
            status, pid, started = row
            if status == "running" and pid != os.getpid() and _pid_alive(pid, started):
                raise TournamentBusy(f"tournament {tid} is being run by another process (pid {pid}); "
                                     "stop that one first, or wait for it to finish")
            cur.execute("UPDATE tournaments SET status='running', runner_pid=?, started_at=?, reason=NULL "
                        "WHERE id=?", (os.getpid(), time.time(), tid))

        self._write(tx)

    def update_settings(self, tid: int, config: BaseModel) -> None:
        """A continued run's own limits and name (fields that do not determine the trials)."""
        self._write(lambda cur: cur.execute("UPDATE tournaments SET config=?, name=? WHERE id=?",
                                            (config.model_dump_json(), config.name, tid)))

    def mark_running(self, tid: int) -> None:
        self._write(lambda cur: cur.execute(
            "UPDATE tournaments SET status='running', runner_pid=?, started_at=? WHERE id=?",
            (os.getpid(), time.time(), tid)))

    def set_runner_socket(self, tid: int, path: str | None) -> None:
        """Where the runner process of tournament `tid` listens (None once it has ended)."""
        self._write(lambda cur: cur.execute("UPDATE tournaments SET runner_socket=? WHERE id=?", (path, tid)))

    def last_trial_id(self) -> int:
        """trials.id of the newest stored trial (0: none); every trial written later has a larger id."""
        return self.query("SELECT coalesce(max(id), 0) AS m FROM trials")[0]["m"]

    def set_status(self, tid: int, status: str, reason: str | None = None) -> None:
        """The tournament's status, with why it failed or was cancelled (None when it finished)."""
        finished = time.time() if status in ("finished", "cancelled", "failed") else None
        self._write(lambda cur: cur.execute(
            "UPDATE tournaments SET status=?, finished_at=?, reason=? WHERE id=?", (status, finished, reason, tid)))

    def call_latencies(self) -> dict[str, tuple[float, int]]:
        """Per provider: the mean latency (ms) of its stored answered, uncached LLM calls, and their number."""
        rows = self.query("SELECT provider, avg(latency_ms) AS ms, count(*) AS n FROM llm_calls "
                          "WHERE cached = 0 AND status = 'ok' AND latency_ms IS NOT NULL GROUP BY provider")
        return {r["provider"]: (r["ms"], r["n"]) for r in rows}

    def tournament(self, tid: int | None = None) -> TournamentRow:
        """A tournament by id; None means the most recent one."""
        if tid is None:
            rows = self.query("SELECT max(id) AS id FROM tournaments")
            tid = rows[0]["id"] if rows else None
            if tid is None:
                raise LookupFailed(f"no tournaments in {self.path} yet; start one with `arena run`")
        rows = self.query("SELECT * FROM tournaments WHERE id=?", (tid,))
        if not rows:
            raise LookupFailed(f"no tournament {tid} in {self.path}")
        return self._row(rows[0])

    def find_tournament(self, fingerprint: str) -> int | None:
        """The newest tournament with this fingerprint (same config and program/game versions)."""
        rows = self.query("SELECT max(id) AS id FROM tournaments WHERE fingerprint=?", (fingerprint,))
        return rows[0]["id"] if rows else None

    def tournaments(self) -> list[TournamentRow]:
        rows = self.query("SELECT * FROM tournaments ORDER BY id DESC")
        done = {r["tournament_id"]: r["n"] for r in self.query(
            "SELECT tournament_id, count(*) AS n FROM trials GROUP BY tournament_id")}
        return [self._row(r, done.get(r["id"], 0)) for r in rows]

    def _row(self, r: dict, done: int | None = None) -> TournamentRow:
        if done is None:
            done = self.count_trials(r["id"])
        return TournamentRow(**{**r, "config": json.loads(r["config"]), "done": done})

    def snapshot(self, tid: int) -> tuple[dict, dict]:
        """The program and game definitions a tournament was started with (JSON dicts by id)."""
        programs = {r["program_id"]: json.loads(r["definition"]) for r in self.query(
            "SELECT tp.program_id, p.definition FROM tournament_programs tp JOIN programs p ON p.hash = tp.program_hash "
            "WHERE tp.tournament_id=?", (tid,))}
        games = {r["game_id"]: json.loads(r["definition"]) for r in self.query(
            "SELECT tg.game_id, g.definition FROM tournament_games tg JOIN games g ON g.hash = tg.game_hash "
            "WHERE tg.tournament_id=?", (tid,))}
        return programs, games

    # -- trials -------------------------------------------------------------------------------------
    def count_trials(self, tid: int) -> int:
        return self.query("SELECT count(*) AS n FROM trials WHERE tournament_id=?", (tid,))[0]["n"]

    def completed(self, tid: int, total: int) -> bytearray:
        """A byte per grid position: 1 where that trial is already stored."""
        done = bytearray(total)
        with self._lock:
            for (seq,) in self.conn.execute("SELECT seq FROM trials WHERE tournament_id=?", (tid,)):
                if 0 <= seq < total:
                    done[seq] = 1
        return done

    def write_trials(self, tid: int, results: Sequence[TrialResult]) -> int:
        """Store finished trials with their nodes and calls in one transaction; returns how many were new."""
        if not results:
            return 0
        return self._write(_insert_trials, tid, results)

    def trial_rows(self, tid: int, where: str = "", params: Sequence = (), limit: int | None = None,
                   offset: int = 0) -> list[dict]:
        sql = "SELECT * FROM trials WHERE tournament_id=?" + (f" AND ({where})" if where else "") + " ORDER BY seq"
        if limit is not None:  # a page (the Trials screen shows a cell's trials a page at a time)
            return self.query(sql + " LIMIT ? OFFSET ?", (tid, *params, limit, offset))
        return self.query(sql, (tid, *params))

    def rounds(self, trial_id: int) -> list[dict]:
        """A match's rounds, in order ([] for a one-round trial: the trial row is its round)."""
        return self.query("SELECT * FROM rounds WHERE trial_id=? ORDER BY round", (trial_id,))

    def nodes(self, trial_id: int) -> list[dict]:
        return self.query("SELECT * FROM nodes WHERE trial_id=? ORDER BY idx", (trial_id,))

    def calls(self, *, node_id: int | None = None, trial_id: int | None = None) -> list[dict]:
        if node_id is not None:
            rows = self.query("SELECT * FROM llm_calls WHERE node_id=? ORDER BY id", (node_id,))
        else:
            rows = self.query("SELECT * FROM llm_calls WHERE trial_id=? ORDER BY id", (trial_id,))
        for r in rows:
            r["messages"] = json.loads(r["messages"])
            r["params"] = json.loads(r["params"]) if r["params"] else {}
        return rows


def _create_tournament(cur: sqlite3.Cursor, config: BaseModel, programs: list, games: list, total: int, version: str,
                       fingerprint: str, replay_of: int | None) -> int:
    for p in programs:
        cur.execute("INSERT OR IGNORE INTO programs VALUES (?, ?, ?, ?, ?)",
                    (p.content_hash, p.id, p.kind, p.label, p.model_dump_json()))
    for g in games:
        cur.execute("INSERT OR IGNORE INTO games VALUES (?, ?, ?)", (g.content_hash, g.id, g.model_dump_json()))
    now = time.time()
    cur.execute(
        "INSERT INTO tournaments (name, config, status, total_trials, seed, created_at, started_at, runner_pid, "
        "arena_version, fingerprint, replay_of) VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?)",
        (config.name, config.model_dump_json(), total, config.seed, now, now, os.getpid(), version, fingerprint,
         replay_of),
    )
    tid = cur.lastrowid
    cur.executemany("INSERT INTO tournament_programs VALUES (?, ?, ?)", [(tid, p.id, p.content_hash) for p in programs])
    cur.executemany("INSERT INTO tournament_games VALUES (?, ?, ?)", [(tid, g.id, g.content_hash) for g in games])
    return tid


def _insert_trials(cur: sqlite3.Cursor, tid: int, results: Sequence[TrialResult]) -> int:
    now = time.time()
    node_id = cur.execute("SELECT coalesce(max(id), 0) FROM nodes").fetchone()[0]
    # Inside this write transaction SQLite gives the next trial max(id) + 1: predicting it lets one pass
    # over a trial's nodes both build their rows and find the trial's depths and call count.
    next_trial = cur.execute("SELECT coalesce(max(id), 0) FROM trials").fetchone()[0] + 1
    call_id = None
    node_rows: list[tuple] = []  # nodes with an error
    ok_rows: list[tuple] = []  # nodes without (the usual case; see _NODE_INSERT_OK)
    call_rows: list[tuple] = []
    round_rows: list[tuple] = []
    inserted = 0
    for r in results:
        s = r.spec
        nodes = r.nodes
        trial_id = next_trial
        base = node_id + 1
        n_ok, n_err = len(ok_rows), len(node_rows)
        # Each round's nodes are the row decision's chain, then the column decision's (a root says which).
        row_depth = col_depth = n_calls = 0
        in_row = True
        with_calls = []
        for n in nodes:
            parent = n.parent
            depth = n.depth
            if parent is None:
                in_row = n.side == "row"
                parent = 0  # stored as NULL
            else:
                parent += base
            if in_row:
                if depth > row_depth:
                    row_depth = depth
            elif depth > col_depth:
                col_depth = depth
            mode = n.mode
            if n.error is None and n.code is None:
                ok_rows.append((base + n.index, trial_id, parent, n.index, n.side, depth, n.program, mode,
                                int(mode != SIMULATED), n.action, n.round))
            else:
                node_rows.append((base + n.index, trial_id, parent, n.index, n.side, depth, n.program, mode,
                                  int(mode != SIMULATED), n.action, n.error,
                                  None if n.code is None else json.dumps(n.code, ensure_ascii=False), n.round))
            if n.calls:
                n_calls += len(n.calls)
                with_calls.append(n)
        m = s.match
        if m.coordinates != ONE_SHOT.coordinates or not s.disclosure.full or r.rounds:
            # a match (a Markov game's episode under any rules), a one-round trial told apart by its recall, or
            # a trial that did not show everything
            rt, ct, rd, cd = totals(r.rounds, m.discount)
            if r.status != OK:
                rt = ct = rd = cd = None
            elif not r.rounds:  # one round, stored as a one-shot trial
                rt = rd = r.row_payoff
                ct = cd = r.col_payoff
            cur.execute(_MATCH_INSERT, (
                tid, s.seq, s.game, s.row, s.col, s.epsilon, s.max_depth, s.temperature, s.index, s.seed,
                r.row_action, r.col_action, r.row_payoff, r.col_payoff,
                None if r.cooperative is None else float(r.cooperative) if r.rounds else int(r.cooperative),
                r.status, r.error, len(nodes), n_calls, row_depth, col_depth, r.duration_ms, now, rt, ct, rd, cd,
                m.rounds, m.continuation, m.noise, m.recall, r.n_rounds, s.disclosure.level,
            ))
        elif s.temperature is None and r.error is None and r.cooperative is not None:
            cur.execute(_TRIAL_INSERT_OK, (
                tid, s.seq, s.game, s.row, s.col, s.epsilon, s.max_depth, s.index, s.seed,
                r.row_action, r.col_action, r.row_payoff, r.col_payoff, int(r.cooperative), r.status,
                len(nodes), n_calls, row_depth, col_depth, r.duration_ms, now,
                r.row_payoff, r.col_payoff, r.row_payoff, r.col_payoff,
            ))
        else:
            cur.execute(_TRIAL_INSERT, (
                tid, s.seq, s.game, s.row, s.col, s.epsilon, s.max_depth, s.temperature, s.index, s.seed,
                r.row_action, r.col_action, r.row_payoff, r.col_payoff,
                None if r.cooperative is None else int(r.cooperative), r.status, r.error,
                len(nodes), n_calls, row_depth, col_depth, r.duration_ms, now,
                r.row_payoff, r.col_payoff, r.row_payoff, r.col_payoff,
            ))
        if cur.rowcount == 0:  # already stored: a re-run or resume of a finished trial
            del ok_rows[n_ok:], node_rows[n_err:]
            continue
        if cur.lastrowid != trial_id:  # cannot happen with an INTEGER PRIMARY KEY; never store a wrong id
            trial_id = cur.lastrowid
            ok_rows[n_ok:] = [(row[0], trial_id, *row[2:]) for row in ok_rows[n_ok:]]
            node_rows[n_err:] = [(row[0], trial_id, *row[2:]) for row in node_rows[n_err:]]
        next_trial = trial_id + 1
        inserted += 1
        if r.rounds:
            round_rows.extend((trial_id, x.round, x.row_intended, x.col_intended, x.row_action, x.col_action,
                               x.row_payoff, x.col_payoff, int(x.cooperative),
                               None if x.state is None else json.dumps(x.state, separators=(",", ":")))
                              for x in r.rounds)
        for n in with_calls:
            if call_id is None:
                call_id = cur.execute("SELECT coalesce(max(id), 0) FROM llm_calls").fetchone()[0]
            for c in n.calls:
                call_id += 1
                call_rows.append(_call_row(call_id, tid, trial_id, base + n.index, n.program, c))
        node_id += len(nodes)
    if ok_rows:
        cur.executemany(_NODE_INSERT_OK, ok_rows)
    if node_rows:
        cur.executemany(_NODE_INSERT_NULLABLE, node_rows)
    if call_rows:
        cur.executemany(_CALL_INSERT, call_rows)
    if round_rows:
        cur.executemany(_ROUND_INSERT, round_rows)
    return inserted


def _call_row(call_id: int, tid: int, trial_id: int, node_id: int, program: str, c: CallRecord) -> tuple:
    return (
        call_id, tid, trial_id, node_id, program, c.provider, c.model, json.dumps(c.messages, ensure_ascii=False),
        json.dumps(c.params, sort_keys=True) if c.params else None, c.response, c.parsed_action, c.attempt,
        c.status, c.error, c.latency_ms, c.prompt_tokens, c.completion_tokens, int(c.cached), c.started_at,
        c.replica,
    )


def _explain(path: Path, exc: sqlite3.DatabaseError) -> str:
    msg = str(exc)
    if "locked" in msg or "busy" in msg:
        return f"database {path} is locked by another process (another `arena` running?): {msg}"
    if "not a database" in msg or "malformed" in msg or "corrupt" in msg:
        return f"{path} is not a usable SQLite database ({msg}); move it away or pass --db another path"
    if "readonly" in msg or "unable to open" in msg:
        return f"cannot write database {path}: {msg}"
    return f"database {path}: {msg}"
