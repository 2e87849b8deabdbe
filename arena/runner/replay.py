"""`arena replay ID`: rebuild a tournament's trials from its own stored LLM calls, no provider contacted.

A replay is a new tournament (marked `replay_of` ID) with ID's config and program and game versions.
The simulator runs every trial ID stored again (the same seeds, so the same ε draws and tree), and each
LLM node is answered by the calls ID stored for that node: the answer is parsed again and must name the
node's stored action. The replay's trials are then compared with ID's. Whatever ran since (other
tournaments, `--no-cache` runs, another server behind the same URL) the table is the same: nothing is
read from the response cache.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from arena import __version__
from arena.engine.grid import TournamentConfig
from arena.engine.records import CallRecord, Node, TrialSpec
from arena.errors import ArenaError
from arena.library.games import Game
from arena.library.programs import LLMProgram
from arena.llm import prompts
from arena.llm.service import LLMMove
from arena.runner.tournament import TournamentRunner, fingerprint, load_stored
from arena.store.database import Store

# what must be equal, trial by trial, between a tournament and its replay
COMPARED = ("seq", "game", "row_program", "col_program", "epsilon", "max_depth", "temperature", "trial_index",
            "row_action", "col_action", "row_payoff", "col_payoff", "status", "n_nodes", "n_calls")


class ReplayDiverged(ArenaError):
    """The replay asked for an answer the tournament did not store, or a stored answer no longer parses to
    the stored action (the engine or the prompts changed since)."""


@dataclass
class _Stored:
    action: str | None
    error: str | None
    calls: list[dict]


class StoredAnswers:
    """An LLM backend (runner.LLMBackend) answering each node from one tournament's stored calls."""

    secrets: list[str] = []

    def __init__(self, store: Store, source: int):
        self.source = source
        self.nodes: dict[tuple[int, int], _Stored] = {}
        rows = store.query(
            "SELECT t.seq, n.idx, n.action AS node_action, n.error AS node_error, c.* FROM llm_calls c "
            "JOIN nodes n ON n.id = c.node_id JOIN trials t ON t.id = c.trial_id WHERE c.tournament_id=? "
            "ORDER BY c.id", (source,))
        for r in rows:
            entry = self.nodes.setdefault((r["seq"], r["idx"]), _Stored(r["node_action"], r["node_error"], []))
            entry.calls.append(r)

    def check(self, programs: list[LLMProgram], config: TournamentConfig) -> None:
        pass

    async def prepare(self, programs: list[LLMProgram], config: TournamentConfig) -> None:
        pass

    def agent(self, program: LLMProgram, config: TournamentConfig) -> _ReplayAgent:
        return _ReplayAgent(program, self, simulates=config.simulation == "run")

    def stats(self) -> dict:
        return {}

    async def aclose(self) -> None:
        pass

    def move(self, spec: TrialSpec, node: Node, game: Game) -> LLMMove:
        stored = self.nodes.get((spec.seq, node.index))
        where = f"trial {spec.seq} ({spec.row} vs {spec.col}, index {spec.index}), node {node.index}"
        if stored is None:
            raise ReplayDiverged(f"replay of tournament {self.source} diverged at {where}: no stored call for it")
        calls = [CallRecord(c["provider"], c["model"], json.loads(c["messages"]), c["response"], c["parsed_action"],
                            c["attempt"], c["status"], c["error"], c["latency_ms"] or 0.0, c["prompt_tokens"],
                            c["completion_tokens"], True, json.loads(c["params"]) if c["params"] else {},
                            c["started_at"] or 0.0) for c in stored.calls]
        last = stored.calls[-1]
        action = prompts.parse_action(last["response"], game.actions) if last["response"] else None
        if action != stored.action:
            raise ReplayDiverged(f"replay of tournament {self.source} diverged at {where}: the stored answer parses "
                                 f"to {action!r}, the stored action is {stored.action!r}")
        if action is None:
            return LLMMove(None, stored.error, last["status"] == "refusal", calls)
        return LLMMove(action, None, False, calls)


class _ReplayAgent:
    is_async = True

    def __init__(self, program: LLMProgram, answers: StoredAnswers, simulates: bool):
        self.program = program
        self.simulates = simulates
        self.epsilon = program.epsilon
        self.answers = answers

    async def ground(self, game: Game, opp, u: float, spec: TrialSpec, node: Node) -> LLMMove:
        return self.answers.move(spec, node, game)

    async def respond(self, game: Game, opp, u: float, opp_action: str, spec: TrialSpec, node: Node) -> LLMMove:
        return self.answers.move(spec, node, game)


def replay_runner(store: Store, source: int, **kw) -> TournamentRunner:
    """A new tournament replaying `source`'s stored trials from its stored calls (see the module)."""
    stored = load_stored(store, source)
    config = stored.config.model_copy(update={"name": f"replay of {stored.row.id}"})
    fp = "replay:" + fingerprint(config, stored.programs.values(), stored.games.values())  # never found by `run`
    tid = store.create_tournament(config, stored.programs.values(), stored.games.values(), config.total_trials,
                                  __version__, fp, replay_of=stored.row.id)
    runner = TournamentRunner(store, tid, config, stored.programs, stored.games, backend=StoredAnswers(store, source),
                              **kw)
    done = store.completed(stored.row.id, config.total_trials)
    runner.skip = bytearray(1 - d for d in done)  # only what the source stored
    return runner


def compare(store: Store, source: int, replay: int) -> list[int]:
    """Grid positions whose trial differs between a tournament and its replay (missing ones included)."""
    cols = ", ".join(COMPARED)
    a = {r["seq"]: r for r in store.query(f"SELECT {cols} FROM trials WHERE tournament_id=?", (source,))}
    b = {r["seq"]: r for r in store.query(f"SELECT {cols} FROM trials WHERE tournament_id=?", (replay,))}
    return sorted(seq for seq in a.keys() | b.keys() if a.get(seq) != b.get(seq))
