"""The wire format between a runner process and whoever is attached: newline-delimited JSON, one message a line.

Runner → client: `Hello` first (the state at the moment of attaching: what a late attacher cannot read
from the store, i.e. the trees of the LLM trials in flight, and the id of the last stored trial, so that
the client seeds its counts from the store up to exactly that trial), then the tournament's events
(`arena/engine/events.py`) as `Started`, `Planned`, `Resolved`, `Trials`, `Batch` (a large sample tree's
first nodes ahead of it in `SampleNodes` lines), `NoticeMsg`, `Finished`.
Client → runner: `Control` (pause, unpause, cancel).

Pydantic models at the boundary. The records' models (`SpecMsg`, `NodeMsg`, `CallMsg`, `ResultMsg` and those
inside them) are derived from the record dataclasses (`wire_model`): a field a record gains travels without
being written twice (tests/test_wire.py checks every field with a non-default value). `decode` turns a line back into the engine's own event records, which
the TUI's session consumes exactly as it does in-process events, but for one of its own: built-in
batches travel summed per cell (`Batch` → `BatchStored`: counts, not 2,000 trials to decode in the
UI's process) with one trial whole (the one the Live screen shows); the trials are in the store.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections import Counter
from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal, Self, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model

from arena.engine.cells import CELL_SUMS, cell_sums
from arena.engine.events import (
    Event,
    Notice,
    NodeResolved,
    TournamentFinished,
    TournamentStarted,
    TrialPlanned,
    TrialsFinished,
)
from arena.engine.records import CallRecord, MatchRules, Node, Play, RoundRecord, TrialResult, TrialSpec


class WireModel(BaseModel):
    """A message of the runners' wire format (a tournament's, an iterate run's): strict, one JSON line (`line`)."""

    model_config = ConfigDict(extra="forbid")


class _Record(WireModel):
    """The wire form of a record type (engine/records.py), derived from its dataclass fields (`wire_model`):
    one definition, so a field a record gains travels without anyone writing it twice."""

    __record__: ClassVar[type]
    __plain__: ClassVar[tuple[str, ...]]  # the fields that never hold a record: passed as they are
    __nested__: ClassVar[tuple[str, ...]]  # those that may (a record, or a list, tuple or optional of one)

    @classmethod
    def of(cls, record) -> Self:
        return cls.model_validate(record, from_attributes=True)

    def record(self):
        """The record again (nested records too; tuples stay tuples)."""
        cls, values = type(self), self.__dict__
        kw = {name: values[name] for name in cls.__plain__}
        for name in cls.__nested__:
            kw[name] = _back(values[name])
        return cls.__record__(**kw)


