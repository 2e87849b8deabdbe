"""A client's control channel to a runner process (a tournament's or an iterate run's): one class for both.

`ControlClient` holds the connection's writer and the event loop that owns it; `pause`, `unpause` and
`cancel` send a `Control` line (queued until connected, then sent in order), `detach` half-closes the
connection once every op asked for is sent (the runner reads them, then ends the connection; the run goes
on). All of them are safe from any thread. `_lines(reader)` reads the runner's lines until the stream
ends, skipping what comes after a detach. The subclasses (`runner/process.py`'s `RemoteRunner`,
`iterate/remote.py`'s `IterateRemote`) parse the lines and follow the run.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

from arena.runner import stream


class ControlClient:
    def __init__(self) -> None:
        self.detached = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._queued: list[bytes] = []
        self._lock = threading.Lock()

    # -- control -----------------------------------------------------------------------------------------
    def pause(self) -> None:
        self._send("pause")

    def unpause(self) -> None:
        self._send("unpause")

    def cancel(self) -> None:
        self._send("cancel")

    def _send(self, op: str) -> None:
        data = stream.line(stream.Control(op=op))
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

    # -- the connection ------------------------------------------------------------------------------------
    def _connected(self, writer: asyncio.StreamWriter) -> None:
        """The connection is up (on its loop): the ops queued meanwhile go out, in order."""
        with self._lock:
            self._loop, self._writer = asyncio.get_running_loop(), writer
            for data in self._queued:
                writer.write(data)
            self._queued.clear()

    async def _disconnect(self, writer: asyncio.StreamWriter) -> None:
        with self._lock:
            self._writer = None
        writer.close()
        try:
            await writer.wait_closed()  # (what was written is sent)
        except (ConnectionError, OSError):
            pass

    async def _lines(self, reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
        """The runner's lines, each whole, until the stream ends (a line cut short by a close ends it too);
        after a detach the lines that still come (until the runner has read our ops and closed) are skipped."""
        while True:
            try:
                data = await reader.readline()
            except (ConnectionError, ValueError):
                data = b""
            if not data.endswith(b"\n"):
                return
            if self.detached:
                continue
            yield data
