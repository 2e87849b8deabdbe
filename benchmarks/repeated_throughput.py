"""Repeated-game throughput: match rounds persisted per second, beside Axelrod on the same strategies.

    python benchmarks/repeated_throughput.py [--quick] [--matches N] [--json rows.json]

Arena: the real TournamentRunner writing every match (trial row, its rounds, its nodes) into an SQLite
file, on the Prisoner's Dilemma, matches of 10 and of 200 rounds:
- built-ins: titfortat, defectbot, pavlov, alternator (16 ordered pairs; none simulates);
- code: two non-simulating code programs (TitForTat and Defect written as code, in the pydantic-monty
  sandbox, every decision of every round a sandbox call), 4 ordered pairs.
Axelrod, same machine, same run: a Tournament of TitForTat, Defector, WinStayLoseShift and Alternator (the
same four strategies; round robin with self-play: 10 matches a repetition), serial, written to a CSV
file, in turns/s. A turn is a round (two simultaneous moves). Ratio: Arena's built-in rounds/s over
Axelrod's turns/s (goal >= 1x); code rounds/s (goal >= 5,000/s on 2 cores).
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

BOTS = ["titfortat", "defectbot", "pavlov", "alternator"]
CODE = {
    "tft-code": "def decide(ctx):\n    h = ctx['history']\n    return h[-1]['opponent'] if h else ctx['game']['default_action']\n",
    "defect-code": "def decide(ctx):\n    return ctx['game']['defect_action']\n",
}


def arena(programs: list[str], extra: dict, rounds: int, matches_per_cell: int, db: Path, recall: int | None = None) -> dict:
    from arena.engine.grid import TournamentConfig
    from arena.runner.tournament import TournamentRunner
    from arena.store.database import Store

    lib = library()
    config = TournamentConfig(programs=programs, games=["prisoners_dilemma"], epsilons=[0.2], max_depths=[10],
                              trials=matches_per_cell, rounds=[rounds], recalls=[recall], seed=1)
    with Store(db) as store:
        runner = TournamentRunner.create(store, config, {**lib.programs, **extra}, lib.games)
        t0 = time.perf_counter()
        done = asyncio.run(runner.run())
        wall = time.perf_counter() - t0
        stored = store.query("SELECT count(*) AS n FROM rounds")[0]["n"]
    return {"matches": done.done, "rounds": stored, "wall": wall, "status": done.status}


def code_programs() -> dict:
    from arena.library.programs import CodeProgram

    return {pid: CodeProgram(id=pid, kind="code", simulates=False, source=src) for pid, src in CODE.items()}


def axelrod(turns: int, repetitions: int, tmp: Path) -> dict | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import axelrod as axl
    except ImportError:
        return None
    players = [axl.TitForTat(), axl.Defector(), axl.WinStayLoseShift(), axl.Alternator()]
    tournament = axl.Tournament(players, turns=turns, repetitions=repetitions, seed=1)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tournament.play(build_results=False, filename=str(tmp / f"axelrod-{turns}.csv"), processes=None,
                        progress_bar=False)
    wall = time.perf_counter() - t0
    matches = len(players) * (len(players) + 1) // 2 * repetitions
    return {"version": axl.__version__, "turns": matches * turns, "wall": wall}


def main(argv: list[str] | None = None) -> list[Row]:
    ap = arg_parser(__doc__)
    ap.add_argument("--matches", type=int, default=200, help="200-round matches per cell (10-round: 20x as many)")
    args = ap.parse_args(argv)
    long_n = 20 if args.quick else args.matches
    print(f"repeated-game throughput, {machine()}")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        for rounds, per_cell in ((10, long_n * 20), (200, long_n)):
            a = arena(BOTS, {}, rounds, per_cell, Path(tmp) / f"bots-{rounds}.db")
            c = arena(list(CODE), code_programs(), rounds, max(1, per_cell // 4), Path(tmp) / f"code-{rounds}.db")
            x = axelrod(rounds, max(1, a["rounds"] // (10 * rounds) // 4), Path(tmp))
            ar, cr = a["rounds"] / a["wall"], c["rounds"] / c["wall"]
            print(f"  {rounds}-round matches, built-ins: {a['matches']:,} matches, {a['rounds']:,} rounds persisted in "
                  f"{a['wall']:.2f} s: {ar:,.0f} rounds/s")
            print(f"  {rounds}-round matches, code:      {c['matches']:,} matches, {c['rounds']:,} rounds persisted in "
                  f"{c['wall']:.2f} s: {cr:,.0f} rounds/s")
            if x is None:
                print("  axelrod: not installed (make bench installs it: pip install -e '.[bench]')")
                rows.append(Row("repeated_throughput", f"built-in rounds/s, {rounds}-round matches", f"{ar:,.0f} /s"))
            else:
                xr = x["turns"] / x["wall"]
                print(f"  axelrod {x['version']}, {rounds} turns: {x['turns']:,} turns in {x['wall']:.2f} s: {xr:,.0f} turns/s")
                rows.append(Row("repeated_throughput", f"built-in rounds/s ÷ Axelrod turns/s, {rounds}-round matches",
                                f"{ar:,.0f} / {xr:,.0f} = {ar / xr:.2f}×", "≥ 1×", ar >= xr and a["status"] == "finished"))
            rows.append(Row("repeated_throughput", f"code rounds/s (2 non-simulating programs), {rounds}-round matches",
                            f"{cr:,.0f} /s", "≥ 5,000 /s", cr >= 5000 and c["status"] == "finished"))
            if rounds > 10:  # the cost of showing the whole history to every decision: the same, shown 10 rounds
                k = arena(list(CODE), code_programs(), rounds, max(1, per_cell // 4), Path(tmp) / f"code-{rounds}-k.db",
                          recall=10)
                kr = k["rounds"] / k["wall"]
                print(f"  {rounds}-round matches, code, --recall 10: {kr:,.0f} rounds/s")
                rows.append(Row("repeated_throughput", f"code rounds/s, {rounds}-round matches, recall 10 (context)",
                                f"{kr:,.0f} /s"))
    return rows


if __name__ == "__main__":
    run(main)
