"""Helpers shared by the benchmark scripts: result rows, the summary table, a fake LLM server process.

Every script measures its baseline and its subject in the same run (the machine is shared and noisy)
and reports ratios against the targets of the performance issue. `--json PATH` writes the rows for
`run_all.py`. Nothing here is imported by the arena package.

    python benchmarks/common.py serve --latency 0.1     # the server process the LLM benchmarks start
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@dataclass
class Row:
    """One measured number and how it compares with its target."""

    bench: str
    metric: str
    value: str  # formatted, with its unit
    target: str = ""  # e.g. "≥ 0.9", "< 0.5 s"; empty for context numbers
    ok: bool | None = None  # None: context only


def fmt_table(rows: list[Row]) -> str:
    heads = ("benchmark", "metric", "measured", "target", "")
    cells = [(r.bench, r.metric, r.value, r.target, {True: "ok", False: "MISSED", None: ""}[r.ok]) for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(heads)]
    line = lambda c: "  ".join(x.ljust(w) for x, w in zip(c, widths)).rstrip()  # noqa: E731
    return "\n".join([line(heads), line(["-" * w for w in widths]), *map(line, cells)])


def finish(rows: list[Row], json_path: str | None) -> None:
    """Print the script's summary and, for run_all, write its rows as JSON."""
    print()
    print(fmt_table(rows))
    if json_path:
        Path(json_path).write_text(json.dumps([asdict(r) for r in rows]))


def run(main) -> None:
    """A script's entry point: `main(argv)` measures and returns its rows, printed here (and written as
    JSON for run_all.py when --json FILE is given)."""
    argv = sys.argv[1:]
    finish(main(argv), argv[argv.index("--json") + 1] if "--json" in argv else None)


def arg_parser(doc: str | None) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0] if doc else None)
    ap.add_argument("--json", help="also write the summary rows to this file (used by run_all.py)")
    ap.add_argument("--quick", action="store_true", help="smaller sizes: checks the script runs, numbers are rough")
    ap.add_argument("--server", choices=["async", "threads"], default="async",
                    help="the fake LLM server's kind (fake_server); an LLM benchmark's numbers say which")
    return ap


def machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{os.cpu_count()} cores, load average {load:.2f}, Python {sys.version.split()[0]}"


# --- a fake OpenAI-compatible server in its own process ----------------------------------------------
# In its own process so that its threads do not compete with the harness for the GIL: a real endpoint
# is not in our process either. It stops when its stdin closes (the benchmark ended or died).

def policy(request) -> str:
    """Answers like the library's programs would: defectors defect, the rest mirror the simulated opponent
    (the tests' mirror_policy, which also knows the selfish exploit-llm here)."""
    from tests.llm_policies import mirror_policy

    system = request.messages[0].get("content", "") if request.messages else ""
    return "defect" if "selfish" in system else mirror_policy(request)


@contextmanager
def fake_server(latency: float, kind: str = "threads"):
    """A fake OpenAI-compatible server (mirror policy, fixed latency) in a child process; yields its base URL.

    kind "threads": tests.support.fake_llm's FakeLLMServer (Python's http.server, a thread a connection: what
    the tests use). kind "async": the same answers from one asyncio event loop (aiohttp), as real endpoints
    (vLLM, llama.cpp's server) serve many connections; it takes a fraction of the CPU per request, which
    matters when the server shares the benchmark's two cores."""
    proc = subprocess.Popen([sys.executable, str(Path(__file__)), "serve", "--latency", str(latency), "--kind", kind],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        m = re.search(r"(http://\S+/v1)", line)
        if not m:
            raise RuntimeError(f"fake server did not start: {line!r}")
        yield m.group(1)
    finally:
        proc.stdin.close()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


def _serve(latency: float) -> None:
    from tests.support.fake_llm import FakeLLMServer, action_responder

    with FakeLLMServer(action_responder(policy), latency=latency) as srv:
        print(f"serving {srv.base_url}", flush=True)
        sys.stdin.read()  # until the parent closes our stdin


class _Asked:
    """What `policy` reads of a request (the attributes of tests.support.fake_llm's ChatRequest it uses)."""

    def __init__(self, messages: list[dict]):
        self.messages = messages
        self.last_user_text = next((m.get("content") or "" for m in reversed(messages) if m.get("role") == "user"), "")


def _serve_async(latency: float) -> None:
    """FakeLLMServer's non-streamed answers (an ACTION line, or the JSON object a json_schema request
    asks for) from one aiohttp event loop."""
    import asyncio
    import threading

    import orjson
    from aiohttp import web

    count = 0

    async def chat(request: web.Request) -> web.Response:
        nonlocal count
        body = orjson.loads(await request.read())
        msgs = body.get("messages") or []
        name = policy(_Asked(msgs))
        why = f"Considering the situation, I choose {name}."
        rf = body.get("response_format")
        content = (orjson.dumps({"reasoning": why, "action": name}).decode()
                   if isinstance(rf, dict) and rf.get("type") in ("json_schema", "json_object")
                   else f"{why}\nACTION: {name}")
        await asyncio.sleep(latency)
        count += 1
        prompt = sum(len(str(m.get("content") or "")) // 4 + 1 for m in msgs)
        done = len(content) // 4 + 1
        return web.Response(body=orjson.dumps({
            "id": f"chatcmpl-fake{count}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model") or "fake", "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": None},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": done, "total_tokens": prompt + done}}),
            content_type="application/json")

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "fake", "object": "model"}]})

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", chat)
        app.router.add_get("/v1/models", models)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        print(f"serving http://127.0.0.1:{port}/v1", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        threading.Thread(target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(stop.set)), daemon=True).start()
        await stop.wait()
        await runner.cleanup()

    asyncio.run(main())


def fake_env(base_url: str) -> dict[str, str]:
    return {"LLM_BASE_URL": base_url, "LLM_API_KEY": "bench-key-not-secret"}


def registry(base_url: str, concurrency: int):
    """The provider registry with `custom` pointing at the fake server, `concurrency` calls at a time."""
    from arena.llm.registry import BUILTIN

    return {**BUILTIN, "custom": BUILTIN["custom"].model_copy(update={"base_url": base_url, "concurrency": concurrency})}


def library():
    """The shipped program and game library (real prompt sizes)."""
    from arena.library.catalog import load_library

    return load_library(ROOT / "programs", ROOT / "games")


def to_fake(program_ids: list[str], model: str = "custom/fake-8b") -> dict[str, str]:
    """TournamentConfig.models: every listed LLM program's calls go to the fake server."""
    return {pid: model for pid in program_ids}


def timed(fn, *a, **kw) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*a, **kw)
    return time.perf_counter() - t0, out


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=["serve"])
    ap.add_argument("--latency", type=float, default=0.1)
    ap.add_argument("--kind", choices=["threads", "async"], default="threads")
    a = ap.parse_args()
    (_serve_async if a.kind == "async" else _serve)(a.latency)
