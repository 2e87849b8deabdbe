"""Level-Based Foraging throughput: env steps per second through Arena, beside the bare lbforaging env.

    python benchmarks/lbf_throughput.py [--episodes N]

Same run, same machine, the PIBR variant (games/foraging_pibr.yaml, 5x5, 2 agents, 2 foods, 50 steps):
- bare: the package's ForagingEnv stepped directly with uniformly random actions (numpy), reset per episode;
- Arena, built-ins: the real TournamentRunner, lbf-random against itself, every episode written to SQLite
  (trial row, each step's state and joint action, the nodes); and the engine alone (run_match_sync);
- Arena, code: a non-simulating code program (random valid action from ctx["state"]) against itself, every
  decision in the pydantic-monty sandbox, through the runner.
Ratio: Arena's steps/s over the bare env's (goal >= 0.5 for built-ins).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CODE = ("def decide(ctx):\n"
        "    v = ctx['state']['valid_actions']\n"
        "    return v[int(ctx['u'] * len(v))]\n")


def bare(game, episodes: int) -> float:
    import numpy as np

    from arena.engine.lbf import env_seed, make_env

    env = make_env(game)
    rng = np.random.default_rng(0)
    steps = 0
    t0 = time.perf_counter()
    for i in range(episodes):
        env.reset(seed=env_seed(i))
        done = False
        while not done:
            _, _, done, _, _ = env.step(tuple(int(x) for x in rng.integers(0, 6, 2)))
            steps += 1
    return steps / (time.perf_counter() - t0)


def through_runner(lib, programs: dict, ids: list[str], episodes: int, recall: int | None = None) -> float:
    from arena.engine.grid import TournamentConfig
    from arena.runner.tournament import TournamentRunner
    from arena.store.database import Store

    with tempfile.TemporaryDirectory() as d:
        store = Store(Path(d) / "a.db")
        cfg = TournamentConfig(programs=ids, games=["foraging_pibr"], epsilons=[0.2], max_depths=[10],
                               trials=episodes, recalls=[recall])
        runner = TournamentRunner.create(store, cfg, programs, lib.games)
        t0 = time.perf_counter()
        asyncio.run(runner.run())
        dt = time.perf_counter() - t0
        steps = store.query("SELECT sum(n_rounds) AS n FROM trials")[0]["n"]
        store.close()
    return steps / dt


def engine_only(lib, episodes: int) -> float:
    from arena.engine.bots import BotAgent
    from arena.engine.match import run_match_sync
    from arena.engine.records import TrialSpec

    g = lib.games["foraging_pibr"]
    agents = {k: BotAgent(p) for k, p in lib.programs.items() if p.kind == "builtin"}
    steps = 0
    t0 = time.perf_counter()
    for i in range(episodes):
        steps += len(run_match_sync(TrialSpec(i, g.id, "lbf-random", "lbf-random", 0.2, 10, None, i, i), g, agents,
                                    lib.programs).rounds)
    return steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--episodes", type=int, default=400)
    a = ap.parse_args()
    from arena.library.catalog import load_library
    from arena.library.programs import CodeProgram

    lib = load_library(ROOT / "programs", ROOT / "games")
    g = lib.games["foraging_pibr"]
    code = CodeProgram(id="lbf-random-code", kind="code", simulates=False, source=CODE)
    bare_a = bare(g, a.episodes)
    engine = engine_only(lib, a.episodes)
    builtin = through_runner(lib, lib.programs, ["lbf-random"], a.episodes)
    coded = through_runner(lib, {**lib.programs, code.id: code}, [code.id], a.episodes)
    recall = through_runner(lib, {**lib.programs, code.id: code}, [code.id], a.episodes, recall=5)
    bare_b = bare(g, a.episodes)
    ref = (bare_a + bare_b) / 2
    print(f"bare lbforaging env: {ref:,.0f} steps/s (before {bare_a:,.0f}, after {bare_b:,.0f})")
    print(f"Arena engine, lbf-random x2: {engine:,.0f} steps/s, ratio {engine / ref:.2f}")
    print(f"Arena runner + SQLite, lbf-random x2: {builtin:,.0f} steps/s, ratio {builtin / ref:.2f}")
    print(f"Arena runner + SQLite, code x2 (sandbox): {coded:,.0f} steps/s, ratio {coded / ref:.2f}")
    print(f"  the same with --recall 5: {recall:,.0f} steps/s, ratio {recall / ref:.2f}")


if __name__ == "__main__":
    main()
