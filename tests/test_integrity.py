"""Integrity of research runs (issue 13): the cache per endpoint and append-only, continued runs with new
limits, one runner per tournament, failure reasons, harness bugs, secrets, the seed's LLM presets.

LLM paths go over real HTTP to the loopback server (tests.support.fake_llm); nothing of Arena is mocked
except where a test injects a bug into Arena itself on purpose.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from arena.engine.grid import TournamentConfig, from_preset
from arena.engine.records import Node, TrialResult, TrialSpec
from arena.errors import ArenaError, StoreError
from arena.library.programs import LLMProgram
from arena.llm.registry import BUILTIN, endpoint_identity
from arena.llm.secrets import clean
from arena.llm.service import LLMService
from arena.runner.tournament import TournamentRunner, fingerprint
from arena.store.database import Store, TournamentBusy
from tests.support.fake_llm import FakeLLMServer, action_responder

ROOT = Path(__file__).resolve().parents[1]
ENV = {"LLM_API_KEY": "test-key-not-secret"}
FAIR = LLMProgram(id="fair", kind="llm", model="custom/fake-8b", temperature=0.7,
                  system_prompt="You are fair: mirror what the simulated opponent did.")
MEAN = LLMProgram(id="mean", kind="llm", model="custom/fake-8b", temperature=0.7, system_prompt="You always defect.")


def registry(url: str, **over):
    return {**BUILTIN, "custom": BUILTIN["custom"].model_copy(update=dict(
        base_url=url, backoff_initial=0.01, backoff_max=0.05, timeout=2.0, max_attempts=3, **over))}


def config(**over) -> TournamentConfig:
    return TournamentConfig(**{"programs": ["fair", "mean"], "games": ["prisoners_dilemma"], "epsilons": [0.5],
                               "max_depths": [3], "trials": 3, "seed": 11, "concurrency": 4, **over})


def run(store, url, games, *, new=False, programs=(FAIR, MEAN), provider=None, **over):
    lib = {p.id: p for p in programs}
    runner = TournamentRunner.create(store, config(programs=list(lib), **over), lib, games,
                                     backend=LLMService(store, registry(url, **(provider or {})), ENV), new=new)
    return runner, asyncio.run(runner.run())


def outcome(store, tid):
    return [(t["seq"], t["row_action"], t["col_action"], t["status"]) for t in store.trial_rows(tid)]


def cached_calls(store, tid) -> tuple[int, int]:
    r = store.query("SELECT sum(cached) AS hit, count(*) AS n FROM llm_calls WHERE tournament_id=?", (tid,))[0]
    return r["hit"], r["n"]


# --- the response cache ---------------------------------------------------------------------------------
def test_no_cache_run_neither_reads_nor_replaces_and_cache_is_per_endpoint(store, games):
    cooperate, defect = action_responder("cooperate"), action_responder("defect")
    with FakeLLMServer(cooperate) as a, FakeLLMServer(defect) as b:
        url_a, url_b = a.base_url, b.base_url
        ra, A = run(store, a.base_url, games)  # run A
        a.responder = defect
        rb, B = run(store, a.base_url, games, new=True, cache=False)  # B: the server now answers differently
        a.responder = cooperate
        b_requests = len(a.chat_requests)
        rc, C = run(store, a.base_url, games, new=True)  # C: cache on
        rd, D = run(store, b.base_url, games, new=True)  # D: another base URL
    assert A.status == B.status == C.status == D.status == "finished"
    assert len({ra.tournament_id, rb.tournament_id, rc.tournament_id, rd.tournament_id}) == 4
    hit_a, n_a = cached_calls(store, ra.tournament_id)
    assert hit_a == 0 and n_a > 0
    assert cached_calls(store, rb.tournament_id)[0] == 0  # --no-cache reads nothing
    assert outcome(store, rb.tournament_id) != outcome(store, ra.tournament_id)
    assert outcome(store, rc.tournament_id) == outcome(store, ra.tournament_id)  # C reproduces A
    assert cached_calls(store, rc.tournament_id) == (n_a, n_a)  # every call of C from the cache
    assert len(a.chat_requests) == b_requests  # C asked the server nothing
    assert cached_calls(store, rd.tournament_id)[0] == 0  # another endpoint: no cached answers
    assert len(b.chat_requests) == cached_calls(store, rd.tournament_id)[1]
    # one row per key and endpoint; A's answers were never replaced by B's
    rows = store.query("SELECT endpoint, count(*) AS n, sum(response LIKE '%ACTION: cooperate%') AS coop "
                       "FROM response_cache GROUP BY endpoint ORDER BY endpoint")
    assert {r["endpoint"] for r in rows} == {url_a, url_b}


def test_endpoint_identity_is_the_base_url_without_credentials():
    spec = BUILTIN["custom"]
    assert endpoint_identity(spec, {"LLM_BASE_URL": "https://user:pw-secret@example.org/v1/"}) == "https://example.org/v1"
    assert endpoint_identity(BUILTIN["nvidia"], {}) == "https://integrate.api.nvidia.com/v1"
    assert endpoint_identity(BUILTIN["local"], {}) == "local"


def test_migration_keeps_cache_rows_of_fixed_endpoints_and_marks_the_others(tmp_path):
    path = tmp_path / "old.db"
    shutil.copy(Path(__file__).parent / "fixtures" / "arena-v1.db", path)  # a database of schema 1
    with sqlite3.connect(path) as c:  # its cache: a row of a fixed-URL provider and one of custom
        c.executescript("""
            DELETE FROM response_cache;
            INSERT INTO response_cache VALUES ('k1', 'nvidia', 'm', 'ACTION: cooperate', 1, 2, 0);
            INSERT INTO response_cache VALUES ('k2', 'custom', 'm', 'ACTION: defect', 1, 2, 0);
        """)
    with Store(path) as s:
        rows = s.query("SELECT key, endpoint FROM response_cache ORDER BY key")
        from arena.llm.cache import ResponseCache

        cache = ResponseCache(s)
        assert cache.get("k1", endpoint_identity(BUILTIN["nvidia"], {})).response == "ACTION: cooperate"
        assert cache.get("k2", "http://127.0.0.1:9/v1") is None  # which server answered is unknown
    assert rows == [{"key": "k1", "endpoint": "https://integrate.api.nvidia.com/v1"},
                    {"key": "k2", "endpoint": "unknown:custom"}]


# --- a continued run takes new limits; the fingerprint ---------------------------------------------------
def test_rerun_and_resume_take_new_concurrency_and_name(store, programs, games):
    lib = dict(programs)
    cfg = TournamentConfig(**from_preset("bots", trials=2), concurrency=8)
    first = TournamentRunner.create(store, cfg, lib, games)
    asyncio.run(first.run())
    again = TournamentRunner.create(store, cfg.model_copy(update={"concurrency": 2}), lib, games)
    assert again.reused and again.tournament_id == first.tournament_id and again.config.concurrency == 2
    asyncio.run(again.run())
    resumed = TournamentRunner.resume(store, first.tournament_id, concurrency=3, name="renamed")
    assert resumed.config.concurrency == 3
    row = store.tournament(first.tournament_id)
    assert (row.name, row.config["concurrency"]) == ("renamed", 3)


def test_custom_grid_and_the_same_grid_from_a_preset_are_one_tournament(programs, games):
    preset = TournamentConfig(**from_preset("bots"))
    custom = preset.model_copy(update={"preset": None, "name": "mine", "concurrency": 3, "cache": False})
    chosen = [programs[p] for p in preset.programs]
    g = [games["prisoners_dilemma"]]
    assert fingerprint(preset, chosen, g) == fingerprint(custom, chosen, g)
    assert fingerprint(preset, chosen, g) != fingerprint(preset.model_copy(update={"seed": 1}), chosen, g)


def test_cli_resume_with_concurrency_and_name(tmp_path):
    db = str(tmp_path / "x.db")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    arena = [sys.executable, "-m", "arena"]
    out = subprocess.run([*arena, "run", "--trials", "2", "--db", db, "--display", "none"], capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    out = subprocess.run([*arena, "resume", "1", "--concurrency", "3", "--name", "again", "--db", db, "--display",
                          "none"], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    with sqlite3.connect(db) as c:
        name, cfg, status = c.execute("SELECT name, config, status FROM tournaments WHERE id=1").fetchone()
    assert (name, '"concurrency":3' in cfg, status) == ("again", True, "finished")


# --- one runner per tournament -----------------------------------------------------------------------
def test_claim_refuses_a_tournament_a_live_process_runs(tmp_path, programs, games):
    path = tmp_path / "x.db"
    with Store(path) as s:
        cfg = TournamentConfig(**from_preset("bots", trials=1))
        tid = TournamentRunner.create(s, cfg, dict(programs), games).tournament_id
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with Store(path) as a, Store(path) as b:
            a.conn.execute("UPDATE tournaments SET runner_pid=?, status='running' WHERE id=?", (other.pid, tid))
            with pytest.raises(TournamentBusy, match=f"pid {other.pid}"):
                b.claim(tid)
    finally:
        other.kill()
        other.wait()
    with Store(path) as s:  # that process is gone: the tournament can be claimed
        s.claim(tid)
        assert s.tournament(tid).runner_pid == os.getpid()


def test_two_concurrent_resumes_never_ask_for_the_same_trial_twice(tmp_path, games):
    """Two `arena resume` processes at once on an interrupted LLM tournament: the server is asked for each
    call once (with the check and the claim apart, both ran every missing trial and paid twice)."""
    path = tmp_path / "x.db"
    with FakeLLMServer(action_responder("cooperate"), latency=0.05) as srv:
        with Store(path) as s:
            lib = {p.id: p for p in (FAIR, MEAN)}
            runner = TournamentRunner.create(s, config(trials=2), lib, games,
                                             backend=LLMService(s, registry(srv.base_url), ENV))
            dead = subprocess.Popen([sys.executable, "-c", "pass"])
            dead.wait()
            s.conn.execute("UPDATE tournaments SET runner_pid=? WHERE id=?", (dead.pid, runner.tournament_id))
        env = {**os.environ, "PYTHONPATH": str(ROOT), "LLM_BASE_URL": srv.base_url, **ENV}
        cmd = [sys.executable, "-m", "arena", "resume", str(runner.tournament_id), "--db", str(path), "--display",
               "none"]
        procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
        outs = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
        asked = len(srv.chat_requests)
    for rc, err in outs:
        assert rc == 0 or (rc == 2 and "being run by another process" in err), err
    with sqlite3.connect(path) as c:
        stored_calls = c.execute("SELECT count(*) FROM llm_calls").fetchone()[0]
        trials = c.execute("SELECT count(*) FROM trials").fetchone()[0]
    assert trials == 8 and asked == stored_calls


# --- writes -------------------------------------------------------------------------------------------
def test_a_trial_violating_not_null_raises_instead_of_being_ignored(store, programs, games):
    cfg = TournamentConfig(**from_preset("bots", trials=1))
    tid = TournamentRunner.create(store, cfg, dict(programs), games).tournament_id
    spec = TrialSpec(0, "prisoners_dilemma", "fairbot", "fairbot", 0.2, 10, None, 0, 1)
    bad = TrialResult(spec, [Node(0, None, "row", 0, "fairbot", 0.1, "grounded", action="cooperate")],
                      "cooperate", "cooperate", 3.0, 3.0, True, status=None)
    with pytest.raises(StoreError, match="NOT NULL"):
        store.write_trials(tid, [bad])
    good = TrialResult(spec, bad.nodes, "cooperate", "cooperate", 3.0, 3.0, True)
    assert store.write_trials(tid, [good]) == 1 and store.write_trials(tid, [good]) == 0  # the duplicate only


# --- why it failed; harness bugs ------------------------------------------------------------------------
def test_an_arena_bug_stops_the_run_is_not_an_error_trial_and_its_reason_is_stored(tmp_path, games, monkeypatch):
    from arena.llm import prompts

    def broken(text, actions):
        raise KeyError("injected")

    monkeypatch.setattr(prompts, "read_answer", broken)
    path = tmp_path / "x.db"
    with Store(path) as store, FakeLLMServer(action_responder("cooperate")) as srv:
        runner, done = run(store, srv.base_url, games)
        assert done.status == "failed"
        assert "internal error in Arena" in done.error and "KeyError: 'injected'" in done.error
        assert store.query("SELECT count(*) AS n FROM trials WHERE status='error'")[0]["n"] == 0
        row = store.tournament(runner.tournament_id)
        assert row.status == "failed" and row.reason == done.error
    log = (tmp_path / "x.log").read_text()
    assert "Traceback" in log and "in broken" in log and "KeyError: 'injected'" in log
    from typer.testing import CliRunner

    from arena.cli.main import app

    listed = CliRunner().invoke(app, ["tournaments", "list", "--db", str(path)], env={"COLUMNS": "400"})
    assert "internal error in Arena" in listed.stdout
    shown = CliRunner().invoke(app, ["tournaments", "show", str(runner.tournament_id), "--db", str(path)])
    assert "failed: internal error in Arena" in shown.stdout


def test_a_provider_failure_is_still_an_error_trial(store, games):
    from tests.support.fake_llm import Status

    with FakeLLMServer(lambda req: Status(500)) as srv:
        runner, done = run(store, srv.base_url, games, programs=(FAIR,), trials=1, provider={"outage_wait": 0})
    assert done.status == "finished", done.error
    assert [t["status"] for t in store.trial_rows(runner.tournament_id)] == ["error"]


def test_cancel_while_the_backend_starts_stops_at_once(store, programs, games):
    started, stopped = threading.Event(), []

    class SlowStart(LLMService):
        async def prepare(self, programs, config):
            started.set()
            try:
                await asyncio.Event().wait()  # a model being assembled, a server starting: minutes
            except asyncio.CancelledError:
                stopped.append(True)
                raise

    lib = {**programs, "fair": FAIR}
    cfg = TournamentConfig(programs=["fair", "fairbot"], games=["prisoners_dilemma"], epsilons=[0.5], max_depths=[2],
                           trials=1)
    runner = TournamentRunner.create(store, cfg, lib, games, backend=SlowStart(store, registry("http://127.0.0.1:9/v1"),
                                                                               ENV))
    result = []
    thread = threading.Thread(target=lambda: result.append(asyncio.run(runner.run())))
    thread.start()
    assert started.wait(60)
    runner.cancel()
    thread.join(60)
    assert not thread.is_alive() and stopped == [True]
    assert result[0].status == "cancelled"
    assert store.tournament(runner.tournament_id).reason == "cancelled by the user"


# --- secrets ----------------------------------------------------------------------------------------------
def test_clean_removes_tokens_pairs_url_passwords_and_known_values():
    env = {"NVIDIA_API_KEY": "nv-0123456789abcdef"}
    text = ("Authorization: Bearer sk-live-abcdef123456 at https://alice:hunter2pass@example.org/v1?api_key=q1w2e3r4t5 "
            "api_key=zz9988776655 and nv-0123456789abcdef")
    out = clean(text, env)
    for secret in ("sk-live-abcdef123456", "hunter2pass", "q1w2e3r4t5", "zz9988776655", "nv-0123456789abcdef"):
        assert secret not in out
    assert "Bearer ***" in out and "https://***@example.org" in out


def test_cli_error_text_is_cleaned(capsys):
    import typer

    from arena.cli.main import fail

    with pytest.raises(typer.Exit) as exit_:
        fail("provider said: Bearer abcdef1234567890 is invalid at https://bob:s3cr3tpass@host/v1")
    assert exit_.value.exit_code == 2
    err = capsys.readouterr().err
    assert "abcdef1234567890" not in err and "s3cr3tpass" not in err and "Bearer ***" in err


def test_an_echoed_bearer_token_never_reaches_the_store(store, games):
    with FakeLLMServer(lambda req: "Your header was Bearer zyxwvu987654321\nACTION: cooperate") as srv:
        runner, done = run(store, srv.base_url, games, programs=(FAIR,), trials=1)
    responses = [r["response"] for r in store.query("SELECT response FROM llm_calls")]
    assert responses and all("zyxwvu987654321" not in r and "Bearer ***" in r for r in responses)


# --- embedded models ----------------------------------------------------------------------------------
def test_two_embedded_models_are_refused_before_anything_is_recorded(store, games):
    qwen = LLMProgram(id="q", kind="llm", model="local/qwen2.5-coder-0.5b", system_prompt="x")
    small = LLMProgram(id="s", kind="llm", model="local/smollm2-135m", system_prompt="x")
    cfg = TournamentConfig(programs=["q", "s"], games=["prisoners_dilemma"], epsilons=[0.5], max_depths=[1], trials=1)
    with pytest.raises(ArenaError, match="2 embedded models .*qwen2.5-coder-0.5b, smollm2-135m"):
        TournamentRunner.create(store, cfg, {"q": qwen, "s": small}, games, backend=LLMService(store, env={}))
    assert store.tournaments() == []


# --- the seed's commands -------------------------------------------------------------------------------
def test_seed_smoke_command_calls_the_provider(tmp_path):
    db = tmp_path / "x.db"
    with FakeLLMServer(action_responder("cooperate")) as srv:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "LLM_BASE_URL": srv.base_url, **ENV}
        out = subprocess.run([sys.executable, "-m", "arena", "run", "--provider", "custom", "--grid", "smoke",
                              "--trials", "1", "--db", str(db), "--display", "none"], capture_output=True, text=True,
                             env=env, timeout=300)
        asked = {r.body.get("model") for r in srv.chat_requests}
        n = len(srv.chat_requests)
    assert out.returncode == 0, out.stderr
    with sqlite3.connect(db) as c:
        trials = c.execute("SELECT count(*) FROM trials").fetchone()[0]
        calls = c.execute("SELECT count(*), min(provider), max(provider) FROM llm_calls").fetchone()
        programs = sorted(r[0] for r in c.execute("SELECT program_id FROM tournament_programs"))
    assert trials == 9 and n > 0 and calls == (n, "custom", "custom") and asked == {"llama-3.1-8b"}
    assert programs == ["cooperate-llm.llama-3.1-8b.t0.7", "defect-llm.llama-3.1-8b.t0.7",
                        "fair-llm.llama-3.1-8b.t0.7"]


def test_panel_presets_map_every_alias_to_the_provider(programs):
    from arena.engine.grid import PRESETS, preset_programs
    from arena.llm.registry import resolve

    full = preset_programs("full", dict(programs))
    assert len(full) == 3 * 5 * 2 and from_preset("full")["programs"] == list(full)
    models = {resolve(p.model, BUILTIN, "nvidia").model for p in full.values()}
    assert models == {"meta/llama-3.1-8b-instruct", "meta/llama-3.1-70b-instruct", "meta/llama-3.2-3b-instruct",
                      "microsoft/phi-4-mini-instruct", "mistralai/mixtral-8x7b-instruct-v0.1"}
    assert {resolve(p.model, BUILTIN).model for p in full.values()} == {"qwen2.5-coder-0.5b"}  # local: one model
    assert PRESETS["bots"].programs and not PRESETS["bots"].llm and from_preset("bots")["preset"] == "bots"


def test_backoff_after_a_thousand_attempts_is_a_number():
    """An outage keeps a call retrying for minutes: its backoff must not overflow (it did at ~1,000 attempts,
    an OverflowError that was recorded as the program's failure)."""
    from arena.llm.client import ProviderClient

    client = ProviderClient(BUILTIN["custom"].model_copy(update={"backoff_max": 30.0}), "http://127.0.0.1:9/v1", None)
    wait = client._wait(None, 1200)
    assert 15.0 <= wait <= 30.0


# --- replay -----------------------------------------------------------------------------------------------
def test_replay_rebuilds_the_same_trials_from_stored_calls_without_a_provider(tmp_path, games):
    from typer.testing import CliRunner

    from arena.cli.main import app

    path = tmp_path / "x.db"
    with Store(path) as store:
        with FakeLLMServer(action_responder(lambda req: "defect" if req.index % 3 == 0 else "cooperate")) as srv:
            ra, A = run(store, srv.base_url, games)
            srv.responder = action_responder("defect")
            run(store, srv.base_url, games, new=True, cache=False)  # whatever ran since
        source = outcome(store, ra.tournament_id)
        n_calls = cached_calls(store, ra.tournament_id)[1]
    out = CliRunner().invoke(app, ["replay", str(ra.tournament_id), "--db", str(path), "--display", "none"])
    assert out.exit_code == 0, out.output
    assert "Replay 3 of tournament 1: 12/12 trials identical, no provider contacted" in out.output
    with Store(path) as store:
        row = store.tournament(3)
        assert (row.replay_of, row.status, row.name) == (1, "finished", "replay of 1")
        assert outcome(store, 3) == source and cached_calls(store, 3) == (n_calls, n_calls)
        # a stored answer that no longer names its node's action: the replay says where, and fails
        store.conn.execute("UPDATE llm_calls SET response = 'ACTION: defect' WHERE tournament_id=1 AND "
                           "parsed_action='cooperate' AND id = (SELECT min(id) FROM llm_calls WHERE tournament_id=1 "
                           "AND parsed_action='cooperate')")
    out = CliRunner().invoke(app, ["replay", "1", "--db", str(path), "--display", "none"])
    assert out.exit_code == 1 and "diverged at trial" in out.output and "the stored action is 'cooperate'" in out.output


def test_a_cancelled_wait_for_model_assembly_returns_at_once():
    """asyncio.to_thread would keep asyncio.run from returning until the assembly thread ends."""
    import threading
    import time

    from arena.llm.localmodel import in_daemon_thread

    release = threading.Event()

    async def main():
        task = asyncio.ensure_future(in_daemon_thread(release.wait, 120))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await in_daemon_thread(lambda x: x * 2, 21) == 42
        with pytest.raises(KeyError):
            await in_daemon_thread({}.__getitem__, "x")

    t0 = time.monotonic()
    asyncio.run(main())
    returned = time.monotonic() - t0
    release.set()
    assert returned < 60  # to_thread: 120 s (the loop's shutdown waits for the thread)


def test_tournaments_list_shows_when_the_latest_run_started(tmp_path, programs, games):
    from typer.testing import CliRunner

    from arena.cli.main import app

    path = tmp_path / "x.db"
    with Store(path) as s:
        tid = TournamentRunner.create(s, TournamentConfig(**from_preset("bots", trials=1)), dict(programs),
                                      games).tournament_id
        s.conn.execute("UPDATE tournaments SET created_at=978307200, started_at=1262304000 WHERE id=?", (tid,))
    out = CliRunner().invoke(app, ["tournaments", "list", "--db", str(path)], env={"COLUMNS": "200"})
    assert out.exit_code == 0 and "2010-01-01" in out.stdout and "2001-01-01" not in out.stdout


def test_a_schema_1_tournament_is_found_by_todays_fingerprint_and_takes_it(tmp_path, programs, games):
    import shutil

    fixture = ROOT / "tests" / "fixtures" / "arena-v1.db"
    if not fixture.exists():
        pytest.skip("tests/fixtures/arena-v1.db is not in this checkout")
    path = tmp_path / "old.db"
    shutil.copy(fixture, path)
    with Store(path) as s:
        assert [r["fingerprint"][:3] for r in s.query("SELECT fingerprint FROM tournaments ORDER BY id")] == ["v1:"] * 2
        cfg = TournamentConfig(programs=["fairbot", "defectbot", "cooperatebot"], games=["prisoners_dilemma"],
                               epsilons=[0.2], max_depths=[10], trials=20, seed=3, preset=None, concurrency=2)
        runner = TournamentRunner.create(s, cfg, dict(programs), games)
        assert runner.reused and runner.tournament_id == 1
        chosen = [programs[p] for p in cfg.programs]
        assert s.tournament(1).fingerprint == fingerprint(cfg, chosen, [games["prisoners_dilemma"]])
        assert len(s.tournaments()) == 2
