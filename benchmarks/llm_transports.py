"""HTTP call paths for chat completions side by side: CPU ms per call and efficiency, in one run.

    python benchmarks/llm_transports.py [--quick] [--calls 2000] [--concurrency 16 64]

The fake OpenAI-compatible server (tests.support.fake_llm, its own process, on the same cores) answers
every call after L = 100 ms. Each path makes the same calls (an arena-sized prompt), C at a time, after
one warm-up call; CPU is this process's user + sys time over the calls:

- sdk create:   `AsyncOpenAI.chat.completions.create` (what peers use);
- sdk post:     `AsyncOpenAI.post("/chat/completions", cast_to=ChatCompletion)` (Arena's former path);
- sdk raw+orjson: `chat.completions.with_raw_response.create`, the body parsed with orjson;
- httpx:        `httpx.AsyncClient` (kept pool, pre-built headers), orjson for both directions;
- aiohttp:      `aiohttp.ClientSession` (kept pool, pre-built headers), orjson for both directions;
- arena lean:   Arena's own transport (arena/llm/transport.py), the one ProviderClient uses.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Row, arg_parser, fake_server, library, machine, run  # noqa: E402

L = 0.1


def body(messages: list[dict], i: int) -> dict:
    return {"model": "fake-8b", "messages": messages, "temperature": 0.7, "max_tokens": 512, "seed": i}


def sdk_create(url: str):
    import openai

    client = openai.AsyncOpenAI(base_url=url, api_key="bench", max_retries=0)

    async def call(messages, i):
        r = await client.chat.completions.create(**body(messages, i))
        return r.choices[0].message.content
    return call, client.close


def sdk_post(url: str):
    import openai
    from openai.types.chat import ChatCompletion

    client = openai.AsyncOpenAI(base_url=url, api_key="bench", max_retries=0)

    async def call(messages, i):
        r = await client.post("/chat/completions", body=body(messages, i), cast_to=ChatCompletion)
        return r.choices[0].message.content
    return call, client.close


def sdk_raw(url: str):
    import openai
    import orjson

    client = openai.AsyncOpenAI(base_url=url, api_key="bench", max_retries=0)

    async def call(messages, i):
        raw = await client.chat.completions.with_raw_response.create(**body(messages, i))
        return orjson.loads(raw.content)["choices"][0]["message"]["content"]
    return call, client.close


def httpx_direct(url: str):
    import httpx
    import orjson

    client = httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=None,
                                                                             max_keepalive_connections=1000))
    headers = {"Authorization": "Bearer bench", "Content-Type": "application/json"}

    async def call(messages, i):
        r = await client.post("/chat/completions", content=orjson.dumps(body(messages, i)), headers=headers)
        r.raise_for_status()
        return orjson.loads(r.content)["choices"][0]["message"]["content"]
    return call, client.aclose


def aiohttp_direct(url: str):
    import aiohttp
    import orjson

    session: list = []
    headers = {"Authorization": "Bearer bench", "Content-Type": "application/json"}
    target = url.rstrip("/") + "/chat/completions"

    async def call(messages, i):
        if not session:
            session.append(aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                                 timeout=aiohttp.ClientTimeout(total=60)))
        async with session[0].post(target, data=orjson.dumps(body(messages, i)), headers=headers) as r:
            data = await r.read()
            if r.status >= 400:
                raise RuntimeError(r.status)
        return orjson.loads(data)["choices"][0]["message"]["content"]

    async def close():
        if session:
            await session[0].close()
    return call, close


def arena_lean(url: str):
    from arena.llm.transport import LeanTransport

    t = LeanTransport(url, "bench", timeout=60)

    async def call(messages, i):
        reply = await t.chat(body(messages, i))
        return reply.content
    return call, t.aclose


PATHS = {"sdk create": sdk_create, "sdk post": sdk_post, "sdk raw+orjson": sdk_raw, "httpx": httpx_direct,
         "aiohttp": aiohttp_direct, "arena lean": arena_lean}


async def measure(make, url: str, messages: list[dict], n: int, c: int) -> tuple[float, float]:
    call, close = make(url)
    gate = asyncio.Semaphore(c)

    async def one(i: int) -> None:
        async with gate:
            text = await call(messages, i)
            assert text, "empty answer"

    await one(-1)
    c0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    await close()
    return wall, cpu


def main(argv: list[str] | None = None) -> list[Row]:
    ap = arg_parser(__doc__)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--paths", nargs="+", default=list(PATHS))
    args = ap.parse_args(argv)
    n = 300 if args.quick else args.calls
    lib = library()
    from arena.llm import prompts

    pd = lib.games["prisoners_dilemma"]
    fair, exploit = lib.programs["fair-llm"], lib.programs["exploit-llm"]
    messages = prompts.messages(fair.system_prompt, pd, "row", exploit.source(), prompts.RESPOND, "cooperate")
    print(f"HTTP call paths, {n} calls each, latency {L * 1000:.0f} ms, fake server ({args.server}) in its own process on the same "
          f"cores; {machine()}")
    print(f"{'path':16} {'C':>4} {'wall s':>7} {'efficiency':>10} {'cpu ms/call':>11}")
    rows: list[Row] = []
    with fake_server(L, args.server) as url:
        for c in args.concurrency:
            per: dict[str, float] = {}
            for name in args.paths:
                wall, cpu = asyncio.run(measure(PATHS[name], url, messages, n, c))
                eff = n * L / c / wall
                per[name] = cpu / n * 1000
                print(f"{name:16} {c:4d} {wall:7.2f} {eff:10.3f} {per[name]:11.3f}", flush=True)
                rows.append(Row("llm_transports", f"{name}, C={c}", f"{per[name]:.3f} ms CPU/call, efficiency {eff:.3f}"))
    return rows


if __name__ == "__main__":
    run(main)
