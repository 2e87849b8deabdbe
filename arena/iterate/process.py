"""An iterate run in a process of its own, as tournaments run (arena/runner/process.py):

    python -m arena.iterate.process --db PATH --run ID [--paused]

runs stored iterate run ID (its missing steps: a fresh run has none) in a new session, writes every step
to the store as `arena iterate` does, and streams its events (`arena/iterate/stream.py`) over a Unix
socket to every client attached (`arena/iterate/remote.py`). The socket and the log are the runner
folder's (`runtime_dir()`); the socket's path is recorded in the run's tournament row while the runner
lives, so `running_runner` and `arena attach TOURNAMENT` find it as they find a tournament's.

Pause holds the run before its next writer call (a call in flight and the episodes being played
finish first); cancel stops it at once (every finished step is kept: the run is resumable); SIGTERM
or SIGINT cancel it too. `start_detached` records a run and starts its process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from arena.engine.events import Notice
from arena.errors import ArenaError
from arena.iterate import stream
from arena.iterate.events import RunEnded, StepStored, WriterAsked
from arena.iterate.loop import SEATS, IterateConfig, IterateRunner, start_program
from arena.library.games import Game
from arena.runner import stream as wire
from arena.runner.process import MAX_CLIENT_BUFFER, READ_LIMIT, client_wait_s, runtime_dir, spawn
from arena.store import iterate as db
from arena.store.database import Store

MODULE = "arena.iterate.process"


class Gate:
    """The writer's service with a pause in front of every writer call (everything else passes through)."""

    def __init__(self, service) -> None:
        self._service = service
        self.open = asyncio.Event()
        self.open.set()

    def __getattr__(self, name):
        return getattr(self._service, name)

    async def ask(self, *args, **kw):
        await self.open.wait()
        return await self._service.ask(*args, **kw)


class Hub:
    """The runner's side: the run's events to every attached client, their control ops to the run.
    Lives on the run's event loop (the loop emits its events from there)."""

    def __init__(self, run_id: int, tournament_id: int, gate: Gate) -> None:
        self.run_id, self.tournament_id, self.gate = run_id, tournament_id, gate
        self.clients: set[asyncio.StreamWriter] = set()
        self.attached_once = False
        self.writing: WriterAsked | None = None
        self.task: asyncio.Task | None = None
        self._handlers: set[asyncio.Task] = set()

    @property
    def paused(self) -> bool:
        return not self.gate.open.is_set()

    def publish(self, event) -> None:
        if isinstance(event, WriterAsked):
            self.writing = event
        elif isinstance(event, StepStored) and self.writing is not None and event.fields.get("step") is not None \
                and event.key == (self.writing.round, self.writing.player, self.writing.step):
            self.writing = None
        data = stream.encode(event)
        for w in list(self.clients):
            if w.is_closing() or w.transport.get_write_buffer_size() > MAX_CLIENT_BUFFER:
                self.clients.discard(w)
                w.close()
            else:
                w.write(data)

    # control ops (a client's, or a signal's)
    def pause(self) -> None:
        if not self.paused:
            self.gate.open.clear()
            self.publish(Notice("paused"))

    def unpause(self) -> None:
        if self.paused:
            self.gate.open.set()
            self.publish(Notice("resumed"))

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def hello(self) -> stream.Hello:
        w = self.writing
        return stream.Hello(run_id=self.run_id, tournament_id=self.tournament_id, pid=os.getpid(), paused=self.paused,
                            writing=None if w is None else stream.message(w))

    async def client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(wire.line(self.hello()))
        self.clients.add(writer)
        self.attached_once = True
        task = asyncio.current_task()
        self._handlers.add(task)
        try:
            while data := await reader.readline():
                try:
                    op = wire.parse_control(data).op
                except ValidationError:
                    continue
                getattr(self, op)()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self.clients.discard(writer)
            self._handlers.discard(task)
            writer.close()

    async def close(self) -> None:
        for w in list(self.clients):
            try:
                await asyncio.wait_for(w.drain(), 10)
            except (ConnectionError, asyncio.TimeoutError):
                pass
            w.close()
        self.clients.clear()
        if self._handlers:
            await asyncio.wait(list(self._handlers), timeout=5)


