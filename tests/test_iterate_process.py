"""Iterate runs in a runner process of their own (arena/iterate/process.py), with real processes and a
scripted writer on the loopback server: the events a client gets, pause and cancel over the socket,
resuming a cancelled run, and the stored rows equal to `arena iterate`'s with the same config."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
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


# -- meta-rounds -------------------------------------------------------------------------------------------------
def meta_config(**kw) -> IterateConfig:
    """test_metarounds.py's MUST_SHOW run (3 meta-rounds of prisoner's dilemma, cpm against dpm) as a config."""
    from arena.library.personas import builtin

    return IterateConfig(protocol="meta-rounds", game="prisoners_dilemma", model="custom/writer", rounds=10, steps=3,
                         episodes=3, seed=5, meta_rounds=3, persona_row=builtin("cpm"), persona_col=builtin("dpm"),
                         **kw)


def meta_rows(db: Path) -> dict:
    """What a meta-rounds run stored that does not depend on when or where: every attempt (source, hash,
    reply, checks, metrics), every meta-round (programs, hashes, payoffs), the matches, the run's end."""
    with Store(db) as s:
        programs = s.query("SELECT seed, meta_round, seat, attempt, program_id, program_hash, source, reply, valid, "
                           "validation, feedback, sloc, complexity, halstead_volume, opponent_use, ctx_fields, label "
                           "FROM meta_programs ORDER BY seed, meta_round, seat, attempt")
        rounds = s.query("SELECT seed, meta_round, row_program, col_program, row_hash, col_hash, row_failed, "
                         "col_failed, row_payoff, col_payoff, row_total, col_total, episodes, first_seq, errors "
                         "FROM meta_rounds ORDER BY seed, meta_round")
        trials = s.query("SELECT seq, seed, row_program, col_program, row_total, col_total, n_rounds, status "
                         "FROM trials ORDER BY seq")
        run = s.query("SELECT status, welfare, best_welfare FROM iterate_runs")
    return {"programs": programs, "rounds": rounds, "trials": trials, "run": run}


def cli_meta_rows(tmp_path: Path) -> dict:
    from tests.test_metarounds import MUST_SHOW, Writers, arena, writer_env

    db = tmp_path / "cli-meta.db"
    with FakeLLMServer(Writers()) as srv:
        res = arena(*MUST_SHOW, "--db", str(db), "--quiet", env=writer_env(srv))
    assert res.returncode == 0, res.stderr
    return meta_rows(db)


def test_meta_wire_messages_round_trip():
    from arena.iterate.events import AttemptStored, MetaRoundStored, MetaWriterAsked

    events = [MetaWriterAsked(1, 5, 2, "col", 1, "mr1-s5-m2-col-a1"),
              AttemptStored(1, {"seed": 5, "meta_round": 2, "seat": "col", "attempt": 1, "ctx_fields": ["history"]}),
              MetaRoundStored(1, {"seed": 5, "meta_round": 2, "row_payoff": 3.0})]
    for e in events:
        assert stream.event_of(stream.parse(stream.encode(e))) == e
    hello = stream.Hello(run_id=1, tournament_id=4, pid=9, paused=False, meta_writing=[stream.message(events[0])])
    assert stream.parse(hello.model_dump_json()) == hello


