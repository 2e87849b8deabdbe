"""Results of a 1,000,000-trial tournament: keys answered while the analysis loads.

    python benchmarks/results_load.py [--quick] [--db FILE] [--trials N] [--json rows.json]

The database: --db (its newest tournament), or one built here by the real `arena run` as in
benchmarks/memory.py (built-in bots on the PD, epsilon 0.05, cap 100; --quick: 100,000 trials).
The real ArenaApp runs headless (120x40). First, what a key waited before the analysis moved to a
worker: the analysis the Results screen shows (load_outcomes + pairs) timed on the UI thread, where it
ran, blocking every key. Then Results is opened on the tournament and, while its worker loads, keys are
pressed and timed (screen switches 5 / 4, ? for Help and Esc back): from posting the key until
its effect holds and the screen's next compositor pass has run (tui_load.press_and_measure). Only keys
pressed while the load was in flight count. p50 / p95 / max, and the ratio of the old wait to the new p95.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, Row, arg_parser, machine, run  # noqa: E402
from memory import child_run  # noqa: E402
from tui_load import press_and_measure, summary  # noqa: E402

TARGET_S = 0.1


async def scenario(db: Path) -> dict:
    from arena.analysis.tables import load_outcomes, pairs
    from arena.tui.app import ArenaApp
    from arena.tui.screens.help import HelpScreen

    app = ArenaApp(db=db, start_mode="history", programs_path=ROOT / "programs", games_path=ROOT / "games",
                   quiet_gc=True)  # (as `arena` runs it)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        tid = app.store.tournament().id
        trials = app.store.count_trials(tid)
        t0 = time.perf_counter()
        pairs(load_outcomes(app.store, tid))  # what the UI thread did before, keys waiting
        blocked = time.perf_counter() - t0
        await pilot.press("4")  # the Results screen is built once (a first visit), empty
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        t0 = time.perf_counter()
        app.open_results(tid)
        keys = (("5", lambda: app.current_mode == "history"), ("4", lambda: app.current_mode == "results"),
                ("question_mark", lambda: isinstance(app.screen, HelpScreen)), ("escape", lambda: app.screen is screen))
        out = []
        while screen._loading:
            for key, effect in keys:
                if not screen._loading and key != "escape":
                    break
                out.append((key, await press_and_measure(app, key, effect)))
                await asyncio.sleep(0.05)
        loaded = time.perf_counter() - t0
        await app.workers.wait_for_complete()
        rows = screen.query_one("#pairs").row_count
        await pilot.pause(0.5)
        idle = []  # the same keys with nothing loading: what this machine's load alone costs
        for _ in range(max(2, len(out) // len(keys))):
            for key, effect in keys:
                idle.append((key, await press_and_measure(app, key, effect)))
                await asyncio.sleep(0.05)
            await app.workers.wait_for_complete()  # (History refreshes its list in a worker on each visit)
    return {"trials": trials, "blocked": blocked, "loaded": loaded, "latencies": out, "idle": idle, "rows": rows}


def main(argv: list[str] | None = None) -> list[Row]:
    ap = arg_parser(__doc__)
    ap.add_argument("--db", help="a database whose newest tournament is large (else one is built here)")
    ap.add_argument("--trials", type=int, default=1_000_000)
    args = ap.parse_args(argv)
    trials = 100_000 if args.quick else args.trials
    print(f"Results while a large tournament loads, {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(args.db) if args.db else Path(tmp) / "results.db"
        if not args.db:
            child_run(db, trials)
        out = asyncio.run(scenario(db))
    lat = [x for _, x in out["latencies"]]
    p50, p95, mx = summary(lat) if lat else (0.0, 0.0, 0.0)
    print(f"  {out['trials']:,} trials, {out['rows']} cells; analysis on the UI thread (before): "
          f"{out['blocked'] * 1000:.0f} ms; worker load with keys pressed: {out['loaded'] * 1000:.0f} ms")
    print(f"  {len(lat)} keys while loading: p50 {p50 * 1000:.0f} / p95 {p95 * 1000:.0f} / max {mx * 1000:.0f} ms")
    i50, i95, imax = summary([x for _, x in out["idle"]])
    print(f"  the same keys with nothing loading: p50 {i50 * 1000:.0f} / p95 {i95 * 1000:.0f} / max {imax * 1000:.0f} ms")
    print("  while loading, by key (ms): " + ", ".join(f"{k} {x * 1000:.0f}" for k, x in out["latencies"]))
    ratio = out["blocked"] / p95 if p95 else float("inf")
    return [
        Row("results_load", f"keys while Results loads {out['trials']:,} trials, p50 / p95 / max ({len(lat)} keys)",
            f"{p50 * 1000:.0f} / {p95 * 1000:.0f} / {mx * 1000:.0f} ms", "< 100 ms", bool(lat) and p95 < TARGET_S),
        Row("results_load", "the same keys with nothing loading (this machine's load alone), p50 / p95 / max",
            f"{i50 * 1000:.0f} / {i95 * 1000:.0f} / {imax * 1000:.0f} ms"),
        Row("results_load", "a key's wait before (analysis on the UI thread) / p95 now",
            f"{out['blocked'] * 1000:.0f} ms / {p95 * 1000:.0f} ms = {ratio:.0f}×"),
    ]


if __name__ == "__main__":
    run(main)
