from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from arena.engine.bots import BotAgent
from arena.errors import StoreError
from arena.engine.grid import TournamentConfig
from arena.engine.records import CallRecord, Node, TrialResult, TrialSpec
from arena.engine.simulator import run_trial_sync
from arena.runner.tournament import TournamentRunner, fingerprint


def make_tournament(store, programs, games, **kw):
    cfg = TournamentConfig(**{"programs": ["fairbot", "defectbot"], "games": ["prisoners_dilemma"], "epsilons": [0.3],
                              "max_depths": [10], "trials": 5, "seed": 1, **kw})
    progs = [programs[p] for p in cfg.programs]
    gs = [games[g] for g in cfg.games]
    tid = store.create_tournament(cfg, progs, gs, cfg.total_trials, "test", fingerprint(cfg, progs, gs))
    return tid, cfg


def results(cfg, programs, games):
    agents = {p: BotAgent(programs[p]) for p in cfg.programs}
    return [run_trial_sync(s, games[s.game], agents, programs) for s in cfg.iter_specs()]


def test_trial_nodes_written_with_global_ids(store, programs, games):
    tid, cfg = make_tournament(store, programs, games)
    res = results(cfg, programs, games)
    assert store.write_trials(tid, res) == cfg.total_trials == 20
    rows = store.trial_rows(tid)
    assert [r["seq"] for r in rows] == list(range(20))
    first = rows[0]
    assert (first["game"], first["row_program"], first["col_program"], first["status"]) == (
        "prisoners_dilemma", "fairbot", "fairbot", "ok")
    nodes = store.nodes(first["id"])
    assert len(nodes) == first["n_nodes"] == len(res[0].nodes)
    for n, r in zip(nodes, res[0].nodes):
        assert (n["idx"], n["side"], n["depth"], n["program"], n["mode"], n["action"]) == (
            r.index, r.side, r.depth, r.program, r.mode, r.action)
        assert n["parent_id"] == (None if r.parent is None else nodes[r.parent]["id"])
    assert first["row_depth"] == max(n.depth for n in res[0].nodes[: res[0].nodes.index(next(
        x for x in res[0].nodes if x.parent is None and x.index > 0))])


def test_rewriting_the_same_trials_is_a_no_op(store, programs, games):
    tid, cfg = make_tournament(store, programs, games)
    res = results(cfg, programs, games)
    store.write_trials(tid, res[:7])
    assert store.write_trials(tid, res) == 13
    assert store.write_trials(tid, res) == 0
    assert store.count_trials(tid) == 20
    n_nodes = store.query("SELECT count(*) AS n FROM nodes")[0]["n"]
    assert n_nodes == sum(len(r.nodes) for r in res)


def test_completed_map(store, programs, games):
    tid, cfg = make_tournament(store, programs, games)
    res = results(cfg, programs, games)
    store.write_trials(tid, [res[3], res[11]])
    done = store.completed(tid, cfg.total_trials)
    assert [i for i, d in enumerate(done) if d] == [3, 11]


def test_a_failing_write_leaves_nothing(store, programs, games):
    tid, cfg = make_tournament(store, programs, games)
    res = results(cfg, programs, games)
    bad = TrialResult(res[1].spec, [Node(0, None, "row", 0, "fairbot", 0.5, mode="direct", action=object())])
    with pytest.raises(Exception):
        store.write_trials(tid, [res[0], bad])
    assert store.count_trials(tid) == 0
    assert store.query("SELECT count(*) AS n FROM nodes")[0]["n"] == 0


