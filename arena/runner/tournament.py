"""Running a tournament: validation, scheduling, persistence, pause/cancel, resume, progress events.

Built-in-only trials run on a synchronous fast path in batches (one transaction per batch); trials
with an LLM program run as asyncio tasks, enough of them to keep `concurrency` decisions (so about as
many LLM calls) in flight; the trials that finish within WRITE_WINDOW_S of each other are written in one
transaction (with the response cache's rows). A killed run therefore loses at most the trials in flight
(those not yet committed: at most WRITE_WINDOW_S of finished LLM trials, or one unwritten batch of built-in
trials, a few milliseconds of work); `resume` runs exactly the grid positions that are not stored.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from arena import __version__
from arena.engine.bots import BotAgent
from arena.engine.match import is_match, run_any_batched, run_match_async, run_match_sync
from arena.engine.code import CodeAgent
from arena.engine.sandbox import Sandbox, SandboxError
from arena.errors import ArenaError, LookupFailed
from arena.engine.events import (
    Notice,
    NodeResolved,
    Sink,
    TournamentFinished,
    TournamentStarted,
    TrialPlanned,
    TrialsFinished,
)
from arena.library.games import Game, parse_game
from arena.engine.grid import TournamentConfig
from arena.library.programs import BuiltinProgram, CodeProgram, LLMProgram, program_from_json, with_axelrod
from arena.llm.redaction import redact
from arena.engine.records import TrialResult
from arena.engine.simulator import Agent, run_trial_async, run_trial_sync
from arena.runner.crashlog import record_internal_error
from arena.store.database import WRITE_WINDOW_S, Store, TournamentRow


class LLMBackend(Protocol):
    """What the tournament needs from the LLM layer (providers, prompts, cache)."""

    def check(self, programs: list[LLMProgram], config: TournamentConfig) -> None:
        """Raise ArenaError now (before anything is recorded) for unknown providers or missing keys."""

    async def prepare(self, programs: list[LLMProgram], config: TournamentConfig) -> None:
        """Check keys and endpoints, start the local server if needed; raise ArenaError if unusable."""

    def agent(self, program: LLMProgram, config: TournamentConfig) -> Agent: ...

    def stats(self) -> dict: ...

    async def aclose(self) -> None: ...


Program = BuiltinProgram | LLMProgram | CodeProgram
CODE_BATCH = 500  # trials with code programs resolved together: one sandbox feed per program and tree level
POLL_S = 0.02  # how often the loop looks at pause and cancel while a batch of code trials runs in its thread


class _Abandoned(Exception):
    """Raised in a code batch's worker thread at its next sandbox feed once the run is cancelled or ends."""
BATCH_NODES = 20_000  # a batch of built-in trials is written once it holds this many nodes (~0.1 s to write)
# What a stored round weighs in a batch against BATCH_NODES, in nodes: a matrix game's round is one object, as a
# node is about one; a grid world's step holds its state, both seats' views (some 30 lists and dicts). The
# garbage collector walks every object the batch holds each time it runs a full collection, so a batch is
# bounded by the objects it holds, not by its trials.
ROUND_NODES = 1
STATE_NODES = 15


def held(result: TrialResult) -> int:
    """What a finished trial weighs in a batch of built-in trials (BATCH_NODES): its nodes and its rounds."""
    rounds = result.rounds
    if not rounds:
        return len(result.nodes)
    return len(result.nodes) + len(rounds) * (ROUND_NODES if rounds[0].state is None else STATE_NODES)


