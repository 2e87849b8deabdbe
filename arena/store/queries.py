"""Reading the store: a tournament's row, the tournaments, a tournament's program and game snapshot, its
trials (a page at a time), a trial's rounds, nodes and LLM calls, and which grid positions are stored."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from arena.errors import LookupFailed
from arena.store.processes import pid_alive


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
        if self.status == "running" and not pid_alive(self.runner_pid, self.started_at):
            return "interrupted"
        return self.status


class Queries:
    """The Store's reads (a mixin: `self.query(sql, params)` returns rows as dicts)."""

    path: object
    conn: Any
    _lock: threading.RLock
    query: Any

    def last_trial_id(self) -> int:
        """trials.id of the newest stored trial (0: none); every trial written later has a larger id."""
        return self.query("SELECT coalesce(max(id), 0) AS m FROM trials")[0]["m"]

    def call_latencies(self) -> dict[str, tuple[float, int]]:
        """Per provider: the mean latency (ms) of its stored answered, uncached LLM calls, and their number."""
        rows = self.query("SELECT provider, avg(latency_ms) AS ms, count(*) AS n FROM llm_calls "
                          "WHERE cached = 0 AND status = 'ok' AND latency_ms IS NOT NULL GROUP BY provider")
        return {r["provider"]: (r["ms"], r["n"]) for r in rows}

    def tournament(self, tid: int | None = None) -> TournamentRow:
        """A tournament by id; None means the most recent one."""
        return self._row(self.row_or_newest("tournaments", tid, "tournament", "arena run"))

    def row_or_newest(self, table: str, row_id: int | None, what: str, command: str) -> dict:
        """The row of `table` (one of Arena's own tables, never a caller's text) with this id; None: the
        newest. LookupFailed names `what` and the store, and when the table is empty, the `command` that
        starts one."""
        if row_id is None:
            rows = self.query(f"SELECT max(id) AS id FROM {table}")
            row_id = rows[0]["id"] if rows else None
            if row_id is None:
                raise LookupFailed(f"no {what}s in {self.path} yet; start one with `{command}`")
        rows = self.query(f"SELECT * FROM {table} WHERE id=?", (row_id,))
        if not rows:
            raise LookupFailed(f"no {what} {row_id} in {self.path}")
        return rows[0]

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
