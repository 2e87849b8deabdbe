"""Tournaments in a runner process of their own (arena/runner/process.py), with real processes.

`arena run --detach` returns with the id while the runner goes on in a new session and stores every
trial; `tournaments list` names the runner's pid while it runs; a client attached over the socket
gets the state at attaching (Hello) and then every event; SIGTERM to the runner cancels it (the rest
is kept); kill -9 leaves it interrupted and resumable, and `arena resume --detach` finishes it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from arena.engine.events import NodeResolved, TournamentFinished, TournamentStarted, TrialPlanned, TrialsFinished
from arena.engine.grid import TournamentConfig
from arena.library.catalog import load_library
from arena.runner import stream
from arena.runner.process import RemoteRunner, running_runner, start_detached
from arena.store.database import Store
from test_kill_resume import BUILTIN_ARGS, BUILTIN_TOTAL, check_consistent, digest, spawn, finish

ROOT = Path(__file__).resolve().parents[1]


def wait_until(predicate, what: str, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"never reached: {what}"
        time.sleep(0.02)


def row(db: Path, tid: int = 1):
    with Store(db) as s:
        return s.tournament(tid)


def alive(pid: int) -> bool:
    """The process runs (a zombie, exited but not yet reaped, does not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def test_detach_returns_with_the_id_and_the_runner_stores_every_trial(tmp_path):
    db = tmp_path / "detached.db"
    rc, out, err = finish(spawn(*BUILTIN_ARGS, "--db", str(db), "--detach"))
    assert rc == 0, err
    assert out == "1\n"  # only the id on stdout (scriptable)
    pid = int(err.split("runner pid ")[1].split(")")[0])
    assert f"follow it with: arena attach 1 --db {db}" in err
    assert pid != os.getpid()
    # the runner outlived the command; it names itself in the row while it runs, then says where it is
    wait_until(lambda: row(db).status != "running", "the runner ends")
    wait_until(lambda: not alive(pid), "the runner process exits")  # (it forgets its socket before)
    r = row(db)
    assert (r.status, r.done, r.runner_pid, r.runner_socket) == ("finished", BUILTIN_TOTAL, pid, None)
    assert check_consistent(db)["trials"] == BUILTIN_TOTAL
    from arena.runner.process import runtime_dir

    assert not list(runtime_dir().glob(f"{pid}.sock"))  # its socket is removed
    # exactly the trials of an in-process run with the same seed
    clean = tmp_path / "clean.db"
    assert finish(spawn(*BUILTIN_ARGS, "--db", str(clean), "--display", "none"))[0] == 0
    assert digest(db) == digest(clean)


def _config(trials: int = 400) -> TournamentConfig:
    return TournamentConfig(programs=["cooperatebot", "defectbot", "randombot", "fairbot", "cliquebot"],
                            games=["prisoners_dilemma", "stag_hunt"], epsilons=[0.05, 0.1, 0.2], max_depths=[50],
                            trials=trials, seed=5)


def test_list_shows_the_runner_pid_and_sigterm_cancels_it(tmp_path):
    db = tmp_path / "paused.db"
    lib = load_library()
    with Store(db) as store:
        started = start_detached(store, _config(), lib.programs, lib.games, paused=True)
    assert started.tournament_id == 1 and Path(started.socket).exists()
    rc, out, err = finish(spawn("tournaments", "list", "--db", str(db)))
    assert rc == 0, err
    line = next(x for x in out.splitlines() if x.startswith("│ 1 "))
    assert "running" in line and f"│ {started.pid}" in line and "0/60000" in line
    with Store(db) as store:
        assert running_runner(store).id == 1
    os.kill(started.pid, signal.SIGTERM)
    wait_until(lambda: row(db).status != "running", "the runner records its end")
    wait_until(lambda: not alive(started.pid), "the runner process exits")
    assert (row(db).status, row(db).runner_socket) == ("cancelled", None)
    rc, out, err = finish(spawn("tournaments", "list", "--db", str(db)))
    line = next(x for x in out.splitlines() if x.startswith("│ 1 "))
    assert "cancelled" in line and line.rstrip("│ ").endswith("-")
    # resumed in the background, it finishes exactly the missing trials
    rc, out, err = finish(spawn("resume", "1", "--db", str(db), "--detach"))
    assert rc == 0 and out == "1\n", err
    wait_until(lambda: row(db).status == "finished", "the resumed runner finishes")
    assert check_consistent(db)["trials"] == BUILTIN_TOTAL


def test_a_late_client_gets_the_state_then_every_event(tmp_path):
    """Two clients: one from the start, one attached midway. Each gets a Hello with the stored count, then
    every later trial exactly once: counts from the store up to Hello's trial id plus the streamed ones
    are the store's counts of the whole tournament, cell by cell."""
    from arena.analysis.tally import LiveTally

    db = tmp_path / "late.db"
    lib = load_library()
    with Store(db) as store:
        started = start_detached(store, _config(), lib.programs, lib.games, paused=True)
        first = RemoteRunner(store, 1, started.socket)
        seen_first: list = []
        first.sink = seen_first.append
        late_seen: list = []
        late_hello: list[int] = []

        async def both():
            task = asyncio.create_task(first.run())
            await asyncio.sleep(0.2)
            first.unpause()
            while not any(isinstance(e, stream.BatchStored) for e in seen_first):
                await asyncio.sleep(0.01)
            late = RemoteRunner(store, 1, started.socket, sink=late_seen.append)
            late.on_attach = late_hello.append
            return await asyncio.gather(task, late.run())

        r1, r2 = asyncio.run(both())
        assert r1 == r2 and r1.status == "finished" and r1.done == BUILTIN_TOTAL

        def streamed(events) -> int:
            return sum(e.n if isinstance(e, stream.BatchStored) else len(e.results)
                       for e in events if isinstance(e, (stream.BatchStored, TrialsFinished)))

        assert isinstance(seen_first[0], TournamentStarted) and seen_first[0].already_done == 0
        assert streamed(seen_first) == BUILTIN_TOTAL
        assert isinstance(late_seen[0], TournamentStarted)
        before = late_seen[0].already_done
        assert 0 < before < BUILTIN_TOTAL and before + streamed(late_seen) == BUILTIN_TOTAL
        assert store.query("SELECT count(*) AS n FROM trials WHERE id <= ?", (late_hello[0],))[0]["n"] == before
        # counts seeded up to the Hello plus the stream = the store's counts, exactly
        live, whole = LiveTally(), LiveTally()
        live.seed(store, 1, until_id=late_hello[0])
        for e in late_seen:
            if isinstance(e, stream.BatchStored):
                live.merge(e.cells)
            elif isinstance(e, TrialsFinished):
                live.add(e.results)
        whole.seed(store, 1)
        assert live.rows() == whole.rows() and sum(r.trials for r in live.rows()) == BUILTIN_TOTAL
        # a batch's one whole trial has the nodes the store holds for it
        batch = next(e for e in late_seen if isinstance(e, stream.BatchStored) and e.sample is not None)
        stored = store.query("SELECT n_nodes FROM trials WHERE seq = ?", (batch.sample.spec.seq,))[0]["n_nodes"]
        assert len(batch.sample.nodes) == stored and batch.n == sum(batch.counts.values())


def test_kill_9_of_the_runner_leaves_it_interrupted_and_resumable(tmp_path):
    db = tmp_path / "killed.db"
    lib = load_library()
    with Store(db) as store:  # it runs until a client sees a first batch, then pauses: killed mid-way
        started = start_detached(store, _config(), lib.programs, lib.games, paused=True)
        client = RemoteRunner(store, 1, started.socket)
        client.sink = lambda e: client.pause() if isinstance(e, stream.BatchStored) else None
        client.unpause()

        async def until_paused():
            task = asyncio.create_task(client.run())
            while store.count_trials(1) == 0 or not client.paused:
                await asyncio.sleep(0.01)
            client.detach()
            await task

        asyncio.run(until_paused())
    os.kill(started.pid, signal.SIGKILL)
    wait_until(lambda: not alive(started.pid), "the runner is gone")
    r = row(db)
    assert r.display_status == "interrupted" and 0 < check_consistent(db)["trials"] < BUILTIN_TOTAL
    with Store(db) as store:
        assert running_runner(store) is None
        # a client of a runner that dies says so (it cannot reach it)
        lost = asyncio.run(RemoteRunner(store, 1, started.socket).run())
        assert lost.status == "failed" and "cannot reach its runner process" in lost.error
    rc, out, err = finish(spawn("resume", "--db", str(db), "--display", "none"))
    assert rc == 0, err
    assert check_consistent(db)["trials"] == BUILTIN_TOTAL


def test_node_events_round_trip_the_wire():
    """An LLM trial's tree and a resolved node with its call, through encode → parse → Decoder."""
    from arena.engine.records import CallRecord, Node, TrialResult, TrialSpec

    spec = TrialSpec(7, "prisoners_dilemma", "fair-llm", "defectbot", 0.5, 3, 0.7, 2, 99)
    nodes = [Node(0, None, "row", 0, "fair-llm", 0.25), Node(1, 0, "col", 1, "defectbot", 0.5)]
    dec = stream.Decoder()
    planned = dec.events(stream.parse(stream.encode(TrialPlanned(1, spec, nodes))))[0]
    assert planned.spec == spec and [n.program for n in planned.nodes] == ["fair-llm", "defectbot"]
    nodes[1].mode, nodes[1].action = "direct", "defect"
    nodes[0].mode, nodes[0].action = "simulated", "defect"
    nodes[0].calls.append(CallRecord("custom", "fake-8b", [{"role": "user", "content": "hi"}], "ACTION: defect",
                                     "defect", latency_ms=12.5, params={"temperature": 0.7}))
    [resolved] = dec.events(stream.parse(stream.encode(NodeResolved(1, spec, nodes[0]))))
    assert resolved.node is planned.nodes[0]  # the client's own tree is updated in place
    assert (resolved.node.action, resolved.node.calls[0].response, resolved.node.calls[0].params) == \
        ("defect", "ACTION: defect", {"temperature": 0.7})
    result = TrialResult(spec, nodes, "defect", "defect", 1.0, 1.0, False)
    [done] = dec.events(stream.parse(stream.encode(TrialsFinished(1, [result], 1, 4))))
    assert done.results[0] == result and dec.inflight == {}
    [fin] = dec.events(stream.parse(stream.encode(TournamentFinished(1, "finished", 4, 4, {"ok": 4}, 1.5))))
    assert fin == TournamentFinished(1, "finished", 4, 4, {"ok": 4}, 1.5)
    with pytest.raises(Exception):
        stream.parse(b'{"kind": "nonsense"}')


def test_attach_without_a_running_tournament_says_so(tmp_path):
    db = tmp_path / "none.db"
    rc, out, err = finish(spawn("attach", "--db", str(db)))
    assert (rc, err) == (2, "arena: error: no tournament is running in a runner process "
                            "(start one with: arena run --detach)\n")
    rc, out, err = finish(spawn("attach", "7", "--db", str(db)))
    assert rc == 2 and err.startswith("arena: error: no tournament 7 in ")


def test_a_runner_started_paused_runs_anyway_when_its_client_never_comes(tmp_path, monkeypatch):
    """The app starts its runner paused and unpauses it once attached; if the app dies first, the runner
    does not wait for ever: after $ARENA_RUNNER_WAIT seconds without a client it runs the tournament."""
    monkeypatch.setenv("ARENA_RUNNER_WAIT", "0.5")
    db = tmp_path / "orphan.db"
    lib = load_library()
    with Store(db) as store:
        started = start_detached(store, _config(trials=2), lib.programs, lib.games, paused=True)
    wait_until(lambda: row(db).status == "finished", "the unattended runner finishes")
    wait_until(lambda: not alive(started.pid), "the runner process exits")
    assert check_consistent(db)["trials"] == row(db).total_trials


def test_the_runtime_folder_is_private_and_the_log_follows_no_link(tmp_path, monkeypatch):
    """Created 0700; refused when others may enter it or it is a link; two databases' tournament 1 have
    two logs; a log that is a symbolic link is not opened."""
    from arena.errors import ArenaError
    from arena.runner.process import _open_log, runner_log, runtime_dir

    d = tmp_path / "rt"
    monkeypatch.setenv("ARENA_RUNTIME_DIR", str(d))
    assert runtime_dir() == d and (d.stat().st_mode & 0o777) == 0o700
    d.chmod(0o755)
    with pytest.raises(ArenaError, match="not a private folder of this user .*mode 755"):
        runtime_dir()
    d.chmod(0o700)
    link = tmp_path / "link"
    link.symlink_to(d)
    monkeypatch.setenv("ARENA_RUNTIME_DIR", str(link))
    with pytest.raises(ArenaError, match="not a folder"):
        runtime_dir()
    monkeypatch.setenv("ARENA_RUNTIME_DIR", str(d))
    a, b = runner_log(tmp_path / "a.db", 1), runner_log(tmp_path / "b.db", 1)
    assert a != b and a.parent == b.parent == d and a.name.endswith("-1.log")
    target = tmp_path / "elsewhere.txt"
    target.write_text("")
    a.symlink_to(target)
    with pytest.raises(ArenaError, match="cannot be opened"):
        _open_log(a)
    os.close(_open_log(b))
    assert (b.stat().st_mode & 0o777) == 0o600