class TournamentRunner:
    """One run of one tournament (new or resumed). Control methods are safe from other threads."""

    def __init__(self, store: Store, tournament_id: int, config: TournamentConfig, programs: dict[str, Program],
                 games: dict[str, Game], backend: LLMBackend | None = None, sink: Sink | None = None,
                 batch_size: int = 2000, node_events: bool = True):
        self.store = store
        self.tournament_id = tournament_id
        self.config = config
        self.programs = programs
        self.games = games
        self.backend = backend
        self.sink = sink or (lambda event: None)
        self.batch_size = batch_size
        self.node_events = node_events
        self.counts: Counter[str] = Counter()
        self.done = 0
        self._cancelled = False
        self._running = threading.Event()
        self._running.set()
        self.stopped = False  # paused and waiting (said with the "paused" Notice); `paused` is what was asked
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task] = set()
        self.reused = False  # True when create() found this tournament already stored
        self.skip: bytearray | None = None  # grid positions this run must not play (a replay: what was not stored)
        self.provider_stats: dict = {}
        self._yield_until = 0.0
        self._sandbox: Sandbox | None = None  # the code programs' warm sessions, for one run
        self._code_work: asyncio.Future | None = None  # the batch of code trials under way in its thread
        self._closing = False  # the run is ending: a code batch still running gives up at its next feed

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def create(cls, store: Store, config: TournamentConfig, programs: dict[str, Program], games: dict[str, Game],
               new: bool = False, **kw) -> TournamentRunner:
        """Validate a tournament against the library and return its runner.

        A tournament identical to a stored one (same config, same program and game versions) *is* that
        tournament: its runner continues it, so running the same command twice never duplicates
        trials. `new=True` records a fresh tournament instead (e.g. to re-sample LLMs without cache).
        """
        chosen_p = _pick(with_axelrod(programs, config.programs), config.programs, "program")
        chosen_g = _pick(games, config.games, "game")
        check_compatible(chosen_p.values(), chosen_g.values())
        _check_backend(kw.get("backend"), chosen_p.values(), config)
        fp = fingerprint(config, chosen_p.values(), chosen_g.values())
        args = (config, chosen_p.values(), chosen_g.values(), config.total_trials, __version__)
        if new:
            tid = store.create_tournament(*args, fp)
        else:
            tid, created = store.find_or_create_tournament(fp, stored_fingerprint, *args)
            if not created:  # this run's limits, name and cache policy; the stored trials' identity
                runner = cls.resume(store, tid, concurrency=config.concurrency, name=config.name or None,
                                    cache=config.cache, **kw)
                runner.reused = True
                return runner
        return cls(store, tid, config, chosen_p, chosen_g, **kw)

    @classmethod
    def resume(cls, store: Store, tournament_id: int | None = None, *, concurrency: int | None = None,
               name: str | None = None, cache: bool | None = None, **kw) -> TournamentRunner:
        """The runner of a stored tournament, with the program and game versions it started with, and this
        run's own `concurrency`, `name` and `cache` where given (they do not change which trials run).

        Refused while another live process runs it (both would ask for the same missing trials): the
        check and the claim are one transaction (Store.claim).
        """
        if store.tournament(tournament_id).fingerprint == "iterate":
            raise ArenaError("this tournament holds the trials of an iterate run: continue it with "
                             "`arena iterate --resume RUN` (`arena iterate --list` shows the runs)")
        stored = load_stored(store, tournament_id)
        row = stored.row
        _check_backend(kw.get("backend"), stored.programs.values(), stored.config)
        update = {k: v for k, v in (("concurrency", concurrency), ("name", name), ("cache", cache)) if v is not None}
        config = stored.config.model_copy(update=update) if update else stored.config
        if config != stored.config:
            config = TournamentConfig.model_validate(config.model_dump())  # validated like a new one
        store.claim(row.id)
        if config != stored.config:
            store.update_settings(row.id, config)
        return cls(store, row.id, config, stored.programs, stored.games, **kw)

    # -- control (thread-safe) ---------------------------------------------------------------------
    def pause(self) -> None:
        """Start no more trials. The runner says "paused" (a Notice) once it has stopped starting them: after
        the built-in batch under way is stored (then no built-in trial is stored until it is resumed; LLM
        trials already in flight still finish and are stored)."""
        self._running.clear()

    def unpause(self) -> None:
        """Go on; the runner says "resumed" if it had stopped."""
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def yield_to(self, seconds: float) -> None:
        """Leave the interpreter to another thread of this process for a moment (a UI answering a key):
        the built-in fast path, which never waits on anything, sleeps before its next trial until then."""
        self._yield_until = time.monotonic() + seconds

    def cancel(self) -> None:
        """Stop: in-flight trials are abandoned (not stored); everything stored stays."""
        self._cancelled = True
        self._running.set()
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._cancel_tasks)

    def _cancel_tasks(self) -> None:
        for t in list(self._tasks):
            t.cancel()

    # -- running -----------------------------------------------------------------------------------
    async def run(self) -> TournamentFinished:
        try:
            return await self._run()
        finally:  # after the Finished: a code decision under way may take up to its time limit to end
            await self._close_sandbox()

    async def _run(self) -> TournamentFinished:
        self._loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        total = self.config.total_trials
        done_map = await asyncio.to_thread(self.store.completed, self.tournament_id, total)
        if self.skip is not None:
            done_map = bytearray(a | b for a, b in zip(done_map, self.skip))
        self.done = sum(done_map)
        self.store.mark_running(self.tournament_id)
        self.sink(TournamentStarted(self.tournament_id, total, self.done, self.config.model_dump(mode="json")))
        status, error = "finished", None
        secrets = list(getattr(self.backend, "secrets", []))
        llm = {pid for pid, p in self.programs.items() if p.kind == "llm"}
        try:
            agents = await self._agents(llm)
            await self._run_builtin(agents, done_map, llm)
            if llm:
                await self._run_llm(agents, done_map, llm)
            if self._cancelled:
                status = "cancelled"
        except asyncio.CancelledError:
            status = "cancelled"
            if not self._cancelled:  # cancelled from outside (Ctrl-C): record, then let it propagate
                self._finish(status, "interrupted (Ctrl-C or a signal)", t0)
                raise
        except (ArenaError, SandboxError) as exc:
            status, error = "failed", redact(str(exc), secrets)
        except Exception as exc:  # a bug in Arena: stop, keep what is stored, log the traceback (never a key)
            status, error = "failed", record_internal_error(self.store.path, exc, secrets)
        finally:
            if self.backend is not None and llm:
                self.provider_stats = self.backend.stats()
                try:
                    await self.backend.aclose()
                except Exception:
                    pass
        return self._finish(status, error, t0)

    def _finish(self, status: str, error: str | None, t0: float) -> TournamentFinished:
        if status == "finished" and self.done < self.config.total_trials:
            status = "cancelled"
            error = error or f"stopped with {self.done} of {self.config.total_trials} trials stored"
        if status == "cancelled" and error is None:
            error = "cancelled by the user"
        self.store.set_status(self.tournament_id, status, None if status == "finished" else error)
        event = TournamentFinished(self.tournament_id, status, self.done, self.config.total_trials,
                                   dict(self.counts), time.perf_counter() - t0, error, self.provider_stats)
        self.sink(event)
        return event

    async def _close_sandbox(self) -> None:
        """Close the code sandbox once the code decisions under way in other threads are over (a batch gives up
        at its next feed, a decision ends within its time limit), without holding up the event loop."""
        sandbox, self._sandbox = self._sandbox, None
        if sandbox is None:
            return
        self._closing = True
        work = self._code_work
        if work is not None:
            if not work.done():
                await asyncio.wait({work})
            if not work.cancelled():
                work.exception()  # (an abandoned batch's _Abandoned: retrieved, not logged)
        await asyncio.to_thread(sandbox.close)

    def _gate(self) -> None:
        """Called in a code batch's worker thread before each sandbox feed: waits there while the run is paused
        (nothing is stored until it goes on), gives the batch up once it is cancelled."""
        while not self._running.is_set() and not self._closing:
            self._running.wait(0.05)
        if self._cancelled or self._closing:
            raise _Abandoned

    async def _agents(self, llm: set[str]) -> dict[str, Agent]:
        agents: dict[str, Agent] = {}
        for pid, p in self.programs.items():
            if p.kind == "builtin":
                agents[pid] = BotAgent(p)
        code = [p for p in self.programs.values() if p.kind == "code"]
        if code:
            self._sandbox = Sandbox(code)
            self._sandbox.checkpoint = self._gate
            await asyncio.to_thread(self._sandbox.open)
            for p in code:
                agents[p.id] = CodeAgent(p, self._sandbox)
        if llm:
            if self.backend is None:
                raise ArenaError(f"LLM programs {sorted(llm)} need an LLM backend")
            llm_programs = [self.programs[p] for p in sorted(llm)]
            # a task of its own, so that cancel() stops a backend that is starting (model assembly, the
            # embedded server's start: up to minutes) at once
            preparing = asyncio.ensure_future(self.backend.prepare(llm_programs, self.config))
            self._tasks.add(preparing)
            try:
                if self._cancelled:
                    preparing.cancel()
                await preparing
            finally:
                self._tasks.discard(preparing)
            for p in llm_programs:
                agents[p.id] = self.backend.agent(p, self.config)
        return agents

    async def _checkpoint(self) -> None:
        await asyncio.sleep(0)
        if not self._running.is_set() or self.stopped:
            if not self.stopped:  # (a code batch that was under way may have said it already)
                self.stopped = True  # here, in the runner's thread: what was under way is stored
                self.sink(Notice("paused", "info"))
            while not self._running.is_set():
                await asyncio.sleep(0.05)
            self.stopped = False
            if not self._cancelled:
                self.sink(Notice("resumed", "info"))
        if self._cancelled:
            raise asyncio.CancelledError

    async def _code_batch(self, specs: list, agents: dict[str, Agent]) -> list[TrialResult]:
        """Trials with code programs, resolved together in a worker thread (their decisions are sandbox feeds,
        up to a time limit each), so that the loop answers pause, cancel and attaching clients meanwhile. Paused,
        the batch waits at its next feed and "paused" is said at once; nothing is stored until it goes on.
        Cancelled, it is abandoned (not stored); its thread gives up at its next feed."""
        work = asyncio.ensure_future(asyncio.to_thread(run_any_batched, specs, self.games, agents, self.programs))
        self._code_work = work
        try:
            while not work.done():
                await asyncio.wait({work}, timeout=POLL_S)
                if self._cancelled:
                    raise asyncio.CancelledError
                if not self._running.is_set() and not self.stopped:
                    self.stopped = True
                    self.sink(Notice("paused", "info"))
                elif self._running.is_set() and self.stopped:
                    self.stopped = False
                    self.sink(Notice("resumed", "info"))
            try:
                results = work.result()
            except _Abandoned:
                raise asyncio.CancelledError from None
        finally:
            if work.done():
                self._code_work = None
        await self._checkpoint()  # paused while it ran: stored once it goes on
        return results

    def _store(self, results: list[TrialResult]) -> None:
        new = self.store.write_trials(self.tournament_id, results)
        self.done += new
        for r in results:
            self.counts[r.status] += 1
        self.sink(TrialsFinished(self.tournament_id, results, self.done, self.config.total_trials))

    async def _run_builtin(self, agents: dict[str, Agent], done_map: bytearray, llm: set[str]) -> None:
        """Built-in trials in batches of `batch_size` trials, or fewer when their trees are deep or their
        matches long: a batch is written once it holds BATCH_NODES nodes, its rounds counted in (`held`:
        FairBot with epsilon 0.0005 makes ~4,000 nodes a trial: 2,000 of those would hold 8 million nodes in
        memory and in one transaction; a grid world's 50-step episode weighs 850)."""
        batch: list[TrialResult] = []
        nodes = 0
        games, programs = self.games, self.programs
        code = {pid for pid, p in programs.items() if p.kind == "code"}
        pending: list = []  # trials with a code program, resolved together (engine/batch.py)
        await self._checkpoint()  # (a runner started paused runs nothing)
        for spec in self.config.iter_specs(done_map):
            if spec.row in llm or spec.col in llm:
                continue
            if self._yield_until:
                wait, self._yield_until = self._yield_until - time.monotonic(), 0.0
                if wait > 0:
                    time.sleep(wait)
            if spec.row in code or spec.col in code:
                pending.append(spec)
                if len(pending) < CODE_BATCH:
                    continue
                results, pending = await self._code_batch(pending, agents), []
            elif not is_match(spec, games[spec.game]):
                results = [run_trial_sync(spec, games[spec.game], agents, programs)]
            else:
                results = [run_match_sync(spec, games[spec.game], agents, programs)]
            batch.extend(results)
            nodes += sum(held(r) for r in results)
            if len(batch) >= self.batch_size or nodes >= BATCH_NODES:
                self._store(batch)
                batch, nodes = [], 0
                await self._checkpoint()
        if pending:
            batch.extend(await self._code_batch(pending, agents))
        if batch:
            self._store(batch)

    async def _run_llm(self, agents: dict[str, Agent], done_map: bytearray, llm: set[str]) -> None:
        """LLM trials in grid order, a new one started whenever too few decisions are in flight.

        A top-level decision is a chain of calls made one after another (each level answers the one
        below it), so a trial has two calls asking, then one once its shorter decision is done.
        Counting decisions rather than trials keeps the providers busy however deep the trees are (a
        fixed number of trials leaves slots idle while each waits on its one long chain). The backend
        caps calls in flight at `concurrency`; a quarter more decisions than that are kept going so
        that a call is always queued for a slot while others build their next prompt.
        """
        specs = (s for s in self.config.iter_specs(done_map) if s.row in llm or s.col in llm)
        tid = self.tournament_id
        on_plan = on_node = None
        if self.node_events:
            def on_plan(spec, nodes):
                self.sink(TrialPlanned(tid, spec, nodes))

            def on_node(spec, node):
                self.sink(NodeResolved(tid, spec, node))

        limit = self.config.concurrency + self.config.concurrency // 4 + 1
        in_flight = 0  # decisions of started trials that are not done yet
        room = asyncio.Event()  # set whenever a decision ends (or a trial fails)
        failures: list[BaseException] = []
        tasks: set[asyncio.Task] = set()
        loop = asyncio.get_running_loop()
        finished_trials: list[TrialResult] = []  # done, waiting for their transaction (at most WRITE_WINDOW_S)
        timer: asyncio.TimerHandle | None = None

        def write_finished() -> None:
            """The finished trials in one transaction (with the response cache's deferred rows)."""
            nonlocal timer
            timer = None
            if finished_trials:
                batch = finished_trials[:]
                finished_trials.clear()
                try:
                    self._store(batch)
                except Exception as exc:  # (a timer's callback: the run stops with it, as with a trial's failure)
                    failures.append(exc)
                    room.set()

        async def trial(spec) -> None:
            nonlocal in_flight, timer
            pending = 2

            def decided() -> None:
                nonlocal in_flight, pending
                pending -= 1
                in_flight -= 1
                room.set()

            try:
                run = run_match_async if is_match(spec, self.games[spec.game]) else run_trial_async
                result = await run(spec, self.games[spec.game], agents, self.programs, on_plan, on_node, decided)
                finished_trials.append(result)
                if timer is None:
                    timer = loop.call_later(WRITE_WINDOW_S, write_finished)
            finally:
                in_flight -= pending  # the decisions of a cancelled or failed trial
                room.set()

        def finished(task: asyncio.Task) -> None:
            tasks.discard(task)
            self._tasks.discard(task)
            if not task.cancelled() and task.exception() is not None:
                failures.append(task.exception())
                room.set()

        try:
            for spec in specs:
                while in_flight >= limit and not failures:
                    room.clear()
                    await room.wait()
                await self._checkpoint()
                if failures:
                    break
                in_flight += 2
                task = asyncio.create_task(trial(spec))
                tasks.add(task)
                self._tasks.add(task)
                task.add_done_callback(finished)
            if tasks and not failures:
                await asyncio.gather(*tasks)  # raises the first failure
            write_finished()
            if failures:
                raise failures[0]
        finally:
            for t in list(tasks):
                t.cancel()
            self._tasks.difference_update(tasks)
            if timer is not None:
                timer.cancel()
            if finished_trials:  # a failure or a cancel: the trials that did finish are stored
                self._store(finished_trials[:])
                finished_trials.clear()


