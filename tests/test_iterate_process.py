"""Iterate runs in a runner process of their own (arena/iterate/process.py), with real processes and a
scripted writer on the loopback server: the events a client gets, pause and cancel over the socket,
resuming a cancelled run, and the stored rows equal to `arena iterate`'s with the same config."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from arena.engine.events import Notice
from arena.iterate import stream
from arena.iterate.events import RunEnded, StepStored, WriterAsked
from arena.iterate.loop import IterateConfig
from arena.iterate.process import resume_detached, start_detached
from arena.iterate.remote import IterateRemote
from arena.library.catalog import load_library
from arena.runner.process import running_runner
from arena.store.database import Store
from tests.support.fake_llm import FakeLLMServer, Script

ROOT = Path(__file__).resolve().parents[1]
BROKEN = "```python\ndef decide(ctx)\n    return 'c'\n```"
PLAYS_C = "Coordinate on c.\n```python\ndef decide(ctx):\n    return 'c'\n```"
REPLIES = [BROKEN, PLAYS_C, PLAYS_C, PLAYS_C]
CONFIG = dict(game="vanilla_coordination", model="custom/w", rounds=1, steps=2, episodes=3, seed=3)
CLI_ARGS = ["--game", "vanilla_coordination", "--model", "custom/w", "--rounds", "1", "--steps", "2",
            "--episodes", "3", "--seed", "3", "--quiet"]


def stored_rows(db: Path) -> dict:
    """What a run stored that does not depend on when or where: its steps and its trials."""
    with Store(db) as s:
        steps = s.query("SELECT round, player, step, program_id, program_hash, source, reply, valid, validation, "
                        "row_utility, col_utility, welfare, kept, feedback FROM iterate_steps ORDER BY id")
        trials = s.query("SELECT seq, row_program, col_program, row_action, col_action, row_payoff, col_payoff, "
                         "status FROM trials ORDER BY seq")
        run = s.query("SELECT status, welfare, best_welfare FROM iterate_runs")
    return {"steps": steps, "trials": trials, "run": run}


def cli_rows(tmp_path: Path) -> dict:
    db = tmp_path / "cli.db"
    with FakeLLMServer(Script(REPLIES)) as srv:
        res = subprocess.run([sys.executable, "-m", "arena.cli.main", "iterate", *CLI_ARGS, "--db", str(db)],
                             capture_output=True, text=True, cwd=ROOT, timeout=300,
                             env={**os.environ, "LLM_BASE_URL": srv.base_url, "LLM_API_KEY": "k"})
    assert res.returncode == 0, res.stderr
    return stored_rows(db)


@pytest.fixture
def writer(monkeypatch):
    with FakeLLMServer(Script(REPLIES)) as srv:
        monkeypatch.setenv("LLM_BASE_URL", srv.base_url)  # the runner process inherits it
        monkeypatch.setenv("LLM_API_KEY", "k")
        yield srv


def follow(remote: IterateRemote) -> tuple[threading.Thread, list]:
    got: list = []
    then = remote.sink
    remote.sink = lambda e: (got.append(e), then(e))
    done: list = []
    t = threading.Thread(target=lambda: done.append(asyncio.run(remote.run())), daemon=True)
    t.start()
    return t, got


def test_wire_messages_round_trip():
    events = [WriterAsked(1, 2, "col", 3, "it1-r2-col-s3"),
              StepStored(1, {"round": 1, "player": "row", "step": 0, "welfare": 4.5, "source": "x = 1\n"}),
              RunEnded(1, "finished", 6.0, 6.0), RunEnded(2, "failed", error="the writer failed"),
              Notice("paused")]
    for e in events:
        assert stream.event_of(stream.parse(stream.encode(e))) == e
    hello = stream.Hello(run_id=1, tournament_id=4, pid=9, paused=True, writing=stream.message(events[0]))
    assert stream.parse(hello.model_dump_json()) == hello


def test_a_run_in_its_process_streams_its_steps_and_stores_what_the_cli_stores(tmp_path, writer):
    db = tmp_path / "app.db"
    lib = load_library()
    with Store(db) as store:
        started = start_detached(store, IterateConfig(**CONFIG), lib.games["vanilla_coordination"], paused=True)
        assert (started.run_id, started.tournament_id) == (1, 1)
        assert running_runner(store, 1).runner_socket == started.socket
    hellos = []
    remote = IterateRemote(db, 1, started.socket, on_hello=hellos.append)
    remote.unpause()  # queued: sent once connected
    thread, got = follow(remote)
    thread.join(180)
    assert not thread.is_alive()
    assert hellos[0].paused and hellos[0].run_id == 1 and hellos[0].pid == started.pid
    asked = [(e.round, e.player, e.step) for e in got if isinstance(e, WriterAsked)]
    assert asked == [(1, "row", 1), (1, "row", 2), (1, "col", 1), (1, "col", 2)]
    steps = [e.fields for e in got if isinstance(e, StepStored)]
    # start; row: 0, 1 (broken), 2, kept mark, 3 (fresh); col: the same
    # start; per seat: the current program (0), the writer's two candidates, the kept mark, the kept one
    # on fresh episodes (3); the row's broken candidate 1 loses to 2; the column keeps its first
    assert [(f["player"], f["step"], len(f)) for f in steps] == [
        ("start", 0, 11), ("row", 0, 11), ("row", 1, 14), ("row", 2, 14), ("row", 2, 4), ("row", 3, 11),
        ("col", 0, 11), ("col", 1, 14), ("col", 2, 14), ("col", 1, 4), ("col", 3, 11)]
    writer_steps = [f for f in steps if f.get("reply")]
    assert [f["valid"] for f in writer_steps] == [0, 1, 1, 1]
    assert "candidate.py:1: syntax error" in writer_steps[0]["validation"]
    assert [e.message for e in got if isinstance(e, Notice)] == ["resumed"]
    ended = got[-1]
    rows = stored_rows(db)
    assert isinstance(ended, RunEnded) and ended.status == "finished"
    assert rows["run"] == [{"status": "finished", "welfare": ended.welfare, "best_welfare": ended.best_welfare}]
    assert rows == cli_rows(tmp_path)
    with Store(db) as store:
        assert store.tournament(1).runner_socket is None and running_runner(store, 1) is None


def test_cancel_keeps_the_steps_and_a_resumed_run_ends_as_the_cli_run(tmp_path, writer):
    db = tmp_path / "app.db"
    lib = load_library()
    with Store(db) as store:
        started = start_detached(store, IterateConfig(**CONFIG), lib.games["vanilla_coordination"], paused=True)
    remote = IterateRemote(db, 1, started.socket)
    remote.sink = lambda e: isinstance(e, WriterAsked) and remote.cancel()  # paused before its first writer call
    thread, got = follow(remote)
    thread.join(60)
    assert got[-1] == RunEnded(1, "cancelled", error="cancelled")
    with Store(db) as store:
        assert store.query("SELECT status FROM iterate_runs") == [{"status": "cancelled"}]
        assert [(s["player"], s["step"]) for s in store.query("SELECT player, step FROM iterate_steps")] == [
            ("start", 0), ("row", 0)]  # played before the pause took hold at the first writer call
        again = resume_detached(store, 1)
    thread, got = follow(IterateRemote(db, 1, again.socket))
    thread.join(180)
    assert isinstance(got[-1], RunEnded) and got[-1].status == "finished"
    assert stored_rows(db) == cli_rows(tmp_path)


def test_a_writer_that_fails_ends_the_run_failed_with_why(tmp_path, monkeypatch):
    from tests.support.fake_llm import Status

    db = tmp_path / "app.db"
    lib = load_library()
    with FakeLLMServer(Script([], fallback=Status(404))) as srv:
        monkeypatch.setenv("LLM_BASE_URL", srv.base_url)
        monkeypatch.setenv("LLM_API_KEY", "k")
        with Store(db) as store:
            started = start_detached(store, IterateConfig(**CONFIG), lib.games["vanilla_coordination"])
        thread, got = follow(IterateRemote(db, 1, started.socket))
        thread.join(120)
    ended = got[-1]
    assert isinstance(ended, RunEnded) and ended.status == "failed"
    assert ended.error == "provider 'custom' refused model 'w': HTTP 404: Error code: 404 - Not found."
    with Store(db) as store:
        assert store.query("SELECT status, error FROM iterate_runs") == [{"status": "failed", "error": ended.error}]


def test_a_missing_key_is_refused_before_anything_is_recorded(tmp_path, monkeypatch):
    from arena.errors import ArenaError

    monkeypatch.delenv("LLM_API_KEY", raising=False)
    monkeypatch.setenv("LLM_BASE_URL", "http://127.0.0.1:9/v1")
    db = tmp_path / "app.db"
    with Store(db) as store:
        with pytest.raises(ArenaError) as exc:
            start_detached(store, IterateConfig(**CONFIG), load_library().games["vanilla_coordination"])
        assert str(exc.value) == "provider 'custom' needs the environment variable LLM_API_KEY"
        assert store.query("SELECT count(*) AS n FROM iterate_runs") == [{"n": 0}]
