"""A client of an iterate run's runner process (arena/iterate/process.py): attach, follow, control, detach.

`IterateRemote.run()` connects to the runner's socket and hands every event to `sink` (on the thread
that runs it), after calling `on_hello(hello)` once connected; it returns the run's `RunEnded`, or None
once detached. The control channel (pause, unpause, cancel, detach; safe from any thread) is the
tournaments' client's (`arena/runner/control.py`).
"""

from __future__ import annotations

import asyncio

from pydantic import ValidationError

from arena.errors import ArenaError
from arena.iterate import stream
from arena.iterate.events import RunEnded
from arena.runner import stream as wire
from arena.runner.control import ControlClient
from arena.runner.process import READ_LIMIT
from arena.store import iterate as db
from arena.store.database import Store


class IterateRemote(ControlClient):
    remote = True

    def __init__(self, db_path, run_id: int, socket: str, *, pid: int | None = None, sink=None, on_hello=None):
        super().__init__()
        self.db_path, self.run_id, self.socket, self.pid = db_path, run_id, socket, pid
        self.sink = sink or (lambda event: None)
        self.on_hello = on_hello or (lambda hello: None)
        self.paused = False

    # -- the stream --------------------------------------------------------------------------------------
    async def run(self) -> RunEnded | None:
        if self.detached:
            return None
        try:
            reader, writer = await asyncio.open_unix_connection(self.socket, limit=READ_LIMIT)
        except OSError as exc:
            return self._ended(f"cannot reach its runner process at {self.socket} ({exc.strerror or exc})")
        self._connected(writer)
        ended = None
        try:
            async for data in self._lines(reader):
                try:
                    msg = stream.parse(data)
                except ValidationError as exc:  # a runner of another Arena version: say so, stop
                    return self._lost(f"its runner sent what this client cannot read ({exc.errors()[0]['msg']})")
                if isinstance(msg, stream.Hello):
                    self.paused, self.pid = msg.paused, msg.pid
                    self.on_hello(msg)
                    continue
                if isinstance(msg, wire.NoticeMsg) and msg.message in ("paused", "resumed"):
                    self.paused = msg.message == "paused"
                event = stream.event_of(msg)
                self.sink(event)
                if isinstance(event, RunEnded):
                    ended = event
                    break
        finally:
            await self._disconnect(writer)
        if ended is None and not self.detached:
            return self._ended(f"its runner process (pid {self.pid}) ended without finishing it (killed?)")
        return ended

    def _ended(self, why: str) -> RunEnded:
        """The stream ended without a RunEnded: the store says how a run that ended before we listened
        ended; otherwise its runner was lost (`why`)."""
        try:
            with Store(self.db_path) as store:
                row = db.run_row(store, self.run_id)
        except ArenaError:
            row = None
        if row is not None and row["status"] in ("finished", "cancelled", "failed"):
            event = RunEnded(self.run_id, row["status"], row["welfare"], row["best_welfare"], row["error"])
        else:
            event = self._lost(why)
            return event
        self.sink(event)
        return event

    def _lost(self, why: str) -> RunEnded:
        event = RunEnded(self.run_id, "failed", error=f"iterate run {self.run_id}: {why}; resume it with: "
                                                      f"arena iterate --resume {self.run_id}")
        self.sink(event)
        return event
