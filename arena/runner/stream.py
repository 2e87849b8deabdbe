"""The wire format between a runner process and whoever is attached: newline-delimited JSON, one message a line.

Runner → client: `Hello` first (the state at the moment of attaching: what a late attacher cannot read
from the store, i.e. the trees of the LLM trials in flight, and the id of the last stored trial, so that
the client seeds its counts from the store up to exactly that trial), then the tournament's events
(`arena/engine/events.py`) as `Started`, `Planned`, `Resolved`, `Trials`, `NoticeMsg`, `Finished`.
Client → runner: `Control` (pause, unpause, cancel).

Pydantic models at the boundary; `decode` turns a line back into the engine's own event records, which
the TUI's session consumes exactly as it does in-process events, but for one of its own: built-in
batches travel summed per cell (`Batch` → `BatchStored`: counts, not 2,000 trials to decode in the
UI's process) with one trial whole (the one the Live screen shows); the trials are in the store.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from arena.engine.events import (
    Event,
    Notice,
    NodeResolved,
    TournamentFinished,
    TournamentStarted,
    TrialPlanned,
    TrialsFinished,
)
from arena.engine.disclosure import FULL_DISCLOSURE, Disclosure
from arena.engine.records import CallRecord, Node, TrialResult, TrialSpec


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SpecMsg(_Msg):
    seq: int
    game: str
    row: str
    col: str
    epsilon: float
    max_depth: int
    temperature: float | None
    index: int
    seed: int
    disclosure: str = "full"
    obfuscate_prompts: str = "shuffle"

    @classmethod
    def of(cls, s: TrialSpec) -> SpecMsg:
        return cls(seq=s.seq, game=s.game, row=s.row, col=s.col, epsilon=s.epsilon, max_depth=s.max_depth,
                   temperature=s.temperature, index=s.index, seed=s.seed, disclosure=s.disclosure.level,
                   obfuscate_prompts=s.disclosure.prompts)

    def record(self) -> TrialSpec:
        d = FULL_DISCLOSURE if self.disclosure == "full" else Disclosure(self.disclosure, self.obfuscate_prompts)
        return TrialSpec(self.seq, self.game, self.row, self.col, self.epsilon, self.max_depth, self.temperature,
                         self.index, self.seed, disclosure=d)


class CallMsg(_Msg):
    provider: str
    model: str
    messages: list[dict]
    response: str | None = None
    parsed_action: str | None = None
    attempt: int = 1
    status: str = "ok"
    error: str | None = None
    latency_ms: float = 0.0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached: bool = False
    params: dict = Field(default_factory=dict)
    started_at: float = 0.0

    @classmethod
    def of(cls, c: CallRecord) -> CallMsg:
        return cls(provider=c.provider, model=c.model, messages=c.messages, response=c.response,
                   parsed_action=c.parsed_action, attempt=c.attempt, status=c.status, error=c.error,
                   latency_ms=c.latency_ms, prompt_tokens=c.prompt_tokens, completion_tokens=c.completion_tokens,
                   cached=c.cached, params=c.params, started_at=c.started_at)

    def record(self) -> CallRecord:
        return CallRecord(self.provider, self.model, self.messages, self.response, self.parsed_action, self.attempt,
                          self.status, self.error, self.latency_ms, self.prompt_tokens, self.completion_tokens,
                          self.cached, self.params, self.started_at)


class NodeMsg(_Msg):
    index: int
    parent: int | None
    side: str
    depth: int
    program: str
    u: float
    mode: str = ""
    action: str | None = None
    error: str | None = None
    calls: list[CallMsg] = Field(default_factory=list)

    @classmethod
    def of(cls, n: Node) -> NodeMsg:
        return cls(index=n.index, parent=n.parent, side=n.side, depth=n.depth, program=n.program, u=n.u, mode=n.mode,
                   action=n.action, error=n.error, calls=[CallMsg.of(c) for c in n.calls])

    def record(self) -> Node:
        return Node(self.index, self.parent, self.side, self.depth, self.program, self.u, self.mode, self.action,
                    self.error, [c.record() for c in self.calls])


class ResultMsg(_Msg):
    spec: SpecMsg
    nodes: list[NodeMsg]  # empty for the built-in trials of a batch but one (they are in the store)
    row_action: str | None = None
    col_action: str | None = None
    row_payoff: float | None = None
    col_payoff: float | None = None
    cooperative: bool | None = None
    status: str = "ok"
    error: str | None = None
    duration_ms: float = 0.0

    @classmethod
    def of(cls, r: TrialResult, nodes: bool = True) -> ResultMsg:
        return cls(spec=SpecMsg.of(r.spec), nodes=[NodeMsg.of(n) for n in r.nodes] if nodes else [],
                   row_action=r.row_action, col_action=r.col_action, row_payoff=r.row_payoff, col_payoff=r.col_payoff,
                   cooperative=r.cooperative, status=r.status, error=r.error, duration_ms=r.duration_ms)

    def record(self) -> TrialResult:
        return TrialResult(self.spec.record(), [n.record() for n in self.nodes], self.row_action, self.col_action,
                           self.row_payoff, self.col_payoff, self.cooperative, self.status, self.error, self.duration_ms)


class Batch(_Msg):
    """A batch of built-in trials stored, summed per cell (what live counts need) with one trial whole
    (the one the Live screen shows); every trial is in the store."""

    kind: Literal["batch"] = "batch"
    tournament_id: int
    done: int
    total: int
    n: int
    counts: dict[str, int]  # trials by status
    # per cell: game, epsilon, max_depth, temperature, row, col, then CELL_SUMS
    cells: list[list]
    sample: ResultMsg | None = None  # one trial whole, at most a few times a second


CELL_SUMS = ("trials", "valid", "cooperative", "refused", "errors", "row_payoff", "col_payoff", "calls")


@dataclass(frozen=True, slots=True)
class BatchStored:
    """The client's event for a `Batch` (TrialsFinished summed): `cells` as (key, sums) pairs."""

    tournament_id: int
    done: int
    total: int
    n: int
    counts: dict
    cells: list[tuple[tuple, list[float]]]
    sample: TrialResult | None


