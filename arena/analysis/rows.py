"""The row types of the analysis tables (pairs, programs, conditions, calls, plot points)."""

from __future__ import annotations

from pydantic import BaseModel

from arena.analysis.stats import Condition


class ConditionKey(BaseModel):
    game: str
    epsilon: float
    max_depth: int
    temperature: float | None

    @property
    def condition(self) -> Condition:
        return (self.game, self.epsilon, self.max_depth, self.temperature)


class PairStats(ConditionKey):
    """The counts and shares of one cell that a running tournament can also keep (analysis/tally.py)."""

    row_program: str
    col_program: str
    trials: int  # stored trials, any status
    valid: int  # trials with both actions (status ok)
    cooperation: float | None  # cooperative / valid
    wald_low: float | None
    wald_high: float | None
    wilson_low: float | None
    wilson_high: float | None
    row_payoff: float | None  # mean over valid trials
    col_payoff: float | None
    refusal_rate: float | None  # trials with status refused / trials
    error_rate: float | None  # trials with status error / trials
    calls_per_trial: float | None  # LLM call attempts per trial (mean over all trials)


class PairRow(PairStats):
    """One cell: a condition and an ordered (row, column) pair of programs."""

    cooperative: int | float  # valid trials whose joint outcome is in the game's cooperative set (a match: the share of its rounds)
    row_payoff_low: float | None  # mean ± 1.96·s/√n
    row_payoff_high: float | None
    col_payoff_low: float | None
    col_payoff_high: float | None
    row_actions: dict[str, float]  # share of each action among the row program's valid decisions
    col_actions: dict[str, float]
    row_actions_low: dict[str, float]  # 95% Wilson bounds of each share
    row_actions_high: dict[str, float]
    col_actions_low: dict[str, float]
    col_actions_high: dict[str, float]
    calls_max: int
    row_depth_mean: float | None  # depth of the deepest node of the row decision's simulation chain
    row_depth_max: int
    col_depth_mean: float | None
    col_depth_max: int


class ProgramRow(ConditionKey):
    """One program under one condition, both seats pooled (an Axelrod-like summary)."""

    rank: int | None  # 1 = highest mean payoff; equal means share a rank (1, 2, 2, 4)
    program: str
    opponents: int  # distinct opponents met (itself included when self-play was stored)
    trials: int  # observations: one per seat it played, any status
    valid: int
    mean_payoff: float | None
    payoff_low: float | None  # stratified 95% interval: each cell (and seat) it played is a stratum
    payoff_high: float | None
    median_payoff: float | None
    cooperation_rating: float | None  # share of its valid trials that ended in a cooperative outcome
    wins: int  # opponents (itself excluded) against which its mean payoff beats theirs (meta-game matrix)
    trial_wins: int  # valid trials against another program in which it scored strictly more
    actions: dict[str, float]  # share of each action among its valid decisions
    actions_low: dict[str, float]  # 95% Wilson bounds of each share (its decisions in both seats)
    actions_high: dict[str, float]
    initial_rate: float | None  # share of its top-level decisions that did not simulate
    initial_actions: dict[str, float]  # what it played in those decisions (shares)
    cc: float | None  # 2x2 games: own action first; C = the game's default action, D = the other
    cd: float | None
    dc: float | None
    dd: float | None


class ConditionRow(ConditionKey):
    """A condition of the tournament at a glance, with its meta-game."""

    programs: int
    trials: int
    valid: int
    cooperative: int | float
    cooperation: float | None
    cooperation_low: float | None  # stratified 95% interval: p ± 1.96·√(Σ (n_c/N)²·p_c(1−p_c)/n_c) over cells c
    cooperation_high: float | None
    wald_low: float | None  # Wald and Wilson: every trial as one iid sample (ignore the cells)
    wald_high: float | None
    wilson_low: float | None
    wilson_high: float | None
    mean_payoff: float | None  # over every seat of every valid trial
    refusal_rate: float | None
    error_rate: float | None
    calls_per_trial: float | None
    depth_mean: float | None  # over both top-level decisions of every trial
    depth_max: int
    best: list[str]  # the programs ranked 1
    nash_equilibria: int  # equilibria of the meta-game found (see equilibria)
    degenerate: bool | None  # some program has several pure best replies in the meta-game
    # pure pairs 'row/col' that are empirical program equilibria: by the bootstrap's verdicts (equilibrium), or
    # the point estimate's when no bootstrap was run (equilibria_basis says which)
    program_equilibria: list[str]
    uncertain_equilibria: list[str] = []  # pure pairs the bootstrap calls uncertain (its margin's interval holds 0)
    equilibria_basis: str = "point estimate"  # bootstrap | point estimate


class DepthRow(ConditionKey):
    """How many of a program's top-level decisions in one seat, against one opponent, reached simulation
    depth `depth`."""

    program: str
    opponent: str
    seat: str  # row | col (the program's seat)
    depth: int
    decisions: int  # stored trials (any status) in which its decision in that seat reached this depth


class CallRow(BaseModel):
    """LLM call statistics of one (provider, model, program) in one tournament."""

    provider: str
    model: str
    program: str
    calls: int  # logical requests (the first attempt of each; a corrective retry is a request of its own)
    attempts: int  # every attempt, retries included
    retries: int  # attempts after the first
    failures: int  # requests that failed after all attempts
    refusals: int  # answers with no action even after the corrective retry
    unparsed: int  # first answers with no action (each then got a corrective retry)
    cached: int  # answers replayed from the response cache
    # first answers by form (prompts.FORMS; params.answer of calls with purpose 'answer'): why they were unparsed
    bare_words: int = 0  # nothing but an action word (read as that action)
    prose: int = 0  # no ACTION line and not a bare action word (unparsed)
    invalid: int = 0  # an ACTION line (or JSON) naming no action of the game (unparsed)
    empty: int = 0  # empty replies (attempts; each was retried)
    latency_ms_mean: float | None  # over attempts that reached the provider (not cached)
    prompt_tokens: int
    completion_tokens: int
    # an endpoint pool's replica (base URL) these attempts went to (None: not a pool, or cached answers);
    # in a replica's row, calls are the first attempts sent there and failures its failed attempts
    replica: str | None = None


class CoopPoint(BaseModel):
    """Cooperation of an unordered pair at one epsilon, both seatings pooled (for cooperation-vs-ε)."""

    game: str
    max_depth: int
    temperature: float | None
    pair: str  # 'a/b' (a before b in the tournament's program order)
    epsilon: float
    valid: int
    cooperative: int | float
    cooperation: float | None
    wilson_low: float | None
    wilson_high: float | None


class DepthBin(ConditionKey):
    """How many top-level decisions (both seats) reached simulation depth `depth`."""

    depth: int
    decisions: int


# --- the one pass over the trials ------------------------------------------------------------------
