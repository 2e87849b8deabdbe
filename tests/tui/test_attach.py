"""The app and a tournament in a runner process (real processes): attaching late shows it live as if
started there (counts from the store up to the attach, then the stream: nothing counted twice or
missed); quitting asks detach (it goes on and finishes) or cancel (it stops, the rest is kept)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from arena.engine.events import TrialsFinished
from arena.engine.grid import TournamentConfig
from arena.library.catalog import load_library
from arena.runner.process import RemoteRunner, start_detached
from arena.runner.stream import BatchStored
from arena.tui.widgets import SimTree
from arena.store.database import Store
from tui_helpers import live_drawn, live_stats, wait_for

ROOT = Path(__file__).resolve().parents[2]
BOTS = ["cooperatebot", "defectbot", "randombot", "fairbot", "cliquebot"]
TOTAL = 60_000


def _start_paused(db: Path):
    lib = load_library()
    config = TournamentConfig(programs=BOTS, games=["prisoners_dilemma", "stag_hunt"], epsilons=[0.05, 0.1, 0.2],
                              max_depths=[50], trials=400, seed=5)
    with Store(db) as store:
        return start_detached(store, config, lib.programs, lib.games, paused=True)


def _control(socket_path: str, *ops: str) -> None:
    """Send control ops to a runner as any client may: one line each on its socket (after its Hello)."""
    import socket

    from arena.runner import stream

    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(socket_path)
        with sock.makefile("rb") as f:
            assert stream.parse(f.readline()).kind == "hello"
        for op in ops:
            sock.sendall(stream.line(stream.Control(op=op)))


def _alive(pid: int) -> bool:
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def _stored_matrix(db: Path) -> dict:
    with Store(db) as store:
        rows = store.query("SELECT row_program AS r, col_program AS c, count(*) AS n, sum(status = 'ok') AS v, "
                           "sum(coalesce(cooperative, 0)) AS k FROM trials GROUP BY r, c")
    return {(x["r"], x["c"]): (x["n"], x["v"], x["k"]) for x in rows}


async def test_the_app_attaches_late_and_shows_the_tournament_live(make_app, tmp_path):
    db = tmp_path / "arena.db"
    started = _start_paused(db)
    # another client lets it run until it sees a first batch stored, then pauses it: the app comes in late
    with Store(db) as store:
        watcher = RemoteRunner(store, 1, started.socket)
        batch = threading.Event()

        def sink(event) -> None:
            if isinstance(event, (BatchStored, TrialsFinished)) and not batch.is_set():
                watcher.pause()
                batch.set()

        watcher.sink = sink
        thread = threading.Thread(target=lambda: asyncio.run(watcher.run()), daemon=True)
        thread.start()
        watcher.unpause()
        assert batch.wait(120)
        watcher.detach()
        thread.join(30)
    app = make_app(db=db, runner_process=True, attach=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.session is not None and app.session.status == "paused", 30)
        s = app.session
        assert app.current_mode == "live" and s.remote and s.tournament_id == 1
        # Live draws the attached run's state on its next tick: waited for, not slept on
        await wait_for(pilot, lambda: "paused" in live_stats(app))
        before = s.done_at_start
        assert 0 < before < TOTAL
        stats = str(app.screen.query_one("#live-stats").render())
        assert "paused" in stats and f"{before:,} stored before" in stats
        assert f"{before:,}" in str(app.screen.query_one("#live-counts").render())
        await pilot.press("space")  # unpause it from the app
        await wait_for(pilot, lambda: s.ended, 180)
        await wait_for(pilot, lambda: live_drawn(app))
        assert (s.status, s.done, s.trials_seen) == ("finished", TOTAL, TOTAL - before)
        assert "finished" in str(app.screen.query_one("#live-stats").render())
        # the live counts are the store's, exactly (nothing counted twice, nothing missed)
        live = {k: (c.trials, c.valid, c.cooperative) for k, c in s.tally.matrix().items()}
        assert live == _stored_matrix(db) and sum(v[0] for v in live.values()) == TOTAL
        assert app.results_tid == 1


async def test_quit_while_attached_detach_lets_it_finish(make_app, tmp_path):
    db = tmp_path / "arena.db"
    started = _start_paused(db)
    app = make_app(db=db, runner_process=True, attach=1)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.session is not None and app.session.status == "paused", 30)
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: app.screen.query(".dialog-question"))
        question = str(app.screen.query_one(".dialog-question").render())
        assert f"Tournament 1 is running (runner pid {started.pid})" in question
        await pilot.click("#detach")
        await wait_for(pilot, lambda: app.return_code is not None)  # the choice's callback has run: the app exits
    assert app.return_code == 0
    said = app.exit_message  # printed once the terminal is back (App.exit's message)
    assert "Tournament 1 goes on in runner process" in said and f"arena attach 1 --db {db}" in said
    with Store(db) as store:
        assert store.tournament(1).display_status == "running"
    _control(started.socket, "unpause")  # it went on without the app: let it finish
    with Store(db) as store:
        deadline = time.monotonic() + 180
        while store.tournament(1).status == "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert (store.tournament(1).status, store.count_trials(1)) == ("finished", TOTAL)


async def test_quit_while_attached_cancel_stops_it(make_app, tmp_path):
    db = tmp_path / "arena.db"
    started = _start_paused(db)
    app = make_app(db=db, runner_process=True, attach=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.session is not None and app.session.status == "paused", 30)
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: app.screen.query("#cancel"))
        await pilot.click("#cancel")
        await wait_for(pilot, lambda: app.return_code is not None)  # the choice's callback has run: the app exits
    assert app.session.status == "cancelled"
    deadline = time.monotonic() + 60
    while _alive(started.pid):  # it forgets its socket, then exits
        assert time.monotonic() < deadline
        time.sleep(0.02)
    with Store(db) as store:
        row = store.tournament(1)
        assert (row.status, row.runner_socket, store.count_trials(1)) == ("cancelled", None, 0)
    assert not Path(started.socket).exists()


async def test_the_app_starts_tournaments_in_a_runner_process(make_app, tmp_path, monkeypatch):
    """Setup's start goes to a runner process (the app only reads its stream). The runner waits for the
    app to attach: here the app connects late (a loaded machine), yet Live still shows a trial's tree."""
    import os

    connect = RemoteRunner.run

    async def late(self):
        await asyncio.sleep(1.0)  # a built-in run of 500 trials is over by then unless it waits for the app
        return await connect(self)

    monkeypatch.setattr(RemoteRunner, "run", late)
    app = make_app(runner_process=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        tid = app.start_tournament(TournamentConfig(programs=BOTS, games=["prisoners_dilemma"], epsilons=[0.2],
                                                    max_depths=[10], trials=20, seed=1))
        s = app.session
        assert s.remote and s.runner.pid != os.getpid()
        await wait_for(pilot, lambda: s.ended, 60)
        assert (s.status, s.done, tid) == ("finished", 500, 1)
        # started paused until the app is attached: even a run over in milliseconds shows a trial's tree
        app.switch_mode("live")
        await wait_for(pilot, lambda: live_drawn(app))  # (Live's tick draws the tree of the ended run)
        assert app.screen.query_one(SimTree).key is not None
        # the app's own tick logs the end once it has polled it
        await wait_for(pilot, lambda: any(m.startswith("tournament finished") for _, _, m in app.session_log))
        log = "\n".join(m for _, _, m in app.session_log)
        assert f"in runner process {s.runner.pid}" in log and "tournament finished: 500/500 trials stored" in log
        # its start-until-attached pause is a handshake, not the user's: not in the log
        assert "paused" not in log and "resumed" not in log
