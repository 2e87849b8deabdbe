"""An iterate run as the app shows it: its state (`IterateState` for a best-response run, `MetaState` for a
meta-rounds one; `load_state` reads either from the store, then the run's events update it) and, while it
runs in its runner process, the thread that follows it (`IterateSession`).

The state is plain data, built in a worker or in the session's thread (never by a query on the UI
thread): the run's row, its steps keyed by (round, player, step) in the order they were stored, the
writer step in progress, and what the view derives from them (the welfare after each turn, the
current pair). The session's thread applies the stream's events under a lock; the screen reads a copy
on a timer. No Textual here.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

from arena.engine.events import Notice
from arena.iterate.events import AttemptStored, MetaRoundStored, MetaWriterAsked, RunEnded, StepStored, WriterAsked

ENDED = ("finished", "cancelled", "failed")


def load_state(store, run_id: int):
    """The run as stored, as the state of its protocol."""
    from arena.store import iterate as db

    run = db.run_row(store, run_id)
    return (MetaState if run["config"].get("protocol") == "meta-rounds" else IterateState).load(store, run_id, run)


def _status(store, run: dict) -> str:
    """The run's status (a run whose runner is gone shows 'interrupted')."""
    if run["status"] == "running" and store.tournament(run["tournament_id"]).display_status == "interrupted":
        return "interrupted"
    return run["status"]


def _common(state, event) -> None:
    """What both protocols' states do with a RunEnded or a Notice."""
    if isinstance(event, RunEnded):
        state.status, state.error = event.status, event.error
        state.run.update(status=event.status, welfare=event.welfare, best_welfare=event.best_welfare,
                         error=event.error)
    elif isinstance(event, Notice):
        if event.message in ("paused", "resumed") and not state.ended:
            state.status = "paused" if event.message == "paused" else "running"
        else:
            state.notices.append(event)


class RunFacts:
    """What a run's state (either protocol's) reads off its run row and status."""

    run: dict
    status: str

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    @property
    def config(self) -> dict:
        return self.run["config"]


@dataclass
class IterateState(RunFacts):
    meta = False
    run: dict  # the iterate_runs row, config parsed
    steps: dict[tuple, dict] = field(default_factory=dict)  # (round, player, step) -> the step's fields
    writing: WriterAsked | None = None
    status: str = "running"  # running | pausing | paused | cancelling | finished | cancelled | failed | interrupted
    error: str | None = None
    notices: list[Notice] = field(default_factory=list)
    version: int = 0  # bumps on every change

    @classmethod
    def load(cls, store, run_id: int, run: dict | None = None) -> IterateState:
        """The run as stored (a run whose runner is gone shows 'interrupted')."""
        from arena.store import iterate as db

        run = run or db.run_row(store, run_id)
        state = cls(run=run, status=_status(store, run), error=run["error"])
        for s in db.steps(store, run_id):
            state.steps[(s["round"], s["player"], s["step"])] = {k: s[k] for k in db.STEP_FIELDS}
        return state


    def apply(self, event) -> None:
        if isinstance(event, WriterAsked):
            self.writing = event
        elif isinstance(event, StepStored):
            key = event.key
            self.steps[key] = {**self.steps.get(key, {}), **event.fields}
            if self.writing is not None and key == (self.writing.round, self.writing.player, self.writing.step):
                self.writing = None
        else:
            if isinstance(event, RunEnded):
                self.writing = None
            _common(self, event)
        self.version += 1

    def hello(self, hello) -> None:
        """What a runner's Hello says beyond the store: the writer step in progress."""
        if hello.writing is not None:
            self.writing = hello.writing.event()

    def copy(self) -> IterateState:
        return IterateState(run=dict(self.run), steps=dict(self.steps), writing=self.writing, status=self.status,
                            error=self.error, notices=list(self.notices), version=self.version)

    # -- what the view shows ---------------------------------------------------------------------------------
    def signature(self) -> tuple:
        """What the view shows changed iff this did."""
        w = self.writing
        return (self.status, self.error, None if w is None else (w.round, w.player, w.step),
                tuple((k, s.get("kept"), s.get("welfare")) for k, s in self.steps.items()), self.run.get("welfare"))

    def ordered(self) -> list[dict]:
        """The steps in the run's order: the start, then per round the row's turn, then the column's."""
        order = {"start": 0, "row": 1, "col": 2}
        return [self.steps[k] for k in sorted(self.steps, key=lambda k: (k[0], order.get(k[1], 3), k[2]))]

    def turns(self) -> list[tuple[str, float | None]]:
        """(label, welfare) of the start pair and of each finished turn (its kept program on fresh episodes)."""
        fresh = self.config["steps"] + 1
        out = []
        for s in self.ordered():
            if s["player"] == "start":
                out.append(("start", s.get("welfare")))
            elif s["step"] == fresh:
                out.append((f"{s['round']}{s['player'][0]}", s.get("welfare")))
        return out

    def pair(self) -> dict[str, str]:
        """The current program of each seat: the start one, or the one kept at its latest finished turn."""
        run_id = self.run["id"]
        pair = {"row": f"it{run_id}-start-row", "col": f"it{run_id}-start-col"}
        fresh = self.config["steps"] + 1
        for s in self.ordered():
            if s["player"] in pair and s["step"] == fresh and s.get("program_id"):
                pair[s["player"]] = s["program_id"]
        return pair


