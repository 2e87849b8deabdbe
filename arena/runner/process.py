"""A tournament in a process of its own: spawning it, serving its events, attaching to it.

    python -m arena.runner.process --db PATH --tournament ID

runs stored tournament ID (its missing trials) in a new session (it survives the terminal and the
process that started it), writes every trial to the store as the in-process runner does, and streams
its events (`stream.py`) over a Unix domain socket to every client attached. The socket lives in a
private directory (`runtime_dir()`: 0700, this user's), named by the runner's pid; its path is
recorded in the tournament's row (`runner_socket`) while the runner lives, and removed when it ends.
SIGTERM or SIGINT to the runner cancels the tournament (in-flight trials abandoned, the rest kept);
kill -9 leaves it 'interrupted', resumable like any other.

`spawn` starts one and waits for it to say it is ready (< 1 s: an interpreter start); `RemoteRunner`
is what a client holds: the runner's interface (pause, unpause, cancel, `run()` returning the
TournamentFinished) over the socket, plus `detach()` (the control channel: control.py's
`ControlClient`). `ClientHub` and `serve_socket` are the socket's side, which an iterate run's runner
process (`arena.iterate.process`) shares.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import select
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from arena.engine.events import Notice, TournamentFinished, TournamentStarted, TrialPlanned, TrialsFinished
from arena.errors import ArenaError
from arena.runner import stream
from arena.runner.control import ControlClient
from arena.runner.gcsettle import settle
from arena.runner.tournament import TournamentRunner, load_stored
from arena.store.database import Store

RUNTIME_DIR = Path(tempfile.gettempdir()) / f"arena-runner-{os.getuid()}"
MAX_CLIENT_BUFFER = 64 * 1024 * 1024  # a client this far behind is dropped (it can attach again)
READ_LIMIT = 512 * 1024 * 1024  # longest line a client accepts (a batch of deep built-in trials)
SAMPLE_EVERY_S = 0.5  # a built-in batch carries one whole trial (for Live's tree) at most this often
MAX_REATTACH = 20  # times a client dropped for falling behind attaches again


def runtime_dir() -> Path:
    """Where runners keep their sockets and logs: `$ARENA_RUNTIME_DIR`, else RUNTIME_DIR. Created private
    (0700); refused unless it is a directory (not a link) owned by this user that nobody else may enter,
    since whoever can write there could put a socket in a runner's place."""
    path = Path(os.environ.get("ARENA_RUNTIME_DIR") or RUNTIME_DIR)
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.lstat(path)
    except OSError as exc:
        raise ArenaError(f"the runner folder {path} cannot be used: {exc.strerror}") from None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise ArenaError(f"the runner folder {path} is not a private folder of this user (owner uid {st.st_uid}, "
                         f"mode {stat.S_IMODE(st.st_mode):o}, {'a folder' if stat.S_ISDIR(st.st_mode) else 'not a folder'}): "
                         f"remove it, or set ARENA_RUNTIME_DIR to a folder of your own")
    return path


def runner_log(db: Path, tournament_id: int) -> Path:
    """The log of the runner of tournament `tournament_id` of database `db` (two databases' tournament 1 have
    two logs)."""
    digest = hashlib.sha256(str(Path(db).resolve()).encode()).hexdigest()[:10]
    return runtime_dir() / f"tournament-{digest}-{tournament_id}.log"


def _open_log(path: Path) -> int:
    """The log opened for appending, never through a symbolic link (O_NOFOLLOW), private to this user."""
    try:
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise ArenaError(f"the runner's log {path} cannot be opened: {exc.strerror}") from None


def _remove_stale_sockets(where: Path) -> None:
    """Sockets left by runners killed with -9 (no process of that pid any more)."""
    for path in where.glob("*.sock"):
        try:
            os.kill(int(path.stem), 0)
        except ProcessLookupError:
            path.unlink(missing_ok=True)
        except (ValueError, PermissionError, OSError):
            pass


