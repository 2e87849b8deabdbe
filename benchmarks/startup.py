"""Start-up: `arena --help` and opening the TUI, each < 0.5 s (medians of several runs, fresh processes).

    python benchmarks/startup.py [--quick] [--runs N] [--json rows.json]

- `arena --help`: wall time of the real entry point in a subprocess.
- TUI first paint: the real `arena` (no arguments) in a pseudo-terminal of 120x40; the time from
  spawning it until its first frame (the header with the five mode tabs) has been written to the
  terminal; then ctrl+q quits it. No hook in the product: this is what a user waits for.
- baseline: `python -c pass`, the interpreter's own start-up, in the same run.
- `python -X importtime`: the slowest imports on each path, to see what to make lazy.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, Row, arg_parser, machine, run  # noqa: E402

TARGET = 0.5


def entry() -> list[str]:
    """The `arena` console script beside this interpreter (what `make run` starts), else `-m arena.cli.main`."""
    script = Path(sys.executable).with_name("arena")
    return [str(script)] if script.exists() else [sys.executable, "-m", "arena.cli.main"]


def wall(cmd: list[str], cwd: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def first_paint(cwd: str, env: dict) -> float:
    """Seconds from spawning `arena` in a pty until its first frame shows the header's last tab."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    t0 = time.perf_counter()
    proc = subprocess.Popen(entry(), cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave, close_fds=True,
                            start_new_session=True)
    os.close(slave)
    seen = b""
    elapsed = None
    try:
        deadline = t0 + 30
        while time.perf_counter() < deadline:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    seen += os.read(master, 1 << 16)
                except OSError:
                    break
                # text between escape sequences: the header's tabs are written as plain runs of text
                if b"History" in re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", seen):
                    elapsed = time.perf_counter() - t0
                    break
        os.write(master, b"\x11")  # ctrl+q
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    finally:
        os.close(master)
    if elapsed is None:
        raise RuntimeError("the TUI did not paint its header within 30 s")
    return elapsed


def import_offenders(code: str, cwd: str, top: int = 6) -> list[tuple[str, float]]:
    """Packages by import time (ms) for `python -X importtime -c code`: third-party top-level packages
    with everything they import, and Arena's own modules' own time."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=cwd, capture_output=True, text=True,
                         check=True).stderr
    totals: dict[str, float] = {}
    for line in out.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| *(\S+)", line)
        if not m:
            continue
        own, cumulative, name = int(m.group(1)) / 1000, int(m.group(2)) / 1000, m.group(3)
        if name.split(".")[0] == "arena":
            totals["arena (own code)"] = totals.get("arena (own code)", 0.0) + own
        elif "." not in name and not name.startswith("_") and name not in sys.stdlib_module_names:
            totals[name] = totals.get(name, 0.0) + cumulative
    return sorted(totals.items(), key=lambda kv: -kv[1])[:top]


def main(argv: list[str] | None = None) -> list[Row]:
    ap = arg_parser(__doc__)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args(argv)
    runs = 3 if args.quick else args.runs
    print(f"start-up, median of {runs} runs, {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "TERM": "xterm-256color", "ARENA_DB": str(Path(tmp) / "startup.db"),
               "ARENA_PROGRAMS": str(ROOT / "programs"), "ARENA_GAMES": str(ROOT / "games")}
        wall([sys.executable, "-c", "pass"], tmp)  # warm the disk cache for all three
        wall(entry() + ["--help"], tmp)
        first_paint(tmp, env)
        base, helps, paints = [], [], []
        for _ in range(runs):  # interleaved, so that load changes hit all three alike
            base.append(wall([sys.executable, "-c", "pass"], tmp))
            helps.append(wall(entry() + ["--help"], tmp))
            paints.append(first_paint(tmp, env))
        b, h, p = (statistics.median(x) for x in (base, helps, paints))
        print(f"  python -c pass        {b * 1000:6.0f} ms (the interpreter alone)")
        print(f"  arena --help          {h * 1000:6.0f} ms  (max {max(helps) * 1000:.0f})")
        print(f"  TUI first paint       {p * 1000:6.0f} ms  (max {max(paints) * 1000:.0f})")
        for label, code in [("arena --help", "import arena.cli.main"),
                            ("TUI", "import arena.__main__, arena.tui.app, arena.tui.screens.setup")]:
            slow = ", ".join(f"{k} {v:.0f} ms" for k, v in import_offenders(code, tmp))
            print(f"  slowest imports, {label}: {slow}")
    return [
        Row("startup", "arena --help (median)", f"{h * 1000:.0f} ms (interpreter alone {b * 1000:.0f} ms)", "< 500 ms",
            h < TARGET),
        Row("startup", "TUI first paint, 120x40 pty (median)", f"{p * 1000:.0f} ms", "< 500 ms", p < TARGET),
    ]


if __name__ == "__main__":
    run(main)