@dataclass
class MetaState(RunFacts):
    """A meta-rounds run: its attempts keyed (seed, meta-round, seat, attempt), its meta-rounds keyed (seed,
    meta-round), the writer calls in flight (both seats' at once) keyed as attempts."""

    meta = True
    run: dict
    attempts: dict[tuple, dict] = field(default_factory=dict)
    rounds: dict[tuple, dict] = field(default_factory=dict)
    writing: dict[tuple, MetaWriterAsked] = field(default_factory=dict)
    status: str = "running"
    error: str | None = None
    notices: list[Notice] = field(default_factory=list)
    version: int = 0

    @classmethod
    def load(cls, store, run_id: int, run: dict | None = None) -> MetaState:
        from arena.store import iterate as db

        run = run or db.run_row(store, run_id)
        state = cls(run=run, status=_status(store, run), error=run["error"])
        for a in db.meta_programs(store, run_id):
            state.attempts[(a["seed"], a["meta_round"], a["seat"], a["attempt"])] = {
                k: a[k] for k in db.META_PROGRAM_FIELDS}
        for r in db.meta_rounds(store, run_id):
            state.rounds[(r["seed"], r["meta_round"])] = {k: r[k] for k in db.META_ROUND_FIELDS}
        return state


    @property
    def seeds(self) -> list[int]:
        return list(self.config.get("seeds") or [self.config["seed"]])

    def apply(self, event) -> None:
        if isinstance(event, MetaWriterAsked):
            self.writing[event.key] = event
        elif isinstance(event, AttemptStored):
            self.attempts[event.key] = {**self.attempts.get(event.key, {}), **event.fields}
            self.writing.pop(event.key, None)
        elif isinstance(event, MetaRoundStored):
            self.rounds[event.key] = dict(event.fields)
        else:
            if isinstance(event, RunEnded):
                self.writing = {}
            _common(self, event)
        self.version += 1

    def hello(self, hello) -> None:
        for m in hello.meta_writing:
            event = m.event()
            if event.key not in self.attempts:
                self.writing[event.key] = event

    def copy(self) -> MetaState:
        return MetaState(run=dict(self.run), attempts=dict(self.attempts), rounds=dict(self.rounds),
                         writing=dict(self.writing), status=self.status, error=self.error,
                         notices=list(self.notices), version=self.version)

    # -- what the view shows ---------------------------------------------------------------------------------
    def signature(self) -> tuple:
        return (self.status, self.error, tuple(sorted(self.writing)),
                tuple((k, a.get("valid"), a.get("label")) for k, a in sorted(self.attempts.items())),
                tuple(sorted(self.rounds)), self.run.get("welfare"))

    def _order(self, key: tuple) -> tuple:
        seeds = self.seeds
        return (seeds.index(key[0]) if key[0] in seeds else len(seeds), *key[1:])

    def programs(self) -> list[dict]:
        """One row per seat and meta-round that has begun (a writer asked, an attempt stored or the
        meta-round played), in the run's order: seed, meta-round, row then column. Each: seed,
        meta_round, seat, its attempts (in order), the writer call in flight (or None), the meta-round's
        row (or None: not played yet)."""
        keys = {(k[0], k[1], k[2]) for k in [*self.attempts, *self.writing]}
        keys |= {(s, m, seat) for s, m in self.rounds for seat in ("row", "col")}
        out = []
        for key in sorted(keys, key=lambda k: (*self._order(k[:2]), 0 if k[2] == "row" else 1)):
            attempts = [self.attempts[k] for k in sorted(self.attempts) if k[:3] == key]
            writing = next((w for k, w in sorted(self.writing.items()) if k[:3] == key), None)
            out.append({"seed": key[0], "meta_round": key[1], "seat": key[2], "attempts": attempts,
                        "writing": writing, "round": self.rounds.get(key[:2])})
        return out

    def current(self) -> tuple[int, int] | None:
        """(seed, meta-round) of the newest meta-round begun, or None before the first."""
        keys = [k[:2] for k in [*self.attempts, *self.writing]] + list(self.rounds)
        return max(keys, key=self._order) if keys else None

    def payoffs(self, seed: int) -> list[tuple[str, float | None]]:
        """(label, payoff per round) of each seat in each played meta-round of `seed`: '2r', '2c'."""
        out = []
        for (s, k), r in sorted(self.rounds.items()):
            if s == seed:
                out += [(f"{k}r", r.get("row_payoff")), (f"{k}c", r.get("col_payoff"))]
        return out