def _back(value):
    if isinstance(value, _Record):
        return value.record()
    if isinstance(value, list):
        return [_back(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_back(v) for v in value)
    return value


_WIRE: dict[type, type[_Record]] = {}


def wire_model(rtype: type) -> type[_Record]:
    """The pydantic model of record dataclass `rtype`: the same fields, types and defaults, a record type
    inside (a field, a list, a tuple or an optional of one) by its own wire model."""
    model = _WIRE.get(rtype)
    if model is not None:
        return model
    hints = typing.get_type_hints(rtype)
    fields: dict = {}
    for f in dataclasses.fields(rtype):
        if f.default is not dataclasses.MISSING:
            default = wire_model(type(f.default)).of(f.default) if dataclasses.is_dataclass(f.default) else f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = Field(default_factory=f.default_factory)
        else:
            default = ...
        fields[f.name] = (_wire_type(hints[f.name]), default)
    model = _WIRE[rtype] = create_model(f"{rtype.__name__}Msg", __base__=_Record, **fields)
    model.__record__ = rtype
    nested = {name for name, (tp, _default) in fields.items() if _holds_record(tp)}
    model.__plain__ = tuple(name for name in fields if name not in nested)
    model.__nested__ = tuple(name for name in fields if name in nested)
    return model


def _holds_record(tp) -> bool:
    """Whether a wire type is a record's model or has one inside (list, tuple, dict, optional)."""
    if isinstance(tp, type) and issubclass(tp, _Record):
        return True
    return any(_holds_record(a) for a in typing.get_args(tp))


def _wire_type(tp):
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return wire_model(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return typing.Union[tuple(_wire_type(a) for a in args)]
    if origin in (list, tuple, dict) and args:
        return origin[tuple(a if a is Ellipsis else _wire_type(a) for a in args)]
    return tp


MatchMsg = wire_model(MatchRules)
RoundMsg = wire_model(RoundRecord)
PlayMsg = wire_model(Play)
SpecMsg = wire_model(TrialSpec)
CallMsg = wire_model(CallRecord)
NodeMsg = wire_model(Node)
ResultMsg = wire_model(TrialResult)  # Batch.sample: a built-in trial whole; Trials: LLM trials


class Batch(WireModel):
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
    sample: ResultMsg | None = None  # type: ignore[valid-type]  # one trial whole, at most a few times a second




SAMPLE_CHUNK = 500  # nodes a line of a sample tree holds at most (docs/performance.md: the decoding times)


class SampleNodes(WireModel):
    """The first nodes of the next Batch's sample tree, in order. A tree of thousands of nodes travels as
    several lines, the Batch carrying the last of them: decoding one line holds the interpreter for the
    whole line, and with it the app's UI thread, so no line holds more than SAMPLE_CHUNK nodes."""

    kind: Literal["sample-nodes"] = "sample-nodes"
    tournament_id: int
    nodes: list[NodeMsg]  # type: ignore[valid-type]


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


class PlannedMsg(WireModel):
    spec: SpecMsg  # type: ignore[valid-type]
    nodes: list[NodeMsg]  # type: ignore[valid-type]


class Hello(WireModel):
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


class Started(WireModel):
    kind: Literal["started"] = "started"
    tournament_id: int
    total: int
    already_done: int
    config: dict


class Planned(WireModel):
    kind: Literal["planned"] = "planned"
    tournament_id: int
    trial: PlannedMsg


class Resolved(WireModel):
    kind: Literal["resolved"] = "resolved"
    tournament_id: int
    seq: int
    node: NodeMsg  # type: ignore[valid-type]


class Trials(WireModel):
    kind: Literal["trials"] = "trials"
    tournament_id: int
    results: list[ResultMsg]  # type: ignore[valid-type]
    done: int
    total: int


class NoticeMsg(WireModel):
    kind: Literal["notice"] = "notice"
    message: str
    level: str = "info"


class Finished(WireModel):
    kind: Literal["finished"] = "finished"
    tournament_id: int
    status: str
    done: int
    total: int
    counts: dict = Field(default_factory=dict)
    elapsed_s: float = 0.0
    error: str | None = None
    providers: dict = Field(default_factory=dict)


class Control(WireModel):
    kind: Literal["control"] = "control"
    op: Literal["pause", "unpause", "cancel"]


ServerMessage = Annotated[Union[Hello, Started, Planned, Resolved, Trials, Batch, SampleNodes, NoticeMsg,
                                Finished], Field(discriminator="kind")]
_SERVER = TypeAdapter(ServerMessage)


def encode(event: Event, *, sample: int | None = 0) -> bytes:
    """One event as a line. A batch of several (built-in) results is summed per cell (`Batch`), with the
    one at position `sample` whole (None: none); a sample of more than SAMPLE_CHUNK nodes sends its first
    nodes ahead in `SampleNodes` lines."""
    msg: WireModel
    ahead = b""
    if isinstance(event, NodeResolved):
        msg = Resolved(tournament_id=event.tournament_id, seq=event.spec.seq, node=NodeMsg.of(event.node))
    elif isinstance(event, TrialsFinished) and len(event.results) > 1:  # built-in trials: summed
        rs = event.results
        shown = None if sample is None else rs[sample % len(rs)]
        if shown is not None and len(shown.nodes) > SAMPLE_CHUNK:
            nodes = shown.nodes
            last = (len(nodes) - 1) // SAMPLE_CHUNK * SAMPLE_CHUNK  # where the Batch's own part starts
            ahead = b"".join(line(SampleNodes(tournament_id=event.tournament_id,
                                              nodes=[NodeMsg.of(n) for n in nodes[i:i + SAMPLE_CHUNK]]))
                             for i in range(0, last, SAMPLE_CHUNK))
            shown = dataclasses.replace(shown, nodes=nodes[last:])
        msg = Batch(tournament_id=event.tournament_id, done=event.done, total=event.total, n=len(rs),
                    counts=dict(Counter(r.status for r in rs)),
                    cells=[[*k, *v] for k, v in cell_sums(rs).items()],
                    sample=None if shown is None else ResultMsg.of(shown))
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
    return ahead + line(msg)


def line(msg: WireModel) -> bytes:
    """The framing: a message as one line of JSON."""
    return msg.model_dump_json().encode() + b"\n"


def parse(data: bytes | str) -> (Hello | Started | Planned | Resolved | Trials | Batch | SampleNodes | NoticeMsg
                                 | Finished):
    """A runner's line as its message; raises pydantic.ValidationError on anything else."""
    return _SERVER.validate_json(data)


def parse_control(data: bytes | str) -> Control:
    return Control.model_validate_json(data)


_NODE_FIELDS = tuple(f.name for f in dataclasses.fields(Node))


class Decoder:
    """Turns a runner's messages back into engine events, keeping the nodes of the LLM trials in flight so
    that a `Resolved` updates the very Node objects the client was given with `Planned` (as in-process)."""

    def __init__(self) -> None:
        self.inflight: dict[int, tuple[TrialSpec, list[Node]]] = {}
        self._sample_nodes: list[Node] = []  # the next Batch's sample tree so far (SampleNodes)

    def events(self, msg) -> list[Event]:
        if isinstance(msg, Resolved):
            trial = self.inflight.get(msg.seq)
            if trial is None or msg.node.index >= len(trial[1]):
                return []
            n = trial[1][msg.node.index]
            new = msg.node.record()
            for name in _NODE_FIELDS:  # every field: the code answer, the calls, what a Node gains
                setattr(n, name, getattr(new, name))
            return [NodeResolved(msg.tournament_id, trial[0], n)]
        if isinstance(msg, Trials):
            for r in msg.results:
                self.inflight.pop(r.spec.seq, None)
            results = [r.record() for r in msg.results]
            return [TrialsFinished(msg.tournament_id, results, msg.done, msg.total)]
        if isinstance(msg, SampleNodes):
            self._sample_nodes.extend(n.record() for n in msg.nodes)
            return []
        if isinstance(msg, Batch):
            n = len(CELL_SUMS)
            sample = None if msg.sample is None else msg.sample.record()
            if sample is not None and self._sample_nodes:
                sample.nodes[:0] = self._sample_nodes
            self._sample_nodes = []
            return [BatchStored(msg.tournament_id, msg.done, msg.total, msg.n, msg.counts,
                                [(tuple(c[:-n]), c[-n:]) for c in msg.cells], sample)]
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