def cell_sums(results) -> dict[tuple, list[float]]:
    """(game, epsilon, max_depth, temperature, row, col) -> CELL_SUMS of `results`."""
    cells: dict[tuple, list[float]] = {}
    for r in results:
        s = r.spec
        key = (s.game, s.epsilon, s.max_depth, s.temperature, s.row, s.col)
        c = cells.get(key)
        if c is None:
            c = cells[key] = [0.0] * len(CELL_SUMS)
        c[0] += 1
        if r.status == "ok":
            c[1] += 1
            c[2] += bool(r.cooperative)
            c[5] += r.row_payoff
            c[6] += r.col_payoff
        elif r.status == "refused":
            c[3] += 1
        elif r.status == "error":
            c[4] += 1
        c[7] += sum(len(n.calls) for n in r.nodes)
    return cells


class PlannedMsg(_Msg):
    spec: SpecMsg
    nodes: list[NodeMsg]


class Hello(_Msg):
    """The runner's state when a client attaches."""

    kind: Literal["hello"] = "hello"
    tournament_id: int
    pid: int
    total: int
    done: int
    paused: bool
    last_trial_id: int  # trials.id of the newest stored trial: the stream carries every later one
    config: dict
    inflight: list[PlannedMsg] = Field(default_factory=list)  # LLM trials in flight, nodes as resolved so far


class Started(_Msg):
    kind: Literal["started"] = "started"
    tournament_id: int
    total: int
    already_done: int
    config: dict


class Planned(_Msg):
    kind: Literal["planned"] = "planned"
    tournament_id: int
    trial: PlannedMsg


class Resolved(_Msg):
    kind: Literal["resolved"] = "resolved"
    tournament_id: int
    seq: int
    node: NodeMsg


class Trials(_Msg):
    kind: Literal["trials"] = "trials"
    tournament_id: int
    results: list[ResultMsg]
    done: int
    total: int


class NoticeMsg(_Msg):
    kind: Literal["notice"] = "notice"
    message: str
    level: str = "info"


class Finished(_Msg):
    kind: Literal["finished"] = "finished"
    tournament_id: int
    status: str
    done: int
    total: int
    counts: dict = Field(default_factory=dict)
    elapsed_s: float = 0.0
    error: str | None = None
    providers: dict = Field(default_factory=dict)


class Control(_Msg):
    kind: Literal["control"] = "control"
    op: Literal["pause", "unpause", "cancel"]


ServerMessage = Annotated[Union[Hello, Started, Planned, Resolved, Trials, Batch, NoticeMsg, Finished],
                          Field(discriminator="kind")]
_SERVER = TypeAdapter(ServerMessage)


