"""Placeholder until the app lands: bare `arena` prints the help."""

from __future__ import annotations


class ArenaApp:
    def __init__(self, db=None):
        self.db = db

    def run(self) -> None:
        import subprocess
        import sys

        subprocess.run([sys.executable, "-m", "arena.cli", "--help"], check=False)