@dataclass(frozen=True)
class StoredTournament:
    """A stored tournament as it started: its row, config, and program and game versions."""

    row: TournamentRow
    config: TournamentConfig
    programs: dict[str, Program]
    games: dict[str, Game]


def load_stored(store: Store, tournament_id: int | None = None) -> StoredTournament:
    """The stored tournament `tournament_id` (None: the latest); raises LookupFailed if there is none."""
    row = store.tournament(tournament_id)
    progs, games = store.snapshot(row.id)
    return StoredTournament(row, TournamentConfig.model_validate(row.config),
                            {k: program_from_json(v) for k, v in progs.items()},
                            {k: parse_game(v) for k, v in games.items()})


# Fields of TournamentConfig that do not determine a tournament's trials: how it is run and called, and
# which preset (if any) filled in the grid (a custom grid in the app and the same grid from the CLI are
# one tournament).
NOT_IDENTITY = frozenset({"name", "concurrency", "cache", "preset"})
# The repeated-game and disclosure fields at their defaults (the one-shot game, everything shown), left out of
# a fingerprint.
ONE_SHOT_FIELDS = {"rounds": [1], "continuations": [None], "noises": [0.0], "recalls": [None], "max_rounds": 1000,
                   "horizon": "known", "discount": 1.0, "disclosures": ["full"], "obfuscate_prompts": "shuffle"}


