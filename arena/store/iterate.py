"""Iterate runs in the store: the run, its steps (one writer answer each) and the candidates' programs.

A run owns one tournament row that holds its candidates' trials as ordinary trials (row and column
program ids are the candidates' ids), so every trial, node and LLM call of a run is where the rest of
Arena looks for them. The writer's own calls go to `llm_calls` with `trial_id = node_id = 0` and the
candidate's id as `program`.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from arena.engine.records import CallRecord
from arena.errors import LookupFailed
from arena.store.database import Store
from arena.store.writes import insert_calls

META_PROGRAM_FIELDS = ("seed", "meta_round", "seat", "attempt", "program_id", "program_hash", "source", "reply",
                       "valid", "validation", "feedback", "sloc", "complexity", "halstead_volume", "opponent_use",
                       "ctx_fields", "label")
META_ROUND_FIELDS = ("seed", "meta_round", "row_program", "col_program", "row_hash", "col_hash", "row_failed",
                     "col_failed", "row_payoff", "col_payoff", "row_total", "col_total", "episodes", "first_seq",
                     "errors")
STEP_FIELDS = ("round", "player", "step", "program_id", "program_hash", "source", "reply", "valid", "validation",
               "row_utility", "col_utility", "welfare", "kept", "feedback")


def create_run(store: Store, config: dict, name: str, seed: int, version: str) -> tuple[int, int]:
    """A new run and its tournament row: (run id, tournament id)."""
    def tx(cur):
        cur.execute(
            "INSERT INTO tournaments (name, config, status, total_trials, seed, created_at, started_at, runner_pid, "
            "arena_version, fingerprint) VALUES (?, ?, 'running', 0, ?, ?, ?, ?, ?, ?)",
            (name, json.dumps(_tournament_config(config)), seed, time.time(), time.time(), os.getpid(), version,
             "iterate"))
        tid = cur.lastrowid
        cur.execute("INSERT INTO iterate_runs (config, tournament_id, status, created_at) VALUES (?, ?, 'running', ?)",
                    (json.dumps(config), tid, time.time()))
        run_id = cur.lastrowid
        cur.execute("UPDATE tournaments SET name=? WHERE id=?", (f"iterate run {run_id}: {config['game']}", tid))
        return run_id, tid
    return store.write(tx)


def _tournament_config(config: dict) -> dict:
    """The tournament row's config (a TournamentConfig shape, so History and analysis can read it)."""
    out = {"name": f"iterate {config['game']}", "programs": [], "games": [config["game"]],
           "epsilons": [config["epsilon"]], "max_depths": [config["max_depth"]], "trials": config["episodes"],
           "seed": config["seed"]}
    if config.get("protocol") == "meta-rounds":  # its matches' rules, as a repeated-game tournament's
        if config.get("continuation") is not None:
            out["continuations"] = [config["continuation"]]
        else:
            out["rounds"] = [config["rounds"]]
        out["noises"] = [config.get("noise", 0.0)]
    return out


def add_program(store: Store, tid: int, program: Any, game: Any | None = None) -> None:
    """Record a candidate (hash-addressed) as one of the run's tournament programs."""
    def tx(cur):
        cur.execute("INSERT OR IGNORE INTO programs VALUES (?, ?, ?, ?, ?)",
                    (program.content_hash, program.id, program.kind, program.label, program.model_dump_json()))
        if cur.execute("INSERT OR IGNORE INTO tournament_programs VALUES (?, ?, ?)",
                       (tid, program.id, program.content_hash)).rowcount:
            # the tournament's config lists its programs, as every tournament's does
            config = json.loads(cur.execute("SELECT config FROM tournaments WHERE id=?", (tid,)).fetchone()[0])
            config["programs"].append(program.id)
            cur.execute("UPDATE tournaments SET config=? WHERE id=?", (json.dumps(config), tid))
        if game is not None:
            cur.execute("INSERT OR IGNORE INTO games VALUES (?, ?, ?)", (game.content_hash, game.id, game.model_dump_json()))
            cur.execute("INSERT OR IGNORE INTO tournament_games VALUES (?, ?, ?)", (tid, game.id, game.content_hash))
    store.write(tx)


def write_step(store: Store, run_id: int, tid: int, step: dict, calls: list[CallRecord]) -> None:
    """One step and the writer's calls for it, in one transaction (a step is stored whole or not at all)."""
    def tx(cur):
        cur.execute(f"INSERT INTO iterate_steps (run_id, {', '.join(STEP_FIELDS)}, created_at) "
                    f"VALUES (?, {', '.join('?' * len(STEP_FIELDS))}, ?)",
                    (run_id, *[step.get(k, 0 if k == "kept" else None) for k in STEP_FIELDS], time.time()))
        insert_calls(cur, tid, 0, 0, step["program_id"], calls)
        cur.execute("UPDATE tournaments SET total_trials=(SELECT count(*) FROM trials WHERE tournament_id=?) WHERE id=?",
                    (tid, tid))
    store.write(tx)