# --- the runner process's side ----------------------------------------------------------------------------
class ClientHub:
    """The attached clients of a runner process (a tournament's or an iterate run's): each gets `hello()`
    first, then every line written to all; the control ops it sends go to `control(op)`. A client that
    falls more than MAX_CLIENT_BUFFER behind is dropped (it can attach again). Lives on the run's loop."""

    def __init__(self) -> None:
        self.clients: set[asyncio.StreamWriter] = set()
        self.attached_once = False  # a client has connected (a runner started paused waits for one)
        self._handlers: set[asyncio.Task] = set()

    def hello(self):
        raise NotImplementedError

    def control(self, op: str) -> None:
        raise NotImplementedError

    def _attaching(self) -> None:
        """Called before a new client's Hello is written."""

    def write_all(self, data: bytes) -> None:
        for w in list(self.clients):
            if w.is_closing() or w.transport.get_write_buffer_size() > MAX_CLIENT_BUFFER:
                self.clients.discard(w)
                w.close()
            else:
                w.write(data)

    async def client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._attaching()
        writer.write(stream.line(self.hello()))
        self.clients.add(writer)
        self.attached_once = True
        task = asyncio.current_task()
        self._handlers.add(task)
        try:
            while data := await reader.readline():
                try:
                    control = stream.parse_control(data)
                except ValidationError:
                    continue
                self.control(control.op)
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
        if self._handlers:  # they end on the EOF of their closed connection
            await asyncio.wait(list(self._handlers), timeout=5)


class Hub(ClientHub):
    """Fans one runner's events out to the attached clients; lives on the runner's event loop.

    Events are queued and written once per loop iteration (one write for many node events). A client
    that attaches gets a `Hello` with the state at that moment, then every later event, in order."""

    def __init__(self, store: Store, runner) -> None:
        super().__init__()
        self.store = store
        self.runner = runner
        self.tournament_id = runner.tournament_id
        self.total = runner.config.total_trials
        self.done = store.count_trials(self.tournament_id)
        self.config = runner.config.model_dump(mode="json")
        self.inflight: dict[int, TrialPlanned] = {}
        self._batches = 0
        self._sample_at = -1e9
        self._pending: list[bytes] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.get_ident()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop, self._thread = loop, threading.get_ident()

    # the runner's sink
    def publish(self, event) -> None:
        if threading.get_ident() != self._thread and self._loop is not None:
            self._loop.call_soon_threadsafe(self.publish, event)
            return
        if isinstance(event, TrialPlanned):
            self.inflight[event.spec.seq] = event
        elif isinstance(event, TrialsFinished):
            self.done = event.done
            self._batches += 1
            for r in event.results:
                self.inflight.pop(r.spec.seq, None)
        elif isinstance(event, TournamentStarted):
            self.total, self.done = event.total, event.already_done
        elif isinstance(event, TournamentFinished):
            self.done = event.done
            self.inflight.clear()
        if not self.clients:
            return  # nobody attached: nothing to encode
        sample = self._batches * 7919
        if isinstance(event, TrialsFinished) and len(event.results) > 1:  # a built-in batch
            now = time.monotonic()
            if now - self._sample_at < SAMPLE_EVERY_S:
                sample = None  # (a deep tree is thousands of nodes to encode and decode)
            else:
                self._sample_at = now
        self._pending.append(stream.encode(event, sample=sample))
        if len(self._pending) == 1 and self._loop is not None:
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending = []
        self.write_all(data)

    def hello(self) -> stream.Hello:
        return stream.Hello(
            tournament_id=self.tournament_id, pid=os.getpid(), total=self.total, done=self.done,
            paused=bool(getattr(self.runner, "stopped", getattr(self.runner, "paused", False))),
            last_trial_id=self.store.last_trial_id(),
            config=self.config,
            inflight=[stream.PlannedMsg(spec=stream.SpecMsg.of(t.spec), nodes=[stream.NodeMsg.of(n) for n in t.nodes])
                      for t in self.inflight.values()])

    def control(self, op: str) -> None:
        getattr(self.runner, op)()

    def _attaching(self) -> None:
        self.flush()  # what happened before this client came is in its Hello, not in its stream
        self._sample_at = -1e9  # the next batch shows it a tree

    async def close(self) -> None:
        self.flush()
        await super().close()


