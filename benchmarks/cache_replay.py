"""Cache replay: re-running a finished LLM tournament from the response cache, >= 100x faster, same table.

    python benchmarks/cache_replay.py [--quick] [--json rows.json]

First run: the library's LLM programs (simulating each other) against the fake server (own process,
latency 100 ms), concurrency 8, every call stored in the response cache of an SQLite file. Replay: the
same tournament recorded anew (`arena run ... --new`: same seed, so the same trees and the same
questions), every answer served from the cache. Both are timed around `TournamentRunner.run()` in
this process; the two stored tables (actions, payoffs, nodes, calls per trial) must be identical.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Row, arg_parser, fake_env, fake_server, library, machine, registry, run, to_fake  # noqa: E402

from arena.engine.grid import TournamentConfig  # noqa: E402

L = 0.1
PROGRAMS = ["fair-llm", "exploit-llm", "defect-llm"]
TABLE = ("seq, game, row_program, col_program, trial_index, seed, row_action, col_action, row_payoff, col_payoff, "
         "cooperative, status, n_nodes, n_calls, row_depth, col_depth")


def run_tournament(store, config: TournamentConfig, lib, url: str, new: bool) -> tuple[float, object, int]:
    from arena.llm.service import LLMService
    from arena.runner.tournament import TournamentRunner

    backend = LLMService(store, registry(url, config.concurrency), fake_env(url))
    runner = TournamentRunner.create(store, config, lib.programs, lib.games, backend=backend, new=new)
    t0 = time.perf_counter()
    done = asyncio.run(runner.run())
    return time.perf_counter() - t0, done, runner.tournament_id


def main(argv: list[str] | None = None) -> list[Row]:
    ap = arg_parser(__doc__)
    ap.add_argument("--trials", type=int, default=12, help="trials per cell (9 cells)")
    args = ap.parse_args(argv)
    lib = library()
    config = TournamentConfig(programs=PROGRAMS, games=["prisoners_dilemma"], epsilons=[0.2], max_depths=[6],
                              trials=4 if args.quick else args.trials, seed=3, concurrency=8,
                              models=to_fake(PROGRAMS), name="bench cache replay")
    print(f"cache replay, latency {L * 1000:.0f} ms, concurrency {config.concurrency}, {machine()}")
    from arena.store.database import Store

    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "bench.db") as store, fake_server(L) as url:
        first_s, first, tid1 = run_tournament(store, config, lib, url, new=False)
        replays = [run_tournament(store, config, lib, url, new=True) for _ in range(3)]
        table = lambda tid: store.query(f"SELECT {TABLE} FROM trials WHERE tournament_id=? ORDER BY seq", (tid,))  # noqa: E731
        t1 = table(tid1)
        same = len(t1) == config.total_trials and all(table(tid) == t1 for _, _, tid in replays)
        replay_s, replay, tid2 = sorted(replays, key=lambda x: x[0])[1]
        cached = store.query("SELECT count(*) AS n, sum(cached) AS c FROM llm_calls WHERE tournament_id=?", (tid2,))[0]
    f, r = first.providers["custom"], replay.providers["custom"]
    speedup = first_s / replay_s
    print(f"  first run: {first.done} trials, {f['attempts']} calls to the server in {first_s:.2f} s")
    print(f"  replay:    {replay.done} trials, {r['attempts']} calls to the server, {cached['c']}/{cached['n']} "
          f"calls from the cache in {replay_s:.3f} s ({replay_s / max(cached['n'], 1) * 1e6:.0f} µs a call; "
          f"median of {', '.join(f'{x[0]:.3f}' for x in replays)} s)")
    print(f"  speed-up {speedup:.0f}x; same table: {'yes' if same else 'NO'}")
    return [
        Row("cache_replay", f"replay speed-up ({f['attempts']} cached calls)", f"{speedup:.0f}x", "≥ 100x",
            speedup >= 100 and r["attempts"] == 0),
        Row("cache_replay", "same table after replay", "yes" if same else "NO", "yes", same),
    ]


if __name__ == "__main__":
    run(main)
