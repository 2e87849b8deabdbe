"""Refusals of the shipped LLM programs on the embedded model, prompt version 1 against version 2, in one run.

    python benchmarks/local_refusals.py [--trials 1] [--quick]       (make bench-model runs it too)

The library's five LLM programs (clique-, cooperate-, defect-, exploit-, fair-llm), every ordered pair, on
the Prisoner's Dilemma at ε 0.5, depth cap 2, on `local` (the response cache off: every call reaches the
model), once with each prompt version (arena/llm/prompts.py PROMPT_VERSION; the same seeds), the version-2
tournament first. Reported per version: trials, refused trials (no valid action even after the corrective
retry), first answers that needed the corrective retry, uncached calls and their mean latency; target:
version 2 refuses no more than version 1.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Row, arg_parser, library, machine, run  # noqa: E402

from arena.engine.grid import TournamentConfig  # noqa: E402

PROGRAMS = ["clique-llm", "cooperate-llm", "defect-llm", "exploit-llm", "fair-llm"]


def tournament(version: int, trials: int, lib, threads: int) -> dict:
    from arena.llm import prompts
    from arena.llm.registry import load_providers
    from arena.llm.service import LLMService
    from arena.runner.tournament import TournamentRunner
    from arena.store.database import Store

    registry = load_providers(Path("/nonexistent-providers.yaml"), env={})
    registry["local"] = registry["local"].model_copy(update={"threads": threads})
    config = TournamentConfig(programs=PROGRAMS, games=["prisoners_dilemma"], epsilons=[0.5], max_depths=[2],
                              trials=trials, seed=11, concurrency=1, cache=False)
    saved = prompts.PROMPT_VERSION
    prompts.PROMPT_VERSION = version  # what a new call is built with (stored in its params)
    try:
        with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "r.db") as store:
            runner = TournamentRunner.create(store, config, lib.programs, lib.games,
                                             backend=LLMService(store, registry, env={}))
            t0 = time.perf_counter()
            done = asyncio.run(runner.run())
            wall = time.perf_counter() - t0
            tid = runner.tournament_id
            trials_rows = store.query("SELECT status FROM trials WHERE tournament_id=?", (tid,))
            calls = store.query("SELECT latency_ms, status, json_extract(params, '$.prompt') AS prompt, "
                                "json_extract(params, '$.purpose') AS purpose FROM llm_calls "
                                "WHERE tournament_id=? AND cached=0", (tid,))
    finally:
        prompts.PROMPT_VERSION = saved
    assert {c["prompt"] for c in calls if c["purpose"] == "answer"} <= {version}
    return {"status": done.status, "wall": wall, "trials": len(trials_rows),
            "refused": sum(t["status"] == "refused" for t in trials_rows),
            "corrected": sum(c["purpose"] == "correction" for c in calls),
            "calls": len(calls), "latency": statistics.mean(c["latency_ms"] for c in calls) / 1000 if calls else 0.0}


def main(argv: list[str] | None = None) -> list[Row]:
    from arena.llm.localmodel import server_threads

    ap = arg_parser(__doc__)
    ap.add_argument("--trials", type=int, default=1, help="trials per ordered pair")
    args = ap.parse_args(argv)
    lib = library()
    threads = server_threads()
    print(f"machine: {machine()}; llama.cpp threads {threads}")
    out = {}
    for version in (2, 1):
        r = out[version] = tournament(version, args.trials, lib, threads)
        print(f"prompt v{version}: {r['status']}, {r['trials']} trials, {r['refused']} refused, {r['corrected']} "
              f"corrective retries, {r['calls']} calls, {r['latency']:.2f} s/call, wall {r['wall']:.0f} s "
              f"({machine()})", flush=True)
    v1, v2 = out[1], out[2]
    return [
        Row("local_refusals", "refused trials, prompt v1 / v2",
            f"{v1['refused']} / {v2['refused']} of {v2['trials']}", "v2 ≤ v1", v2["refused"] <= v1["refused"]),
        Row("local_refusals", "corrective retries, v1 / v2", f"{v1['corrected']} / {v2['corrected']}"),
        Row("local_refusals", "uncached call, v1 / v2", f"{v1['latency']:.2f} / {v2['latency']:.2f} s "
            f"({v1['calls']} / {v2['calls']} calls)"),
        Row("local_refusals", "machine at the end", machine()),
    ]


if __name__ == "__main__":
    run(main)
