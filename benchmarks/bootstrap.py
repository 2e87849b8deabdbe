"""The meta-game bootstrap at scale: B = 1000 resamples of a 1,000,000-trial tournament cost what they
cost for 10,000 trials, because each cell is resampled through its joint-outcome counts (a multinomial
draw), never through its rows.

    python benchmarks/bootstrap.py [--quick] [--trials N] [--json rows.json]

Runs two built-in tournaments in this process (PD, cooperatebot/defectbot/fairbot/randombot, ε 0.2,
depth cap 10: 16 cells, RandomBot making most of them random): `--trials` trials (1,000,000 by default)
and a hundredth of it. On each, timed in one run (medians of three, warm page cache):
- outcomes: analysis.load_outcomes, the one GROUP BY every table starts from (context);
- bootstrap: metagame.add_bootstrap with B = 1000 and no Nash enumeration, then matrix_rows (the
  margins' intervals and verdicts);
- supports: the same with the equilibria's supports (pure ones from every resample's margins, mixed ones
  from nashpy on the first 50 resamples);
- rows: the baseline, resampling trial rows (each cell's n outcome codes drawn with replacement, the
  cell's mean payoffs from them), timed for 5 resamples and scaled to B.
Targets: the large tournament's bootstrap under a second, and at least 10x faster than resampling rows.
The ratio to the small tournament is context (it should not grow like the trials: 100x).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, Row, arg_parser, machine, run  # noqa: E402

BOTS = ["cooperatebot", "defectbot", "fairbot", "randombot"]
B = 1000


def median_time(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def tournament(db: Path, trials: int) -> tuple:
    from arena.engine.grid import TournamentConfig
    from arena.library.games import load_games
    from arena.library.programs import load_programs
    from arena.runner.tournament import TournamentRunner
    from arena.store.database import Store

    store = Store(db)
    cfg = TournamentConfig(programs=BOTS, games=["prisoners_dilemma"], epsilons=[0.2], max_depths=[10],
                           trials=trials // len(BOTS) ** 2, seed=1)
    runner = TournamentRunner.create(store, cfg, load_programs([ROOT / "programs"]), load_games(ROOT / "games"))
    t0 = time.perf_counter()
    asyncio.run(runner.run())
    return store, runner.tournament_id, time.perf_counter() - t0


def measure(store, tid) -> dict[str, float]:
    from arena.analysis.metagame import add_bootstrap, matrix_rows, meta_matrices
    from arena.analysis.tables import load_outcomes, pairs

    out = load_outcomes(store, tid)
    pair_list = pairs(out)

    def boot(nash: bool):
        m = meta_matrices(out.programs, pair_list, nash=nash)
        add_bootstrap(m, out.groups, B, 1, nash=nash)
        return matrix_rows(m)

    boot(False)  # warm: numpy and the modules load once
    return {"outcomes": median_time(lambda: load_outcomes(store, tid)), "bootstrap": median_time(lambda: boot(False)),
            "supports": median_time(lambda: boot(True), repeat=1), "rows": rows_bootstrap(out.groups) * B / ROW_B}


ROW_B = 5


def rows_bootstrap(groups) -> float:
    """Seconds for ROW_B resamples of every cell by resampling its trials' outcome codes (the baseline)."""
    import numpy as np

    from arena.analysis.bootstrap import cell_outcomes

    cells = [c for by_cell in cell_outcomes(groups).values() for c in by_cell.values()]
    codes = [np.repeat(np.arange(len(c.counts)), c.counts) for c in cells]
    rng = np.random.default_rng(1)
    t0 = time.perf_counter()
    for _ in range(ROW_B):
        for c, code in zip(cells, codes):
            pick = code[rng.integers(0, len(code), len(code))]
            c.row_pay[pick].mean(), c.col_pay[pick].mean()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> list[Row]:
    ap = arg_parser(__doc__)
    ap.add_argument("--trials", type=int, default=1_000_000, help="the large tournament (the small one is 1/100)")
    args = ap.parse_args(argv)
    big = 100_000 if args.quick else args.trials
    small = big // 100
    print(f"meta-game bootstrap, B = {B}, {machine()}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (small, big):
            store, tid, ran = tournament(Path(tmp) / f"t{n}.db", n)
            done = store.count_trials(tid)
            results[n] = t = measure(store, tid)
            store.close()
            print(f"  {done:>9,} trials (run in {ran:5.1f} s): outcomes {t['outcomes'] * 1000:7.1f} ms, "
                  f"bootstrap {t['bootstrap'] * 1000:7.1f} ms, with supports {t['supports'] * 1000:7.1f} ms, "
                  f"resampling rows {t['rows'] * 1000:9.1f} ms (scaled from {ROW_B})")
    ratio = results[big]["bootstrap"] / results[small]["bootstrap"]
    b = results[big]
    speedup = b["rows"] / b["bootstrap"]
    print(f"  bootstrap, {big // small}x the trials: {ratio:.2f}x the time; {speedup:,.0f}x faster than resampling rows")
    return [
        Row("bootstrap", f"B={B} margins, {big:,} trials", f"{b['bootstrap'] * 1000:.0f} ms", "< 1 s",
            b["bootstrap"] < 1.0),
        Row("bootstrap", f"vs resampling rows, {big:,} trials", f"{speedup:,.0f}x faster", "≥ 10x", speedup >= 10),
        Row("bootstrap", f"time ratio {big:,} / {small:,} trials", f"{ratio:.2f}x"),
        Row("bootstrap", f"with Nash supports (mixed: 50 resamples), {big:,} trials", f"{b['supports'] * 1000:.0f} ms"),
        Row("bootstrap", f"load_outcomes, {big:,} trials (context)", f"{b['outcomes'] * 1000:.0f} ms"),
    ]


if __name__ == "__main__":
    run(main)
