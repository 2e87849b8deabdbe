"""The wire format between an iterate run's runner process and whoever is attached.

The framing, the message base and the control messages are the tournaments' (`arena/runner/stream.py`:
newline-delimited JSON, one pydantic message a line, `line()`; `Control` (pause, unpause, cancel) from
client to runner, `NoticeMsg` for notices). Runner → client: `Hello` first (the run, the runner's pid,
whether it is paused, the writer calls in progress), then the run's events (`arena/iterate/events.py`) as
`Writing`, `Step` (best response), `MetaWriting`, `Attempt`, `MetaRound` (meta-rounds) and `Ended`.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, TypeAdapter

from arena.engine.events import Notice
from arena.iterate.events import AttemptStored, MetaRoundStored, MetaWriterAsked, RunEnded, StepStored, WriterAsked
from arena.runner.stream import NoticeMsg, WireModel, line


class Writing(WireModel):
    kind: Literal["iterate-writing"] = "iterate-writing"
    run_id: int
    round: int
    player: str
    step: int
    program_id: str

    def event(self) -> WriterAsked:
        return WriterAsked(self.run_id, self.round, self.player, self.step, self.program_id)


class MetaWriting(WireModel):
    kind: Literal["meta-writing"] = "meta-writing"
    run_id: int
    seed: int
    meta_round: int
    seat: str
    attempt: int
    program_id: str

    def event(self) -> MetaWriterAsked:
        return MetaWriterAsked(self.run_id, self.seed, self.meta_round, self.seat, self.attempt, self.program_id)


class Hello(WireModel):
    """The runner's state when a client attaches (the steps so far are in the store)."""

    kind: Literal["iterate-hello"] = "iterate-hello"
    run_id: int
    tournament_id: int
    pid: int
    paused: bool
    writing: Writing | None = None  # best response: the writer step in progress, if one is
    meta_writing: list[MetaWriting] = Field(default_factory=list)  # meta-rounds: the writer calls in flight


class Step(WireModel):
    kind: Literal["iterate-step"] = "iterate-step"
    run_id: int
    fields: dict


class Attempt(WireModel):
    kind: Literal["meta-attempt"] = "meta-attempt"
    run_id: int
    fields: dict


class MetaRound(WireModel):
    kind: Literal["meta-round"] = "meta-round"
    run_id: int
    fields: dict


class Ended(WireModel):
    kind: Literal["iterate-ended"] = "iterate-ended"
    run_id: int
    status: Literal["finished", "cancelled", "failed"]
    welfare: float | None = None
    best_welfare: float | None = None
    error: str | None = None


Message = Annotated[Union[Hello, Writing, Step, MetaWriting, Attempt, MetaRound, Ended, NoticeMsg],
                    Field(discriminator="kind")]
_SERVER = TypeAdapter(Message)
_FIELDS = {StepStored: Step, AttemptStored: Attempt, MetaRoundStored: MetaRound}  # events of (run_id, fields)


def message(event) -> WireModel:
    if isinstance(event, WriterAsked):
        return Writing(run_id=event.run_id, round=event.round, player=event.player, step=event.step,
                       program_id=event.program_id)
    if isinstance(event, MetaWriterAsked):
        return MetaWriting(run_id=event.run_id, seed=event.seed, meta_round=event.meta_round, seat=event.seat,
                           attempt=event.attempt, program_id=event.program_id)
    if type(event) in _FIELDS:
        return _FIELDS[type(event)](run_id=event.run_id, fields=event.fields)
    if isinstance(event, RunEnded):
        return Ended(run_id=event.run_id, status=event.status, welfare=event.welfare,
                     best_welfare=event.best_welfare, error=event.error)
    if isinstance(event, Notice):
        return NoticeMsg(message=event.message, level=event.level)
    raise TypeError(f"not an iterate event: {event!r}")


def encode(event) -> bytes:
    """One event as a line."""
    return line(message(event))


def parse(data: bytes | str):
    """A runner's line as its message; raises pydantic.ValidationError on anything else."""
    return _SERVER.validate_json(data)


def event_of(msg):
    """A message as the event it carries (None for a Hello)."""
    if isinstance(msg, (Writing, MetaWriting)):
        return msg.event()
    for event_type, msg_type in _FIELDS.items():
        if isinstance(msg, msg_type):
            return event_type(msg.run_id, msg.fields)
    if isinstance(msg, Ended):
        return RunEnded(msg.run_id, msg.status, msg.welfare, msg.best_welfare, msg.error)
    if isinstance(msg, NoticeMsg):
        return Notice(msg.message, msg.level)
    return None