def encode(event: Event, *, sample: int | None = 0) -> bytes:
    """One event as a line. A batch of several (built-in) results is summed per cell (`Batch`), with the
    one at position `sample` whole (None: none)."""
    msg: _Msg
    if isinstance(event, NodeResolved):
        msg = Resolved(tournament_id=event.tournament_id, seq=event.spec.seq, node=NodeMsg.of(event.node))
    elif isinstance(event, TrialsFinished) and len(event.results) > 1:  # built-in trials: summed
        rs = event.results
        msg = Batch(tournament_id=event.tournament_id, done=event.done, total=event.total, n=len(rs),
                    counts=dict(Counter(r.status for r in rs)),
                    cells=[[*k, *v] for k, v in cell_sums(rs).items()],
                    sample=None if sample is None else ResultMsg.of(rs[sample % len(rs)]))
    elif isinstance(event, TrialsFinished):
        msg = Trials(tournament_id=event.tournament_id, done=event.done, total=event.total,
                     results=[ResultMsg.of(r) for r in event.results])
    elif isinstance(event, TrialPlanned):
        msg = Planned(tournament_id=event.tournament_id,
                      trial=PlannedMsg(spec=SpecMsg.of(event.spec), nodes=[NodeMsg.of(n) for n in event.nodes]))
    elif isinstance(event, Notice):
        msg = NoticeMsg(message=event.message, level=event.level)
    elif isinstance(event, TournamentStarted):
        msg = Started(tournament_id=event.tournament_id, total=event.total, already_done=event.already_done,
                      config=event.config)
    elif isinstance(event, TournamentFinished):
        msg = Finished(tournament_id=event.tournament_id, status=event.status, done=event.done, total=event.total,
                       counts=event.counts, elapsed_s=event.elapsed_s, error=event.error, providers=event.providers)
    else:  # pragma: no cover - Event is a closed union
        raise TypeError(f"not an event: {event!r}")
    return msg.model_dump_json().encode() + b"\n"


def line(msg: _Msg) -> bytes:
    return msg.model_dump_json().encode() + b"\n"


def parse(data: bytes | str) -> Hello | Started | Planned | Resolved | Trials | Batch | NoticeMsg | Finished:
    """A runner's line as its message; raises pydantic.ValidationError on anything else."""
    return _SERVER.validate_json(data)


def parse_control(data: bytes | str) -> Control:
    return Control.model_validate_json(data)


class Decoder:
    """Turns a runner's messages back into engine events, keeping the nodes of the LLM trials in flight so
    that a `Resolved` updates the very Node objects the client was given with `Planned` (as in-process)."""

    def __init__(self) -> None:
        self.inflight: dict[int, tuple[TrialSpec, list[Node]]] = {}

    def events(self, msg) -> list[Event]:
        if isinstance(msg, Resolved):
            trial = self.inflight.get(msg.seq)
            if trial is None or msg.node.index >= len(trial[1]):
                return []
            n = trial[1][msg.node.index]
            new = msg.node.record()
            n.mode, n.action, n.error, n.calls = new.mode, new.action, new.error, new.calls
            return [NodeResolved(msg.tournament_id, trial[0], n)]
        if isinstance(msg, Trials):
            for r in msg.results:
                self.inflight.pop(r.spec.seq, None)
            results = [r.record() for r in msg.results]
            return [TrialsFinished(msg.tournament_id, results, msg.done, msg.total)]
        if isinstance(msg, Batch):
            n = len(CELL_SUMS)
            return [BatchStored(msg.tournament_id, msg.done, msg.total, msg.n, msg.counts,
                                [(tuple(c[:-n]), c[-n:]) for c in msg.cells],
                                None if msg.sample is None else msg.sample.record())]
        if isinstance(msg, Planned):
            return [self._planned(msg.tournament_id, msg.trial)]
        if isinstance(msg, NoticeMsg):
            return [Notice(msg.message, msg.level)]
        if isinstance(msg, Started):
            return [TournamentStarted(msg.tournament_id, msg.total, msg.already_done, msg.config)]
        if isinstance(msg, Finished):
            self.inflight.clear()
            return [TournamentFinished(msg.tournament_id, msg.status, msg.done, msg.total, msg.counts, msg.elapsed_s,
                                       msg.error, msg.providers)]
        if isinstance(msg, Hello):
            out: list[Event] = [TournamentStarted(msg.tournament_id, msg.total, msg.done, msg.config)]
            out += [self._planned(msg.tournament_id, t) for t in msg.inflight]
            return out
        return []

    def _planned(self, tid: int, t: PlannedMsg) -> TrialPlanned:
        spec, nodes = t.spec.record(), [n.record() for n in t.nodes]
        self.inflight[t.spec.seq] = (spec, nodes)
        return TrialPlanned(tid, spec, nodes)
