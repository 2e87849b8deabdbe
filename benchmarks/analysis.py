"""Analysis of a big stored tournament: every table, the plot data, and what they cost next to plain scans.

    python benchmarks/analysis.py [--trials 40000] [--db PATH] [--keep]

Runs (or reuses, with --db) a built-in tournament of five bots on the Prisoner's Dilemma with
`--trials` trials per cell (25 cells: 1,000,000 trials by default), then times, in one run:
- scan: `SELECT count(*), sum(row_payoff)` over the tournament's trials (the floor of any pass);
- plain: the nine-column text GROUP BY that the analysis would need without its integer key;
- outcomes: the integer-keyed GROUP BY that analysis.load_outcomes runs;
- tables: analysis.tables() for every table (one pass, the meta-game with nashpy included);
- depths: analysis.depth_histogram().
Each is the best of three; ratios are to `scan` measured in the same run (the machine is noisy).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from arena.analysis import tables as analysis  # noqa: E402
from arena.library.games import load_games  # noqa: E402
from arena.engine.grid import TournamentConfig  # noqa: E402
from arena.library.programs import load_programs  # noqa: E402
from arena.store.database import Store  # noqa: E402
from arena.runner.tournament import TournamentRunner  # noqa: E402

BOTS = ["fairbot", "defectbot", "cooperatebot", "randombot", "cliquebot"]


def best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=40_000, help="trials per cell (25 cells)")
    ap.add_argument("--db", type=Path, help="database to use (the tournament is run there if missing)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary database")
    args = ap.parse_args()
    tmp = None
    if args.db is None:
        tmp = tempfile.mkdtemp(prefix="arena-bench-")
        args.db = Path(tmp) / "bench.db"
    store = Store(args.db)
    cfg = TournamentConfig(programs=BOTS, games=["prisoners_dilemma"], epsilons=[0.2], max_depths=[10],
                           trials=args.trials, seed=1)
    runner = TournamentRunner.create(store, cfg, load_programs([ROOT / "programs"]), load_games(ROOT / "games"))
    if store.count_trials(runner.tournament_id) < cfg.total_trials:
        t0 = time.perf_counter()
        asyncio.run(runner.run())
        print(f"ran {cfg.total_trials:,} trials in {time.perf_counter() - t0:.1f}s into {args.db}")
    tid = runner.tournament_id
    n = store.count_trials(tid)

    timings = {
        "scan": best(lambda: store.query("SELECT count(*), sum(row_payoff) FROM trials WHERE tournament_id = ?", (tid,))),
        "plain": best(lambda: store.query(analysis._OUTCOMES_SQL, (tid,))),
        "outcomes": best(lambda: analysis.load_outcomes(store, tid)),
        "tables": best(lambda: analysis.tables(store, tid)),
        "depths": best(lambda: analysis.depth_histogram(store, tid)),
    }
    print(f"{n:,} trials, best of 3:")
    for k, v in timings.items():
        print(f"  {k:9} {v:7.3f}s  {v / timings['scan']:5.2f}x scan")
    print(f"integer key vs plain GROUP BY: {timings['plain'] / timings['outcomes']:.1f}x faster")
    store.close()
    if tmp and not args.keep:
        import shutil

        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
