"""An iterate run in a process of its own, as tournaments run (arena/runner/process.py):

    python -m arena.iterate.process --db PATH --run ID [--paused]

runs stored iterate run ID (its missing steps: a fresh run has none) in a new session, of either
protocol (its config's: best response, `IterateRunner`; meta-rounds, `MetaRoundsRunner`), writes every
step, attempt and meta-round to the store as `arena iterate` does, and streams its events
(`arena/iterate/stream.py`) over a Unix socket to every client attached (`arena/iterate/remote.py`).
The socket and the log are the runner folder's (`runtime_dir()`); the socket's path is recorded in the
run's tournament row while the runner lives, so `running_runner` and `arena attach TOURNAMENT` find it
as they find a tournament's.

The socket, its clients and the serve loop are the tournaments' (`runner/process.py`'s `ClientHub`
and `serve_socket`). Pause holds the run before its next writer call (a call in flight and the
episodes or matches being played finish first; under meta-rounds both seats' next calls are held);
cancel stops it at once (every finished step, attempt and meta-round is kept: the run is resumable);
SIGTERM or SIGINT cancel it too. `start_detached` records a run and starts its process.
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from arena.engine.events import Notice
from arena.errors import ArenaError
from arena.iterate import stream
from arena.iterate.events import AttemptStored, MetaWriterAsked, RunEnded, StepStored, WriterAsked
from arena.iterate.loop import SEATS, IterateConfig, IterateRunner, start_program
from arena.iterate.metarounds import MetaRoundsRunner, write_pairs
from arena.library.games import Game
from arena.runner.process import ClientHub, process_args, runtime_dir, serve_socket, spawn, tell_spawner
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


class Hub(ClientHub):
    """The runner's side: the run's events to every attached client, their control ops to the run.
    Lives on the run's event loop (the loop emits its events from there)."""

    def __init__(self, run_id: int, tournament_id: int, gate: Gate) -> None:
        super().__init__()
        self.run_id, self.tournament_id, self.gate = run_id, tournament_id, gate
        self.writing: WriterAsked | None = None  # best response: the writer step in progress
        self.meta_writing: dict[tuple, MetaWriterAsked] = {}  # meta-rounds: the writer calls in flight
        self.task: asyncio.Task | None = None

    @property
    def paused(self) -> bool:
        return not self.gate.open.is_set()

    def publish(self, event) -> None:
        if isinstance(event, WriterAsked):
            self.writing = event
        elif isinstance(event, StepStored) and self.writing is not None and event.fields.get("step") is not None \
                and event.key == (self.writing.round, self.writing.player, self.writing.step):
            self.writing = None
        elif isinstance(event, MetaWriterAsked):
            self.meta_writing[event.key] = event
        elif isinstance(event, AttemptStored):
            self.meta_writing.pop(event.key, None)
        self.write_all(stream.encode(event))

    # control ops (a client's, or a signal's)
    def control(self, op: str) -> None:
        getattr(self, op)()

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
                            writing=None if w is None else stream.message(w),
                            meta_writing=[stream.message(m) for m in self.meta_writing.values()])


async def serve(store: Store, runner, hub: Hub, socket_path: Path, out: Path | None = None,
                ready=None) -> RunEnded:
    """Run `runner` (an IterateRunner or a MetaRoundsRunner, whose on_event is `hub.publish`) while serving
    its events at `socket_path` (runner/process.py's serve_socket); the run's end is published (RunEnded)
    and returned. `out`: where the final programs go (best response: the final pair; meta-rounds: each
    seed's last pair)."""
    meta = isinstance(runner, MetaRoundsRunner)

    async def run() -> RunEnded:
        hub.task = asyncio.ensure_future(runner.run() if meta else runner.run(out))
        try:
            result = await hub.task
            if meta and out is not None:
                write_pairs(store, runner.run_id, out)
            ended = RunEnded(runner.run_id, "finished", result.welfare, result.best_welfare)
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

    return await serve_socket(store, runner.tid, hub, socket_path, run, cancel=hub.cancel, ready=ready,
                              paused=hub.paused, unpause=hub.unpause)


def main(argv: list[str] | None = None) -> int:
    args = process_args(f"python -m {MODULE}", __doc__, "run", argv)
    say = tell_spawner()

    async def go() -> RunEnded:
        from arena.llm.service import LLMService

        gate = Gate(None)
        hub = Hub(args.run, 0, gate)
        try:
            gate._service = LLMService(store, sink=hub.publish)
            meta = db.run_row(store, args.run)["config"].get("protocol") == "meta-rounds"
            runner = (MetaRoundsRunner if meta else IterateRunner).resume(store, args.run, gate,
                                                                          on_event=hub.publish)
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


def check_writer(store: Store, cfg: IterateConfig, service=None) -> None:
    """The writers' (and the judge's) providers and keys, checked before anything is recorded (raises
    ArenaError); `service`: the LLMService to check with (None: one of the store's)."""
    from arena.engine.grid import TournamentConfig
    from arena.library.programs import LLMProgram
    from arena.llm.service import LLMService

    models = dict.fromkeys(m for m in (cfg.model, cfg.model_col, cfg.judge) if m is not None)
    writers = [LLMProgram(id=f"writer{i}", kind="llm", model=m, system_prompt="writer") for i, m in enumerate(models)]
    config = TournamentConfig(programs=[w.id for w in writers], games=[cfg.game], epsilons=[cfg.epsilon],
                              max_depths=[cfg.max_depth], trials=1)
    (service or LLMService(store)).check(writers, config)


def start_detached(store: Store, cfg: IterateConfig, game: Game, *, paused: bool = False) -> Detached:
    """Record a new iterate run of either protocol (as `arena iterate` does) and start its runner process;
    returns once it listens. `paused`: it waits (up to $ARENA_RUNNER_WAIT s) for a client to unpause it."""
    check_writer(store, cfg)
    if cfg.protocol == "meta-rounds":
        meta = MetaRoundsRunner.create(store, cfg, game, None)
        run_id, tid = meta.run_id, meta.tid
        starts = list(meta.start_pair(cfg.seed_list[0]).values())  # the first seed's, as its run records them
    else:
        runner = IterateRunner.create(store, cfg, game, None)
        run_id, tid = runner.run_id, runner.tid
        starts = [start_program(cfg, seat, run_id) for seat in SEATS]
    for p in starts:  # the start pair and the game, stored now: the runner process reads them back
        db.add_program(store, tid, p, game)
    db.release(store, tid)  # recorded by this process; its runner process claims it
    spawned = spawn(store.path, tid, paused=paused, module=MODULE, args=["--run", str(run_id)])
    return Detached(run_id, tid, spawned.pid, spawned.socket)


def resume_detached(store: Store, run_id: int) -> Detached:
    """Start the runner process of a stored run that no live process runs (its missing steps)."""
    row = db.run_row(store, run_id)
    check_writer(store, IterateConfig.model_validate(row["config"]))
    spawned = spawn(store.path, row["tournament_id"], module=MODULE, args=["--run", str(run_id)])
    return Detached(run_id, row["tournament_id"], spawned.pid, spawned.socket)


if __name__ == "__main__":
    sys.exit(main())