# -- the meta-rounds protocol (tables in store/metaschema.py) ------------------------------------------------
def write_meta_program(store: Store, run_id: int, tid: int, row: dict, calls: list[CallRecord]) -> None:
    """One writer attempt (its program, metrics, the feedback it got) and the writer's calls for it, in one
    transaction; the calls' `program` is the attempt's program id."""
    def tx(cur):
        values = [json.dumps(row[k]) if k == "ctx_fields" and row.get(k) is not None else row.get(k)
                  for k in META_PROGRAM_FIELDS]
        cur.execute(f"INSERT INTO meta_programs (run_id, {', '.join(META_PROGRAM_FIELDS)}, created_at) "
                    f"VALUES (?, {', '.join('?' * len(META_PROGRAM_FIELDS))}, ?)", (run_id, *values, time.time()))
        insert_calls(cur, tid, 0, 0, row["program_id"], calls)
    store.write(tx)


def write_label(store: Store, run_id: int, tid: int, program_id: str, label: str | None,
                calls: list[CallRecord]) -> None:
    """The judge's label of a program and the judge's calls (their `program` is 'judge:' + the program id)."""
    def tx(cur):
        cur.execute("UPDATE meta_programs SET label=? WHERE run_id=? AND program_id=?", (label, run_id, program_id))
        insert_calls(cur, tid, 0, 0, f"judge:{program_id}", calls)
    store.write(tx)


def write_meta_round(store: Store, run_id: int, tid: int, row: dict) -> None:
    def tx(cur):
        cur.execute(f"INSERT INTO meta_rounds (run_id, {', '.join(META_ROUND_FIELDS)}, created_at) "
                    f"VALUES (?, {', '.join('?' * len(META_ROUND_FIELDS))}, ?)",
                    (run_id, *[row.get(k) for k in META_ROUND_FIELDS], time.time()))
        cur.execute("UPDATE tournaments SET total_trials=(SELECT count(*) FROM trials WHERE tournament_id=?) WHERE id=?",
                    (tid, tid))
    store.write(tx)


def meta_programs(store: Store, run_id: int) -> list[dict]:
    rows = store.query("SELECT * FROM meta_programs WHERE run_id=? ORDER BY seed, meta_round, seat, attempt",
                       (run_id,))
    for r in rows:
        r["ctx_fields"] = json.loads(r["ctx_fields"]) if r["ctx_fields"] is not None else None
    return rows


def meta_rounds(store: Store, run_id: int) -> list[dict]:
    return store.query("SELECT * FROM meta_rounds WHERE run_id=? ORDER BY seed, meta_round", (run_id,))


def mark_kept(store: Store, run_id: int, round_: int, player: str, step: int) -> None:
    store.write(lambda cur: cur.execute(
        "UPDATE iterate_steps SET kept=1 WHERE run_id=? AND round=? AND player=? AND step=?",
        (run_id, round_, player, step)))


def steps(store: Store, run_id: int) -> list[dict]:
    return store.query("SELECT * FROM iterate_steps WHERE run_id=? ORDER BY id", (run_id,))


def run_row(store: Store, run_id: int | None = None) -> dict:
    """A run by id; None: the latest."""
    row = store.row_or_newest("iterate_runs", run_id, "iterate run", "arena iterate")
    row["config"] = json.loads(row["config"])
    return row


def run_of_tournament(store: Store, tid: int) -> int:
    """The iterate run whose trials tournament `tid` holds."""
    rows = store.query("SELECT id FROM iterate_runs WHERE tournament_id=?", (tid,))
    if not rows:
        raise LookupFailed(f"tournament {tid} is not an iterate run's")
    return rows[0]["id"]


def runs(store: Store) -> list[dict]:
    out = store.query("SELECT * FROM iterate_runs ORDER BY id DESC")
    for r in out:
        r["config"] = json.loads(r["config"])
    return out


def finish_run(store: Store, run_id: int, tid: int, status: str, error: str | None = None,
               welfare: float | None = None, best: float | None = None) -> None:
    def tx(cur):
        cur.execute("UPDATE iterate_runs SET status=?, finished_at=?, error=?, welfare=?, best_welfare=? WHERE id=?",
                    (status, time.time(), error, welfare, best, run_id))
        cur.execute("UPDATE tournaments SET status=?, finished_at=? WHERE id=?",
                    ("finished" if status == "finished" else status, time.time(), tid))
    store.write(tx)


def claim(store: Store, run_id: int, tid: int) -> None:
    """Mark the run run by this process, unless another live process runs it (raises TournamentBusy): the
    claim of its tournament row (Store.claim: the check and the claim in one transaction), so two resumes
    of one run can never both write its missing steps."""
    store.claim(tid)
    store.write(lambda cur: cur.execute("UPDATE iterate_runs SET status='running', error=NULL WHERE id=?", (run_id,)))


def release(store: Store, tid: int) -> None:
    """Let another process claim a run this process recorded (its runner process, which claims it)."""
    store.write(lambda cur: cur.execute("UPDATE tournaments SET runner_pid=NULL WHERE id=?", (tid,)))


def first_seq(config: dict, round_: int, player: str, step: int) -> int:
    """The seq of a step's first trial (its episodes are the next `episodes` seqs): the start pair's at 0,
    then per round the row's turn, then the column's, each with slots for steps 0 (the current program),
    1..T (the writer's candidates) and T + 1 (the kept one on fresh episodes)."""
    if player == "start":
        return 0
    seat = ("row", "col").index(player)
    if "protocol" not in config:  # a run stored by an older Arena: steps 1..T only
        return (1 + ((round_ - 1) * 2 + seat) * config["steps"] + step - 1) * config["episodes"]
    slots = config["steps"] + 2
    return (1 + ((round_ - 1) * 2 + seat) * slots + step) * config["episodes"]
