"""Code decisions off the runner's event loop, and each decision its own time limit whatever the batching.

- a decision over its limit is a TimeoutError alone and in a batch; one under it passes both ways (the
  sandbox gave a batch four limits, so a decision of twice the limit passed in a batch and failed alone);
- pause and cancel answer while a batch of slow code programs is under way (the batch ran on the event
  loop: "paused" came after the batch, and cancel waited for it);
- an LLM call completes while a code program's decision runs (it ran on the event loop and held it).
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from arena.engine.code import CodeAgent
from arena.engine.events import Notice, NodeResolved, TournamentFinished
from arena.engine.grid import TournamentConfig
from arena.engine.records import Node
from arena.engine.sandbox import Sandbox
from arena.library.programs import BuiltinProgram, CodeProgram
from arena.runner.tournament import TournamentRunner

LOOP_NS = 70  # about what one iteration of the busy loop below takes in the sandbox (calibrated in `spin`)


def slow(pid: str, ms_of: str, limit_ms: int = 2000, simulates: bool = False) -> CodeProgram:
    """A code program whose decision spins for about `ms_of` milliseconds (an expression of ctx)."""
    return CodeProgram.model_validate({"id": pid, "kind": "code", "simulates": simulates, "time_limit_ms": limit_ms,
                                       "source": (
        "def decide(ctx):\n"
        f"    n = int(({ms_of}) * ctx['iters_per_ms'])\n"
        "    x = 0\n"
        "    for i in range(n):\n"
        "        x += i\n"
        "    return 'cooperate'\n")})


def spin(sb: Sandbox, program: CodeProgram) -> float:
    """Iterations of the busy loop a millisecond, measured in this sandbox now."""
    base = {"iters_per_ms": 1e6 / LOOP_NS, "opponent_action": None, "depth": 0, "epsilon": 0.0}
    sb.run_one(program, {**base, "u": 0.5})
    times = []
    for _ in range(5):  # the fastest: what the loop takes when this process is not waiting for a core
        t0 = time.perf_counter()
        sb.run_one(program, {**base, "u": 0.5})
        times.append(time.perf_counter() - t0)
    return (1e6 / LOOP_NS) * 50 / max(min(times) * 1000, 1e-3)


def test_a_decision_over_its_limit_is_a_timeout_batched_as_alone(games):
    """A decision of about three times the limit: a TimeoutError alone and among quick decisions in one batch
    (whose feed had four limits); one of a quarter of the limit passes both ways."""
    limit = 200
    prog = slow("slowpoke", "3.0 * 200 if ctx['u'] < 0.1 else (0.25 * 200 if ctx['u'] < 0.2 else 0)", limit)
    calib = slow("calib", "50", 2000)
    pd = games["prisoners_dilemma"]
    opp = BuiltinProgram(id="defectbot", kind="builtin", strategy="defect")
    with Sandbox([prog, calib], workers=1) as sb:
        rate = spin(sb, calib)
        agent = CodeAgent(prog, sb)
        us = [0.05, 0.15] + [0.5 + i / 100 for i in range(30)]
        requests = []
        for u in us:
            base, a, d, e, uu, m = agent.request(pd, opp, Node(0, None, "row", 0, prog.id, u), None, None)
            requests.append(({**base, "iters_per_ms": rate}, a, d, e, uu, m))
        from arena.engine.sandbox import full_ctx

        alone = [sb.run_one(prog, full_ctx(r)) for r in requests[:2]]
        batched = sb.run_many(prog, requests)
    timeout = f"TimeoutError: decide took longer than its limit of {limit} ms"
    assert [o.error for o in alone] == [timeout, None]
    assert [o.error for o in batched[:2]] == [timeout, None]
    assert all(o.error is None and o.value == "cooperate" for o in batched[2:])


@pytest.fixture(scope="module")
def iters_per_ms() -> float:
    calib = slow("calib", "50", 2000)
    with Sandbox([calib], workers=1) as sb:
        return spin(sb, calib)


def spinner(pid: str, ms: float, rate: float, limit_ms: int = 2000) -> CodeProgram:
    """A code program that acts directly after spinning about `ms` milliseconds."""
    return CodeProgram.model_validate({"id": pid, "kind": "code", "simulates": False, "time_limit_ms": limit_ms,
                                       "source": (
        "def decide(ctx):\n"
        "    x = 0\n"
        f"    for i in range({int(ms * rate)}):\n"
        "        x += i\n"
        "    return 'cooperate'\n")})


class Running:
    """A runner on a thread of its own (as the app's session runs it), its events stamped as they come."""

    def __init__(self, runner: TournamentRunner):
        self.runner = runner
        self.events: list[tuple[float, object]] = []
        runner.sink = lambda e: self.events.append((time.monotonic(), e))
        self.result: TournamentFinished | None = None
        self.thread = threading.Thread(target=self._main, daemon=True)
        self.thread.start()

    def _main(self) -> None:
        self.result = asyncio.run(self.runner.run())

    def wait_for(self, predicate, timeout: float = 60.0) -> float:
        deadline = time.monotonic() + timeout
        while True:
            for t, e in list(self.events):
                if predicate(e):
                    return t
            assert time.monotonic() < deadline, "never came"
            time.sleep(0.005)

    def loop_latency(self) -> float:
        """How long the runner's event loop takes to run a callback handed to it now (what a client that
        attaches, a control message, an LLM response wait for)."""
        ran = threading.Event()
        t0 = time.monotonic()
        self.runner._loop.call_soon_threadsafe(ran.set)
        assert ran.wait(30)
        return time.monotonic() - t0

    def kinds(self) -> list[str]:
        return [e.message if isinstance(e, Notice) else type(e).__name__ for _t, e in self.events]


def _slow_tournament(store, games, rate: float, trials: int = 10, ms: float = 25):
    programs = {p.id: p for p in (spinner("slow-a", ms, rate), spinner("slow-b", ms, rate))}
    config = TournamentConfig(programs=list(programs), games=["prisoners_dilemma"], epsilons=[0.5], max_depths=[1],
                              trials=trials, seed=3)
    return TournamentRunner.create(store, config, programs, {"prisoners_dilemma": games["prisoners_dilemma"]})


def test_pause_answers_during_a_batch_of_slow_code_programs_and_nothing_is_stored_until_it_goes_on(
        store, games, iters_per_ms):
    """40 trials of two code programs that take ~25 ms a decision: one batch of ~2 s. Paused 0.3 s into it,
    the runner says "paused" before any trial is stored, stores none while paused, and finishes every trial
    once it goes on; its loop answers meanwhile."""
    run = Running(_slow_tournament(store, games, iters_per_ms))
    started = run.wait_for(lambda e: type(e).__name__ == "TournamentStarted")
    time.sleep(max(0.0, started + 0.3 - time.monotonic()))
    loop_ms = run.loop_latency() * 1000
    t_pause = time.monotonic()
    run.runner.pause()
    t_paused = run.wait_for(lambda e: isinstance(e, Notice) and e.message == "paused")
    print(f"pause answered in {(t_paused - t_pause) * 1000:.0f} ms; the loop ran a callback in {loop_ms:.0f} ms")
    time.sleep(0.5)
    assert "TrialsFinished" not in run.kinds()  # "paused" came before the batch under way was stored
    run.runner.unpause()
    run.thread.join(60)
    assert run.result is not None and (run.result.status, run.result.done) == ("finished", 40)
    kinds = run.kinds()
    assert kinds.index("paused") < kinds.index("resumed") < kinds.index("TrialsFinished")
    assert store.count_trials(run.runner.tournament_id) == 40


def test_cancel_answers_during_a_batch_of_slow_code_programs(store, games, iters_per_ms):
    """Cancelled 0.3 s into a ~2 s batch: the run ends cancelled before the batch would have been done, and
    stores nothing of it."""
    run = Running(_slow_tournament(store, games, iters_per_ms))
    started = run.wait_for(lambda e: type(e).__name__ == "TournamentStarted")
    time.sleep(max(0.0, started + 0.3 - time.monotonic()))
    t_cancel = time.monotonic()
    run.runner.cancel()
    t_end = run.wait_for(lambda e: isinstance(e, TournamentFinished))
    print(f"cancel answered (Finished) in {(t_end - t_cancel) * 1000:.0f} ms")
    run.thread.join(60)
    assert run.result.status == "cancelled"
    assert "TrialsFinished" not in run.kinds()  # the batch under way was abandoned, not waited for
    assert store.count_trials(run.runner.tournament_id) == 0


def test_an_llm_call_completes_while_a_code_decision_runs(store, games):
    """An LLM program against a code program that takes ~0.5 s a decision, both grounded (epsilon 1): the
    LLM's call (50 ms on a loopback server) completes and its node resolves while the code decides. (The
    spin is calibrated here, at the machine's load of the moment: calibrated once for the module, a load
    that rose since made 0.8 s of spinning pass the 2 s limit.)"""
    from arena.library.programs import LLMProgram
    from arena.llm.registry import BUILTIN
    from arena.llm.service import LLMService
    from tests.support.fake_llm import FakeLLMServer, action_responder

    llm = LLMProgram(id="llm", kind="llm", model="custom/fake-8b", temperature=0.7, system_prompt="Be fair.")
    calib = slow("calib", "50", 2000)
    with Sandbox([calib], workers=1) as sb:
        rate = spin(sb, calib)
    code = spinner("slow-code", 500, rate)
    programs = {p.id: p for p in (llm, code)}
    config = TournamentConfig(programs=list(programs), games=["prisoners_dilemma"], epsilons=[1.0], max_depths=[1],
                              trials=1, seed=2, concurrency=4)
    with FakeLLMServer(action_responder("cooperate"), latency=0.05) as srv:
        registry = {**BUILTIN, "custom": BUILTIN["custom"].model_copy(update=dict(
            base_url=srv.base_url, backoff_initial=0.01, backoff_max=0.05, timeout=5.0, max_attempts=2))}
        backend = LLMService(store, registry, {"LLM_API_KEY": "test-key-not-secret"})
        runner = TournamentRunner.create(store, config, programs, {"prisoners_dilemma": games["prisoners_dilemma"]},
                                         backend=backend)
        resolved: list[tuple[int, str, float]] = []
        runner.sink = lambda e: resolved.append((e.spec.seq, e.node.program, time.monotonic())) \
            if isinstance(e, NodeResolved) else None
        done = asyncio.run(runner.run())
    assert (done.status, done.counts) == ("finished", {"ok": 4})
    mixed = {seq for seq, p, _ in resolved if p == "slow-code"} & {seq for seq, p, _ in resolved if p == "llm"}
    assert len(mixed) == 2  # llm vs slow-code, slow-code vs llm
    for seq in mixed:
        order = [p for s, p, _ in resolved if s == seq]
        assert order == ["llm", "slow-code"], order  # the call did not wait for the code's decision
