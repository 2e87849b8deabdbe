"""`arena` as a user runs it: the command in a child process, from the repository root by default."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def arena(*args: str, env: dict | None = None, cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess:
    """`arena ARGS` to its end (its output captured as text); `env` adds to this process's environment."""
    return subprocess.run([sys.executable, "-m", "arena.cli.main", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, env={**os.environ, **(env or {})})


def play_final_pair(out: Path, game: str, trials: int, db: Path):
    """An iterate run's final pair (its two program files in `out`) played `trials` times in `arena run` into
    `db`; the database's connection."""
    import sqlite3

    files = sorted(out.iterdir())
    assert [f.name for f in files] == ["iterate1-col.yaml", "iterate1-row.yaml"]
    played = arena("run", "--program", str(files[1]), "--program", str(files[0]), "--game", game,
                   "--trials", str(trials), "--db", str(db), "--display", "none")
    assert played.returncode == 0, played.stderr
    return sqlite3.connect(db)
