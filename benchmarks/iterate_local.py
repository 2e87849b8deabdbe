"""`arena iterate` on the embedded model: 3 coordination games × seeds, valid candidates, optimum reached, wall.

Each run is `IterateRunner` with the writer on `local/MODEL` (the embedded llama.cpp server, started per
run as `arena iterate` starts it), from the uniformly random start. Prints per run the final pair's social
welfare, the writer steps whose candidate passed its unit tests and played without an error of its own,
the wall time, and the load average when it ended; then the totals against the targets of issue 31
(valid candidates ≥ 80% of writer steps; the optimum (6, 22, 20) reached by the final pair in ≥ 6 of 9 runs).

    .venv/bin/python benchmarks/iterate_local.py [--model qwen2.5-coder-0.5b] [--seeds 1 2 3]
        [--rounds 2] [--steps 2] [--episodes 10] [--max-tokens 300] [--temperature 0.7] [--writer 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

OPTIMUM = {"vanilla_coordination": 6, "climbing": 22, "penalty": 20}


async def one(game_id: str, seed: int, args, db: Path) -> dict:
    from arena.iterate.loop import IterateConfig, IterateRunner
    from arena.library.catalog import load_library
    from arena.llm.service import LLMService
    from arena.store import iterate as itdb
    from arena.store.database import Store

    game = load_library().games[game_id]
    with Store(db) as store:
        cfg = IterateConfig(game=game_id, model=f"local/{args.model}", rounds=args.rounds, steps=args.steps,
                            episodes=args.episodes, seed=seed, max_tokens=args.max_tokens, writer=args.writer,
                            temperature=args.temperature)
        runner = IterateRunner.create(store, cfg, game, LLMService(store))
        t0 = time.perf_counter()
        out = await runner.run()
        wall = time.perf_counter() - t0
        steps = [s for s in itdb.steps(store, runner.run_id) if 1 <= s["step"] <= args.steps]
        calls = store.query("SELECT latency_ms, completion_tokens FROM llm_calls WHERE tournament_id=?",
                            (runner.tid,))
    return {"game": game_id, "seed": seed, "welfare": out.welfare, "valid": sum(s["valid"] for s in steps),
            "steps": len(steps), "wall": wall, "calls": len(calls),
            "tokens": sum(c["completion_tokens"] or 0 for c in calls), "load": os.getloadavg()[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--max-tokens", type=int, default=300)
    ap.add_argument("--temperature", type=float, default=0.7, help="the writer's sampling temperature")
    ap.add_argument("--writer", type=int, default=2, choices=[1, 2], help="the writer's prompt version")
    ap.add_argument("--games", nargs="+", default=list(OPTIMUM))
    ap.add_argument("--keep", type=Path, help="keep each run's database in this folder")
    args = ap.parse_args()
    rows = []
    print(f"embedded writer local/{args.model}, writer v{args.writer}: --rounds {args.rounds} --steps {args.steps} "
          f"--episodes {args.episodes} --max-tokens {args.max_tokens} --temperature {args.temperature}; load average at start "
          f"{os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        for game in args.games:
            for seed in args.seeds:
                folder = args.keep or Path(tmp)
                folder.mkdir(parents=True, exist_ok=True)
                r = asyncio.run(one(game, seed, args, folder / f"{game}-{seed}.db"))
                rows.append(r)
                print(f"  {game:21} seed {seed}: welfare {r['welfare']:.3g} (optimum {OPTIMUM.get(game)}), "
                      f"valid {r['valid']}/{r['steps']}, {r['calls']} writer calls, {r['tokens']} tokens, "
                      f"{r['wall']:.1f} s, load {r['load']:.2f}", flush=True)
    valid, steps = sum(r["valid"] for r in rows), sum(r["steps"] for r in rows)
    reached = sum(abs(r["welfare"] - OPTIMUM.get(r["game"], float("inf"))) < 1e-9 for r in rows)
    walls = sorted(r["wall"] for r in rows)
    print(f"valid candidates: {valid}/{steps} ({100 * valid / max(steps, 1):.0f}%, target >= 80%)")
    print(f"optimum reached by the final pair: {reached} of {len(rows)} (target >= 6 of 9)")
    print(f"wall per run: median {walls[len(walls) // 2]:.1f} s, {walls[0]:.1f}-{walls[-1]:.1f} s")


if __name__ == "__main__":
    main()
