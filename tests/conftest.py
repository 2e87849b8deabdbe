from __future__ import annotations

import signal
from pathlib import Path

import pytest

from arena.library.games import load_games
from arena.library.programs import load_programs
from arena.store.database import Store

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def games():
    return load_games(ROOT / "games")


@pytest.fixture(scope="session")
def programs():
    return load_programs([ROOT / "programs"])


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "arena.db")
    yield s
    s.close()


def pytest_configure(config):
    """A suite started in the background by a non-interactive shell (`make test &`, nohup, some CI
    wrappers) inherits SIGINT ignored, and so would every process it starts: the Ctrl-C tests' runs would
    then go on to the end (exit 0) instead of stopping (130). A handled SIGINT is reset to the default in
    the children, so they get Python's KeyboardInterrupt as under a terminal."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session", autouse=True)
def _runtime_dir(tmp_path_factory):
    """Runner sockets and logs in a folder of this test session's own (a user's runners, and those of a
    suite run beside this one, are neither seen nor touched)."""
    import os

    d = tmp_path_factory.mktemp("runtime")
    d.chmod(0o700)
    old = os.environ.get("ARENA_RUNTIME_DIR")
    os.environ["ARENA_RUNTIME_DIR"] = str(d)
    yield d
    if old is None:
        os.environ.pop("ARENA_RUNTIME_DIR", None)
    else:
        os.environ["ARENA_RUNTIME_DIR"] = old
    _end_runner_processes(tmp_path_factory.getbasetemp())


def _end_runner_processes(base) -> None:
    """Runner processes (tournaments', iterate runs') this session started on its own databases and left
    behind (a test that failed before cancelling a paused one): ended, so that no run of the suite leaves a
    process waiting for a client that never comes."""
    import os
    import signal
    from pathlib import Path

    base = str(Path(base).resolve())
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv]
        if any(a in ("arena.runner.process", "arena.iterate.process") for a in args) and \
                any(a.startswith(base) for a in args):
            try:
                os.kill(int(proc.name), signal.SIGKILL)
            except OSError:
                pass
