"""The meta-rounds protocol's tables (appended to the store's SCHEMA; written by arena/store/iterate.py)."""

METAROUNDS_SCHEMA = """
-- the meta-rounds protocol of arena iterate: every program a writer wrote (each attempt), and every match played
CREATE TABLE IF NOT EXISTS meta_programs (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES iterate_runs(id),
    seed INTEGER NOT NULL,           -- the protocol's seed (a run holds one protocol per seed)
    meta_round INTEGER NOT NULL,     -- 1..K
    seat TEXT NOT NULL,              -- row | col
    attempt INTEGER NOT NULL,        -- 0: the first answer; 1..R: rewrites after a failure
    program_id TEXT NOT NULL,
    program_hash TEXT REFERENCES programs(hash),  -- NULL when the attempt held no valid program
    source TEXT,
    reply TEXT,                      -- the writer's whole answer
    valid INTEGER NOT NULL,
    validation TEXT,                 -- the static check's or smoke calls' errors, NULL when valid
    feedback TEXT,                   -- what went back to the writer after a failed attempt
    sloc INTEGER,                    -- code metrics (arena/library/codemetrics.py), of a source that parses
    complexity INTEGER,
    halstead_volume REAL,
    opponent_use INTEGER,
    ctx_fields TEXT,                 -- JSON list: the ctx fields that reach the return value
    label TEXT,                      -- the judge's label of the rewrite (NULL: no judge, or meta-round 1)
    created_at REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS meta_programs_key ON meta_programs (run_id, seed, meta_round, seat, attempt);
CREATE TABLE IF NOT EXISTS meta_rounds (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES iterate_runs(id),
    seed INTEGER NOT NULL,
    meta_round INTEGER NOT NULL,
    row_program TEXT NOT NULL,       -- the programs that played (a seat whose writer failed plays its last one)
    col_program TEXT NOT NULL,
    row_hash TEXT NOT NULL,
    col_hash TEXT NOT NULL,
    row_failed INTEGER NOT NULL,     -- the writer gave no valid program this meta-round
    col_failed INTEGER NOT NULL,
    row_payoff REAL,                 -- mean over the matches of the per-round mean payoff
    col_payoff REAL,
    row_total REAL,                  -- mean over the matches of the match total
    col_total REAL,
    episodes INTEGER NOT NULL,       -- matches played; their trials' seq start at first_seq
    first_seq INTEGER NOT NULL,
    errors TEXT,                     -- the matches' distinct errors, NULL when none
    created_at REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS meta_rounds_key ON meta_rounds (run_id, seed, meta_round);
"""
