"""Level-Based Foraging throughput: env steps per second through Arena, beside the bare lbforaging env.

    python benchmarks/lbf_throughput.py [--episodes N] [--reps K]

Same run, same machine, the PIBR variant (games/foraging_pibr.yaml, 5x5, 2 agents, 2 foods, 50 steps):
- bare: the package's ForagingEnv stepped directly with uniformly random actions (numpy), reset per episode;
- Arena, built-ins: the real TournamentRunner, lbf-random against itself, every episode written to SQLite
  (trial row, each step's state and joint action, the nodes), started as `arena run` starts it (the process's
  garbage collector settled first: runner/gcsettle.py); and the engine alone (run_match_sync);
- Arena, code: a non-simulating code program (random valid action from ctx["state"]) against itself, every
  decision in the pydantic-monty sandbox, through the runner.
Ratio: Arena's steps/s over the bare env's (goal >= 0.5 for built-ins). The built-ins are measured in CPU time
of this process (time.process_time: what another job on a loaded machine takes from the wall clock does not
count) and in wall-clock time, alternating with the bare env, `--reps` times; the code programs in wall-clock
time only (their decisions run in the sandbox's worker processes).
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


def _clock(cpu: bool):
    return time.process_time if cpu else time.perf_counter


def bare(game, episodes: int, cpu: bool = False) -> float:
    import numpy as np

    from arena.engine.lbf import env_seed, make_env

    env = make_env(game)
    rng = np.random.default_rng(0)
    steps = 0
    clock = _clock(cpu)
    t0 = clock()
    for i in range(episodes):
        env.reset(seed=env_seed(i))
        done = False
        while not done:
            _, _, done, _, _ = env.step(tuple(int(x) for x in rng.integers(0, 6, 2)))
            steps += 1
    return steps / (clock() - t0)


def through_runner(lib, programs: dict, ids: list[str], episodes: int, recall: int | None = None,
                   cpu: bool = False) -> float:
    import gc

    from arena.engine.grid import TournamentConfig
    from arena.runner.gcsettle import settle
    from arena.runner.tournament import TournamentRunner
    from arena.store.database import Store

    clock = _clock(cpu)
    with tempfile.TemporaryDirectory() as d:
        store = Store(Path(d) / "a.db")
        cfg = TournamentConfig(programs=ids, games=["foraging_pibr"], epsilons=[0.2], max_depths=[10],
                               trials=episodes, recalls=[recall])
        runner = TournamentRunner.create(store, cfg, programs, lib.games)
        settle()  # as `arena run` does before it runs the tournament
        t0 = clock()
        asyncio.run(runner.run())
        dt = clock() - t0
        gc.unfreeze()  # (each measurement starts alike)
        steps = store.query("SELECT sum(n_rounds) AS n FROM trials")[0]["n"]
        store.close()
    return steps / dt


def engine_only(lib, episodes: int, cpu: bool = False) -> float:
    from arena.engine.bots import BotAgent
    from arena.engine.match import run_match_sync
    from arena.engine.records import TrialSpec

    g = lib.games["foraging_pibr"]
    agents = {k: BotAgent(p) for k, p in lib.programs.items() if p.kind == "builtin"}
    steps = 0
    clock = _clock(cpu)
    t0 = clock()
    for i in range(episodes):
        steps += len(run_match_sync(TrialSpec(i, g.id, "lbf-random", "lbf-random", 0.2, 10, None, i, i), g, agents,
                                    lib.programs).rounds)
    return steps / (clock() - t0)


def _median(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2


def builtins(lib, g, episodes: int, reps: int, cpu: bool) -> None:
    """Bare, engine, runner, bare, `reps` times over: each rep's ratios against the mean of the bare runs around
    it, the median over the reps (the machine's load moves between reps more than within one)."""
    eng, run, bares = [], [], []
    for _ in range(reps):
        a = bare(g, episodes, cpu)
        e = engine_only(lib, episodes, cpu)
        r = through_runner(lib, lib.programs, ["lbf-random"], episodes, cpu=cpu)
        b = bare(g, episodes, cpu)
        ref = (a + b) / 2
        bares.append(ref)
        eng.append(e / ref)
        run.append(r / ref)
    what = "CPU time of this process" if cpu else "wall clock"
    print(f"[{what}] bare lbforaging env: median {_median(bares):,.0f} steps/s over {reps} reps")
    print(f"[{what}] Arena engine, lbf-random x2: ratio {_median(eng):.2f} (reps {', '.join(f'{x:.2f}' for x in eng)})")
    print(f"[{what}] Arena runner + SQLite, lbf-random x2: ratio {_median(run):.2f} "
          f"(reps {', '.join(f'{x:.2f}' for x in run)})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--episodes", type=int, default=200)
    ap.add_argument("--reps", type=int, default=3, help="repetitions of the built-in measurements")
    a = ap.parse_args()
    import os

    from arena.library.catalog import load_library
    from arena.library.programs import CodeProgram

    lib = load_library(ROOT / "programs", ROOT / "games")
    g = lib.games["foraging_pibr"]
    print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    bare(g, 5)  # lbforaging's import (it registers some 2,000 env ids) is not a step's cost
    builtins(lib, g, a.episodes, a.reps, cpu=True)
    builtins(lib, g, a.episodes, a.reps, cpu=False)
    code = CodeProgram(id="lbf-random-code", kind="code", simulates=False, source=CODE)
    bare_a = bare(g, a.episodes)
    coded = through_runner(lib, {**lib.programs, code.id: code}, [code.id], a.episodes)
    recall = through_runner(lib, {**lib.programs, code.id: code}, [code.id], a.episodes, recall=5)
    bare_b = bare(g, a.episodes)
    ref = (bare_a + bare_b) / 2
    print(f"[wall clock] bare lbforaging env: {ref:,.0f} steps/s (before {bare_a:,.0f}, after {bare_b:,.0f})")
    print(f"[wall clock] Arena runner + SQLite, code x2 (sandbox): {coded:,.0f} steps/s, ratio {coded / ref:.2f}")
    print(f"[wall clock]   the same with --recall 5: {recall:,.0f} steps/s, ratio {recall / ref:.2f}")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
