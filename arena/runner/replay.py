"""`arena replay ID`: rebuild a tournament's trials from its own stored LLM calls, no provider contacted.

A replay is a new tournament (marked `replay_of` ID) with ID's config and program and game versions.
The simulator runs every trial ID stored again (the same seeds, so the same ε draws and tree), and each
LLM node is answered by the calls ID stored for that node. First the node's messages are rebuilt from the
stored programs and game (prompts.messages, as the LLM service builds them: its seat, mode, opponent and
simulated action; a corrective retry quotes the stored answer) and compared with each stored call's
messages; then the answer is parsed again and must name the node's stored action. Either difference
stops the replay (ReplayDiverged, naming the trial, node, call and message). The replay's trials are
then compared with ID's. Whatever ran since (other
tournaments, `--no-cache` runs, another server behind the same URL) the table is the same: nothing is
read from the response cache.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from arena import __version__
from arena.engine.grid import TournamentConfig
from arena.engine.records import CallRecord, Node, TrialSpec
from arena.errors import ArenaError
from arena.library.games import Game
from arena.library.programs import LLMProgram
from arena.llm import prompts
from arena.llm.service import LLMMove
from arena.llm.structured import JSON_SCHEMA
from arena.runner.tournament import TournamentRunner, fingerprint, load_stored
from arena.store.database import Store

# what must be equal, trial by trial, between a tournament and its replay
COMPARED = ("seq", "game", "row_program", "col_program", "epsilon", "max_depth", "temperature", "trial_index",
            "row_action", "col_action", "row_payoff", "col_payoff", "status", "n_nodes", "n_calls", "rounds",
            "continuation", "noise", "recall", "n_rounds", "row_total", "col_total", "disclosure")


class ReplayDiverged(ArenaError):
    """The replay asked for an answer the tournament did not store, a stored call's messages are not the
    ones rebuilt from the stored programs (the prompts changed since, or the stored calls were edited), or
    a stored answer no longer parses to the stored action (the engine or the answer parsing changed)."""


# (structured: a JSON-schema request?, the prompt version of the stored call) -> the node's answer messages
Build = Callable[[bool, int], list[dict]]


def _params(call: Mapping) -> dict:
    raw = call.get("params")
    return (json.loads(raw) if isinstance(raw, str) else dict(raw)) if raw else {}


def expected_messages(calls: Sequence[Mapping], build: Build, actions: list[str]) -> list[list[dict]]:
    """The messages each stored call of one node was sent, rebuilt as the LLM service builds them: an
    answer (each attempt the same) from the node's prompt, in JSON-schema form where the call asked for
    it and in the prompt version it records (1 when it records none: stored before versions); a corrective
    retry the last answer's messages, the reply it quoted, then prompts.correction."""
    out: list[list[dict]] = []
    answer: list[dict] | None = None
    reply: str | None = None
    for call in calls:
        params = _params(call)
        if params.get("purpose") == "correction" and answer is not None:
            out.append([*answer, {"role": "assistant", "content": reply},
                        {"role": "user", "content": prompts.correction(actions)}])
            continue
        answer = build(params.get("structured", params.get("constraint")) == JSON_SCHEMA, params.get("prompt", 1))
        out.append(answer)
        if call.get("response") is not None:
            reply = call["response"]
    return out


def prompt_difference(stored: list[dict], rebuilt: list[dict]) -> str | None:
    """Where two message lists first differ, in words (None when equal)."""
    if stored == rebuilt:
        return None
    if len(stored) != len(rebuilt):
        return f"{len(stored)} messages stored, {len(rebuilt)} rebuilt"
    for k, (a, b) in enumerate(zip(stored, rebuilt), 1):
        if a == b:
            continue
        if a.get("role") != b.get("role"):
            return f"message {k} is {a.get('role')!r} stored, {b.get('role')!r} rebuilt"
        x, y = str(a.get("content")), str(b.get("content"))
        at = next((i for i, (p, q) in enumerate(zip(x, y)) if p != q), min(len(x), len(y)))
        return f"message {k} ({a.get('role')}) differs at character {at}: stored {x[at:at + 40]!r}, rebuilt {y[at:at + 40]!r}"
    return "the messages differ"  # the same roles and contents, other keys


def node_prompt_divergence(calls: Sequence[Mapping], build: Build, actions: list[str]) -> str | None:
    """The first stored call of a node whose messages differ from the rebuilt ones, in words (None: none)."""
    for k, (call, rebuilt) in enumerate(zip(calls, expected_messages(calls, build, actions)), 1):
        stored = call["messages"]
        diff = prompt_difference(json.loads(stored) if isinstance(stored, str) else stored, rebuilt)
        if diff is not None:
            return f"the prompt of call {k} of {len(calls)} is not the one rebuilt from the stored programs: {diff}"
    return None


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

    def move(self, spec: TrialSpec, node: Node, game: Game, build: Build | None = None) -> LLMMove:
        """The node's stored answer, after its stored prompts are checked against `build`'s."""
        stored = self.nodes.get((spec.seq, node.index))
        where = f"trial {spec.seq} ({spec.row} vs {spec.col}, index {spec.index}), node {node.index}"
        if stored is None:
            raise ReplayDiverged(f"replay of tournament {self.source} diverged at {where}: no stored call for it")
        diff = node_prompt_divergence(stored.calls, build, game.actions) if build is not None else None
        if diff is not None:
            raise ReplayDiverged(f"replay of tournament {self.source} diverged at {where}: {diff}")
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
        mode = prompts.GROUND if self.simulates else prompts.IMAGINE  # as LLMAgent.ground
        return self.answers.move(spec, node, game, self._build(game, opp, node, mode, None, spec))

    async def respond(self, game: Game, opp, u: float, opp_action: str, spec: TrialSpec, node: Node) -> LLMMove:
        return self.answers.move(spec, node, game, self._build(game, opp, node, prompts.RESPOND, opp_action, spec))

    def _build(self, game: Game, opp, node: Node, mode: str, opp_action: str | None, spec: TrialSpec) -> Build:
        """The node's messages as LLMService.decide builds them (the stored program, its opponent's source, and
        in a match the round and its history)."""
        return lambda structured, version: prompts.decision_messages(
            self.program.system_prompt, game, node.side, opp, mode, opp_action, structured, spec.play,
            spec.disclosure, spec.seed, version)


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