def test_llm_calls_are_stored_with_their_node(store, programs, games):
    tid, cfg = make_tournament(store, programs, games)
    spec = TrialSpec(0, "prisoners_dilemma", "fairbot", "defectbot", 0.3, 10, None, 0, 1)
    call = CallRecord("local", "m", [{"role": "user", "content": "hi"}], response="ACTION: defect",
                      parsed_action="defect", attempt=2, latency_ms=12.5, prompt_tokens=3, completion_tokens=4,
                      params={"temperature": 0.7})
    node = Node(0, None, "row", 0, "fairbot", 0.1, mode="direct", action="defect", calls=[call])
    col = Node(1, None, "col", 0, "defectbot", 0.2, mode="direct", action="defect")
    store.write_trials(tid, [TrialResult(spec, [node, col], "defect", "defect", 1, 1, False)])
    trial = store.trial_rows(tid)[0]
    assert trial["n_calls"] == 1
    (c,) = store.calls(trial_id=trial["id"])
    assert (c["node_id"], c["messages"], c["parsed_action"], c["attempt"], c["cached"], c["params"]) == (
        store.nodes(trial["id"])[0]["id"], [{"role": "user", "content": "hi"}], "defect", 2, 0, {"temperature": 0.7})


def test_not_a_database_is_a_clear_error(tmp_path):
    p = tmp_path / "junk.db"
    p.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="is not a usable SQLite database"):
        from arena.store.database import Store

        Store(p)


def test_missing_directory_is_a_clear_error(tmp_path):
    from arena.store.database import Store

    with pytest.raises(StoreError, match="does not exist"):
        Store(tmp_path / "nope" / "a.db")


def test_wal_mode_and_integrity(store):
    assert store.query("PRAGMA journal_mode")[0]["journal_mode"] == "wal"
    assert store.query("PRAGMA integrity_check")[0]["integrity_check"] == "ok"


def test_locked_database_is_a_clear_error(tmp_path, programs, games):
    from arena.store.database import Store

    s = Store(tmp_path / "a.db", timeout=0.2)
    tid, cfg = make_tournament(s, programs, games)
    other = sqlite3.connect(tmp_path / "a.db")
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match="locked"):
            s.write_trials(tid, results(cfg, programs, games))
    finally:
        other.rollback()
        other.close()
    assert s.count_trials(tid) == 0


def test_deep_builtin_trials_are_written_in_batches_of_bounded_nodes(store, programs, games):
    from arena.engine.events import TrialsFinished
    from arena.runner.tournament import BATCH_NODES

    # FairBot self-play at epsilon 0.001: ~2,000 nodes a trial, so 2,000-trial batches would hold millions
    cfg = TournamentConfig(programs=["fairbot"], games=["prisoners_dilemma"], epsilons=[0.001], max_depths=[100_000],
                           trials=60, seed=2)
    batches = []
    runner = TournamentRunner.create(store, cfg, programs, games,
                                     sink=lambda e: batches.append(e.results) if isinstance(e, TrialsFinished) else None)
    done = asyncio.run(runner.run())
    assert done.status == "finished" and sum(len(b) for b in batches) == 60 and len(batches) > 1
    for b in batches[:-1]:  # each written as soon as it reached BATCH_NODES nodes
        sizes = [len(r.nodes) for r in b]
        assert sum(sizes) >= BATCH_NODES > sum(sizes) - sizes[-1]
    stored = store.query("SELECT count(*) AS n, sum(cooperative) AS c, sum(n_nodes) AS nodes FROM trials")[0]
    assert stored == {"n": 60, "c": 60, "nodes": sum(len(r.nodes) for b in batches for r in b)}
    assert store.query("SELECT count(*) AS n FROM nodes")[0]["n"] == stored["nodes"]


def test_a_killed_unreaped_process_is_not_alive():
    """A runner killed while its parent (here: this test) has not reaped it is a zombie: not running."""
    import signal
    import subprocess
    import time as _time

    from arena.store.processes import pid_alive

    child = subprocess.Popen(["sleep", "30"])
    started = _time.time()
    assert pid_alive(child.pid, started)
    child.send_signal(signal.SIGKILL)
    while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        _time.sleep(0.01)  # (the kill is asynchronous: wait until it has taken effect, unreaped)
    assert not pid_alive(child.pid, started)
    child.wait()
    assert not pid_alive(child.pid, started)