def client_wait_s() -> float:
    """How long a runner started paused waits for its client before it runs anyway ($ARENA_RUNNER_WAIT)."""
    try:
        return float(os.environ.get("ARENA_RUNNER_WAIT", "30"))
    except ValueError:
        return 30.0


async def serve_socket(store: Store, tournament_id: int, hub: ClientHub, socket_path: Path, main, *, cancel,
                       ready=None, paused: bool = False, unpause=None):
    """Serve `hub`'s clients at `socket_path` while `main()` (a coroutine function: the run) runs; returns
    what it returns. The socket's path is in tournament `tournament_id`'s row meanwhile; SIGTERM and SIGINT
    call `cancel`; `ready()` is called once it listens; `paused`: started paused for a client, it calls
    `unpause` if none has come after client_wait_s() (the client died)."""
    loop = asyncio.get_running_loop()
    socket_path.unlink(missing_ok=True)
    server = await asyncio.start_unix_server(hub.client, path=str(socket_path), limit=READ_LIMIT)
    os.chmod(socket_path, 0o600)
    try:
        store.set_runner_socket(tournament_id, str(socket_path))
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, cancel)
            except (NotImplementedError, RuntimeError):
                pass
        running = main()
        if ready is not None:
            ready()
        if paused and unpause is not None:
            loop.call_later(client_wait_s(), lambda: None if hub.attached_once else unpause())
        return await running
    finally:
        server.close()
        socket_path.unlink(missing_ok=True)
        try:
            store.set_runner_socket(tournament_id, None)
        finally:
            await hub.close()


async def serve(store: Store, runner, hub: Hub, socket_path: Path, ready=None) -> TournamentFinished:
    """Run `runner` (whose sink is `hub.publish`) while serving its events at `socket_path`."""
    hub.bind(asyncio.get_running_loop())
    return await serve_socket(store, runner.tournament_id, hub, socket_path, runner.run, cancel=runner.cancel,
                              ready=ready, paused=getattr(runner, "paused", False), unpause=runner.unpause)


def process_args(prog: str, doc: str | None, what: str, argv: list[str] | None) -> argparse.Namespace:
    """A runner process's command line: --db, --<what> ID (tournament or run), --paused."""
    ap = argparse.ArgumentParser(prog=prog, description=(doc or "").split("\n\n")[0])
    ap.add_argument("--db", required=True, type=Path)
    ap.add_argument(f"--{what}", required=True, type=int)
    ap.add_argument("--paused", action="store_true", help="start paused (a client unpauses it)")
    return ap.parse_args(argv)


def tell_spawner(out=None):
    """`say(**fields)`: the one JSON line a runner process gives whoever spawned it (its pid and socket, or
    why it could not start), then the pipe is closed; later calls say nothing."""
    out = out or sys.stdout

    def say(**kw) -> None:
        if not out.closed:
            out.write(json.dumps(kw) + "\n")
            out.flush()
            out.close()

    return say


def main(argv: list[str] | None = None) -> int:
    args = process_args("python -m arena.runner.process", __doc__, "tournament", argv)
    say = tell_spawner()

    try:
        store = Store(args.db)
        stored = load_stored(store, args.tournament)
        runner = TournamentRunner(store, stored.row.id, stored.config, stored.programs, stored.games)
        hub = Hub(store, runner)
        runner.sink = hub.publish
        if args.paused:
            runner.pause()
        if any(p.kind == "llm" for p in stored.programs.values()):
            from arena.llm.service import LLMService

            runner.backend = LLMService(store, sink=hub.publish)
        store.mark_running(runner.tournament_id)  # the row names this process from now on
        path = runtime_dir() / f"{os.getpid()}.sock"
    except ArenaError as exc:
        say(error=str(exc))
        return 2
    settle()
    result = asyncio.run(serve(store, runner, hub, path, ready=lambda: say(pid=os.getpid(), socket=str(path))))
    store.close()
    return 0 if result.status == "finished" else 1