async def serve(store: Store, runner: IterateRunner, hub: Hub, socket_path: Path, out: Path | None,
                ready=None) -> RunEnded:
    """Run `runner` (whose on_event is `hub.publish`) while serving its events at `socket_path`; the run's
    end is published (RunEnded) and returned."""
    loop = asyncio.get_running_loop()
    socket_path.unlink(missing_ok=True)
    server = await asyncio.start_unix_server(hub.client, path=str(socket_path), limit=READ_LIMIT)
    os.chmod(socket_path, 0o600)
    try:
        store.set_runner_socket(runner.tid, str(socket_path))
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, hub.cancel)
            except (NotImplementedError, RuntimeError):
                pass
        hub.task = asyncio.ensure_future(runner.run(out))
        if ready is not None:
            ready()
        if hub.paused:  # started paused for a client that never came (it died): go on
            loop.call_later(client_wait_s(), lambda: None if hub.attached_once else hub.unpause())
        try:
            result = await hub.task
            ended = RunEnded(runner.run_id, "finished", result.welfare, result.best[0] if result.best else None)
        except asyncio.CancelledError:
            ended = RunEnded(runner.run_id, "cancelled", error="cancelled")
        except ArenaError as exc:  # the writer failed (stored by the loop as the run's error)
            ended = RunEnded(runner.run_id, "failed", error=str(exc))
        except Exception as exc:  # noqa: BLE001: a bug in Arena: its traceback to the log beside the database
            from arena.runner.crashlog import record_internal_error

            reason = record_internal_error(store.path, exc)
            db.finish_run(store, runner.run_id, runner.tid, "failed", reason)
            ended = RunEnded(runner.run_id, "failed", error=reason)
        hub.publish(ended)
        return ended
    finally:
        server.close()
        socket_path.unlink(missing_ok=True)
        try:
            store.set_runner_socket(runner.tid, None)
        finally:
            await hub.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", required=True, type=Path)
    ap.add_argument("--run", required=True, type=int)
    ap.add_argument("--paused", action="store_true", help="start paused (a client unpauses it)")
    args = ap.parse_args(argv)
    out = sys.stdout

    def say(**kw) -> None:  # one line to whoever spawned us, then the pipe is closed
        if not out.closed:
            out.write(json.dumps(kw) + "\n")
            out.flush()
            out.close()

    async def go() -> RunEnded:
        from arena.llm.service import LLMService

        gate = Gate(None)
        hub = Hub(args.run, 0, gate)
        try:
            gate._service = LLMService(store, sink=hub.publish)
            runner = IterateRunner.resume(store, args.run, gate, on_event=hub.publish)
        except ArenaError as exc:
            say(error=str(exc))
            return RunEnded(args.run, "failed", error=str(exc))
        hub.tournament_id = runner.tid
        if args.paused:
            gate.open.clear()
        path = runtime_dir() / f"{os.getpid()}.sock"
        dest = Path(runner.cfg.out) if runner.cfg.out else None
        return await serve(store, runner, hub, path, dest, ready=lambda: say(pid=os.getpid(), socket=str(path)))

    try:
        store = Store(args.db)
    except ArenaError as exc:
        say(error=str(exc))
        return 2
    ended = asyncio.run(go())
    store.close()
    return 0 if ended.status == "finished" else 1


@dataclass(frozen=True)
class Detached:
    run_id: int
    tournament_id: int
    pid: int
    socket: str


def check_writer(store: Store, cfg: IterateConfig) -> None:
    """The writer's provider and key, checked before anything is recorded (raises ArenaError)."""
    from arena.engine.grid import TournamentConfig
    from arena.library.programs import LLMProgram
    from arena.llm.service import LLMService

    writer = LLMProgram(id="writer", kind="llm", model=cfg.model, system_prompt="writer")
    config = TournamentConfig(programs=["writer"], games=[cfg.game], epsilons=[cfg.epsilon],
                              max_depths=[cfg.max_depth], trials=1)
    LLMService(store).check([writer], config)


def start_detached(store: Store, cfg: IterateConfig, game: Game, *, paused: bool = False) -> Detached:
    """Record a new iterate run (as `arena iterate` does) and start its runner process; returns once it
    listens. `paused`: it waits (up to $ARENA_RUNNER_WAIT s) for a client to unpause it."""
    check_writer(store, cfg)
    runner = IterateRunner.create(store, cfg, game, None)
    for seat in SEATS:  # the start pair and the game, stored now: the runner process reads them back
        db.add_program(store, runner.tid, start_program(cfg, seat, runner.run_id), game)
    db.release(store, runner.tid)  # recorded by this process; its runner process claims it
    spawned = spawn(store.path, runner.tid, paused=paused, module=MODULE, args=["--run", str(runner.run_id)])
    return Detached(runner.run_id, runner.tid, spawned.pid, spawned.socket)


def resume_detached(store: Store, run_id: int) -> Detached:
    """Start the runner process of a stored run that no live process runs (its missing steps)."""
    row = db.run_row(store, run_id)
    check_writer(store, IterateConfig.model_validate(row["config"]))
    spawned = spawn(store.path, row["tournament_id"], module=MODULE, args=["--run", str(run_id)])
    return Detached(run_id, row["tournament_id"], spawned.pid, spawned.socket)


if __name__ == "__main__":
    sys.exit(main())
