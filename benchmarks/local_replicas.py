"""The embedded model as a pool: `local: {replicas: N}` against one server, in one run.

    python benchmarks/local_replicas.py [--quick] [--replicas 2] [--rounds 1]   (make bench-model runs it too)

The issue's tournament (fair-llm vs defect-llm on `local`, ε 0.5, cap 3, the response cache off, so every
call reaches the model), run twice back to back (alternating when --rounds > 1):

- one server: llama.cpp with a thread per core, one call in flight (the default);
- N replicas: N servers, each with cores ÷ N threads, one call in flight each (the tournament allows N):
  calls go to the least busy one.

Reported: each variant's wall time and the speedup (one server's wall ÷ the pool's). On a machine with
many cores a server cannot use them all for one small model's call; on 2 cores the replicas only split
the same two cores.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Row, arg_parser, library, machine, run  # noqa: E402
from local_slots import tournament  # noqa: E402


def main(argv: list[str] | None = None) -> list[Row]:
    ap = arg_parser(__doc__)
    ap.add_argument("--replicas", type=int, default=2, help="servers in the pool")
    ap.add_argument("--rounds", type=int, default=1, help="pairs of runs (alternating)")
    ap.add_argument("--model", default="qwen2.5-coder-0.5b", help="the embedded model")
    args = ap.parse_args(argv)
    trials = 1 if args.quick else 2
    lib = library()
    print(f"machine: {machine()}")
    walls: dict[int, list[float]] = {1: [], args.replicas: []}
    calls: dict[int, list[float]] = {1: [], args.replicas: []}
    for r in range(args.rounds):
        order = [1, args.replicas] if r % 2 == 0 else [args.replicas, 1]
        for n in order:
            out = tournament(None, trials, lib, args.model, replicas=n, concurrency=n)
            walls[n].append(out["wall"])
            calls[n].extend(out["latencies"])
            print(f"round {r + 1}, {n} server(s): {out['status']} {out['counts']}, {len(out['latencies'])} calls, "
                  f"wall {out['wall']:.1f} s, mean {statistics.mean(out['latencies']):.2f} s/call ({machine()})",
                  flush=True)
    one, pool = statistics.mean(walls[1]), statistics.mean(walls[args.replicas])
    n = args.replicas
    return [
        Row("local_replicas", "one server: wall, mean call", f"{one:.1f} s, {statistics.mean(calls[1]):.2f} s/call"),
        Row("local_replicas", f"{n} replicas: wall, mean call", f"{pool:.1f} s, {statistics.mean(calls[n]):.2f} s/call"),
        Row("local_replicas", f"{n} replicas: speedup (wall of one ÷ wall of the pool)", f"{one / pool:.2f}x"),
        Row("local_replicas", "machine at the end", machine()),
    ]


if __name__ == "__main__":
    run(main)
