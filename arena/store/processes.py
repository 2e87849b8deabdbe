"""Whether the process that marked a tournament running still runs (a pid can be reused)."""

from __future__ import annotations

import os
from pathlib import Path


def pid_alive(pid: int | None, since: float | None = None) -> bool:
    """Whether process `pid`, which marked a tournament running at `since`, still runs.

    A pid can be reused: a process that started after `since` (Linux: /proc) is another program.
    """
    if not pid:
        return False
    started = _process_start(pid)
    if started is not None and since is not None and started > since + 2.0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Process `pid` has exited and waits to be reaped (a runner killed while its parent still runs):
    os.kill(pid, 0) succeeds on it, but it runs nothing (Linux: /proc; elsewhere assumed not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def _process_start(pid: int) -> float | None:
    """When process `pid` started (epoch seconds), where /proc tells; None elsewhere or if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(float(x.split()[1]) for x in Path("/proc/stat").read_text().splitlines() if x.startswith("btime"))
        ticks = float(stat.rsplit(")", 1)[1].split()[19])  # field 22, counted after the command name
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None
