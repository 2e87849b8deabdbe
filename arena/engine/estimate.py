"""What a tournament will cost before it runs: trials, expected simulation nodes and LLM calls.

Each top-level decision is a chain of nodes (see simulator.py); `grid.expected_nodes` gives the
expected length of that chain split between the two programs, from which the expected number of LLM
calls follows (one call per LLM node; corrective retries and transport retries are not counted).
"""

from __future__ import annotations

from dataclasses import dataclass

from arena.engine.bots import BotAgent
from arena.engine.grid import TournamentConfig, expected_nodes


@dataclass(frozen=True)
class Estimate:
    trials: int
    llm_trials: int  # trials with at least one LLM program
    nodes: float  # expected simulation nodes over the whole grid
    llm_calls: float  # expected LLM calls (one per LLM node, first attempts only)

    @property
    def calls_per_llm_trial(self) -> float:
        return self.llm_calls / self.llm_trials if self.llm_trials else 0.0


def simulates(program, config: TournamentConfig) -> bool:
    """Whether a program simulates its opponent in this tournament: FairBot among the built-ins, an LLM
    program in 'run' mode, a code program unless it says `simulates: false`."""
    match program.kind:
        case "llm":
            return config.simulation == "run"
        case "code":
            return program.simulates
        case "builtin":
            return BotAgent(program).simulates
    raise TypeError(f"estimate: no rule for programs of kind {program.kind!r}")


def estimate(config: TournamentConfig, programs: dict, games: dict | None = None) -> Estimate:
    """Expected nodes and LLM calls of `config` over `programs` (id -> program; unknown ids ignored). With
    `games` (id -> game), a game with a state counts its episodes at their longest (the env's horizon: an
    episode ends earlier when the food is gone), since the match rules' rounds do not apply to it."""
    chosen = {pid: programs[pid] for pid in config.programs if pid in programs}
    sim = {pid: simulates(p, config) for pid, p in chosen.items()}
    llm = {pid: p.kind == "llm" for pid, p in chosen.items()}
    rounds = sum(m.expected_rounds for m in config.matches)  # a trial's decisions are made once a round
    game_rounds = 0.0
    for gid in config.games:
        g = (games or {}).get(gid)
        game_rounds += g.horizon * len(config.matches) if g is not None and g.markov else rounds
    per_cell = len(config.temperatures) * config.trials * game_rounds
    per_cell_trials = len(config.games) * len(config.temperatures) * config.trials * len(config.matches)
    nodes = calls = 0.0
    llm_trials = 0
    for eps in config.epsilons:
        own_eps = {pid: (p.epsilon if p.epsilon is not None else eps) for pid, p in chosen.items()}
        for depth in config.max_depths:
            for a in chosen:
                for b in chosen:
                    if llm[a] or llm[b]:
                        llm_trials += per_cell_trials
                    # the row decision (a's chain) and the column decision (b's chain)
                    for me, opp in ((a, b), (b, a)):
                        own, other = expected_nodes((sim[me], sim[opp]), (own_eps[me], own_eps[opp]), depth)
                        nodes += (own + other) * per_cell
                        calls += (own * llm[me] + other * llm[opp]) * per_cell
    return Estimate(config.total_trials, llm_trials, nodes, calls)


def duration_s(calls: float, providers: dict[str, tuple[float, int]]) -> float | None:
    """Expected wall time of `calls` LLM calls spread over `providers` (name -> (mean latency in ms measured
    on it, calls in flight there)), each provider taking an equal share; None when no latency is known."""
    known = [(ms, max(1, in_flight)) for ms, in_flight in providers.values() if ms is not None]
    if not known:
        return None
    share = calls / len(known)
    return max(share * ms / 1000 / in_flight for ms, in_flight in known)
