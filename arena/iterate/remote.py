"""A client of an iterate run's runner process (arena/iterate/process.py): attach, follow, control, detach.

`IterateRemote.run()` connects to the runner's socket and hands every event to `sink` (on the thread
that runs it), after calling `on_hello(hello)` once connected; it returns the run's `RunEnded`, or None
once detached. Control methods (pause, unpause, cancel, detach) are safe from any thread.
"""

from __future__ import annotations

import asyncio
import threading

from pydantic import ValidationError

from arena.errors import ArenaError
from arena.iterate import stream
from arena.iterate.events import RunEnded
from arena.runner import stream as wire
from arena.runner.process import READ_LIMIT
from arena.store import iterate as db
from arena.store.database import Store


class IterateRemote:
    remote = True

    def __init__(self, db_path, run_id: int, socket: str, *, pid: int | None = None, sink=None, on_hello=None):
        self.db_path, self.run_id, self.socket, self.pid = db_path, run_id, socket, pid
        self.sink = sink or (lambda event: None)
        self.on_hello = on_hello or (lambda hello: None)
        self.paused = False
        self.detached = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._queued: list[bytes] = []
        self._lock = threading.Lock()

    # -- control ---------------------------------------------------------------------------------------
    def pause(self) -> None:
        self._send("pause")

    def unpause(self) -> None:
        self._send("unpause")

    def cancel(self) -> None:
        self._send("cancel")

    def _send(self, op: str) -> None:
        data = wire.line(wire.Control(op=op))
        with self._lock:
            if self._writer is None or self._loop is None:
                self._queued.append(data)
                return
            loop, writer = self._loop, self._writer
        if not loop.is_closed():
            loop.call_soon_threadsafe(writer.write, data)

    def detach(self) -> None:
        """Stop listening (after the ops already asked for are sent); the run goes on."""
        with self._lock:
            loop, writer = self._loop, self._writer
            if loop is None or writer is None or loop.is_closed():
                self.detached = True
                return

        def close() -> None:  # half-close: the runner reads every op sent, then ends the connection
            self.detached = True
            if writer.can_write_eof():
                writer.write_eof()
            else:
                writer.close()

        loop.call_soon_threadsafe(close)

    # -- the stream --------------------------------------------------------------------------------------
    async def run(self) -> RunEnded | None:
        if self.detached:
            return None
        try:
            reader, writer = await asyncio.open_unix_connection(self.socket, limit=READ_LIMIT)
        except OSError as exc:
            return self._ended(f"cannot reach its runner process at {self.socket} ({exc.strerror or exc})")
        with self._lock:
            self._loop, self._writer = asyncio.get_running_loop(), writer
            for data in self._queued:
                writer.write(data)
            self._queued.clear()
        ended = None
        try:
            while ended is None:
                try:
                    data = await reader.readline()
                except (ConnectionError, ValueError):
                    data = b""
                if not data.endswith(b"\n"):
                    break
                if self.detached:
                    continue
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
                if isinstance(event, RunEnded):
                    ended = event
                self.sink(event)
        finally:
            with self._lock:
                self._writer = None
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass
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
