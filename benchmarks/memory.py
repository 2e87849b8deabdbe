"""Memory and queries at scale: a 1,000,000-trial built-in tournament in bounded memory, analysed in seconds.

    python benchmarks/memory.py [--quick] [--trials N] [--json rows.json]

The real `arena run` (PD, cooperatebot/defectbot/fairbot/randombot, epsilon 0.05, depth cap 100, plain
progress display and the summary table at the end) runs in a child process, first for 100,000 trials,
then for 1,000,000; the peak RSS of each child comes from the kernel (wait4's ru_maxrss). Bounded
memory: the 10x larger run must not need ~10x the memory (target: peak RSS ratio < 2).

Then, on the 1,000,000-trial database, the queries the product makes (timed in this process, warm
page cache, medians of three): the summary table (analysis.pair_rows), the live tally's start
(LiveTally.seed), the stored-trial map of a resume (Store.completed), the history list
(Store.tournaments), one cell's trial list (the Trials screen), one trial's tree, and a heavier
ad-hoc query over every node (depth histogram per pair; context, not a product query).
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, Row, arg_parser, machine, run  # noqa: E402

BOTS = ["cooperatebot", "defectbot", "fairbot", "randombot"]


def arena_cmd() -> list[str]:
    script = Path(sys.executable).with_name("arena")
    return [str(script)] if script.exists() else [sys.executable, "-m", "arena"]


def child_run(db: Path, trials: int) -> dict:
    """`arena run` for `trials` trials in a child; its wall time, peak RSS (MB) and reported rate."""
    per_cell = trials // (len(BOTS) ** 2)
    cmd = arena_cmd() + ["run", "-g", "prisoners_dilemma", *[a for b in BOTS for a in ("-p", b)], "-e", "0.05",
                         "-d", "100", "-n", str(per_cell), "--db", str(db), "--display", "plain"]
    env = {**os.environ, "ARENA_PROGRAMS": str(ROOT / "programs"), "ARENA_GAMES": str(ROOT / "games")}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=db.parent)
    out = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        raise RuntimeError(f"arena run failed:\n{out[-2000:]}")
    m = re.search(r"(\d+)/(\d+) trials stored .* in ([\d.]+)s", out)
    run_s = float(m.group(3)) if m else wall
    return {"trials": int(m.group(1)) if m else per_cell * 16, "run_s": run_s, "wall_s": wall,
            "rss_mb": usage.ru_maxrss / 1024, "db_mb": sum(p.stat().st_size for p in db.parent.glob(db.name + "*")) / 1e6}


def timed_query(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def queries(db: Path) -> list[tuple[str, float]]:
    from arena.analysis.tables import pair_rows
    from arena.analysis.tally import LiveTally
    from arena.store.database import Store

    with Store(db) as store:
        tid = store.tournament().id
        total = store.tournament(tid).total_trials
        cell = store.query("SELECT game, row_program, col_program, epsilon, max_depth, temperature FROM trials "
                           "WHERE tournament_id=? AND seq=5", (tid,))[0]
        where = ("game=? AND row_program=? AND col_program=? AND epsilon=? AND max_depth=? "
                 "AND coalesce(temperature, -1.0) = coalesce(?, -1.0)")
        trial_id = store.query("SELECT id FROM trials WHERE tournament_id=? AND seq=?", (tid, total // 2))[0]["id"]
        out = [
            ("summary table (pair_rows)", timed_query(lambda: pair_rows(store, tid))),
            ("live tally start (LiveTally.seed)", timed_query(lambda: LiveTally().seed(store, tid))),
            ("resume map (Store.completed)", timed_query(lambda: store.completed(tid, total))),
            ("history list (Store.tournaments)", timed_query(store.tournaments)),
            ("one cell's trials (Trials screen)", timed_query(lambda: store.trial_rows(tid, where, tuple(cell.values())))),
            ("one trial's tree (Store.nodes)", timed_query(lambda: store.nodes(trial_id))),
            ("node depth histogram per pair (ad hoc, all nodes)", timed_query(lambda: store.query(
                "SELECT t.row_program, t.col_program, n.depth, count(*) AS n FROM nodes n JOIN trials t "
                "ON t.id = n.trial_id WHERE t.tournament_id = ? GROUP BY 1, 2, 3", (tid,)), repeat=1)),
        ]
    return out


def main(argv: list[str] | None = None) -> list[Row]:
    ap = arg_parser(__doc__)
    ap.add_argument("--trials", type=int, default=1_000_000, help="the large run (the small one is a tenth)")
    args = ap.parse_args(argv)
    big = 100_000 if args.quick else args.trials
    small = big // 10
    print(f"memory and queries, {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        runs = {}
        for n in (small, big):
            db = Path(tmp) / f"t{n}.db"
            runs[n] = r = child_run(db, n)
            print(f"  {r['trials']:>9,} trials: {r['run_s']:6.1f} s ({r['trials'] / r['run_s']:,.0f} trials/s), "
                  f"peak RSS {r['rss_mb']:6.1f} MB, database {r['db_mb']:,.0f} MB")
        ratio = runs[big]["rss_mb"] / runs[small]["rss_mb"]
        print(f"  peak RSS ratio, {big // small}x the trials: {ratio:.2f}x")
        qs = queries(Path(tmp) / f"t{big}.db")
        for label, s in qs:
            print(f"  {label:<52} {s * 1000:8.1f} ms")
    b = runs[big]
    rows = [
        Row("memory", f"peak RSS, {b['trials']:,} trials (arena run)", f"{b['rss_mb']:.0f} MB "
            f"({b['trials'] / b['run_s']:,.0f} trials/s, database {b['db_mb']:,.0f} MB)"),
        Row("memory", f"peak RSS ratio {b['trials']:,} / {runs[small]['trials']:,} trials", f"{ratio:.2f}x", "< 2x",
            ratio < 2),
    ]
    worst = max(qs[:-1], key=lambda q: q[1])
    rows.append(Row("memory", f"slowest product query on {b['trials']:,} trials: {worst[0]}", f"{worst[1]:.2f} s",
                    "< 5 s", worst[1] < 5))
    rows.append(Row("memory", f"ad-hoc query over all {b['trials']:,} trials' nodes (context): {qs[-1][0]}",
                    f"{qs[-1][1]:.2f} s"))
    return rows


if __name__ == "__main__":
    run(main)
