"""The embedded model on this machine: assembly, cold start, s/call, parallel slots, parse rates, overhead.

    python benchmarks/local_model.py [--model qwen2.5-coder-0.5b] [--n 20] [--quick]

Everything is measured in one run; ratios compare runs made back to back (the machine is noisy).
Run it on a quiet machine: llama.cpp's threads degrade sharply when other processes share the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from arena.llm import localmodel, prompts  # noqa: E402
from arena.library.games import load_games  # noqa: E402

FAIR = "You are fair: mirror what your opponent does to you; cooperate if it would cooperate with you."
OPP = "Model: local/qwen2.5-coder-0.5b\nTemperature: 0.7\nSystem prompt:\nYou always defect."
GBNF = 'root ::= [^\\n]{1,400} "\\n" "ACTION: " ("cooperate" | "defect")'


def pd_messages(structured: bool, i: int) -> list[dict]:
    pd = load_games(ROOT / "games")["prisoners_dilemma"]
    mode, opp = (prompts.RESPOND, "defect") if i % 2 else (prompts.GROUND, None)
    return prompts.messages(FAIR, pd, "row", OPP, mode, opp, structured)


async def calls(client, model: str, n: int, concurrency: int, kw) -> tuple[float, list[str]]:
    """n calls, `concurrency` at a time; kw(i) gives the i-th call's request fields."""
    gate = asyncio.Semaphore(concurrency)

    async def one(i):
        async with gate:
            r = await client.chat.completions.create(model=model, temperature=0.7, max_tokens=200, seed=i, **kw(i))
            return r.choices[0].message.content or ""

    t0 = time.perf_counter()
    texts = await asyncio.gather(*(one(i) for i in range(n)))
    return time.perf_counter() - t0, texts


async def main(args) -> None:
    import openai

    spec = localmodel.model_spec(args.model)
    rows: list[tuple[str, str]] = []

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        localmodel.assemble(spec, Path(tmp))
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        localmodel.assemble(spec, Path(tmp))
        cached = time.perf_counter() - t0
    rows.append(("assembly + verify (first / cached)", f"{first:.2f} s / {cached * 1000:.1f} ms"))
    localmodel.assemble(spec)  # the real cache, so server starts below do not pay it

    actions = ["cooperate", "defect"]
    slot_rates = {}
    for parallel in ([1, 2] if args.quick else [1, 2, 4]):
        server = localmodel.LocalServer(spec, parallel=parallel)
        t0 = time.perf_counter()
        await server.start()
        cold = time.perf_counter() - t0
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="none", max_retries=0, timeout=600)
        try:
            schema = prompts.json_schema(actions)
            warm = lambda i: {"messages": pd_messages(True, i), "response_format": schema}  # noqa: E731
            await calls(client, spec.name, 2, 1, kw=warm)  # warm the prompt cache
            n = 4 if args.quick else 8
            dt, _ = await calls(client, spec.name, n, parallel, kw=warm)
            slot_rates[parallel] = n / dt
            if parallel == 1:
                rows.append(("server cold start (parallel=1)", f"{cold:.2f} s"))
                m = 3 if args.quick else 10
                per = []
                for i in range(m):
                    t = time.perf_counter()
                    await calls(client, spec.name, 1, 1, kw=lambda j, i=i: {"messages": pd_messages(True, i),
                                                                            "response_format": schema})
                    per.append(time.perf_counter() - t)
                rows.append(("s/call, constrained, prompt cached (median)", f"{statistics.median(per):.2f} s"))
                k = 6 if args.quick else args.n
                for label, kw in [
                    ("parse rate, unconstrained (last ACTION: line)", lambda i: {"messages": pd_messages(False, i)}),
                    ("parse rate, json_schema", lambda i: {"messages": pd_messages(True, i), "response_format": schema}),
                    ("parse rate, GBNF grammar", lambda i: {"messages": pd_messages(False, i), "extra_body": {"grammar": GBNF}}),
                ]:
                    dt, texts = await calls(client, spec.name, k, 1, kw=kw)
                    ok = sum(prompts.parse_action(t, actions) is not None for t in texts)
                    rows.append((label, f"{ok}/{k} ({dt / k:.2f} s/call)"))
                # Arena's own path (prompt building, cache lookups, parsing, records) vs the bare server
                rows.append(("harness overhead vs bare server", await overhead(server, spec, client, schema, m)))
        finally:
            await client.close()
            await server.stop()
    base = slot_rates[1]
    rows.append(("calls/s by parallel slots", ", ".join(f"{p}: {r:.2f}/s ({r / base:.2f}x)" for p, r in slot_rates.items())))
    width = max(len(k) for k, _ in rows)
    print(f"embedded model {spec.name} on {localmodel.os.cpu_count()} cores")
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")


async def overhead(server, spec, client, schema, m: int) -> str:
    """The same constrained calls, bare (openai client) and through LLMService.decide (cache off).

    Greedy decoding (temperature 0) and the seed Arena sends, so that both paths make the very same
    request and get the very same answer: the difference is the harness alone."""
    import hashlib

    from arena.engine.grid import TournamentConfig
    from arena.llm.service import LLMService
    from arena.library.programs import LLMProgram
    from arena.llm.client import ProviderClient
    from arena.llm.registry import BUILTIN
    from arena.engine.records import Node, TrialSpec
    from arena.store.database import Store

    pd = load_games(ROOT / "games")["prisoners_dilemma"]
    me = LLMProgram(id="fair", kind="llm", model=f"local/{spec.name}", system_prompt=FAIR, temperature=0.0)
    seed = int.from_bytes(hashlib.blake2b(b"0", digest_size=4).digest(), "big")  # Arena's seed at temperature 0
    opp = LLMProgram(id="opp", kind="llm", model=f"local/{spec.name}", system_prompt="You always defect.")
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "o.db") as store:
        svc = LLMService(store, BUILTIN, {})
        cfg = TournamentConfig(programs=["fair"], games=["prisoners_dilemma"], epsilons=[1.0], max_depths=[0],
                               trials=1, cache=False)
        svc.routes = svc.routes_for([me], cfg)
        svc.clients["local"] = ProviderClient(BUILTIN["local"], server.base_url, None)
        svc.cache = None
        bare, arena, same = [], [], 0
        for i in range(m):
            spec_i = TrialSpec(i, "prisoners_dilemma", "fair", "opp", 1.0, 0, None, 0, 1000 + i)
            node = Node(0, None, "row", 0, "fair", 0.5)
            msgs = prompts.messages(me.system_prompt, pd, "row", opp.source(), prompts.GROUND, None, True)
            t = time.perf_counter()
            r = await client.chat.completions.create(model=spec.name, messages=msgs, temperature=0.0,
                                                     max_tokens=me.max_tokens, response_format=schema, seed=seed)
            bare.append(time.perf_counter() - t)
            t = time.perf_counter()
            move = await svc.decide(me, pd, opp, spec_i, node, prompts.GROUND, None)
            arena.append(time.perf_counter() - t)
            same += move.calls[-1].response == r.choices[0].message.content
        await svc.aclose()
    b, a = statistics.median(bare), statistics.median(arena)
    return f"bare {b:.2f} s, arena {a:.2f} s per call: ratio {a / b:.2f} ({same}/{m} identical answers)"


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=localmodel.DEFAULT_MODEL)
    ap.add_argument("--n", type=int, default=20, help="calls per parse-rate measurement")
    ap.add_argument("--quick", action="store_true", help="a few calls each, to check the script runs")
    asyncio.run(main(ap.parse_args()))
