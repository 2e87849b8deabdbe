"""Every benchmark, one after another (each in its own process), then one summary table.

    python benchmarks/run_all.py [--quick] [--only NAME ...]      (make bench)

About five minutes on a 2-core machine (--quick: about one). The embedded-model benchmark is not
part of it (it needs the real model and minutes): `make bench-model` runs benchmarks/local_model.py.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import Row, fmt_table, machine  # noqa: E402

BENCHMARKS = ["llm_concurrency", "llm_transports", "builtin_throughput", "code_throughput", "repeated_throughput", "startup", "cache_replay", "tui_load", "memory",
              "bootstrap", "pools"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes: checks the scripts run, numbers are rough")
    ap.add_argument("--only", nargs="+", choices=BENCHMARKS, help="run only these")
    args = ap.parse_args()
    rows: list[Row] = []
    failed = []
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only or BENCHMARKS:
            out = Path(tmp) / f"{name}.json"
            cmd = [sys.executable, str(HERE / f"{name}.py"), "--json", str(out)] + (["--quick"] if args.quick else [])
            print(f"\n=== {name} ===", flush=True)
            t0 = time.perf_counter()
            rc = subprocess.run(cmd).returncode
            print(f"({name}: {time.perf_counter() - t0:.0f} s)", flush=True)
            if rc != 0 or not out.exists():
                failed.append(name)
                rows.append(Row(name, "(benchmark failed)", f"exit code {rc}", "", False))
                continue
            rows.extend(Row(**r) for r in json.loads(out.read_text()))
    print(f"\n=== summary ({machine()}; {time.perf_counter() - t_all:.0f} s) ===")
    print(fmt_table(rows))
    missed = [r for r in rows if r.ok is False]
    print(f"\n{sum(r.ok is True for r in rows)} targets met, {len(missed)} missed"
          + (f"; failed to run: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