def fingerprint(config: TournamentConfig, programs: Iterable[Program], games: Iterable[Game]) -> str:
    """Identity of a tournament: exactly what determines its trials (the grid, seed, simulation mode,
    model routing, and the program and game versions)."""
    return _fingerprint(config, [p.content_hash for p in programs], [g.content_hash for g in games])


def _fingerprint(config: TournamentConfig, program_hashes: Iterable[str], game_hashes: Iterable[str]) -> str:
    from arena.library.games import content_hash

    dump = config.model_dump(mode="json", exclude=set(NOT_IDENTITY))
    for k, default in ONE_SHOT_FIELDS.items():  # a one-shot tournament keeps the identity it had before them
        if dump.get(k) == default:
            del dump[k]
    return content_hash({
        "config": dump,
        "programs": sorted(program_hashes),
        "games": sorted(game_hashes),
    })


def stored_fingerprint(config: dict, program_hashes: list[str], game_hashes: list[str]) -> str:
    """The fingerprint of a stored tournament by today's rule (for tournaments stored by schema 1)."""
    return _fingerprint(TournamentConfig.model_validate(config), program_hashes, game_hashes)


def _pick(items: dict, ids: list[str], what: str) -> dict:
    missing = [i for i in ids if i not in items]
    if missing:
        from arena.library.yamlio import did_you_mean

        raise LookupFailed(f"unknown {what}(s): {', '.join(missing)}{did_you_mean(missing, items)}. "
                           f"Known: {', '.join(sorted(items))}")
    return {i: items[i] for i in ids}


def _check_backend(backend: LLMBackend | None, programs: Iterable[Program], config: TournamentConfig) -> None:
    llm = [p for p in programs if p.kind == "llm"]
    if not llm:
        return
    if backend is None:
        raise ArenaError(f"LLM programs ({', '.join(p.id for p in llm)}) need an LLM backend")
    backend.check(llm, config)


def check_compatible(programs: Iterable[Program], games: Iterable[Game]) -> None:
    """Every chosen bot can play every chosen game (e.g. a fixed action exists in it)."""
    problems = []
    for p in programs:
        if p.kind == "builtin":
            agent = BotAgent(p)
            problems += [m for g in games if (m := agent.check_game(g))]
    if problems:
        raise ArenaError("; ".join(problems))
