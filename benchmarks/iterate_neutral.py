"""`arena iterate` with a neutral scripted writer: what the loop itself finds, without a writer that knows the answer.

The writer (the loopback server of tests/support) offers, in every turn, `return 'a'`, then `return 'b'`, then
`return 'c'` (steps 1, 2, 3): it never looks at the game or the feedback. Whatever the run reaches is the
loop's doing (its choice of the kept program, its stopping rule, the episodes it judges by). Not a
performance measurement: it prints, per game and seed, the final pair's actions and social welfare.

    .venv/bin/python benchmarks/iterate_neutral.py [--seeds 1 2 3 4 5] [--rounds 3] [--episodes 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.fake_llm import FakeLLMServer  # noqa: E402

OPTIMUM = {"vanilla_coordination": 6, "climbing": 22, "penalty": 20}


def neutral(req) -> str:
    """Step t of a turn offers the t-th action (the conversation grows by two messages a step)."""
    action = "abc"[(len(req.messages) - 2) // 2 % 3]
    return f"```python\ndef decide(ctx):\n    return '{action}'\n```"


async def one(game_id: str, seed: int, rounds: int, episodes: int, db: Path) -> tuple[float, str]:
    from arena.iterate.loop import IterateConfig, IterateRunner
    from arena.library.catalog import load_library
    from arena.llm.service import LLMService
    from arena.store.database import Store

    game = load_library().games[game_id]
    with Store(db) as store:
        cfg = IterateConfig(game=game_id, model="custom/neutral", rounds=rounds, steps=3, episodes=episodes,
                            seed=seed)
        runner = IterateRunner.create(store, cfg, game, LLMService(store))
        out = await runner.run()
    return out.welfare, "/".join(_action(out.final[seat].code) for seat in ("row", "col"))


def _action(code: str) -> str:
    """The action a program of the writer's returns, or 'random' (the start program)."""
    return code.split("return '")[1][0] if "return '" in code else "random"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--episodes", type=int, default=5)
    ap.add_argument("--games", nargs="+", default=list(OPTIMUM))
    args = ap.parse_args()
    with FakeLLMServer(neutral) as srv, tempfile.TemporaryDirectory() as tmp:
        os.environ.update(LLM_BASE_URL=srv.base_url, LLM_API_KEY="sk-neutral")
        for game in args.games:
            results = []
            for seed in args.seeds:
                w, pair = asyncio.run(one(game, seed, args.rounds, args.episodes, Path(tmp) / f"{game}-{seed}.db"))
                results.append((seed, w, pair))
            hits = sum(w == OPTIMUM[game] for _, w, _ in results)
            cells = ", ".join(f"seed {s}: {pair} {w:g}" for s, w, pair in results)
            print(f"{game} (optimum {OPTIMUM[game]}): {hits} of {len(results)} reach it; {cells}", flush=True)


if __name__ == "__main__":
    main()
