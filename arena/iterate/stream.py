"""The wire format between an iterate run's runner process and whoever is attached.

The framing and the control messages are the tournaments' (`arena/runner/stream.py`): newline-delimited
JSON, one pydantic message a line, `Control` (pause, unpause, cancel) from client to runner, `NoticeMsg`
for notices. Runner → client: `Hello` first (the run, the runner's pid, whether it is paused, the writer
step in progress), then the run's events (`arena/iterate/events.py`) as `Writing`, `Step` and `Ended`.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from arena.engine.events import Notice
from arena.iterate.events import RunEnded, StepStored, WriterAsked
from arena.runner.stream import NoticeMsg


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Writing(_Msg):
    kind: Literal["iterate-writing"] = "iterate-writing"
    run_id: int
    round: int
    player: str
    step: int
    program_id: str

    def event(self) -> WriterAsked:
        return WriterAsked(self.run_id, self.round, self.player, self.step, self.program_id)


class Hello(_Msg):
    """The runner's state when a client attaches (the steps so far are in the store)."""

    kind: Literal["iterate-hello"] = "iterate-hello"
    run_id: int
    tournament_id: int
    pid: int
    paused: bool
    writing: Writing | None = None  # the writer step in progress, if one is


class Step(_Msg):
    kind: Literal["iterate-step"] = "iterate-step"
    run_id: int
    fields: dict


class Ended(_Msg):
    kind: Literal["iterate-ended"] = "iterate-ended"
    run_id: int
    status: Literal["finished", "cancelled", "failed"]
    welfare: float | None = None
    best_welfare: float | None = None
    error: str | None = None


Message = Annotated[Union[Hello, Writing, Step, Ended, NoticeMsg], Field(discriminator="kind")]
_SERVER = TypeAdapter(Message)


def message(event) -> _Msg | NoticeMsg:
    if isinstance(event, WriterAsked):
        return Writing(run_id=event.run_id, round=event.round, player=event.player, step=event.step,
                       program_id=event.program_id)
    if isinstance(event, StepStored):
        return Step(run_id=event.run_id, fields=event.fields)
    if isinstance(event, RunEnded):
        return Ended(run_id=event.run_id, status=event.status, welfare=event.welfare,
                     best_welfare=event.best_welfare, error=event.error)
    if isinstance(event, Notice):
        return NoticeMsg(message=event.message, level=event.level)
    raise TypeError(f"not an iterate event: {event!r}")


def encode(event) -> bytes:
    """One event as a line."""
    return message(event).model_dump_json().encode() + b"\n"


def parse(data: bytes | str) -> Hello | Writing | Step | Ended | NoticeMsg:
    """A runner's line as its message; raises pydantic.ValidationError on anything else."""
    return _SERVER.validate_json(data)


def event_of(msg) -> WriterAsked | StepStored | RunEnded | Notice | None:
    """A message as the event it carries (None for a Hello)."""
    if isinstance(msg, Writing):
        return msg.event()
    if isinstance(msg, Step):
        return StepStored(msg.run_id, msg.fields)
    if isinstance(msg, Ended):
        return RunEnded(msg.run_id, msg.status, msg.welfare, msg.best_welfare, msg.error)
    if isinstance(msg, NoticeMsg):
        return Notice(msg.message, msg.level)
    return None