class IterateSession:
    """Follows an iterate run's runner process in a thread of its own (IterateRemote over the socket)."""

    def __init__(self, db_path, run_id: int, tournament_id: int, socket: str, pid: int | None = None, *,
                 start: bool = False):
        from arena.iterate.remote import IterateRemote

        self.db_path, self.run_id, self.tournament_id = db_path, run_id, tournament_id
        self.remote = IterateRemote(db_path, run_id, socket, pid=pid, sink=self._event, on_hello=self._hello)
        self.state: IterateState | None = None
        self.handshake = start  # started paused until attached: its first 'resumed' is not the user's
        self.detached = False
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        if start:
            self.remote.unpause()  # (sent once connected)

    @property
    def pid(self) -> int | None:
        return self.remote.pid

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name=f"arena-iterate-{self.run_id}", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        try:
            ended = asyncio.run(self.remote.run())
        except Exception as exc:  # noqa: BLE001: a bug in this client (the run goes on in its process)
            from arena.runner.crashlog import record_internal_error

            reason = record_internal_error(self.db_path, exc)
            with self._lock:
                self.detached = True
                if self.state is not None:
                    self.state.notices.append(Notice(reason, "error"))
                    self.state.error, self.state.version = reason, self.state.version + 1
            return
        with self._lock:
            if ended is None:
                self.detached = True
            elif self.state is None:  # it ended before we listened
                self._load()
                self.state.apply(ended)

    def _load(self) -> None:
        from arena.store.database import Store

        with Store(self.db_path) as store:
            self.state = load_state(store, self.run_id)

    def _hello(self, hello) -> None:
        with self._lock:  # the steps stored so far; the stream carries every later one (applied by key)
            self._load()
            self.state.status = "paused" if hello.paused and not self.handshake else "running"
            self.state.hello(hello)
            self.state.version += 1

    def _event(self, event) -> None:
        with self._lock:
            if self.state is None:
                self._load()
            if self.handshake and isinstance(event, Notice) and event.message in ("paused", "resumed"):
                self.handshake = False  # the start-until-attached handshake, not the user's
                return
            self.state.apply(event)

    def view(self) -> IterateState | MetaState | None:
        """A copy of the state for the UI thread (None until attached)."""
        with self._lock:
            return None if self.state is None else self.state.copy()

    @property
    def status(self) -> str:
        with self._lock:
            if self.detached:
                return "detached"
            return "starting" if self.state is None else self.state.status

    @property
    def ended(self) -> bool:
        with self._lock:
            return self.detached or (self.state is not None and self.state.ended) or (
                self._thread is not None and not self._thread.is_alive())

    # -- control ------------------------------------------------------------------------------------------
    def pause(self) -> None:
        self.remote.pause()
        with self._lock:
            self.handshake = False
            if self.state is not None and self.state.status == "running":
                self.state.status, self.state.version = "pausing", self.state.version + 1

    def unpause(self) -> None:
        self.remote.unpause()

    def toggle_pause(self) -> None:
        with self._lock:
            status = None if self.state is None else self.state.status
        if status in ("paused", "pausing"):
            self.unpause()
        elif status == "running":
            self.pause()

    def cancel(self) -> None:
        self.remote.cancel()
        with self._lock:
            if self.state is not None and not self.state.ended:
                self.state.status, self.state.version = "cancelling", self.state.version + 1

    def detach(self) -> None:
        self.remote.detach()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

