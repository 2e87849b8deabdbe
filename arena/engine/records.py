"""Plain records that flow from the simulator to the store, the events and the analysis.

These are slotted dataclasses rather than pydantic models on purpose: a built-in tournament makes
hundreds of thousands of them per second, and pydantic validation would dominate the cost. They are
created only by core code, so there is nothing to validate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Node modes: why a decide() call ended the way it did.
SIMULATED = "simulated"  # simulated the opponent one level deeper and responded to it
GROUNDED = "grounded"  # epsilon coin came up: acted without simulating
CAPPED = "capped"  # max_depth reached: acted without simulating
DIRECT = "direct"  # the program never simulates (CooperateBot, DefectBot, an 'imagine' LLM, ...)

# Trial statuses.
OK = "ok"
REFUSED = "refused"  # an LLM gave no parseable action (after its corrective retry)
ERROR = "error"  # a call failed after all retries, or a program could not run

SIDES = ("row", "col")


@dataclass(frozen=True, slots=True)
class TrialSpec:
    """The coordinates of one trial; `seq` is its position in the tournament's grid."""

    seq: int
    game: str
    row: str
    col: str
    epsilon: float
    max_depth: int
    temperature: float | None
    index: int
    seed: int

    @property
    def key(self) -> tuple:
        return (self.game, self.row, self.col, self.epsilon, self.max_depth, self.temperature, self.index)


@dataclass(slots=True)
class CallRecord:
    """One attempt at one LLM call (retries are separate records)."""

    provider: str
    model: str
    messages: list[dict]
    response: str | None = None
    parsed_action: str | None = None
    attempt: int = 1
    status: str = "ok"  # ok | refusal | error
    error: str | None = None
    latency_ms: float = 0.0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached: bool = False
    params: dict = field(default_factory=dict)  # temperature, seed, response_format kind, ...
    started_at: float = 0.0
    replica: str | None = None  # the base URL (no credentials) that got this attempt; None: from the cache


@dataclass(slots=True)
class Node:
    """One decide() call of the simulation tree. `index`/`parent` are positions within the trial."""

    index: int
    parent: int | None
    side: str  # seat of the deciding program: row | col
    depth: int
    program: str
    u: float  # the node's own uniform draw, for randomised programs
    mode: str = ""
    action: str | None = None
    error: str | None = None
    calls: list[CallRecord] = field(default_factory=list)
    code: dict | None = None  # a code program's answer beyond its action: {value, output} (see engine/code.py)

    @property
    def grounded(self) -> bool:
        return self.mode != SIMULATED


@dataclass(slots=True)
class TrialResult:
    spec: TrialSpec
    nodes: list[Node]
    row_action: str | None = None
    col_action: str | None = None
    row_payoff: float | None = None
    col_payoff: float | None = None
    cooperative: bool | None = None
    status: str = OK
    error: str | None = None
    duration_ms: float = 0.0

    @property
    def n_calls(self) -> int:
        return sum(len(n.calls) for n in self.nodes)
