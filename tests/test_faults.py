"""Provider faults never crash a tournament: `arena run` against the loopback server with mixed faults,
and a provider that goes down for a while.

Every request the server receives is an attempt stored in `llm_calls`; every trial is stored as ok,
refused or error; the end-of-run summary's per-provider counts are those of the stored attempts.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from arena.llm.outage import ProviderHealth
from arena.llm.registry import BUILTIN
from tests.support.fake_llm import FakeLLMServer, FaultPlan, Reset, Status, action_responder
from llm_policies import mirror_policy as policy

ROOT = Path(__file__).resolve().parents[1]
KINDS = ["rate_limit", "server_error", "unavailable", "timeout", "reset", "malformed", "empty", "truncated"]


@pytest.fixture
def workdir(tmp_path):
    """Two LLM programs and FairBot on the custom provider, with fast retry settings (providers.yaml)."""
    d = tmp_path / "programs"
    d.mkdir()
    (d / "fairbot.yaml").write_text((ROOT / "programs" / "fairbot.yaml").read_text())
    for pid, prompt in (("fair-llm", "You are fair: mirror what the simulated opponent did."),
                        ("mean-llm", "You always defect.")):
        (d / f"{pid}.yaml").write_text(f"id: {pid}\nkind: llm\nmodel: custom/fake-8b\nsystem_prompt: {json.dumps(prompt)}\n")
    return tmp_path


def providers_yaml(path: Path, **settings) -> Path:
    fast = {"timeout": 0.5, "max_attempts": 4, "backoff_initial": 0.01, "backoff_max": 0.05, "retry_after_max": 0.2,
            **settings}
    path.write_text("custom:\n" + "".join(f"  {k}: {v}\n" for k, v in fast.items()))
    return path


def arena_run(workdir: Path, srv: FakeLLMServer, providers: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ARENA_PROGRAMS": str(workdir / "programs"), "ARENA_PROVIDERS": str(providers),
           "LLM_BASE_URL": srv.base_url, "LLM_API_KEY": "fault-test-key"}
    return subprocess.run([sys.executable, "-m", "arena.cli.main", "run", "-p", "fair-llm", "-p", "mean-llm", "-p", "fairbot",
                           "-g", "prisoners_dilemma", "-e", "0.3", "-d", "3", "--seed", "3", "--display", "plain",
                           "--db", str(workdir / "arena.db"), *args],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=240)


def one(con, sql: str, *params):
    return con.execute(sql, params).fetchone()[0]


def stored_summary(con) -> str:
    """The summary line the run must print, computed from the stored attempts alone."""
    attempts = one(con, "SELECT count(*) FROM llm_calls WHERE cached = 0")
    calls = one(con, "SELECT count(*) FROM llm_calls WHERE cached = 0 AND attempt = 1")
    retried = one(con, "SELECT count(*) FROM llm_calls WHERE cached = 0 AND attempt = 2")
    failed = one(con, "SELECT count(*) FROM nodes WHERE error LIKE 'custom: failed after %'")
    cached = one(con, "SELECT count(*) FROM llm_calls WHERE cached = 1")
    return f"provider custom: {calls} calls ({retried} retried, {failed} failed), {cached} from cache, {attempts} attempts"


def error_kinds(con) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for (error,) in con.execute("SELECT error FROM llm_calls WHERE status = 'error'"):
        m = re.match(r"(HTTP \d+|timeout|connection|JSONDecodeError|EmptyAnswer)", error)
        kind = {"JSONDecodeError": "bad body", "EmptyAnswer": "empty answer"}.get(m.group(1), m.group(1)) if m else error
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def test_mixed_faults_every_trial_stored_every_attempt_logged(workdir):
    plan = FaultPlan(0.3, KINDS, seed=7, responder=action_responder(policy), retry_after=0.05, timeout_delay=1.0)
    with FakeLLMServer(plan) as srv:
        out = arena_run(workdir, srv, providers_yaml(workdir / "providers.yaml"), "-n", "12")
        requests = srv.count
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    total = 9 * 12  # 3 programs: 9 ordered pairs, 12 trials each
    assert f"tournament 1 finished: {total}/{total} trials stored" in out.stdout
    con = sqlite3.connect(workdir / "arena.db")

    # at least 200 requests, at least 20% of them faults of every kind
    assert requests >= 200 and plan.faults_injected >= 0.2 * requests
    injected = plan.fault_counts()
    assert set(injected) == set(KINDS)

    # 100% of the trials are stored, each as ok, refused or error
    statuses = dict(con.execute("SELECT status, count(*) FROM trials GROUP BY status").fetchall())
    assert sum(statuses.values()) == total and set(statuses) <= {"ok", "refused", "error"}
    assert one(con, "SELECT count(*) FROM trials WHERE status = 'error' AND error NOT LIKE '%custom: failed after%'") == 0
    # every attempt the server saw is a row, and each injected fault is exactly one failed attempt of its kind
    assert one(con, "SELECT count(*) FROM llm_calls WHERE cached = 0") == requests
    kinds = error_kinds(con)
    assert kinds["HTTP 429"] == injected["rate_limit"]
    assert kinds["HTTP 500"] == injected["server_error"]
    assert kinds["HTTP 503"] == injected["unavailable"]
    assert kinds["connection"] == injected["reset"] + injected["truncated"]
    assert kinds["bad body"] == injected["malformed"]
    assert kinds["empty answer"] == injected["empty"]
    assert kinds["timeout"] >= injected["timeout"]  # (a reply slower than the 0.5 s timeout is one too)
    assert sum(kinds.values()) == one(con, "SELECT count(*) FROM llm_calls WHERE status = 'error'")

    # the end-of-run summary says it per provider, with the stored numbers
    line = next(x for x in out.stdout.splitlines() if x.startswith("provider custom:"))
    assert line.startswith(stored_summary(con) + f"; {sum(kinds.values())} failed attempts: ")
    for kind, n in kinds.items():
        assert f"{n} {kind}" in line


class Outage:
    """A provider that goes down: requests number `start` .. `start + length - 1` fail (503 or reset)."""

    def __init__(self, start: int, length: int, responder):
        self.start, self.length, self.responder = start, length, responder

    def __call__(self, req):
        if self.start <= req.index < self.start + self.length:
            return Status(503) if req.index % 2 else Reset()
        return self.responder(req)


def test_provider_down_for_a_while_costs_time_not_trials(workdir):
    # 40 failed requests in a row: far more than any call's 3 attempts
    with FakeLLMServer(Outage(10, 40, action_responder(policy))) as srv:
        out = arena_run(workdir, srv, providers_yaml(workdir / "providers.yaml", max_attempts=3, outage_after=5,
                                                     outage_wait=60), "-n", "4")
        requests = srv.count
    assert out.returncode == 0, out.stderr
    con = sqlite3.connect(workdir / "arena.db")
    assert dict(con.execute("SELECT status, count(*) FROM trials GROUP BY status").fetchall()) == {"ok": 36}
    assert one(con, "SELECT count(*) FROM llm_calls WHERE status = 'error'") == 40
    assert one(con, "SELECT count(*) FROM llm_calls") == requests
    assert one(con, "SELECT max(attempt) FROM llm_calls") > 3  # calls waited past their own attempts
    assert "warning: provider 'custom' looks down (5 failed attempts in a row, last: " in out.stderr
    assert "info: provider 'custom' answers again after " in out.stderr
    line = next(x for x in out.stdout.splitlines() if x.startswith("provider custom:"))
    # (an answer already on its way when the outage began may split it in two: down 1 or 2 times)
    assert re.fullmatch(re.escape(stored_summary(con) + "; 40 failed attempts: 20 HTTP 503, 20 connection; down ")
                        + r"[12] time\(s\), \d+\.\ds in all; first answers: \d+ json; "
                        + re.escape("structured output at custom http://127.0.0.1:") + r"\d+/v1: json_schema \(auto\)",
                        line)


def test_an_outage_longer_than_outage_wait_fails_trials_and_the_run_goes_on(workdir):
    with FakeLLMServer(Outage(10, 40, action_responder(policy))) as srv:
        out = arena_run(workdir, srv, providers_yaml(workdir / "providers.yaml", max_attempts=3, outage_after=5,
                                                     outage_wait=0), "-n", "4")
        requests = srv.count
    assert out.returncode == 0, out.stderr
    con = sqlite3.connect(workdir / "arena.db")
    statuses = dict(con.execute("SELECT status, count(*) FROM trials GROUP BY status").fetchall())
    assert sum(statuses.values()) == 36 and statuses["error"] >= 1 and statuses["ok"] >= 1
    assert one(con, "SELECT max(attempt) FROM llm_calls") == 3  # no call went past its attempts
    assert one(con, "SELECT count(*) FROM llm_calls") == requests
    assert "error: provider 'custom' has been down for 0s: its calls now fail after their own attempts" in out.stderr
    assert "Resume with" not in out.stderr  # finished: failed trials are results, not missing trials


class TimedOutage:
    """Down (503) for `seconds` from the `start`-th request on (a request count, not a time: the run's
    speed must not decide whether the outage meets calls in flight)."""

    def __init__(self, seconds: float, responder, start: int = 30):
        self.seconds, self.responder, self.start = seconds, responder, start
        self.n, self.t0 = 0, None
        self.lock = threading.Lock()

    def __call__(self, req):
        with self.lock:
            self.n += 1
            now = time.monotonic()
            if self.n == self.start:
                self.t0 = now
        if self.t0 is not None and now - self.t0 < self.seconds:
            return Status(503)
        return self.responder(req)


def test_default_policy_rides_out_a_one_minute_outage_scaled(workdir):
    """The shipped retry settings, with every duration divided by 50, against a 60 s / 50 outage.

    Without the outage rule, 6 attempts back off 15.5-31 s in all (here 0.31-0.62 s): shorter than
    the outage, so every call in flight would fail. With it, calls wait (up to 600 s, here 12 s).
    """
    scale = 50
    d = BUILTIN["nvidia"]  # a remote provider's defaults
    scaled = {"timeout": d.timeout / scale, "max_attempts": d.max_attempts, "backoff_initial": d.backoff_initial / scale,
              "backoff_max": d.backoff_max / scale, "retry_after_max": d.retry_after_max / scale,
              "outage_after": d.outage_after, "outage_wait": d.outage_wait / scale}
    assert d.outage_wait >= 60 * 5 and d.max_attempts * d.backoff_max < d.outage_wait  # defaults as documented
    with FakeLLMServer(TimedOutage(60 / scale, action_responder(policy)), latency=0.01) as srv:
        out = arena_run(workdir, srv, providers_yaml(workdir / "providers.yaml", **scaled), "-n", "4")
    assert out.returncode == 0, out.stderr
    con = sqlite3.connect(workdir / "arena.db")
    assert dict(con.execute("SELECT status, count(*) FROM trials GROUP BY status").fetchall()) == {"ok": 36}
    assert one(con, "SELECT count(*) FROM llm_calls WHERE status = 'error'") >= 1  # it did meet the outage


def test_provider_health_rules():
    now = [0.0]
    h = ProviderHealth(outage_after=3, outage_wait=10, clock=lambda: now[0])
    # one call failing alone never makes an outage, however often
    assert [h.failed(1, 0.0) for _ in range(5)] == [False] * 5 and not h.down
    assert h.succeeded(0.5) is None and h.failures_in_row == 0
    # failures from two calls in a row do, at the third
    assert [h.failed(1, 1.0), h.failed(2, 1.0), h.failed(1, 1.1)] == [False, False, True]
    assert h.down and h.waiting() and h.outages == 1
    # an answer to a request sent before the streak began (a slow one) does not end it
    assert h.succeeded(0.9) is None and h.down
    now[0] = 9.9
    assert h.waiting()
    now[0] = 10.0
    assert not h.waiting() and h.down  # still down, but calls no longer wait
    now[0] = 12.5
    assert h.succeeded(12.0) == 12.5 and not h.down and h.down_s == 12.5
    # a failure of a request sent before the latest answered one is old news
    assert h.failed(3, 11.0) is False and h.failures_in_row == 0
    # failures sent during the outage were excused while calls waited (up to outage_wait after it was seen)
    assert h.last_outage == (1.0, 10.0)
    assert [h.excuses(t) for t in (0.9, 1.0, 9.9, 10.0, 12.0)] == [False, True, True, False, False]
