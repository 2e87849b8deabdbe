"""The app process's garbage-collector tuning (arena/tui/gcpauses.py), in a process of its own: a frozen
collector in the test process would keep every later test's garbage."""

from __future__ import annotations

import subprocess
import sys


def test_quiet_freezes_start_up_objects_and_collects_young_ones_less_often():
    code = ("import gc, textual.app; from arena.tui import gcpauses; old = gc.get_threshold(); "
            "n = len(gc.get_objects()); gcpauses.quiet(); "
            "print(n > 10_000, gc.get_freeze_count() >= 0.9 * n, len(gc.get_objects()) < 100, old, gc.get_threshold())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split("\n")[0] == "True True True (700, 10, 10) (10000, 10, 10)"
