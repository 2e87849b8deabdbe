"""The cap on calls in flight (arena/llm/gate.py's Gate) against asyncio.Semaphore, in one run.

    python benchmarks/gate.py [--quick] [--waiters 64 256 1024] [--json rows.json]

W coroutines pass a cap of C = 64 slots, each holding it for one event-loop turn (the calls' HTTP waits
removed: what is left is the cap's own cost and the event loop's task switch). With W > C most of them
queue; Python 3.11's Semaphore wakes a waiter that must then check again (and newcomers look along the queue
while a woken waiter has not run yet), Gate hands the slot to the waiter. A call passes three caps (pool,
tournament, replica). Reported: µs per acquire+release+task switch of each (medians of five) and the ratio;
target: Gate no dearer than Semaphore at every W. (Both grow with W: the loop's cost of more tasks.)
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Row, arg_parser, machine, run  # noqa: E402

from arena.llm.gate import Gate  # noqa: E402

SLOTS = 64


async def passes(make, waiters: int, rounds: int) -> float:
    """µs per acquire+release when `waiters` coroutines each pass the cap `rounds` times."""
    cap = make(SLOTS)

    async def one():
        for _ in range(rounds):
            async with cap:
                await asyncio.sleep(0)

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(waiters)))
    return (time.perf_counter() - t0) / (waiters * rounds) * 1e6


def main(argv: list[str]) -> list[Row]:
    ap = arg_parser(__doc__)
    ap.add_argument("--waiters", type=int, nargs="+", default=[64, 256, 1024])
    args = ap.parse_args(argv)
    rounds = 5 if args.quick else 20
    print(machine())
    rows = []
    for w in args.waiters:
        sem = statistics.median(asyncio.run(passes(asyncio.Semaphore, w, rounds)) for _ in range(5))
        gate = statistics.median(asyncio.run(passes(Gate, w, rounds)) for _ in range(5))
        print(f"W={w:5d}: Semaphore {sem:7.2f} µs/pass, Gate {gate:7.2f} µs/pass, ratio {sem / gate:5.2f}")
        rows.append(Row("gate", f"Semaphore / Gate, µs per pass at W={w}", f"{sem:.2f} / {gate:.2f} = {sem / gate:.2f}",
                        "≥ 1.0", sem / gate >= 1.0))
    return rows


if __name__ == "__main__":
    run(main)
