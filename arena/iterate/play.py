"""A candidate's trials: N episodes of (row, col) through the ε-grounded simulator, stored as ordinary trials (a
grid world's episodes as matches of steps)."""

from __future__ import annotations

import asyncio

from arena.engine.match import run_any_batched, run_match_async
from arena.engine.bots import BotAgent
from arena.engine.code import CodeAgent
from arena.engine.grid import trial_seed
from arena.engine.records import TrialResult, TrialSpec
from arena.engine.sandbox import Sandbox
from arena.engine.simulator import run_trial_async
from arena.library.games import Game


def specs(game: Game, row: str, col: str, epsilon: float, max_depth: int, episodes: int, seed: int, stream: str,
          first_seq: int) -> list[TrialSpec]:
    """The episodes of one evaluation; seeds come from (seed, stream, index) only, so every candidate of a
    turn meets the same draws (common random numbers: candidates differ by their code, not their luck).
    Their trial index is their seq, unique in the run: one pair can meet in several evaluations (the current
    program in its turn, the kept one on fresh episodes), and a trial's key holds its pair and index."""
    return [TrialSpec(first_seq + i, game.id, row, col, epsilon, max_depth, None, first_seq + i,
                      trial_seed(seed, game.id, stream, "", epsilon, max_depth, None, i))
            for i in range(episodes)]


async def play(trials: list[TrialSpec], game: Game, programs: dict, sandbox: Sandbox, service=None,
               llm_config=None) -> list[TrialResult]:
    agents = {}
    for pid, p in programs.items():
        if p.kind == "builtin":
            agents[pid] = BotAgent(p)
        elif p.kind == "code":
            agents[pid] = CodeAgent(p, sandbox)
        else:
            agents[pid] = service.agent(p, llm_config)
    games = {game.id: game}
    if not any(p.kind == "llm" for p in programs.values()):
        return await asyncio.to_thread(run_any_batched, trials, games, agents, programs)
    run = run_match_async if game.markov else run_trial_async  # a grid world's episode is a match
    return list(await asyncio.gather(*(run(s, game, agents, programs) for s in trials)))
