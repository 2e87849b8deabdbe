"""What an iterate run tells a listener while it runs (the app's live view, through its runner process).

`WriterAsked`: a writer step has started (the writer is being asked). `StepStored`: a step's row was
written (or changed: the kept step of a turn gets `kept = 1`); `fields` holds the columns it wrote
(`arena/store/iterate.py`'s STEP_FIELDS, or a subset), keyed by (round, player, step). `RunEnded`: the
run finished, was cancelled or failed. Everything in them is also in the store: a listener that comes
late reads the stored steps and follows the events from then on.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class WriterAsked:
    run_id: int
    round: int
    player: str
    step: int
    program_id: str


@dataclass(frozen=True)
class StepStored:
    run_id: int
    fields: dict = field(default_factory=dict)

    @property
    def key(self) -> tuple[int, str, int]:
        return self.fields["round"], self.fields["player"], self.fields["step"]


@dataclass(frozen=True)
class RunEnded:
    run_id: int
    status: str  # finished | cancelled | failed
    welfare: float | None = None
    best_welfare: float | None = None
    error: str | None = None
