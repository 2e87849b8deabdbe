"""Code-program throughput: trials persisted per second (target >= 2,000/s), beside the built-in rate.

    python benchmarks/code_throughput.py [--quick] [--trials N] [--json rows.json]

The real TournamentRunner writing every trial and node into an SQLite file (WAL), Prisoner's Dilemma,
epsilon 0.05, depth cap 100: the code FairBot and code DefectBot of programs/code/ (all 4 ordered pairs:
FairBot against itself makes 1/epsilon = 20 nodes a decision, against DefectBot 2), every decision of a
code program run in the pydantic-monty sandbox (warm sessions, decisions batched across trials). The same
grid with the built-in fairbot and defectbot runs in the same process, so the ratio holds on a loaded
machine. Sandbox start-up (worker processes) is included in the code figure.

Decisions are pure functions of their ctx (issue 24): fair-code and defect-code keep no state and read only
strings of their ctx, so they are neither loaded afresh nor given ctx copies. The third grid swaps in a FairBot
that keeps a module-level counter and list and calls a method of the game's actions (`.index`): every decision
loads it afresh and gets its own copy of the ctx's lists and dicts (the worst case of that mechanism).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Row, arg_parser, library, machine, run  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STATEFUL = """\
calls = 0
seen = []
def decide(ctx):
    global calls
    calls += 1
    seen.append(ctx["u"])
    game = ctx["game"]
    if ctx["opponent_action"] is None:
        return game["default_action"]
    return game["actions"][game["actions"].index(ctx["opponent_action"])]
"""


def tournament(ids: list[str], programs: dict, games: dict, per_cell: int, db: Path) -> dict:
    from arena.engine.grid import TournamentConfig
    from arena.runner.tournament import TournamentRunner
    from arena.store.database import Store

    config = TournamentConfig(programs=ids, games=["prisoners_dilemma"], epsilons=[0.05], max_depths=[100],
                              trials=per_cell, seed=1)
    with Store(db) as store:
        runner = TournamentRunner.create(store, config, programs, games)
        t0 = time.perf_counter()
        done = asyncio.run(runner.run())
        wall = time.perf_counter() - t0
        nodes = store.query("SELECT count(*) AS n FROM nodes")[0]["n"]
        ok = store.query("SELECT count(*) AS n FROM trials WHERE status = 'ok'")[0]["n"]
    return {"trials": done.done, "ok": ok, "wall": wall, "nodes": nodes, "status": done.status}


def main(argv: list[str] | None = None) -> list[Row]:
    from arena.library.programs import load_programs

    ap = arg_parser(__doc__)
    ap.add_argument("--trials", type=int, default=5_000, help="trials per cell (4 cells)")
    args = ap.parse_args(argv)
    per_cell = 500 if args.quick else args.trials
    lib = library()
    from arena.library.programs import CodeProgram

    programs = {**lib.programs, **load_programs([ROOT / "programs" / "code"]),
                "counter-code": CodeProgram(id="counter-code", kind="code", source=STATEFUL)}
    print(f"code-program throughput, {machine()}")
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, ids in (("code", ["fair-code", "defect-code"]), ("builtin", ["fairbot", "defectbot"]),
                           ("stateful", ["counter-code", "defect-code"])):
            r = out[label] = tournament(ids, programs, lib.games, per_cell, Path(tmp) / f"{label}.db")
            print(f"  {label:8s} {r['trials']:,} trials ({r['nodes']:,} nodes, {r['ok']:,} ok) persisted in "
                  f"{r['wall']:.2f} s: {r['trials'] / r['wall']:,.0f} trials/s, {r['nodes'] / r['wall']:,.0f} nodes/s")
    code, builtin, stateful = (out[k]["trials"] / out[k]["wall"] for k in ("code", "builtin", "stateful"))
    print(f"  ratio code / built-in: {code / builtin:.3f}; stateful / code: {stateful / code:.3f}")
    ok = out["code"]["status"] == "finished" and out["code"]["ok"] == out["code"]["trials"]
    return [
        Row("code_throughput", "code trials/s persisted (PD, code FairBot+DefectBot, ε 0.05)", f"{code:,.0f} /s",
            "≥ 2,000 /s", ok and code >= 2_000),
        Row("code_throughput", "same grid, built-in fairbot+defectbot (same run)",
            f"{builtin:,.0f} /s (code = {code / builtin:.2f}×)"),
        Row("code_throughput", "a stateful FairBot (loaded afresh, ctx copied each decision) + code DefectBot",
            f"{stateful:,.0f} /s ({stateful / code:.2f}× the stateless code)", "≥ 2,000 /s",
            out["stateful"]["ok"] == out["stateful"]["trials"] and stateful >= 2_000),
    ]


if __name__ == "__main__":
    run(main)