@dataclass(frozen=True)
class Spawned:
    pid: int
    socket: str


def spawn(db: Path, tournament_id: int, timeout: float = 60.0, paused: bool = False, *,
          module: str = "arena.runner.process", args: list[str] | None = None) -> Spawned:
    """Start the runner process of stored tournament `tournament_id`; return once it listens.
    `paused`: it waits for a client to unpause it (a client then sees every trial streamed).

    `module` is the process's entry point, run as `python -m MODULE --db PATH ARGS [--paused]` (ARGS:
    `--tournament ID` unless given): this module's for a tournament, `arena.iterate.process` (a layer
    above, started by name and never imported here) for an iterate run, whose tournament row holds its
    trials and its socket. The process prints one JSON line when it listens (`pid`, `socket`) or could
    not start (`error`). Its stderr goes to runner_log(db, ID) (a traceback there is a bug in Arena)."""
    _remove_stale_sockets(runtime_dir())
    log_path = runner_log(db, tournament_id)
    with os.fdopen(_open_log(log_path), "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, "--db", str(Path(db).resolve()),
             *(args if args is not None else ["--tournament", str(tournament_id)]), *(["--paused"] if paused else [])],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, start_new_session=True, close_fds=True)
    # reap it when it ends if we are still around (a zombie would look like a live runner)
    threading.Thread(target=proc.wait, name=f"arena-runner-{proc.pid}-reaper", daemon=True).start()
    deadline = time.monotonic() + timeout
    try:
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        first = proc.stdout.readline() if ready else b""
    finally:
        proc.stdout.close()
    try:
        said = json.loads(first) if first else {}
    except ValueError:
        said = {}
    if "socket" in said:
        return Spawned(int(said["pid"]), said["socket"])
    if "error" in said:
        raise ArenaError(said["error"])
    if not ready:
        raise ArenaError(f"the runner of tournament {tournament_id} did not start within {timeout:.0f} s "
                         f"(its log: {log_path})")
    tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] if log_path.exists() else []
    raise ArenaError(f"the runner of tournament {tournament_id} failed to start: {' '.join(tail) or 'no output'} "
                     f"(its log: {log_path})")


@dataclass(frozen=True)
class Detached:
    tournament_id: int
    reused: bool  # it continues an identical stored tournament
    pid: int
    socket: str


def start_detached(store: Store, config, programs: dict, games: dict, *, new: bool = False,
                   backend=None, paused: bool = False) -> Detached:
    """Validate and record a tournament as `arena run` does, then start its runner process.
    `backend` (the LLM service) is only used to check keys and providers before anything is recorded."""
    runner = TournamentRunner.create(store, config, programs, games, new=new, backend=backend)
    spawned = spawn(store.path, runner.tournament_id, paused=paused)
    return Detached(runner.tournament_id, runner.reused, spawned.pid, spawned.socket)


def resume_detached(store: Store, tournament_id: int | None = None, *, backend=None) -> Detached:
    """Start the runner process of a stored tournament (None: the latest) that no live process runs."""
    runner = TournamentRunner.resume(store, tournament_id, backend=backend)  # refused while another runs it
    spawned = spawn(store.path, runner.tournament_id)
    return Detached(runner.tournament_id, True, spawned.pid, spawned.socket)


def running_runner(store: Store, tournament_id: int | None = None):
    """The row of a tournament whose runner process is alive and listening (the newest if no id), or None."""
    ids = [tournament_id] if tournament_id is not None else [
        r["id"] for r in store.query("SELECT id FROM tournaments WHERE status = 'running' ORDER BY id DESC")]
    for tid in ids:
        row = store.tournament(tid)
        if row.display_status == "running" and row.runner_socket and Path(row.runner_socket).exists():
            return row
    return None


