"""An iterate run as the app shows it: its state (`IterateState`, from the store and then from the run's
events) and, while it runs in its runner process, the thread that follows it (`IterateSession`).

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
from arena.iterate.events import RunEnded, StepStored, WriterAsked

ENDED = ("finished", "cancelled", "failed")


@dataclass
class IterateState:
    run: dict  # the iterate_runs row, config parsed
    steps: dict[tuple, dict] = field(default_factory=dict)  # (round, player, step) -> the step's fields
    writing: WriterAsked | None = None
    status: str = "running"  # running | pausing | paused | cancelling | finished | cancelled | failed | interrupted
    error: str | None = None
    notices: list[Notice] = field(default_factory=list)
    version: int = 0  # bumps on every change

    @classmethod
    def load(cls, store, run_id: int) -> IterateState:
        """The run as stored (a run whose runner is gone shows 'interrupted')."""
        from arena.store import iterate as db

        run = db.run_row(store, run_id)
        state = cls(run=run, status=run["status"], error=run["error"])
        if run["status"] == "running" and store.tournament(run["tournament_id"]).display_status == "interrupted":
            state.status = "interrupted"
        for s in db.steps(store, run_id):
            state.steps[(s["round"], s["player"], s["step"])] = {k: s[k] for k in db.STEP_FIELDS}
        return state

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    @property
    def config(self) -> dict:
        return self.run["config"]

    def apply(self, event) -> None:
        if isinstance(event, WriterAsked):
            self.writing = event
        elif isinstance(event, StepStored):
            key = event.key
            self.steps[key] = {**self.steps.get(key, {}), **event.fields}
            if self.writing is not None and key == (self.writing.round, self.writing.player, self.writing.step):
                self.writing = None
        elif isinstance(event, RunEnded):
            self.status, self.error, self.writing = event.status, event.error, None
            self.run.update(status=event.status, welfare=event.welfare, best_welfare=event.best_welfare,
                            error=event.error)
        elif isinstance(event, Notice):
            if event.message in ("paused", "resumed") and not self.ended:
                self.status = "paused" if event.message == "paused" else "running"
            else:
                self.notices.append(event)
        self.version += 1

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
            self.state = IterateState.load(store, self.run_id)

    def _hello(self, hello) -> None:
        with self._lock:  # the steps stored so far; the stream carries every later one (applied by key)
            self._load()
            self.state.status = "paused" if hello.paused and not self.handshake else "running"
            if hello.writing is not None:
                self.state.writing = hello.writing.event()
            self.state.version += 1

    def _event(self, event) -> None:
        with self._lock:
            if self.state is None:
                self._load()
            if self.handshake and isinstance(event, Notice) and event.message in ("paused", "resumed"):
                self.handshake = False  # the start-until-attached handshake, not the user's
                return
            self.state.apply(event)

    def view(self) -> IterateState | None:
        """A copy of the state for the UI thread (None until attached)."""
        with self._lock:
            return None if self.state is None else _copy(self.state)

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


def _copy(state: IterateState) -> IterateState:
    return IterateState(run=dict(state.run), steps=dict(state.steps), writing=state.writing, status=state.status,
                        error=state.error, notices=list(state.notices), version=state.version)
