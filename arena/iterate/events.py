"""What an iterate run tells a listener while it runs (the app's live view, through its runner process).

`WriterAsked`: a writer step has started (the writer is being asked). `StepStored`: a step's row was
written (or changed: the kept step of a turn gets `kept = 1`); `fields` holds the columns it wrote
(`arena/store/iterate.py`'s STEP_FIELDS, or a subset), keyed by (round, player, step). `RunEnded`: the
run finished, was cancelled or failed.

A meta-rounds run (iterate/metarounds.py) tells instead: `MetaWriterAsked`, a seat's writer is asked for an
attempt (both seats' at once); `AttemptStored`, an attempt's row was written (or labelled by the judge:
then `fields` holds its key and the label), keyed by (seed, meta-round, seat, attempt), its columns
`arena/store/iterate.py`'s META_PROGRAM_FIELDS; `MetaRoundStored`, a meta-round was played, keyed by
(seed, meta-round), its columns META_ROUND_FIELDS. Everything in them is also in the store: a listener that comes
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


@dataclass(frozen=True)
class MetaWriterAsked:
    run_id: int
    seed: int
    meta_round: int
    seat: str
    attempt: int
    program_id: str

    @property
    def key(self) -> tuple[int, int, str, int]:
        return self.seed, self.meta_round, self.seat, self.attempt


@dataclass(frozen=True)
class AttemptStored:
    run_id: int
    fields: dict = field(default_factory=dict)

    @property
    def key(self) -> tuple[int, int, str, int]:
        f = self.fields
        return f["seed"], f["meta_round"], f["seat"], f["attempt"]


@dataclass(frozen=True)
class MetaRoundStored:
    run_id: int
    fields: dict = field(default_factory=dict)

    @property
    def key(self) -> tuple[int, int]:
        return self.fields["seed"], self.fields["meta_round"]
