"""Writing to the store: the statements (prepared once by sqlite3's statement cache: the SQL text of each
is a constant), a tournament's rows, a batch of finished trials with their nodes, rounds and LLM calls in
one transaction, and the LLM calls of other writers (store/iterate.py).

A trial and its nodes and LLM calls are written together in one transaction; a unique index on the
trial's coordinates makes a second write of the same trial a no-op, so re-running or resuming never
duplicates a trial. Rows of `executemany` are built in one pass over a batch.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence

from pydantic import BaseModel

from arena.errors import ArenaError, LookupFailed
from arena.engine.lbf import state_text
from arena.engine.match import totals
from arena.engine.records import OK, ONE_SHOT, SIMULATED, CallRecord, TrialResult
from arena.store.processes import pid_alive
from arena.store.schema import LEGACY_FINGERPRINT

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
CALL_INSERT = "INSERT INTO llm_calls VALUES (" + ", ".join("?" * 20) + ")"


class TournamentBusy(ArenaError):
    """Another live process runs this tournament."""


class Writes:
    """The Store's writes (a mixin: `self.write(fn, *args)` runs fn in one IMMEDIATE transaction)."""

    path: object
    write: Callable

    def create_tournament(self, config: BaseModel, programs: Iterable, games: Iterable, total: int, version: str,
                          fingerprint: str, replay_of: int | None = None) -> int:
        programs, games = list(programs), list(games)
        return self.write(insert_tournament, config, programs, games, total, version, fingerprint, replay_of)

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
            return insert_tournament(cur, config, programs, games, total, version, fingerprint, None), True

        return self.write(tx)

    def claim(self, tid: int, since: float | None = None) -> None:
        """Mark tournament `tid` run by this process, unless another live process runs it: the check and
        the claim in one IMMEDIATE transaction, so two `resume`s can never both run its missing trials."""
        def tx(cur):
            row = cur.execute("SELECT status, runner_pid, started_at FROM tournaments WHERE id=?", (tid,)).fetchone()
            if row is None:
                raise LookupFailed(f"no tournament {tid} in {self.path}")
            status, pid, started = row
            if status == "running" and pid != os.getpid() and pid_alive(pid, started):
                raise TournamentBusy(f"tournament {tid} is being run by another process (pid {pid}); "
                                     "stop that one first, or wait for it to finish")
            cur.execute("UPDATE tournaments SET status='running', runner_pid=?, started_at=?, reason=NULL "
                        "WHERE id=?", (os.getpid(), time.time(), tid))

        self.write(tx)

    def update_settings(self, tid: int, config: BaseModel) -> None:
        """A continued run's own limits and name (fields that do not determine the trials)."""
        self.write(lambda cur: cur.execute("UPDATE tournaments SET config=?, name=? WHERE id=?",
                                            (config.model_dump_json(), config.name, tid)))

    def mark_running(self, tid: int) -> None:
        self.write(lambda cur: cur.execute(
            "UPDATE tournaments SET status='running', runner_pid=?, started_at=? WHERE id=?",
            (os.getpid(), time.time(), tid)))

    def set_runner_socket(self, tid: int, path: str | None) -> None:
        """Where the runner process of tournament `tid` listens (None once it has ended)."""
        self.write(lambda cur: cur.execute("UPDATE tournaments SET runner_socket=? WHERE id=?", (path, tid)))

    def set_status(self, tid: int, status: str, reason: str | None = None) -> None:
        """The tournament's status, with why it failed or was cancelled (None when it finished)."""
        finished = time.time() if status in ("finished", "cancelled", "failed") else None
        self.write(lambda cur: cur.execute(
            "UPDATE tournaments SET status=?, finished_at=?, reason=? WHERE id=?", (status, finished, reason, tid)))

    def write_trials(self, tid: int, results: Sequence[TrialResult]) -> int:
        """Store finished trials with their nodes and calls in one transaction; returns how many were new."""
        if not results:
            return 0
        return self.write(insert_trials, tid, results)


def insert_tournament(cur: sqlite3.Cursor, config: BaseModel, programs: list, games: list, total: int, version: str,
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



def insert_trials(cur: sqlite3.Cursor, tid: int, results: Sequence[TrialResult]) -> int:
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
                               None if x.state is None else state_text(x.state))
                              for x in r.rounds)
        for n in with_calls:
            if call_id is None:
                call_id = cur.execute("SELECT coalesce(max(id), 0) FROM llm_calls").fetchone()[0]
            for c in n.calls:
                call_id += 1
                call_rows.append(call_row(call_id, tid, trial_id, base + n.index, n.program, c))
        node_id += len(nodes)
    if ok_rows:
        cur.executemany(_NODE_INSERT_OK, ok_rows)
    if node_rows:
        cur.executemany(_NODE_INSERT_NULLABLE, node_rows)
    if call_rows:
        cur.executemany(CALL_INSERT, call_rows)
    if round_rows:
        cur.executemany(_ROUND_INSERT, round_rows)
    return inserted



def insert_calls(cur: sqlite3.Cursor, tid: int, trial_id: int, node_id: int, program: str,
                 calls: Sequence[CallRecord]) -> None:
    """LLM calls that belong to no trial's node (trial_id = node_id = 0: an iterate writer's), inside the
    caller's transaction, with ids after the largest stored one."""
    if not calls:
        return
    first = cur.execute("SELECT coalesce(max(id), 0) FROM llm_calls").fetchone()[0] + 1
    cur.executemany(CALL_INSERT, [call_row(first + i, tid, trial_id, node_id, program, c) for i, c in enumerate(calls)])


def call_row(call_id: int, tid: int, trial_id: int, node_id: int, program: str, c: CallRecord) -> tuple:
    return (
        call_id, tid, trial_id, node_id, program, c.provider, c.model, json.dumps(c.messages, ensure_ascii=False),
        json.dumps(c.params, sort_keys=True) if c.params else None, c.response, c.parsed_action, c.attempt,
        c.status, c.error, c.latency_ms, c.prompt_tokens, c.completion_tokens, int(c.cached), c.started_at,
        c.replica,
    )

