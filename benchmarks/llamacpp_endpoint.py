"""A real llama.cpp server as a plain `custom` endpoint: how many trials are refused, free text and auto.

    python benchmarks/llamacpp_endpoint.py [--settings none auto] [--trials 3] [--timeout 1500]

Starts the embedded model (Qwen2.5-Coder-0.5B, served by xllamacpp: llama.cpp's own OpenAI server) on a
free 127.0.0.1 port, then for each `structured` setting runs, as a user would (issue 19):

    LLM_BASE_URL=<server> ARENA_PROVIDERS=<yaml: custom: {structured: SETTING, ...}> \
    arena run --provider custom --model fair-llm=custom/qwen --model defect-llm=custom/qwen \
              -p fair-llm -p defect-llm -e 0.5 -d 3 -n 3

in a fresh database each, and reports the refused trials (target: at most 1 in 20), the forms of the
first answers and the provider summary line. Slow on a shared 2-core machine (minutes per setting):
not part of `make bench` or the tests. Needs the model weights (requirements-model.txt).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, Row, run

from arena.llm import localmodel

PROGRAMS = ["fair-llm", "defect-llm"]


def arena_run(db: Path, providers: Path, base_url: str, trials: int, timeout: float) -> tuple[float, str, bool]:
    """(wall seconds, output, finished): a run stopped by the timeout keeps the trials it stored."""
    cmd = [sys.executable, "-m", "arena", "run", "--provider", "custom", "--db", str(db), "--display", "plain",
           "-e", "0.5", "-d", "3", "-n", str(trials)]
    for p in PROGRAMS:
        cmd += ["--model", f"{p}=custom/qwen", "-p", p]
    env = {**os.environ, "LLM_BASE_URL": base_url, "ARENA_PROVIDERS": str(providers),
           "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env.pop("LLM_API_KEY", None)
    t0 = time.perf_counter()
    try:
        out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        text = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return time.perf_counter() - t0, text, False
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"arena run failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return wall, out.stdout + out.stderr, True


def measure(db: Path) -> dict:
    con = sqlite3.connect(db)
    statuses = dict(con.execute("SELECT status, count(*) FROM trials GROUP BY status").fetchall())
    forms = dict(con.execute(
        "SELECT json_extract(params, '$.answer'), count(*) FROM llm_calls "
        "WHERE json_extract(params, '$.purpose') = 'answer' GROUP BY 1").fetchall())
    modes = dict(con.execute("SELECT json_extract(params, '$.structured'), count(*) FROM llm_calls GROUP BY 1")
                 .fetchall())
    calls = con.execute("SELECT count(*) FROM llm_calls").fetchone()[0]
    con.close()
    return {"trials": statuses, "first_answers": forms, "modes": modes, "calls": calls}


async def start_server(threads: int | None) -> localmodel.LocalServer:
    server = localmodel.LocalServer(localmodel.model_spec(localmodel.DEFAULT_MODEL), parallel=1, threads=threads)
    await server.start()
    return server


def main(argv: list[str]) -> list[Row]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--settings", nargs="+", default=["none", "auto"])
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=1500.0, help="seconds per arena run")
    ap.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: every core)")
    ap.add_argument("--json")
    args = ap.parse_args(argv)

    loop = asyncio.new_event_loop()
    t0 = time.perf_counter()
    server = loop.run_until_complete(start_server(args.threads))
    print(f"llama.cpp server at {server.base_url} (started in {time.perf_counter() - t0:.1f}s)", flush=True)
    rows: list[Row] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for setting in args.settings:
                providers = Path(tmp) / f"providers-{setting}.yaml"
                providers.write_text(f"custom:\n  structured: {setting}\n  key_env: null\n  concurrency: 2\n  timeout: 600\n"
                                     "  max_attempts: 3\n")
                db = Path(tmp) / f"arena-{setting}.db"
                wall, output, finished = arena_run(db, providers, server.base_url, args.trials, args.timeout)
                m = measure(db)
                total = sum(m["trials"].values())
                refused = m["trials"].get("refused", 0)
                summary = next((x for x in output.splitlines() if x.startswith("provider custom:")), "")
                late = "" if finished else f", stopped at the {args.timeout:.0f} s timeout"
                print(f"structured: {setting}: {json.dumps(m)} in {wall:.0f}s{late}\n  {summary}", flush=True)
                rows.append(Row("llamacpp_endpoint", f"refused trials, structured: {setting}",
                                f"{refused}/{total} ({wall:.0f} s, {m['calls']} calls{late})", "≤ 1 in 20",
                                refused * 20 <= total if total else None))
                rows.append(Row("llamacpp_endpoint", f"first answers, structured: {setting}",
                                ", ".join(f"{n} {k}" for k, n in sorted(m["first_answers"].items(), key=str))))
    finally:
        loop.run_until_complete(server.stop())
        loop.close()
    return rows


if __name__ == "__main__":
    run(main)
