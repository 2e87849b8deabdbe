"""The embedded model's prompt cache: slots pinned per program (and opponent), against one shared slot, in one run.

    python benchmarks/local_slots.py [--rounds 1] [--trials 2] [--pinned-only] [--quick]   (make bench-model runs it)

The issue's tournament, for real on the embedded model: fair-llm vs defect-llm on `local` (ε 0.5, cap 3,
2 trials, the response cache off, so every call reaches the model). Two variants, run back to back
(alternating when --rounds > 1, the machine is shared and noisy):

- shared: `slots: 1`, every program's calls on one llama.cpp slot (the behaviour before): the system
  prompt comes first, so a call after the other program's re-reads the whole prompt;
- pinned: Arena's default (`id_slot` in each request, `cache_prompt`): a slot per program, or, once each
  pair of programs meets in 3 cells or more (`arena.llm.service.slot_per_pair`; `--trials 8` does), a slot
  per program and opponent: a repeat call re-reads only what differs from that slot's previous prompt.

Reported: the mean latency of the uncached calls of each variant and their ratio (target: pinned ≤ 1.2 s
on the idle 2-core machine); and two baselines, the same model answering
identical prompts (the whole prompt cached: generation alone): the pinned tournament's first prompt again
and again, and each of its uncached calls' own prompt sent once more right after it (same seed, so the same
answer and length: the tournament's calls without what their prompts cost; target: a tournament's
uncached call ≤ 1.3x that). llama.cpp's threads slow down sharply
when other processes share the cores: compare the ratio, read the absolute numbers with the load.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Row, arg_parser, library, machine, run  # noqa: E402

from arena.engine.grid import TournamentConfig  # noqa: E402

PROGRAMS = ["fair-llm", "defect-llm"]
TIMING = re.compile(r"(prompt eval|\s{8}eval) time =\s+([\d.]+) ms /\s+(\d+) tokens")


def server_timings(logs: list[Path]) -> dict[str, list[float]]:
    """llama.cpp's own per-call timings from its logs: prompt tokens (re)read and their ms, tokens
    generated and their ms. The tokens re-read do not depend on the machine's load."""
    out: dict[str, list[float]] = {"prompt_n": [], "prompt_ms": [], "gen_n": [], "gen_ms": []}
    for log in logs:
        for kind, ms, n in TIMING.findall(log.read_text(errors="replace")):
            key = "prompt" if kind.startswith("prompt") else "gen"
            out[f"{key}_n"].append(int(n))
            out[f"{key}_ms"].append(float(ms))
    return out


def tournament(slots: int | None, trials: int, lib, model: str, replicas: int = 1, concurrency: int = 1,
               threads: int | None = None) -> dict:
    from arena.llm.registry import load_providers
    from arena.llm.service import LLMService
    from arena.runner.tournament import TournamentRunner
    from arena.store.database import Store

    registry = load_providers(Path("/nonexistent-providers.yaml"), env={})
    registry["local"] = registry["local"].model_copy(update={"slots": slots, "replicas": replicas, "threads": threads})
    config = TournamentConfig(programs=PROGRAMS, games=["prisoners_dilemma"], epsilons=[0.5], max_depths=[3],
                              trials=trials, seed=7, concurrency=concurrency, cache=False,
                              models={p: f"local/{model}" for p in PROGRAMS})
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "bench.db") as store:
        logs: list[Path] = []

        class Service(LLMService):
            async def aclose(self) -> None:  # the servers' logs (llama.cpp's timings), kept before they stop
                logs.extend(s.log_path for s in self._local_servers)
                await super().aclose()

        backend = Service(store, registry, env={})
        runner = TournamentRunner.create(store, config, lib.programs, lib.games, backend=backend)
        t0 = time.perf_counter()
        done = asyncio.run(runner.run())
        wall = time.perf_counter() - t0
        lat = [r["latency_ms"] / 1000 for r in store.query(
            "SELECT latency_ms FROM llm_calls WHERE tournament_id=? AND cached=0 AND status != 'error'",
            (runner.tournament_id,))]
        asked = store.query("SELECT messages, params FROM llm_calls WHERE tournament_id=? AND cached=0 "
                            "AND status != 'error' ORDER BY id", (runner.tournament_id,))
    return {"status": done.status, "counts": done.counts, "wall": wall, "latencies": lat,
            "timings": server_timings(logs), "first": asked[0] if asked else None, "asked": asked}


def _request(call: dict) -> dict:
    """A stored call's request as Arena sent it: its messages, temperature, token cap, seed and constraint
    (the action schema)."""
    import json

    from arena.llm import prompts
    from arena.library.catalog import load_library

    msgs = call["messages"] if isinstance(call["messages"], list) else json.loads(call["messages"])
    params = call["params"] if isinstance(call["params"], dict) else json.loads(call["params"] or "{}")
    fmt = prompts.json_schema(load_library().games["prisoners_dilemma"].actions) \
        if params.get("constraint") == "json_schema" else None
    return {"messages": msgs, "temperature": params.get("temperature", 0.7),
            "max_tokens": params.get("max_tokens", 512), "seed": params.get("seed"),
            **({"response_format": fmt} if fmt else {})}