def test_a_meta_rounds_run_in_its_process_streams_attempts_and_rounds_and_stores_what_the_cli_stores(tmp_path,
                                                                                                   monkeypatch):
    from arena.iterate.events import AttemptStored, MetaRoundStored, MetaWriterAsked
    from tests.test_metarounds import COL, ROW, Writers, writer_env

    db = tmp_path / "app.db"
    with FakeLLMServer(Writers()) as srv:  # meta-round 1's two calls wait for each other: both in flight at once
        for k, v in writer_env(srv).items():
            monkeypatch.setenv(k, v)
        with Store(db) as store:
            started = start_detached(store, meta_config(), load_library().games["prisoners_dilemma"], paused=True)
        hellos = []
        remote = IterateRemote(db, 1, started.socket, on_hello=hellos.append)
        remote.unpause()
        thread, got = follow(remote)
        thread.join(240)
    assert not thread.is_alive()
    # started paused: the writers asked (and held) before the client came are in its Hello, the later ones events
    assert hellos[0].paused
    asked = [m.event().key for m in hellos[0].meta_writing] + [e.key for e in got if isinstance(e, MetaWriterAsked)]
    assert asked == [(5, 1, "row", 0), (5, 1, "col", 0), (5, 2, "row", 0), (5, 2, "col", 0), (5, 3, "row", 0),
                     (5, 3, "col", 0), (5, 3, "row", 1)]
    attempts = [e.fields for e in got if isinstance(e, AttemptStored)]
    assert sorted((f["meta_round"], f["seat"], f["attempt"], f["valid"]) for f in attempts) == [
        (1, "col", 0, 1), (1, "row", 0, 1), (2, "col", 0, 1), (2, "row", 0, 1), (3, "col", 0, 1), (3, "row", 0, 0),
        (3, "row", 1, 1)]
    by_key = {(f["meta_round"], f["seat"], f["attempt"]): f for f in attempts}
    assert by_key[(1, "row", 0)]["source"] == ROW[1] and by_key[(2, "col", 0)]["source"] == COL[2]
    assert "candidate.py:1: syntax error" in by_key[(3, "row", 0)]["validation"]
    assert "2 rewrite(s) left" in by_key[(3, "row", 0)]["feedback"]
    rounds = [e.fields for e in got if isinstance(e, MetaRoundStored)]
    assert [(r["meta_round"], r["row_program"], r["col_program"], r["row_payoff"], r["col_payoff"]) for r in rounds][:2] \
        == [(1, "mr1-s5-m1-row", "mr1-s5-m1-col", 0.0, 5.0), (2, "mr1-s5-m2-row", "mr1-s5-m2-col", 3.0, 3.0)]
    assert rounds[2]["row_program"] == "mr1-s5-m3-row-a1"
    ended = got[-1]
    assert isinstance(ended, RunEnded) and ended.status == "finished"
    rows = meta_rows(db)
    assert rows["run"] == [{"status": "finished", "welfare": ended.welfare, "best_welfare": ended.best_welfare}]
    assert rows == cli_meta_rows(tmp_path)


def test_a_killed_meta_rounds_process_resumes_as_the_cli_run(tmp_path, monkeypatch):
    """kill -9 while meta-round 2's row writer is asked; the run resumed in a new process asks only what is
    missing and ends with the CLI run's rows."""
    import signal

    from arena.iterate.events import MetaRoundStored
    from tests.test_metarounds import Writers, writer_env

    class Held(Writers):
        def __init__(self):
            super().__init__()
            self.held = threading.Event()
            self.release = threading.Event()

        def __call__(self, request):
            if "This is meta-round 2 of" in request.messages[1]["content"] and not self.release.is_set():
                self.held.set()
                self.release.wait(120)
            return super().__call__(request)

    db = tmp_path / "app.db"
    writers = Held()
    with FakeLLMServer(writers) as srv:
        for k, v in writer_env(srv).items():
            monkeypatch.setenv(k, v)
        with Store(db) as store:
            started = start_detached(store, meta_config(), load_library().games["prisoners_dilemma"])
        thread, got = follow(IterateRemote(db, 1, started.socket))
        assert writers.held.wait(120)
        os.kill(started.pid, signal.SIGKILL)
        thread.join(60)
        writers.release.set()
        assert isinstance(got[-1], RunEnded) and got[-1].status == "failed" and "killed?" in got[-1].error
        assert [e.fields["meta_round"] for e in got if isinstance(e, MetaRoundStored)] == [1]
        with Store(db) as store:
            assert store.tournament(1).display_status == "interrupted"
            writers.barrier = threading.Barrier(1)  # meta-round 1 is stored: no pair of calls to wait for
            again = resume_detached(store, 1)
        thread, got = follow(IterateRemote(db, 1, again.socket))
        thread.join(240)
        assert {e.fields["meta_round"] for e in got if isinstance(e, MetaRoundStored)} == {2, 3}
    assert isinstance(got[-1], RunEnded) and got[-1].status == "finished"
    assert meta_rows(db) == cli_meta_rows(tmp_path)
