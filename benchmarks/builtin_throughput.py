"""Built-in-bot throughput: one-shot trials persisted per second (target >= 20,000/s), beside Axelrod.

    python benchmarks/builtin_throughput.py [--quick] [--trials N] [--json rows.json]

Arena: the real TournamentRunner writing every trial and node into an SQLite file (WAL), on the
Prisoner's Dilemma with cooperatebot, defectbot, fairbot and randombot (all 16 ordered pairs),
epsilon 0.05, depth cap 100 (FairBot chains: 1/epsilon = 20 nodes on average against itself).

Context, same machine, same run: Axelrod's iterated-PD tournament (Cooperator, Defector, TitForTat,
Random; 200 turns a match; serial; interactions written to a CSV file), in matches/s and turns/s.
A turn (two simultaneous moves) is the closest Axelrod unit to one of our trials' two decisions, but
ours also simulate (the script prints nodes per trial). Importing axelrod takes seconds; it is not timed.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Row, arg_parser, library, machine, run  # noqa: E402

BOTS = ["cooperatebot", "defectbot", "fairbot", "randombot"]


def arena(trials_per_cell: int, db: Path) -> dict:
    from arena.engine.grid import TournamentConfig
    from arena.store.database import Store
    from arena.runner.tournament import TournamentRunner

    lib = library()
    config = TournamentConfig(programs=BOTS, games=["prisoners_dilemma"], epsilons=[0.05], max_depths=[100],
                              trials=trials_per_cell, seed=1)
    with Store(db) as store:
        runner = TournamentRunner.create(store, config, lib.programs, lib.games)
        t0 = time.perf_counter()
        done = asyncio.run(runner.run())
        wall = time.perf_counter() - t0
        nodes = store.query("SELECT count(*) AS n FROM nodes")[0]["n"]
    return {"trials": done.done, "wall": wall, "nodes": nodes, "status": done.status}


def axelrod(repetitions: int, tmp: Path) -> dict | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import axelrod as axl
    except ImportError:
        return None
    players = [axl.Cooperator(), axl.Defector(), axl.TitForTat(), axl.Random()]
    turns = 200
    tournament = axl.Tournament(players, turns=turns, repetitions=repetitions, seed=1)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tournament.play(build_results=False, filename=str(tmp / "axelrod.csv"), processes=None, progress_bar=False)
    wall = time.perf_counter() - t0
    matches = len(players) * (len(players) + 1) // 2 * repetitions  # round robin with self-play
    return {"version": axl.__version__, "matches": matches, "turns": matches * turns, "wall": wall}


def main(argv: list[str] | None = None) -> list[Row]:
    ap = arg_parser(__doc__)
    ap.add_argument("--trials", type=int, default=10_000, help="trials per cell (16 cells)")
    args = ap.parse_args(argv)
    per_cell = 1_000 if args.quick else args.trials
    print(f"built-in throughput, {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        a = arena(per_cell, Path(tmp) / "bench.db")
        size = sum(p.stat().st_size for p in Path(tmp).glob("bench.db*"))
        x = axelrod(20 if args.quick else 100, Path(tmp))
    rate = a["trials"] / a["wall"]
    print(f"  arena:   {a['trials']:,} trials ({a['nodes']:,} nodes) persisted in {a['wall']:.2f} s: "
          f"{rate:,.0f} trials/s, {a['nodes'] / a['wall']:,.0f} nodes/s ({a['nodes'] / a['trials']:.2f} a trial); "
          f"database {size / 1e6:.1f} MB")
    rows = [Row("builtin_throughput", "trials/s persisted (PD, 4 bots, ε 0.05)", f"{rate:,.0f} /s", "≥ 20,000 /s",
                rate >= 20_000 and a["status"] == "finished")]
    if x is None:
        print("  axelrod: not installed (make bench installs it: pip install -e '.[bench]')")
        rows.append(Row("builtin_throughput", "Axelrod iterated PD (context)", "not installed"))
    else:
        m, t = x["matches"] / x["wall"], x["turns"] / x["wall"]
        print(f"  axelrod {x['version']}: {x['matches']:,} matches of 200 turns in {x['wall']:.2f} s: "
              f"{m:,.0f} matches/s, {t:,.0f} turns/s")
        rows.append(Row("builtin_throughput", f"Axelrod {x['version']} iterated PD, 200 turns (context)",
                        f"{m:,.0f} matches/s = {t:,.0f} turns/s"))
    return rows


if __name__ == "__main__":
    run(main)