def identical(model: str, calls: list[dict], repeats: int, threads: int) -> list[float]:
    """The same model answering identical prompts: each of `calls` (stored calls: messages and parameters,
    its constraint the action schema Arena sends) sent 1 + `repeats` times in a row to one slot, so from its
    second sending its whole prompt is in llama.cpp's cache; the latencies of those repeats. What a call costs
    when nothing of its prompt is new (its answer, same seed, as long as it was)."""
    from openai import AsyncOpenAI

    from arena.llm import localmodel

    requests = [_request(c) for c in calls]

    async def go() -> list[float]:
        async with localmodel.LocalServer(localmodel.model_spec(model), parallel=1, threads=threads) as srv:
            client = AsyncOpenAI(base_url=srv.base_url, api_key="none")
            out = []
            for req in requests:
                for i in range(repeats + 1):
                    t = time.perf_counter()
                    await client.chat.completions.create(model=srv.model, **req)
                    if i:
                        out.append(time.perf_counter() - t)
            await client.close()
            return out

    return asyncio.run(go())


def main(argv: list[str] | None = None) -> list[Row]:
    ap = arg_parser(__doc__)
    ap.add_argument("--rounds", type=int, default=1, help="shared/pinned pairs to run (alternating)")
    ap.add_argument("--model", default="qwen2.5-coder-0.5b", help="the embedded model (smollm2-135m: a quick check)")
    ap.add_argument("--trials", type=int, default=2,
                    help="trials per cell (the issue's tournament: 2); a program's first prompt is read whole once a "
                         "tournament, so a longer one spreads that read over more calls")
    ap.add_argument("--pinned-only", action="store_true", help="only the pinned variant (Arena's default)")
    args = ap.parse_args(argv)
    trials = 1 if args.quick else args.trials
    lib = library()
    print(f"machine: {machine()}")
    runs: dict[str, list[float]] = {"shared": [], "pinned": []}
    timings: dict[str, dict[str, list[float]]] = {"shared": {}, "pinned": {}}
    first, asked = None, []  # the pinned tournament's first call and all its uncached calls (the baselines)
    # one thread count for every server of the run, chosen once at its start (as a tournament chooses it):
    # the 1-minute load average a server's choice reads includes the previous variant's own server
    from arena.llm.localmodel import server_threads

    threads = server_threads()
    print(f"llama.cpp threads: {threads}")
    for r in range(args.rounds):
        order = [("shared", 1), ("pinned", None)] if r % 2 == 0 else [("pinned", None), ("shared", 1)]
        if args.pinned_only:
            order = [("pinned", None)]
        for name, slots in order:
            out = tournament(slots, trials, lib, args.model, threads=threads)
            runs[name].extend(out["latencies"])
            if name == "pinned":
                first = out["first"]
                asked.extend(out["asked"])
            for k, v in out["timings"].items():
                timings[name].setdefault(k, []).extend(v)
            t = out["timings"]
            print(f"round {r + 1} {name}: {out['status']} {out['counts']}, {len(out['latencies'])} calls, "
                  f"mean {statistics.mean(out['latencies']):.2f} s/call, wall {out['wall']:.0f} s; llama.cpp: "
                  f"{statistics.mean(t['prompt_n']):.0f} prompt tokens read/call in "
                  f"{statistics.mean(t['prompt_ms']) / 1000:.2f} s, {statistics.mean(t['gen_n']):.0f} generated in "
                  f"{statistics.mean(t['gen_ms']) / 1000:.2f} s ({machine()})", flush=True)
    same = identical(args.model, [first], 3 if args.quick else 10, threads)
    print(f"identical prompt: {len(same)} calls, mean {statistics.mean(same):.2f} s/call ({machine()})", flush=True)
    each = identical(args.model, asked, 1, threads)
    print(f"each call's own prompt again: {len(each)} calls, mean {statistics.mean(each):.2f} s/call ({machine()})",
          flush=True)
    pinned = statistics.mean(runs["pinned"])
    baseline, matched = statistics.mean(same), statistics.mean(each)
    load = machine()
    read = {k: statistics.mean(v["prompt_n"]) for k, v in timings.items() if v}
    prompt_s = {k: statistics.mean(v["prompt_ms"]) / 1000 for k, v in timings.items() if v}
    rows = []
    if runs["shared"]:
        shared = statistics.mean(runs["shared"])
        rows += [
            Row("local_slots", "prompt tokens re-read per call, shared / pinned",
                f"{read['shared']:.0f} / {read['pinned']:.0f} ({read['pinned'] / read['shared']:.2f}x)", "< 1",
                read["pinned"] < read["shared"]),
            Row("local_slots", "prompt-eval s per call, shared / pinned",
                f"{prompt_s['shared']:.2f} / {prompt_s['pinned']:.2f}"),
            Row("local_slots", "uncached call, one shared slot", f"{shared:.2f} s (n={len(runs['shared'])})"),
            Row("local_slots", "pinned / shared", f"{pinned / shared:.2f}x", "< 1", pinned < shared),
        ]
    else:
        rows.append(Row("local_slots", "prompt tokens re-read per call (pinned), in s",
                        f"{read['pinned']:.0f} in {prompt_s['pinned']:.2f} s"))
    return rows + [
        Row("local_slots", f"uncached call, pinned ({trials} trials a cell)",
            f"{pinned:.2f} s (n={len(runs['pinned'])})", "≤ 1.2 s", pinned <= 1.2),
        Row("local_slots", "uncached call (pinned) / the first call's prompt answered again and again",
            f"{pinned:.2f} / {baseline:.2f} s = {pinned / baseline:.2f}x"),
        Row("local_slots", "uncached call (pinned) / each call's own prompt answered again (same answer length)",
            f"{pinned:.2f} / {matched:.2f} s = {pinned / matched:.2f}x", "≤ 1.3", pinned / matched <= 1.3),
        Row("local_slots", "machine at the end", load),
    ]


if __name__ == "__main__":
    run(main)
