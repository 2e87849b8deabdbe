"""The database's schema: the tables (SCHEMA), its version, the in-place migrations of older databases,
and the checks made when a database is opened (Arena's, not newer than this Arena, every table there).

A schema change bumps SCHEMA_VERSION and appends MIGRATIONS[SCHEMA_VERSION]: the statements that take a
database of the previous version to the new one (new tables and indexes come from SCHEMA's
CREATE ... IF NOT EXISTS afterwards). Never edit a step that has shipped; tests/test_migrations.py opens
fixtures written by older releases.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from arena.errors import StoreError
from arena.store.metaschema import METAROUNDS_SCHEMA

SCHEMA_VERSION = 11

# MIGRATIONS[v] takes a database from version v - 1 to v (statements run in one transaction with the rest of
# the upgrade); tests/fixtures/arena-v1.db is a database written by schema 1.
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


def statements(script: str) -> list[str]:
    """The SQL statements of a script, each whole (as sqlite3 itself judges completeness)."""
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    return out


def tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def has_schema(conn: sqlite3.Connection) -> bool:
    """Every table and index of SCHEMA exists (read-only commands then never need the write lock)."""
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
    wanted = set(re.findall(r"CREATE (?:UNIQUE )?(?:TABLE|INDEX) IF NOT EXISTS (\w+)", SCHEMA))
    return wanted <= names


def stored_version(conn: sqlite3.Connection) -> int | None:
    """The stored schema version; None for a new (empty) database."""
    if "meta" not in tables(conn):
        return None
    row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    return int(row[0]) if row and str(row[0]).isdigit() else 0


def migrate(conn: sqlite3.Connection) -> None:
    """Bring a new database, or one of an older schema, up to SCHEMA_VERSION in one IMMEDIATE transaction.

    The version is read again under the write lock: another process opening the same file may have got there
    first (a new file's tables are created in this one transaction too, so no process ever sees half a schema,
    which it would take for an old database to migrate)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = stored_version(conn)
        for step in range(version + 1, SCHEMA_VERSION + 1) if version is not None else ():
            for statement in MIGRATIONS.get(step, []):
                conn.execute(statement)
        for statement in statements(SCHEMA):
            conn.execute(statement)
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def check(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a database that is not Arena's (other tables) or was written by a newer Arena."""
    names = tables(conn)
    if not names:
        return
    if "meta" not in names:
        shown = ", ".join(sorted(names)[:5]) + (", ..." if len(names) > 5 else "")
        raise StoreError(f"{path} is an SQLite database but not Arena's (its tables: {shown}); "
                         "pass --db another path")
    row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    version = int(row[0]) if row and str(row[0]).isdigit() else 0
    if version > SCHEMA_VERSION:
        raise StoreError(f"{path} was written by a newer Arena (schema {version}; this one reads "
                         f"{SCHEMA_VERSION}): upgrade Arena or pass --db another path")