# --- a client's side ------------------------------------------------------------------------------------------
class RemoteRunner(ControlClient):
    """A runner process as a TournamentRunner to its client: same control methods, `run()` streams its events
    into `sink` and returns the TournamentFinished. `detach()` leaves it running. Control methods are safe
    from any thread."""

    remote = True

    def __init__(self, store: Store, tournament_id: int, socket: str, *, pid: int | None = None, reused: bool = False,
                 sink=None):
        super().__init__()
        stored = load_stored(store, tournament_id)
        self.store = None  # (the session closes a runner's own store; this one uses the client's)
        self.tournament_id = tournament_id
        self.config, self.programs, self.games = stored.config, stored.programs, stored.games
        self.socket, self.pid, self.reused = socket, pid or stored.row.runner_pid, reused
        self.sink = sink or (lambda event: None)
        self.on_attach = None  # called with Hello.last_trial_id before the first event (seed counts up to it)
        self.paused = False
        self.done = 0
        self._attached = False  # got a Hello
        self._db = store.path

    # -- the stream -------------------------------------------------------------------------------------------
    async def run(self) -> TournamentFinished | None:
        """Follow the runner to its end; returns its TournamentFinished (None once detached). A client
        the runner dropped for falling too far behind attaches again (its Hello resynchronises it)."""
        for _ in range(1 + MAX_REATTACH):
            if self.detached:
                return None
            try:
                reader, writer = await asyncio.open_unix_connection(self.socket, limit=READ_LIMIT)
            except OSError as exc:
                return self._ended(f"cannot reach its runner process at {self.socket} ({exc.strerror or exc})")
            finished = await self._follow(reader, writer)
            if finished is not None or self.detached:
                return finished
            if not self._still_running():
                break
            self.sink(Notice(f"fell behind tournament {self.tournament_id}'s event stream: attached again", "warning"))
        return self._ended(f"its runner process (pid {self.pid}) ended without finishing it (killed?); "
                           f"resume it from History or with: arena resume {self.tournament_id}")

    async def _follow(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> TournamentFinished | None:
        self._connected(writer)
        decoder = stream.Decoder()
        finished = None
        try:
            async for data in self._lines(reader):
                try:
                    msg = stream.parse(data)
                except ValidationError as exc:  # a runner of another Arena version, or a bug: say so, stop
                    return self._lost(f"its runner sent what this client cannot read ({exc.errors()[0]['msg']})")
                if isinstance(msg, stream.Hello):
                    self.paused, self.pid, self.done, self._attached = msg.paused, msg.pid, msg.done, True
                    if self.on_attach is not None:
                        self.on_attach(msg.last_trial_id)
                elif isinstance(msg, stream.NoticeMsg) and msg.message in ("paused", "resumed"):
                    self.paused = msg.message == "paused"
                elif isinstance(msg, (stream.Trials, stream.Batch)):
                    self.done = msg.done
                for event in decoder.events(msg):
                    if isinstance(event, TournamentFinished):
                        finished = event
                    self.sink(event)
                if finished is not None:
                    break
        finally:
            await self._disconnect(writer)
        return finished

    def _still_running(self) -> bool:
        try:
            with Store(self._db) as store:
                row = store.tournament(self.tournament_id)
        except ArenaError:
            return False
        return row.display_status == "running" and row.runner_socket == self.socket

    def _ended(self, why: str) -> TournamentFinished:
        """The stream ended without a Finished: a runner that ended before we listened (a short tournament)
        recorded how in the store; otherwise it was killed (`why`)."""
        try:
            with Store(self._db) as store:
                row, last = store.tournament(self.tournament_id), store.last_trial_id()
        except ArenaError:
            row = None
        if row is None or row.status not in ("finished", "cancelled", "failed"):
            return self._lost(why)
        if self.on_attach is not None and not self._attached:
            self.on_attach(last)
        event = TournamentFinished(self.tournament_id, row.status, row.done, row.total_trials)
        self.sink(event)
        return event

    def _lost(self, why: str) -> TournamentFinished:
        event = TournamentFinished(self.tournament_id, "failed", self.done, self.config.total_trials,
                                   error=f"tournament {self.tournament_id}: {why}")
        self.sink(Notice(event.error, "error"))
        self.sink(event)
        return event


if __name__ == "__main__":
    sys.exit(main())
