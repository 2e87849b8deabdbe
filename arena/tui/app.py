"""The Arena app: five modes (Library, Setup, Live, Results, History), a help screen, the command
palette, and one tournament at a time running in a worker thread (see session.py)."""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import Screen

from . import format as fmt
from .textual_patches import ImmediateModeSwitch

if TYPE_CHECKING:
    from .session import LiveSession


class ArenaApp(ImmediateModeSwitch, App):
    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "Arena"
    SUB_TITLE = "program equilibrium with LLM programs"
    ENABLE_COMMAND_PALETTE = True

    MODES = {
        "library": lambda: _screen("library"),
        "setup": lambda: _screen("setup"),
        "live": lambda: _screen("live"),
        "results": lambda: _screen("results"),
        "history": lambda: _screen("history"),
    }
    BINDINGS = [
        Binding("1", "mode('library')", "Library", show=False),
        Binding("2", "mode('setup')", "Setup", show=False),
        Binding("3", "mode('live')", "Live", show=False),
        Binding("4", "mode('results')", "Results", show=False),
        Binding("5", "mode('history')", "History", show=False),
        Binding("f1,question_mark", "help", "Help", key_display="?"),
        Binding("ctrl+t", "toggle_dark", "Theme", show=False),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    run_label: reactive[str] = reactive("")

    def __init__(self, db: Path | str | None = None, *, start_mode: str = "setup", clock=time.monotonic,
                 programs_path: Path | None = None, games_path: Path | None = None, runner_process: bool = False,
                 attach: int | bool | None = None, quiet_gc: bool = False, wall=time.time):
        """`runner_process`: tournaments run in a process of their own (arena/runner/process.py), as `arena`
        does; otherwise in a thread of this one. `attach`: a tournament id, or True for the newest running
        one, to attach to once the app is up. `quiet_gc`: the process is the app's own (`arena`): tune its
        garbage collector for short pauses after the first paint (gcpauses.py; not for tests, which run
        many apps in one process)."""
        super().__init__()
        self.runner_process = runner_process
        self.quiet_gc = quiet_gc
        self.attach = attach
        # (arena.store.database.default_db_path, without importing the store before the first paint)
        self.db_path = Path(db) if db is not None else Path(os.environ.get("ARENA_DB") or "arena.db")
        self.start_mode = start_mode
        self.clock = clock
        self.wall = wall  # wall-clock time (a tournament's start is stored as one)
        self.programs_path = programs_path
        self.games_path = games_path
        self._store = None
        self._library = None
        self.session: LiveSession | None = None
        self.iterate_session = None  # an iterate run followed in its runner process (iterate_session.py)
        self.session_log: deque = deque(maxlen=200)  # (clock, level, message) of the current session
        self.results_tid: int | None = None  # the tournament the Results screen shows
        self.library_problems: list = []  # problems in the YAML files (the rest of the library still loads)
        self.mode_screens: dict[str, Screen] = {}  # filled by each mode screen when it mounts
        self.exit_message = ""  # printed after the app has ended (quitting with Detach)

    # -- shared state ----------------------------------------------------------------------------------
    @property
    def store(self):
        if self._store is None:
            from arena.store.database import Store, db_timeout

            self._store = Store(self.db_path, timeout=db_timeout())
        return self._store

    @property
    def library(self):
        """Programs and games from the YAML files; files with problems are left out (see library_problems).

        Loaded on first use, which screens defer until after their first paint (YAML parsing and the
        pydantic models are the slowest part of start-up)."""
        if self._library is None:
            self.reload_library()
        return self._library

    def reload_library(self):
        from arena.library.catalog import load_lenient

        # without a folder given: ./programs (or $ARENA_PROGRAMS), the shipped examples beside it; written to
        # only there, never into the installed package's own programs/
        self._library, self.library_problems = load_lenient(self.programs_path, self.games_path, examples=True)
        for screen in self._mode_screens():  # Setup lists what Library shows, at once
            if hasattr(screen, "library_changed"):
                screen.library_changed()
        return self._library

    # -- lifecycle -------------------------------------------------------------------------------------
    async def on_event(self, event) -> None:
        from textual import events

        if isinstance(event, events.Key) and self.session is not None:
            self.session.yield_to_ui()  # answer the key first, then the tournament goes on
        await super().on_event(event)

    def on_mount(self) -> None:
        self.switch_mode(self.start_mode)
        self.set_interval(0.1, self._tick)
        if self.quiet_gc:  # after the first paint, before the database opens
            from . import gcpauses

            self.call_after_refresh(gcpauses.quiet)
        self.call_after_refresh(self._open_store)

    def _attach_on_start(self) -> None:
        from arena.errors import ArenaError

        try:
            self.attach_tournament(None if self.attach is True else int(self.attach))
        except ArenaError as exc:
            if self.attach is not True:  # asked for by id: say why not
                self.notify(str(exc), severity="error", timeout=10)

    def _open_store(self) -> None:
        """Open the database after the first paint; a database that cannot be used ends the app."""
        from arena.errors import ArenaError

        try:
            self.store
        except ArenaError as exc:
            self.exit(message=f"arena: error: {exc}", return_code=2)
            return
        if self.attach is not None and self.attach is not False:
            self.set_timer(0.05, self._attach_on_start)  # (once the first screen is up)

    def _tick(self) -> None:
        s = self.session
        if s is None:
            it = self.iterate_session
            if it is not None:  # the iterate run followed here, in the header
                status = it.status
                colour = {"running": "$success", "finished": "$success", "failed": "$error"}.get(status, "$warning")
                self.run_label = f"[{colour}]{'●' if status == 'running' else '■'}[/] iterate run {it.run_id} {status}"
            return
        poll = s.poll()
        for n in poll.notices:
            self.session_log.append((self.clock(), n.level, n.message))
            if n.level in ("warning", "error"):
                self.notify(n.message, severity=n.level, timeout=8)
        p = s.progress()
        tid = s.tournament_id
        share = p.done / p.total if p.total else 0
        if s.status in ("running", "starting"):
            eta = f" · {fmt.duration(p.eta_s)} left" if p.eta_s is not None else ""
            self.run_label = f"[$success]●[/] T{tid} {fmt.pct(share)}{eta}"
        elif s.status in ("paused", "pausing"):
            self.run_label = f"[$warning]❚❚[/] T{tid} {s.status}{'…' if s.status == 'pausing' else ''} {fmt.pct(share)}"
        elif s.status == "cancelling":
            self.run_label = f"[$warning]■[/] T{tid} cancelling…"
        else:
            colour = {"finished": "$success", "cancelled": "$warning"}.get(s.status, "$error")
            self.run_label = f"[{colour}]■[/] T{tid} {s.status}"
        if poll.finished is not None:
            f = poll.finished
            self.session_log.append((self.clock(), "info", f"tournament {f.status}: {f.done}/{f.total} trials stored"))
            if f.providers:
                from arena.llm.stats import stats_line

                for name, stats in sorted(f.providers.items()):
                    self.session_log.append((self.clock(), "info", stats_line(name, stats)))
            if f.status == "failed":
                self.notify(f"Tournament {f.tournament_id} failed: {f.error}", severity="error", timeout=15)
            else:
                self.notify(f"Tournament {f.tournament_id} {f.status}: {f.done:,}/{f.total:,} trials stored. "
                            "Press 4 for the results.", timeout=8)
            self.results_tid = f.tournament_id
            for screen in self._mode_screens():
                if hasattr(screen, "tournament_changed"):
                    screen.tournament_changed(f.tournament_id)

    def _mode_screens(self) -> Iterable[Screen]:
        return list(self.mode_screens.values())

    # -- tournaments -------------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.session is not None and not self.session.ended

    def start_tournament(self, config, new: bool = False) -> int:
        """Create (or continue) a tournament from a validated config and run it; raises ArenaError."""
        from arena.errors import ArenaError
        from arena.runner.tournament import TournamentRunner

        if self.busy:
            raise ArenaError(f"tournament {self.session.tournament_id} is still running: cancel it first (Live, c)")
        lib = self.library
        from .session import LiveSession

        if self.runner_process:
            from arena.runner.process import start_detached

            backend = self._backend(lib.programs, config, self.store)  # keys checked here, used by the runner
            # started paused, unpaused once attached: Live sees every trial from the first (a quick built-in run
            # would otherwise be over before the app connects, and its tree never shown)
            started = start_detached(self.store, config, lib.programs, lib.games, new=new, backend=backend,
                                     paused=True)
            self._attach_session(started.tournament_id, reused=started.reused, start=True)
            return started.tournament_id
        session = LiveSession(self.store, clock=self.clock)
        store = self._runner_store()
        try:
            backend = self._backend(lib.programs, config, store, session.on_event)
            runner = TournamentRunner.create(store, config, lib.programs, lib.games, new=new, backend=backend,
                                             sink=session.on_event)
        except BaseException:
            store.close()
            raise
        self._run(session, runner)
        return runner.tournament_id

    def resume_tournament(self, tid: int) -> None:
        from arena.errors import ArenaError
        from arena.runner.tournament import TournamentRunner, load_stored

        if self.busy:
            raise ArenaError(f"tournament {self.session.tournament_id} is still running: cancel it first (Live, c)")
        from .session import LiveSession

        if self.runner_process:
            from arena.runner.process import resume_detached, running_runner

            if running_runner(self.store, tid) is None:  # (else: it runs already; follow it)
                stored = load_stored(self.store, tid)
                backend = self._backend(stored.programs, stored.config, self.store)  # keys checked first
                resume_detached(self.store, tid, backend=backend)
            self._attach_session(tid, reused=True)
            return
        session = LiveSession(self.store, clock=self.clock)
        store = self._runner_store()
        try:
            stored = load_stored(store, tid)
            backend = self._backend(stored.programs, stored.config, store, session.on_event)  # keys checked first
            runner = TournamentRunner.resume(store, tid, backend=backend, sink=session.on_event)
        except BaseException:
            store.close()
            raise
        self._run(session, runner)

    def attach_tournament(self, tid: int | None = None) -> int:
        """Follow the runner process of a running tournament (None: the newest); raises ArenaError."""
        from arena.errors import ArenaError
        from arena.runner.process import running_runner

        if self.busy:
            raise ArenaError(f"tournament {self.session.tournament_id} is still running here: detach or cancel it first")
        row = running_runner(self.store, tid)
        if row is None:
            raise ArenaError(f"tournament {tid} is not running" if tid is not None
                             else f"no tournament is running in {self.db_path}")
        if row.fingerprint == "iterate":  # an iterate run's tournament: its live view
            from arena.store import iterate as db

            self.watch_iterate(db.run_of_tournament(self.store, row.id))
            return row.id
        self._attach_session(row.id)
        return row.id

    # -- iterate runs ---------------------------------------------------------------------------------------
    @property
    def iterating(self) -> bool:
        return self.iterate_session is not None and not self.iterate_session.ended

    def start_iterate(self, cfg) -> int:
        """Record an iterate run from a validated config and start its runner process (the app follows it);
        raises ArenaError (a run followed already, the writer's key missing, ...)."""
        from arena.errors import ArenaError
        from arena.iterate.process import start_detached

        if self.iterating:
            raise ArenaError(f"iterate run {self.iterate_session.run_id} is being followed here: detach (x) or "
                             "cancel it first")
        lib = self.library
        if cfg.game not in lib.games:
            raise ArenaError(f"unknown game '{cfg.game}'")
        # started paused, unpaused once attached: the view sees every step from the first
        started = start_detached(self.store, cfg, lib.games[cfg.game], paused=True)
        self._follow_iterate(started.run_id, started.tournament_id, started.socket, started.pid, start=True)
        return started.run_id

    def _follow_iterate(self, run_id: int, tid: int, socket: str, pid: int | None, start: bool = False) -> None:
        from .iterate_session import IterateSession

        self.iterate_session = IterateSession(self.db_path, run_id, tid, socket, pid, start=start)
        self.iterate_session.start()

    def watch_iterate(self, run_id: int) -> None:
        """Open iterate run `run_id`'s view: followed live when its runner process runs (attaching to it),
        else as stored."""
        from arena.runner.process import running_runner
        from arena.store import iterate as db

        from .screens.iterate_run import IterateRunScreen

        s = self.iterate_session
        if s is None or s.ended or s.run_id != run_id:
            row = db.run_row(self.store, run_id)
            live = running_runner(self.store, row["tournament_id"])
            if live is not None and not self.iterating:
                self._follow_iterate(run_id, live.id, live.runner_socket, live.runner_pid)
        s = self.iterate_session
        following = s is not None and not s.ended and s.run_id == run_id
        self.push_screen(IterateRunScreen(run_id, s if following else None))

    def detach_iterate(self) -> None:
        """Stop following the iterate run (it goes on in its runner process)."""
        if self.iterate_session is not None:
            self.iterate_session.detach()
            self.iterate_session.join(10)

    def _attach_session(self, tid: int, reused: bool = False, start: bool = False) -> None:
        from arena.runner.process import RemoteRunner
        from arena.errors import ArenaError

        from .session import LiveSession

        row = self.store.tournament(tid)
        if not row.runner_socket:
            raise ArenaError(f"tournament {tid} has no runner process")
        session = LiveSession(self.store, clock=self.clock, wall=self.wall)
        session.since = row.started_at  # elapsed counts from the runner's start, not from this attach
        runner = RemoteRunner(self.store, tid, row.runner_socket, pid=row.runner_pid, reused=reused,
                              sink=session.on_event)
        if start:
            session.handshake = True  # its paused / resumed are the start-until-attached handshake
            runner.unpause()  # (sent as soon as it is connected)
        self._run(session, runner)

    def _runner_store(self):
        """The tournament's own connection to the database (the session closes it when the run ends).

        With one shared connection every screen's query would wait for the runner's write transactions
        (a batch of deep built-in trials holds it for a second); in WAL mode a second connection reads
        the last committed state without waiting."""
        from arena.store.database import Store, db_timeout

        return Store(self.db_path, timeout=db_timeout())

    def _backend(self, programs: dict, config, store, sink=None):
        """The LLM layer (imported only when a tournament has LLM programs); checks keys up front."""
        llm = [programs[p] for p in config.programs if p in programs and programs[p].kind == "llm"]
        if not llm:
            return None
        from arena.llm.service import LLMService

        service = LLMService(store, sink=sink)
        service.check(llm, config)
        return service

    def _run(self, session: LiveSession, runner) -> None:
        self.session = session
        self.session_log.clear()
        self.session_log.append((self.clock(), "info", f"tournament {runner.tournament_id}: "
                                 f"{runner.config.total_trials:,} trials" + (" (continuing the stored one)" if runner.reused else "")
                                 + (f", in runner process {runner.pid}" if getattr(runner, "remote", False) else "")))
        session.start(runner)
        self.results_tid = runner.tournament_id
        for screen in self._mode_screens():
            if hasattr(screen, "session_started"):
                screen.session_started(session)
        self.switch_mode("live")

    def open_results(self, tid: int) -> None:
        self.results_tid = tid
        for screen in self._mode_screens():
            if hasattr(screen, "tournament_changed"):
                screen.tournament_changed(tid)
        self.switch_mode("results")

    # -- actions ------------------------------------------------------------------------------------------
    async def run_action(self, action, default_namespace=None, namespaces=None) -> bool:
        """Textual's run_action (every key binding goes through it), with a bug in the action contained at
        the screen it was run on (failures.py) instead of ending the app."""
        try:
            return await super().run_action(action, default_namespace, namespaces)
        except Exception as exc:  # noqa: BLE001: any bug in an action is contained here
            from .failures import ContainsFailures, record

            name = action if isinstance(action, str) else "an action"
            if isinstance(self.screen, ContainsFailures):
                self.screen.show_failure(f"{self.screen.failure_name()}: {name}", exc)
            else:
                self.notify(record(self, name, exc), severity="error", timeout=30)
            return True

    def action_mode(self, mode: str) -> None:
        if self.current_mode != mode:
            self.switch_mode(mode)

    def action_help(self) -> None:
        from .screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            # built once and kept (installed): composing its Markdown is most of showing it
            if not self.is_screen_installed("help"):
                self.install_screen(HelpScreen(), "help")
            self.push_screen("help")

    def action_toggle_dark(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    async def action_quit(self) -> None:
        if self.iterating:  # an iterate run goes on in its runner process
            s = self.iterate_session
            self.detach_iterate()
            self.exit_message = (f"Iterate run {s.run_id} goes on in runner process {s.pid}.\n"
                                 f"Follow it again with: arena attach {s.tournament_id}"
                                 + ("" if self.db_path.resolve() == Path(os.environ.get("ARENA_DB") or "arena.db").resolve()
                                    else f" --db {self.db_path}"))
            if not self.busy:
                self.exit(message=self.exit_message)
                return
        if self.busy and self.session.remote:
            from .screens.dialogs import Choose

            def chosen(choice: str | None) -> None:
                if choice == "detach":
                    tid, pid = self.session.tournament_id, self.session.runner.pid
                    self.session.detach()
                    self.exit_message = self.detached_message(tid, pid)
                    self.exit(message=self.exit_message)  # (printed once the terminal is back)
                elif choice == "cancel":
                    self._stop_session()
                    self.exit()

            self.push_screen(Choose(
                f"Tournament {self.session.tournament_id} is running (runner pid {self.session.runner.pid}).",
                "Detach: it goes on without the app (attach again with `arena attach`). "
                "Cancel: it stops; everything stored stays.",
                [("back", "Back", "default"), ("cancel", "Cancel it", "error"), ("detach", "Detach", "primary")],
                focus="detach"), chosen)
            return
        if self.busy:
            from .screens.dialogs import Confirm

            def done(ok: bool | None) -> None:
                if ok:
                    self._stop_session()
                    self.exit()

            self.push_screen(Confirm(
                f"Tournament {self.session.tournament_id} is running. Quit and stop it?",
                "Everything stored so far stays; resume it later from History.", "Quit"), done)
            return
        self._stop_session()
        self.exit()

    def detached_message(self, tid: int, pid: int | None) -> str:
        """What the terminal shows once the app has left a tournament running: its id and how to come back."""
        default = Path(os.environ.get("ARENA_DB") or "arena.db")
        db = "" if self.db_path.resolve() == default.resolve() else f" --db {self.db_path}"
        return (f"Tournament {tid} goes on in runner process {pid}.\n"
                f"Follow it again with: arena attach {tid}{db}   (or a bare `arena`{db})")

    def _stop_session(self) -> None:
        if self.session is not None and not self.session.ended:
            self.session.cancel()
            self.session.join(10)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for i, (mode, title) in enumerate((("library", "Library"), ("setup", "Setup"), ("live", "Live"),
                                           ("results", "Results"), ("history", "History")), 1):
            yield SystemCommand(f"Go to {title}", f"Switch to the {title} screen (key {i})",
                                lambda m=mode: self.action_mode(m))
        yield SystemCommand("New program", "Write a new program in the editor (Library)", self._cmd_new_program)
        yield SystemCommand("Run the tournament in Setup", "Start what the Setup form describes (ctrl+r there)",
                            self._cmd_run)
        yield SystemCommand("Start the bots tournament", "Five built-in bots on the Prisoner's Dilemma, 20 trials",
                            self._cmd_smoke)
        if self.session is not None and not self.session.ended:
            yield SystemCommand("Pause / resume tournament", "Toggle pause of the running tournament",
                                self.session.toggle_pause)
            yield SystemCommand("Cancel tournament", "Stop the running tournament (stored trials stay)",
                                self._cmd_cancel)
        yield SystemCommand("Export results", "Export the tournament shown in Results", self._cmd_export)
        yield SystemCommand("Iterate runs", "Watch arena iterate runs: candidates, feedback, welfare (History: i)",
                            self._cmd_iterate)
        yield SystemCommand("Start an iterate run", "An LLM writes programs, each seat in turn improving against "
                            "the other (Iterate runs: n)", self._cmd_iterate_start)
        yield SystemCommand("Help", "Keys and concepts", self.action_help)
        yield SystemCommand("Toggle light / dark", "Switch between the light and dark theme", self.action_toggle_dark)
        yield from super().get_system_commands(screen)

    def _cmd_new_program(self) -> None:
        self.switch_mode("library")
        self.call_after_refresh(lambda: getattr(self.screen, "action_new", lambda: None)())

    def _cmd_smoke(self) -> None:
        from arena.errors import ArenaError
        from arena.engine.grid import TournamentConfig, from_preset

        try:
            self.start_tournament(TournamentConfig(**from_preset("bots")))
        except ArenaError as exc:
            self.notify(str(exc), severity="error")

    def _cmd_run(self) -> None:
        self.switch_mode("setup")
        self.call_after_refresh(lambda: getattr(self.screen, "action_start", lambda: None)())

    def _cmd_cancel(self) -> None:
        self.switch_mode("live")
        self.call_after_refresh(lambda: getattr(self.screen, "action_cancel", lambda: None)())

    def _cmd_iterate(self) -> None:
        from .screens.iterate import IterateScreen

        self.push_screen(IterateScreen())

    def _cmd_iterate_start(self) -> None:
        from .screens.iterate_start import IterateStartScreen

        self.push_screen(IterateStartScreen())

    def _cmd_export(self) -> None:
        self.switch_mode("results")
        self.call_after_refresh(lambda: getattr(self.screen, "action_export", lambda: None)())


def _screen(name: str) -> Screen:
    if name == "library":
        from .screens.library import LibraryScreen

        return LibraryScreen()
    if name == "setup":
        from .screens.setup import SetupScreen

        return SetupScreen()
    if name == "live":
        from .screens.live import LiveScreen

        return LiveScreen()
    if name == "results":
        from .screens.results import ResultsScreen

        return ResultsScreen()
    from .screens.history import HistoryScreen

    return HistoryScreen()
