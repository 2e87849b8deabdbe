"""Code decisions off the runner's event loop, and each decision its own time limit whatever the batching.

- a decision over its limit is a TimeoutError alone and in a batch; one under it passes both ways (the
  sandbox gave a batch four limits, so a decision of twice the limit passed in a batch and failed alone);
- pause and cancel answer while a batch of slow code programs is under way (the batch ran on the event
  loop: "paused" came after the batch, and cancel waited for it);
- an LLM call completes while a code program's decision runs (it ran on the event loop and held it).
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from arena.engine.code import CodeAgent
from arena.engine.events import Notice, NodeResolved, TournamentFinished, TrialsFinished
from arena.engine.grid import TournamentConfig
from arena.engine.records import Node
from arena.engine.sandbox import Sandbox
from arena.library.programs import BuiltinProgram, CodeProgram
from arena.runner.tournament import TournamentRunner

LOOP_NS = 70  # about what one iteration of the busy loop below takes in the sandbox (calibrated in `spin`)


def slow(pid: str, ms_of: str, limit_ms: int = 2000, simulates: bool = False) -> CodeProgram:
    """A code program whose decision spins for about `ms_of` milliseconds (an expression of ctx)."""
    return CodeProgram.model_validate({"id": pid, "kind": "code", "simulates": simulates, "time_limit_ms": limit_ms,
                                       "source": (
        "def decide(ctx):\n"
        f"    n = int(({ms_of}) * ctx['iters_per_ms'])\n"
        "    x = 0\n"
        "    for i in range(n):\n"
        "        x += i\n"
        "    return 'cooperate'\n")})


def spin(sb: Sandbox, program: CodeProgram) -> float:
    """Iterations of the busy loop a millisecond, measured in this sandbox now."""
    base = {"iters_per_ms": 1e6 / LOOP_NS, "opponent_action": None, "depth": 0, "epsilon": 0.0}
    sb.run_one(program, {**base, "u": 0.5})
    times = []
    for _ in range(5):  # the fastest: what the loop takes when this process is not waiting for a core
        t0 = time.perf_counter()
        sb.run_one(program, {**base, "u": 0.5})
        times.append(time.perf_counter() - t0)
    return (1e6 / LOOP_NS) * 50 / max(min(times) * 1000, 1e-3)


def test_a_decision_over_its_limit_is_a_timeout_batched_as_alone(games):
    """A decision of about three times the limit: a TimeoutError alone and among quick decisions in one batch
    (whose feed had four limits); one of a quarter of the limit passes both ways."""
    limit = 200
    prog = slow("slowpoke", "3.0 * 200 if ctx['u'] < 0.1 else (0.25 * 200 if ctx['u'] < 0.2 else 0)", limit)
    calib = slow("calib", "50", 2000)
    pd = games["prisoners_dilemma"]
    opp = BuiltinProgram(id="defectbot", kind="builtin", strategy="defect")
    with Sandbox([prog, calib], workers=1) as sb:
        rate = spin(sb, calib)
        agent = CodeAgent(prog, sb)
        us = [0.05, 0.15] + [0.5 + i / 100 for i in range(30)]
        requests = []
        for u in us:
            base, a, d, e, uu, m = agent.request(pd, opp, Node(0, None, "row", 0, prog.id, u), None, None)
            requests.append(({**base, "iters_per_ms": rate}, a, d, e, uu, m))
        from arena.engine.sandbox import full_ctx

        alone = [sb.run_one(prog, full_ctx(r)) for r in requests[:2]]
        batched = sb.run_many(prog, requests)
    timeout = f"TimeoutError: decide took longer than its limit of {limit} ms"
    assert [o.error for o in alone] == [timeout, None]
    assert [o.error for o in batched[:2]] == [timeout, None]
    assert all(o.error is None and o.value == "cooperate" for o in batched[2:])
