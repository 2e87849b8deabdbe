"""A tournament running in a worker thread, its events coalesced for a UI that polls (~10 Hz).

The runner is either a TournamentRunner (in this process) or a RemoteRunner (arena/runner/process.py:
the tournament runs in a process of its own and this thread only reads its event stream).

The runner gets its own thread and asyncio loop (`asyncio.run(runner.run())`), so a busy tournament
never blocks the UI's loop, and the UI never sees events one by one: the sink (called on the runner's
thread) only updates a few fields under a lock, and the screen reads them on a timer. Built-in trials
arrive in batches of thousands; only the last trial of a batch is kept for display. No Textual here.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from arena.engine.events import (
    Notice,
    NodeResolved,
    TournamentFinished,
    TournamentStarted,
    TrialPlanned,
    TrialsFinished,
)
from arena.analysis.tally import LiveTally
from arena.runner.stream import BatchStored
from arena.engine.records import Node, TrialResult, TrialSpec

RATE_WINDOW_S = 30.0  # trials/s is measured over this much recent time (for the ETA)
KEEP_FINISHED = 20  # finished LLM trials kept for display


@dataclass
class LiveTrial:
    """One trial's simulation tree as the UI shows it. `nodes` are the simulator's own Node objects."""

    spec: TrialSpec
    nodes: list[Node]
    result: TrialResult | None = None
    version: int = 0  # bumps whenever a node resolves
    finished_at: float | None = None
    llm: bool = True

    @property
    def finished(self) -> bool:
        return self.result is not None


@dataclass
class Progress:
    done: int
    total: int
    new: int  # trials stored by this run
    elapsed_s: float
    rate: float  # trials/s over the recent window
    eta_s: float | None
    measured: bool = True  # False until this UI has seen trials for a while (no rate to show yet)


@dataclass
class Poll:
    """What changed since the last poll."""

    notices: list[Notice] = field(default_factory=list)
    finished: TournamentFinished | None = None  # set once, on the poll after the tournament ended


class LiveSession:
    """Runs one TournamentRunner in a thread and keeps a coalesced view of its events."""

    def __init__(self, store, *, clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time):
        self.store = store
        self.clock = clock
        self.wall = wall
        # a runner process started paused until this app attaches (start_tournament): its "paused" and
        # "resumed" are that handshake, not the user's, and are neither logged nor shown
        self.handshake = False
        self.since: float | None = None  # wall time the tournament's runner started (attached: elapsed from it)
        self._before_s = 0.0  # the run's time before this session attached
        self.tally = LiveTally()
        self.runner = None
        self.tournament_id: int | None = None
        self.status = "starting"  # starting | running | pausing | paused | cancelling | finished | cancelled | failed
        self.error: str | None = None
        self.total = 0
        self.done = 0
        self.done_at_start = 0
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.result: TournamentFinished | None = None
        self.trials_seen = 0  # results received by this UI (LLM + built-in)
        self.counts: dict[str, int] = {}  # trial statuses written by this run
        self.llm_calls = 0  # LLM calls (attempts) of the trials written by this run
        self.cached_calls = 0
        self._lock = threading.Lock()
        self._notices: list[Notice] = []
        self._finished_pending: TournamentFinished | None = None
        self._inflight: dict[int, LiveTrial] = {}
        self._recent: deque[LiveTrial] = deque(maxlen=KEEP_FINISHED)
        self._last_builtin: LiveTrial | None = None
        self._active: LiveTrial | None = None  # the trial that most recently changed
        # (time, trials paced so far): the ETA's rate counts only LLM trials when the tournament has LLM
        # programs (its built-in trials all finish in the first second and would promise a wrong ETA)
        self._samples: deque[tuple[float, int]] = deque(maxlen=512)
        self._paced = 0
        self._paused_at: float | None = None  # elapsed time and ETA stand still while paused
        self._paused_s = 0.0
        self._llm_ids: frozenset[str] = frozenset()
        self._thread: threading.Thread | None = None
        self._batches = 0

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self, runner) -> None:
        """Run `runner` (created with `sink=session.on_event`) in a daemon thread."""
        self.runner = runner
        self.tournament_id = runner.tournament_id
        self.total = runner.config.total_trials
        self.started_at = self.clock()
        self._thread = threading.Thread(target=self._main, name=f"arena-tournament-{self.tournament_id}", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        try:
            if getattr(self.runner, "remote", False):  # a runner process: counts stored up to its Hello, then streamed
                tid = self.tournament_id

                def attached(last: int) -> None:
                    self._hello()  # the runner's own counts at once; the matrix's (seconds for a big run) after
                    self.tally.seed(self.store, tid, until_id=last)

                self.runner.on_attach = attached
            else:
                self.tally.seed(self.store, self.tournament_id)
            asyncio.run(self.runner.run())
        except BaseException as exc:  # the runner records its own failures; this is a last resort
            with self._lock:
                if self.result is None:
                    from arena.llm.secrets import clean

                    self.status, self.error = "failed", clean(f"{type(exc).__name__}: {exc}")
                    self.ended_at = self.clock()
                    self._notices.append(Notice(self.error, "error"))
        finally:
            own = getattr(self.runner, "store", None)
            if own is not None and own is not self.store:  # the runner's own connection (see ArenaApp)
                own.close()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def ended(self) -> bool:
        return self.status in ("finished", "cancelled", "failed")

    @property
    def paces_llm(self) -> bool:
        """True when the rate and ETA count LLM trials only (the tournament has LLM programs)."""
        return bool(self._llm_ids)

    @property
    def has_llm(self) -> bool:
        return self.runner is not None and any(p.kind == "llm" for p in self.runner.programs.values())

    def _hello(self) -> None:
        """Attached to a runner process: its state from its Hello (RemoteRunner keeps done and paused)."""
        r = self.runner
        with self._lock:
            now = self.clock()
            self._started(now)
            self.done = self.done_at_start = max(self.done, getattr(r, "done", 0))
            self.status = "paused" if r.paused and not self.handshake else "running"

    def _started(self, now: float) -> None:
        self.started_at = now
        if self.since is not None:
            self._before_s = max(0.0, self.wall() - self.since)

    def pause(self) -> None:
        """Ask the runner to pause: "pausing" until it says it has stopped ("paused": it has stored the
        built-in batch under way and starts no trial until it is resumed; LLM trials in flight finish)."""
        if self.runner is not None and not self.ended:
            self.runner.pause()
            with self._lock:
                self.handshake = False  # the user's pause from now on
                if self.status == "running":
                    self.status = "pausing"

    def unpause(self) -> None:
        if self.runner is not None and not self.ended:
            self.runner.unpause()
            with self._lock:
                if self.status == "pausing":  # it had not stopped yet: it just goes on
                    self.status = "running"

    def toggle_pause(self) -> None:
        if self.status in ("paused", "pausing") or (self.runner is not None and self.runner.paused):
            self.unpause()
        else:
            self.pause()

    def yield_to_ui(self, seconds: float = 0.2) -> None:
        """A key was pressed: let the UI have the interpreter while it answers (a built-in tournament's
        thread never waits on anything, so it would otherwise take half of it; see TournamentRunner.yield_to)."""
        r = self.runner
        if r is not None and not self.ended and hasattr(r, "yield_to"):
            r.yield_to(seconds)

    @property
    def remote(self) -> bool:
        """True when the tournament runs in a runner process (it can go on without this app)."""
        return bool(getattr(self.runner, "remote", False))

    def detach(self) -> None:
        """Stop following a runner process; its tournament goes on."""
        if self.remote and not self.ended:
            self.runner.detach()

    def cancel(self) -> None:
        if self.runner is not None and not self.ended:
            with self._lock:
                self.status = "cancelling"
            self.runner.cancel()

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    # -- the sink (runner thread) ----------------------------------------------------------------------
    def on_event(self, e) -> None:
        now = self.clock()
        if isinstance(e, TrialsFinished):
            self.tally.add(e.results)  # its own lock
        elif isinstance(e, BatchStored):
            self.tally.merge(e.cells)
        with self._lock:
            if self.handshake and isinstance(e, (BatchStored, TrialsFinished, TrialPlanned)):
                self.handshake = False  # trials run: it was unpaused
            if isinstance(e, BatchStored):  # a runner process's built-in batch, summed
                self.done = e.done
                self.trials_seen += e.n
                if not self._llm_ids:
                    self._paced += e.n
                for status, n in e.counts.items():
                    self.counts[status] = self.counts.get(status, 0) + n
                self._samples.append((now, self._paced))
                if e.sample is not None:
                    self._last_builtin = LiveTrial(e.sample.spec, e.sample.nodes, e.sample, 1, now, llm=False)
            elif isinstance(e, TrialsFinished):
                self.done = e.done
                self.trials_seen += len(e.results)
                builtin = []
                counts = self.counts
                llm_ids = self._llm_ids
                for r in e.results:
                    if not llm_ids or r.spec.row in llm_ids or r.spec.col in llm_ids:
                        self._paced += 1
                    counts[r.status] = counts.get(r.status, 0) + 1
                    t = self._inflight.pop(r.spec.seq, None)
                    if t is not None:
                        for n in r.nodes:
                            for c in n.calls:
                                self.llm_calls += 1
                                self.cached_calls += c.cached
                        t.result, t.finished_at = r, now
                        t.version += 1
                        self._recent.append(t)
                        self._active = t
                    else:
                        builtin.append(r)
                self._samples.append((now, self._paced))
                if builtin:
                    # a different cell each batch (batches hold whole grid rows, so 'the last one' would
                    # always be the same pair)
                    self._batches += 1
                    r = builtin[(self._batches * 7919) % len(builtin)]
                    self._last_builtin = LiveTrial(r.spec, r.nodes, r, 1, now, llm=False)
            elif isinstance(e, NodeResolved):
                t = self._inflight.get(e.spec.seq)
                if t is not None:
                    t.version += 1
                    self._active = t
            elif isinstance(e, TrialPlanned):
                t = LiveTrial(e.spec, e.nodes)
                self._inflight[e.spec.seq] = t
                if self._active is None or self._active.finished:
                    self._active = t
            elif isinstance(e, TournamentStarted):
                self.tournament_id = e.tournament_id
                self.total, self.done, self.done_at_start = e.total, e.already_done, e.already_done
                self._started(now)
                if self.runner is not None:
                    self._llm_ids = frozenset(pid for pid, p in self.runner.programs.items() if p.kind == "llm")
                self._samples.append((now, self._paced))
                r = self.runner  # paused only once the runner has stopped (it says so with a Notice)
                stopped = r is not None and getattr(r, "stopped", r.paused)
                self.status = "paused" if stopped and not self.handshake else "running"
            elif isinstance(e, Notice) and self.handshake and e.message in ("paused", "resumed"):
                if e.message == "resumed":
                    self.handshake = False
            elif isinstance(e, Notice):
                self._notices.append(e)
                if e.message == "paused" and self.status in ("running", "pausing"):
                    self.status = "paused"
                    self._paused_at = now
                elif e.message == "resumed" and self.status == "paused":
                    self.status = "running"
                    if self._paused_at is not None:
                        self._paused_s += now - self._paused_at
                        self._paused_at = None
            elif isinstance(e, TournamentFinished):
                self.result = self._finished_pending = e
                self.status, self.error = e.status, e.error
                self.done = e.done
                self.ended_at = now
                self._inflight.clear()

    # -- reading (UI thread) ----------------------------------------------------------------------------
    def poll(self) -> Poll:
        with self._lock:
            out = Poll(self._notices, self._finished_pending)
            self._notices = []
            self._finished_pending = None
        return out

    def progress(self) -> Progress:
        with self._lock:
            now = self.ended_at if self.ended_at is not None else self.clock()
            start = self.started_at if self.started_at is not None else now
            samples = list(self._samples)
            done, total, paced = self.done, self.total, self._paced
            paused_s = self._paused_s + (now - self._paused_at if self._paused_at is not None else 0.0)
        rate = 0.0
        measured = False
        if samples:
            recent = [s for s in samples if now - s[0] <= RATE_WINDOW_S] or samples[-1:]
            t0, d0 = recent[0] if len(recent) > 1 else samples[0]
            if now - t0 > 0:
                rate = (paced - d0) / (now - t0)
            measured = (paced > samples[0][1] and now - samples[0][0] >= 1.0) or now - samples[0][0] >= 5.0
        left = total - done
        eta = None if rate <= 0 or self.ended or self.status == "paused" else left / rate
        return Progress(done, total, done - self.done_at_start, max(0.0, now - start - paused_s) + self._before_s,
                        rate, eta, measured or self.ended)

    def newest(self) -> LiveTrial | None:
        """The trial worth showing now: the one that changed last (LLM), else the last built-in trial."""
        with self._lock:
            if self._active is not None and (not self._active.finished or self._last_builtin is None
                                             or (self._active.finished_at or 0) >= (self._last_builtin.finished_at or 0)):
                return self._active
            return self._last_builtin

    def inflight(self) -> list[LiveTrial]:
        with self._lock:
            return list(self._inflight.values())
