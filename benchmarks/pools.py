"""Endpoint pools: one provider over 1, 2 and 4 replicas, and a replica killed mid-run.

    python benchmarks/pools.py [--quick] [--json rows.json]

Each replica is a fake OpenAI-compatible server (tests.support.fake_llm, mirror policy) in its own
process, answering every call after L = 100 ms. The provider `custom` lists them all in `base_urls`
with `concurrency: 8` (per replica), and the tournament allows 8 x replicas calls in flight. A real
tournament (TournamentRunner, LLMService, store) of the library's LLM programs runs against them:

- scaling: efficiency = (calls x L / in flight) / wall, and throughput (calls/s) against 1 replica;
  the share of calls each replica answered (from llm_calls.replica);
- kill: 2 replicas x 8, in flight 16, one replica's process killed (SIGKILL) after 4 s: every trial
  must end ok (its calls move to the other replica).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import Row, arg_parser, library, machine, run, to_fake  # noqa: E402
from llm_concurrency import PROGRAMS, sized  # noqa: E402

L = 0.1
PER_REPLICA = 8
KEY = {"LLM_API_KEY": "bench-key-not-secret"}


@contextmanager
def replica(latency: float):
    """A fake server process; yields (base URL, process)."""
    proc = subprocess.Popen([sys.executable, str(HERE / "common.py"), "serve", "--latency", str(latency)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        m = re.search(r"(http://\S+/v1)", line)
        if not m:
            raise RuntimeError(f"fake server did not start: {line!r}")
        yield m.group(1), proc
    finally:
        if proc.poll() is None:
            proc.stdin.close()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
        proc.wait()


def tournament(urls: list[str], calls_wanted: int, lib, kill: subprocess.Popen | None = None,
               kill_after: float = 4.0) -> dict:
    from arena.engine.grid import TournamentConfig
    from arena.llm.registry import BUILTIN
    from arena.llm.service import LLMService
    from arena.runner.tournament import TournamentRunner
    from arena.store.database import Store

    in_flight = PER_REPLICA * len(urls)
    config, _ = sized(calls_wanted, programs=PROGRAMS, games=["prisoners_dilemma"], epsilons=[0.2], max_depths=[6],
                      seed=3, concurrency=in_flight, cache=False, models=to_fake(PROGRAMS))
    registry = {**BUILTIN, "custom": BUILTIN["custom"].model_copy(
        update={"base_url": None, "base_urls": urls, "concurrency": PER_REPLICA})}
    killed_at = None
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "bench.db") as store:
        backend = LLMService(store, registry, KEY)
        runner = TournamentRunner.create(store, config, lib.programs, lib.games, backend=backend)
        timer = None
        if kill is not None:
            def killer() -> None:
                nonlocal killed_at
                kill.kill()
                killed_at = time.perf_counter() - t0
            timer = threading.Timer(kill_after, killer)
        t0 = time.perf_counter()
        if timer is not None:
            timer.start()
        done = asyncio.run(asyncio.wait_for(runner.run(), timeout=120 + config.total_trials))
        wall = time.perf_counter() - t0
        if timer is not None:
            timer.cancel()
        tid = runner.tournament_id
        calls = store.query("SELECT sum(n_calls) AS n FROM trials WHERE tournament_id=?", (tid,))[0]["n"]
        by_replica = {r["replica"]: r["n"] for r in store.query(
            "SELECT replica, count(*) AS n FROM llm_calls WHERE tournament_id=? AND status='ok' GROUP BY replica",
            (tid,))}
        errors = store.query("SELECT count(*) AS n FROM llm_calls WHERE tournament_id=? AND status='error'",
                             (tid,))[0]["n"]
    return {"status": done.status, "counts": done.counts, "trials": config.total_trials, "calls": calls,
            "wall": wall, "in_flight": in_flight, "by_replica": by_replica, "errors": errors, "killed_at": killed_at}


def main(argv: list[str] | None = None) -> list[Row]:
    args = arg_parser(__doc__).parse_args(argv)
    per_replica_calls = 400 if args.quick else 1200
    lib = library()
    print(f"machine: {machine()}")
    rows: list[Row] = []
    rates = {}
    for n in (1, 2, 4):
        with ExitStack() as stack:
            urls = [stack.enter_context(replica(L))[0] for _ in range(n)]
            out = tournament(urls, per_replica_calls * n, lib)
        ideal = out["calls"] * L / out["in_flight"]
        eff = ideal / out["wall"]
        rates[n] = out["calls"] / out["wall"]
        shares = sorted(v / sum(out["by_replica"].values()) for v in out["by_replica"].values())
        print(f"{n} replica(s) x {PER_REPLICA}: {out['status']} {out['counts']}, {out['calls']} calls in "
              f"{out['wall']:.1f} s, efficiency {eff:.2f}, {rates[n]:.0f} calls/s, shares "
              f"{', '.join(f'{s:.0%}' for s in shares)}", flush=True)
        target = 0.85 if n == 4 else (0.9 if n == 2 else None)
        rows.append(Row("pools", f"{n} x {PER_REPLICA} in flight: efficiency", f"{eff:.2f}",
                        f"≥ {target}" if target else "", eff >= target if target else None))
        if n > 1:
            rows.append(Row("pools", f"{n} replicas: throughput vs 1", f"{rates[n] / rates[1]:.2f}x",
                            f"≥ {0.85 * n:.1f}x" if n == 4 else "", rates[n] / rates[1] >= 0.85 * n if n == 4 else None))
            rows.append(Row("pools", f"{n} replicas: smallest share of calls", f"{shares[0]:.0%}",
                            "≥ 35%" if n == 2 else "", shares[0] >= 0.35 if n == 2 else None))
    with replica(L) as (u1, _), replica(L) as (u2, victim):
        out = tournament([u1, u2], per_replica_calls * 2, lib, kill=victim, kill_after=4.0)
    lost = out["trials"] - out["counts"].get("ok", 0)
    killed = f"{out['killed_at']:.1f} s" if out["killed_at"] is not None else "never (the run ended first)"
    print(f"kill: {out['status']} {out['counts']}, {out['calls']} calls in {out['wall']:.1f} s, killed at {killed}, "
          f"{out['errors']} failed attempts, answered by replica {out['by_replica']}", flush=True)
    rows.append(Row("pools", "2 x 8, one killed after 4 s: trials lost", f"{lost} of {out['trials']}", "0",
                    lost == 0 and out["killed_at"] is not None))
    rows.append(Row("pools", "2 x 8, one killed: failed attempts (retried elsewhere)", str(out["errors"])))
    return rows


if __name__ == "__main__":
    run(main)
