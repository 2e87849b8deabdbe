"""Endpoint pools: one provider over several replicas (base_urls), against real loopback servers.

The choice of replica is checked on EndpointPool with a hand-driven clock; the tournaments run over
real HTTP to two tests.support.fake_llm servers, one of which is stopped mid-run.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from arena.analysis.tables import call_rows
from arena.engine.grid import TournamentConfig
from arena.errors import ConfigError
from arena.library.programs import LLMProgram
from arena.llm.pool import EndpointPool
from arena.llm.registry import BUILTIN, ProviderSpec, endpoint_identity, load_providers
from arena.llm.secrets import secret_values
from arena.llm.stats import stats_line
from arena.llm.service import LLMService
from arena.runner.tournament import TournamentRunner
from tests.support.fake_llm import FakeLLMServer, Reset, action_responder
from llm_policies import mirror_policy as policy

ENV = {"LLM_API_KEY": "test-key-not-secret"}
FAIR = LLMProgram(id="fair", kind="llm", model="custom/fake-8b", temperature=0.7,
                  system_prompt="You are fair: mirror what the simulated opponent did.")
MEAN = LLMProgram(id="mean", kind="llm", model="custom/fake-8b", temperature=0.7,
                  system_prompt="You always defect.")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_pool(n: int, clock: Clock, **over) -> EndpointPool:
    urls = [f"http://r{i}/v1" for i in range(n)]
    kw = {**dict(concurrency=2, rpm=None, outage_after=2, outage_wait=10.0, probe_every=1.0, clock=clock), **over}
    return EndpointPool(urls, urls, **kw)


def test_pick_fewest_in_flight_then_round_robin():
    pool = make_pool(3, Clock())
    a, b, c = pool.replicas
    assert [pool.pick().index for _ in range(5)] == [0, 1, 2, 0, 1]  # all idle: in turn
    a.in_flight, b.in_flight, c.in_flight = 2, 0, 1
    assert pool.pick() is b
    b.in_flight = 2
    assert pool.pick() is c
    assert pool.pick(avoid=c) in (a, b)  # a retry never goes back to the replica that just failed it
    assert pool.gate.slots == 6  # the pool's capacity: concurrency per replica x replicas


def test_down_replica_gets_only_probes_and_rejoins_when_it_answers():
    clock = Clock()
    pool = make_pool(2, clock)
    a, b = pool.replicas
    for call, t in ((1, 0.0), (2, 0.1)):  # two calls fail on b: down (outage_after 2)
        clock.now = t
        went_down = b.health.failed(call, t)
    assert went_down and b.health.down
    pool.went_down(b)
    assert {pool.pick().index for _ in range(4)} == {0}  # no probe due yet
    assert pool.excuses(b, 0.1)  # a failure on a down replica while another is up costs no attempt
    clock.now = 1.2  # probe_every passed: one call probes b, the next ones go to a again
    assert pool.pick() is b and pool.pick() is a and pool.pick() is a
    assert b.health.succeeded(1.2) is not None and not b.health.down  # the probe answered: b is back
    assert sorted(pool.pick().index for _ in range(2)) == [0, 1]


def test_every_replica_down_falls_back_to_the_outage_rules():
    clock = Clock()
    pool = make_pool(2, clock, outage_wait=5.0)
    for r in pool.replicas:
        r.health.failed(1, 0.0)
        r.health.failed(2, 0.0)
    assert pool.all_down() and pool.pick() in pool.replicas
    assert pool.excuses(pool.replicas[0], 0.0)  # within outage_wait: excused
    clock.now = 6.0
    assert not pool.excuses(pool.replicas[0], 6.0)  # every replica down past outage_wait: attempts count


def test_providers_yaml_base_urls_identity_and_secrets(tmp_path):
    f = tmp_path / "providers.yaml"
    f.write_text("vllm:\n  base_urls: [http://gpu2:8000/v1, 'http://u:s3cretpw@gpu1:8000/v1']\n  concurrency: 8\n"
                 "bad:\n  base_urls: []\n")
    with pytest.raises(ConfigError) as err:
        load_providers(f, env={})
    assert str(err.value) == f"{f}:5: field 'bad.base_urls': List should have at least 1 item after validation, not 0"
    f.write_text("vllm:\n  base_urls: [http://gpu2:8000/v1, 'http://u:s3cretpw@gpu1:8000/v1']\n  concurrency: 8\n")
    reg = load_providers(f, env={})
    spec = reg["vllm"]
    assert spec.urls({}) == ["http://gpu2:8000/v1", "http://u:s3cretpw@gpu1:8000/v1"]
    assert endpoint_identity(spec) == "pool:http://gpu1:8000/v1,http://gpu2:8000/v1"  # sorted, no password
    assert endpoint_identity(reg["openai"]) == "https://api.openai.com/v1"
    assert "s3cretpw" in secret_values(reg, {})


def registry(urls: list[str], **over):
    fast = dict(base_url=None, base_urls=urls, backoff_initial=0.01, backoff_max=0.05, timeout=2.0, max_attempts=4,
                retry_after_max=2)
    return {**BUILTIN, "custom": BUILTIN["custom"].model_copy(update={**fast, **over})}


def run(store, games, urls, in_flight=8, trials=6, **over):
    config = TournamentConfig(programs=["fair", "mean"], games=["prisoners_dilemma"], epsilons=[0.5],
                              max_depths=[3], trials=trials, seed=5, concurrency=in_flight)
    runner = TournamentRunner.create(store, config, {"fair": FAIR, "mean": MEAN}, games,
                                     backend=LLMService(store, registry(urls, **over), ENV))
    return runner, asyncio.run(runner.run())


def replica_counts(store, tid) -> dict:
    rows = store.query("SELECT replica, status, count(*) AS n FROM llm_calls WHERE tournament_id=? "
                       "GROUP BY replica, status ORDER BY replica, status", (tid,))
    return {(r["replica"], r["status"]): r["n"] for r in rows}


def test_pool_of_two_spreads_calls_and_records_the_replica(store, games):
    with FakeLLMServer(action_responder(policy), latency=0.02) as a, \
            FakeLLMServer(action_responder(policy), latency=0.02) as b:
        ua, ub = a.base_url, b.base_url
        runner, done = run(store, games, [ua, ub], in_flight=8, concurrency=4)
    assert done.status == "finished" and done.counts == {"ok": 24}
    counts = replica_counts(store, runner.tournament_id)
    assert counts == {(ua, "ok"): a.count, (ub, "ok"): b.count}  # every attempt names its replica
    total = a.count + b.count
    assert total == sum(t["n_calls"] for t in store.trial_rows(runner.tournament_id))
    assert a.count >= 0.35 * total and b.count >= 0.35 * total
    s = done.providers["custom"]
    assert {k: v["answered"] for k, v in s["replicas"].items()} == {ua: a.count, ub: b.count}
    line = stats_line("custom", s)
    assert f"replicas: {ua} {a.count} answered, 0 failed" in line and f"{ub} {b.count} answered" in line


def test_a_replica_killed_mid_run_loses_no_trial(store, games):
    with FakeLLMServer(action_responder(policy), latency=0.02) as a, FakeLLMServer(latency=0.02) as b:
        served = []

        def dies_after_ten(req):  # the 11th request kills its server (in-flight ones are cut too)
            served.append(req)
            if len(served) == 11:
                threading.Thread(target=b.stop).start()
                return Reset()
            return action_responder(policy)(req)

        b.responder = dies_after_ten
        ua, ub = a.base_url, b.base_url
        runner, done = run(store, games, [ua, ub], in_flight=8, concurrency=4, trials=8)
    assert done.status == "finished" and done.counts == {"ok": 32}  # every trial ok
    counts = replica_counts(store, runner.tournament_id)
    s = done.providers["custom"]["replicas"]
    # b answered at most its first 10 (less the 3 at most in flight with the 11th, cut when it died), then errors
    assert 7 <= counts[(ub, "ok")] == s[ub]["answered"] <= 10
    assert counts[(ub, "error")] == s[ub]["failed"] >= 1 and s[ub]["outages"] == 1
    assert counts[(ua, "ok")] == a.count == s[ua]["answered"] and (ua, "error") not in counts
    # the calls table: a row per program and replica, failures there = failed attempts there
    rows = {(r.program, r.replica): r for r in call_rows(store, runner.tournament_id)}
    assert set(rows) == {(p, u) for p in ("fair", "mean") for u in (ua, ub)}
    assert sum(r.failures for (p, u), r in rows.items() if u == ub) == counts[(ub, "error")]
    assert sum(r.attempts for (p, u), r in rows.items() if u == ua) == counts[(ua, "ok")]
    assert all(r.failures == 0 for (p, u), r in rows.items() if u == ua)


def test_every_replica_dead_past_outage_wait_fails_the_trials(store, games):
    a, b = FakeLLMServer(), FakeLLMServer()
    a.start(), b.start()
    urls = [a.base_url, b.base_url]
    a.stop(), b.stop()
    runner, done = run(store, games, urls, in_flight=4, trials=1, outage_wait=0.0, max_attempts=2)
    assert done.counts == {"error": 4}
    rows = store.query("SELECT DISTINCT replica FROM llm_calls WHERE tournament_id=? ORDER BY replica",
                       (runner.tournament_id,))
    assert [r["replica"] for r in rows] == sorted(urls)


def test_a_slot_per_pair_once_each_pair_meets_in_three_cells():
    from arena.engine.grid import TournamentConfig
    from arena.llm.service import PAIR_MEETINGS, slot_per_pair

    def config(programs: int, trials: int, epsilons=(0.5,)) -> TournamentConfig:
        return TournamentConfig(programs=[f"p{i}" for i in range(programs)], games=["prisoners_dilemma"],
                                epsilons=list(epsilons), max_depths=[3], trials=trials)

    assert PAIR_MEETINGS == 3
    assert not slot_per_pair(config(2, 2))  # the tournament: 2 meetings a pair
    assert slot_per_pair(config(2, 3)) and slot_per_pair(config(2, 8))
    assert not slot_per_pair(config(5, 1)) and slot_per_pair(config(5, 1, epsilons=(0.1, 0.2, 0.5)))


def test_slot_count_as_wanted_capped_by_memory():
    from arena.llm.localmodel import MAX_SLOTS, SLOT_BYTES, slot_count

    assert slot_count(2, available=8 << 30) == 2
    assert slot_count(0, available=8 << 30) == 1
    assert slot_count(100, available=64 << 30) == MAX_SLOTS
    assert slot_count(10, available=12 * SLOT_BYTES) == 3  # a quarter of the free memory


@pytest.mark.slow
def test_local_replicas_and_programs_pinned_to_their_slots(store, games, tmp_path, programs):
    """`local: {replicas: 2}` starts two llama.cpp servers as a pool; each program asks on its own slot."""
    registry = {**BUILTIN, "local": BUILTIN["local"].model_copy(update={"replicas": 2})}
    lib = {p: programs[p].model_copy(update={"model": "local/smollm2-135m"}) for p in ("fair-llm", "defect-llm")}
    config = TournamentConfig(programs=list(lib), games=["prisoners_dilemma"], epsilons=[1.0], max_depths=[0],
                              trials=1, seed=3, concurrency=2, cache=False)
    backend = LLMService(store, registry, {})
    logs = []
    aclose = backend.aclose

    async def keep_logs():  # the servers' logs, read before they are stopped
        logs.extend(s.log_path.read_text(errors="replace") for s in backend._local_servers)
        await aclose()

    backend.aclose = keep_logs
    runner = TournamentRunner.create(store, config, lib, games, backend=backend)
    done = asyncio.run(runner.run())
    assert done.status == "finished" and done.counts == {"ok": 4}
    assert backend.slots == {"defect-llm": 0, "fair-llm": 1}
    assert backend.pair_slots == {}  # one trial a pair: a slot per program (slot_per_pair)
    rows = store.query("SELECT DISTINCT replica FROM llm_calls WHERE tournament_id=?", (runner.tournament_id,))
    assert len(rows) == 2 and all(r["replica"].startswith("http://127.0.0.1:") for r in rows)
    assert len(logs) == 2 and all("selected slot by id" in log for log in logs)  # id_slot reached llama.cpp


def test_providers_list_shows_a_pool_without_its_credentials(tmp_path):
    from typer.testing import CliRunner

    from arena.cli.main import app

    f = tmp_path / "providers.yaml"
    f.write_text("lab:\n  base_urls: ['http://u:pw-secret-1@gpu1:8000/v1', http://gpu2:8000/v1]\n  concurrency: 8\n")
    r = CliRunner().invoke(app, ["providers", "list"], env={"ARENA_PROVIDERS": str(f), "COLUMNS": "300"})
    assert r.exit_code == 0, r.output
    line = next(x for x in r.output.splitlines() if " lab " in x)
    assert "http://gpu1:8000/v1, http://gpu2:8000/v1" in line and "8 x 2 replicas" in line
    assert "pw-secret-1" not in r.output


def test_embedded_server_threads_are_the_idle_cores_split_over_replicas():
    from arena.llm.localmodel import server_threads

    assert server_threads(1, cpus=2, load=0.3) == 2  # an idle machine: a thread per core
    assert server_threads(1, cpus=2, load=1.2) == 1  # one core busy (a test run, another job)
    assert server_threads(1, cpus=2, load=3.5) == 1  # oversubscribed: one thread, never zero
    assert server_threads(2, cpus=16, load=0.0) == 8  # a pool of 2 on 16 idle cores
    assert server_threads(4, cpus=16, load=8.0) == 2
    assert server_threads(64, cpus=2, load=0.0) == 1
    spec = BUILTIN["local"].model_copy(update={"threads": 3})
    assert ProviderSpec.model_validate(spec.model_dump()).threads == 3


def test_embedded_server_threads_read_the_cores_busy_now(monkeypatch):
    """Not the 1-minute load average, which still counts the previous run's own server for a minute after it
    ended: the CPU time busy over a short window (/proc/stat); the load average only where there is none."""
    import os

    from arena.llm import localmodel

    busy = localmodel.busy_cores(0.05)
    assert busy is None or 0.0 <= busy <= (os.cpu_count() or 1)
    monkeypatch.setattr(os, "getloadavg", lambda: (1.4, 1.0, 1.0))  # a run that has just ended
    monkeypatch.setattr(localmodel, "busy_cores", lambda window=0.25: 0.02)
    assert localmodel.server_threads(1, cpus=2) == 2
    monkeypatch.setattr(localmodel, "busy_cores", lambda window=0.25: 0.98)  # a busy loop on one core
    assert localmodel.server_threads(1, cpus=2) == 1
    monkeypatch.setattr(localmodel, "busy_cores", lambda window=0.25: None)  # no /proc/stat
    assert localmodel.server_threads(1, cpus=2) == 1
