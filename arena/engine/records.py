"""Plain records that flow from the simulator to the store, the events and the analysis.

These are slotted dataclasses rather than pydantic models on purpose: a built-in tournament makes
hundreds of thousands of them per second, and pydantic validation would dominate the cost. They are
created only by core code, so there is nothing to validate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from arena.engine.disclosure import FULL_DISCLOSURE, Disclosure

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
class MatchRules:
    """How long a trial's match lasts and what its programs are shown (the repeated-game axes of a trial).

    The default is today's one-shot game: one round, no continuation, no noise. With `continuation` P the
    match goes on after each round with probability P (capped at `max_rounds`) and `rounds` is 1; `noise`
    flips each intended action to another one with that probability; `recall` is how many past rounds a
    program is shown (None: all); `hidden` shows programs `rounds=None`; `discount` weighs round t by D**t
    in the discounted total (it changes no decision)."""

    rounds: int = 1
    continuation: float | None = None
    noise: float = 0.0
    recall: int | None = None
    max_rounds: int = 1000
    hidden: bool = False
    discount: float = 1.0

    @property
    def one_shot(self) -> bool:
        """Whether a trial under these rules is a one-shot trial (one round, no noise): it then runs and is
        stored as a one-shot trial, with no rounds of a match."""
        return self.rounds == 1 and self.continuation is None and not self.noise

    @property
    def expected_rounds(self) -> float:
        """The mean length of a match under these rules (1/(1−P) for continuation P, truncated by the cap)."""
        if self.continuation is None:
            return float(self.rounds)
        p = self.continuation
        return (1 - p ** self.max_rounds) / (1 - p)

    @property
    def coordinates(self) -> tuple:
        """The part of a trial's grid position these rules are (what tells two cells apart)."""
        return (self.rounds, self.continuation, self.noise, self.recall)

    def label(self) -> str:
        """A short name for these rules: '' for a one-shot game, e.g. '10 rounds', 'P=0.9, noise 0.1'."""
        if self.one_shot and self.recall is None:
            return ""
        parts = [f"P={self.continuation:g}" if self.continuation is not None else
                 ("1 round" if self.rounds == 1 else f"{self.rounds} rounds")]
        if self.noise:
            parts.append(f"noise {self.noise:g}")
        if self.recall is not None:
            parts.append(f"recall {self.recall}")
        return ", ".join(parts)


ONE_SHOT = MatchRules()


@dataclass(frozen=True, slots=True)
class RoundRecord:
    """One round of a match as played: each seat's intended action, the action played (after noise),
    the payoffs of the played actions."""

    round: int
    row_intended: str
    col_intended: str
    row_action: str
    col_action: str
    row_payoff: float
    col_payoff: float
    cooperative: bool  # a Markov game's step: whether food (a reward) was collected
    state: tuple[dict, dict] | None = None  # a Markov game: the state this step was decided on, both seats' views


@dataclass(frozen=True, slots=True)
class Play:
    """What the programs of one round are told of the match: the round, the rules, the rounds so far, and
    in a Markov game the state (both seats' views, engine/lbf.py)."""

    round: int
    rules: MatchRules
    history: tuple[RoundRecord, ...] = ()
    state: tuple[dict, dict] | None = None

    def window(self) -> tuple[RoundRecord, ...]:
        """The rounds programs are shown: the last `recall` (all when recall is None), oldest first."""
        k = self.rules.recall
        return self.history if k is None else (self.history[-k:] if k else ())

    def seen(self, seat: str) -> list[dict]:
        """The last `recall` rounds from one seat, oldest first: me, opponent (actions as played), my_payoff,
        opponent_payoff."""
        return history_dicts(self.rows(seat))

    def rows(self, seat: str) -> list[tuple]:
        """`seen` as (me, opponent, my_payoff, opponent_payoff) tuples: the form that crosses to the sandbox
        (a tuple crosses much faster than a dict, docs/performance.md; the sandbox's helpers make the dicts). In a Markov game
        each tuple has a fifth item, the state that step was decided on from this seat."""
        if self.state is not None:
            if seat == "row":
                return [(r.row_action, r.col_action, r.row_payoff, r.col_payoff, r.state[0]) for r in self.window()]
            return [(r.col_action, r.row_action, r.col_payoff, r.row_payoff, r.state[1]) for r in self.window()]
        if seat == "row":
            return [(r.row_action, r.col_action, r.row_payoff, r.col_payoff) for r in self.window()]
        return [(r.col_action, r.row_action, r.col_payoff, r.row_payoff) for r in self.window()]

    @property
    def rounds(self) -> int | None:
        """The horizon programs are told: the fixed number of rounds, None when hidden or open-ended."""
        if self.state is not None:  # a Markov game: the env's episode length
            return self.state[0]["max_steps"]
        r = self.rules
        return None if r.hidden or r.continuation is not None else r.rounds


FIRST_ROUND = Play(0, ONE_SHOT)  # what a one-shot trial's programs are told


def history_dicts(rows: list[tuple]) -> list[dict]:
    """ctx["history"] from Play.rows (a Markov game's with the step's state; as JSON text in a sandbox request's
    rows, code.match_ctx)."""
    if rows and len(rows[0]) == 5:
        if isinstance(rows[0][4], str):
            return [{"me": a, "opponent": b, "my_payoff": x, "opponent_payoff": y, "state": json.loads(st)}
                    for a, b, x, y, st in rows]
        return [{"me": a, "opponent": b, "my_payoff": x, "opponent_payoff": y, "state": st} for a, b, x, y, st in rows]
    return [{"me": a, "opponent": b, "my_payoff": x, "opponent_payoff": y} for a, b, x, y in rows]


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
    match: MatchRules = ONE_SHOT
    play: Play | None = None  # the round under way (set by the match engine for each round; None: one-shot)
    disclosure: Disclosure = FULL_DISCLOSURE  # what its programs are shown of each other (engine/disclosure.py)

    @property
    def key(self) -> tuple:
        return (self.game, self.row, self.col, self.epsilon, self.max_depth, self.temperature, self.index,
                *self.match.coordinates, self.disclosure.level)

    @property
    def seen_play(self) -> Play:
        """The round as the programs see it (a one-shot trial: round 0 of a one-round game)."""
        return self.play if self.play is not None else FIRST_ROUND


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
    round: int = 0  # the round of the match this node decides in

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
    cooperative: bool | float | None = None  # a match: the share of its rounds that were cooperative
    status: str = OK
    error: str | None = None
    duration_ms: float = 0.0
    rounds: list[RoundRecord] = field(default_factory=list)  # a match's rounds; [] for a one-shot trial

    @property
    def n_rounds(self) -> int:
        return len(self.rounds) if self.rounds else 1

    @property
    def n_calls(self) -> int:
        return sum(len(n.calls) for n in self.nodes)
