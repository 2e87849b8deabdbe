"""Slow queries off the UI thread: Textual thread workers, each with its own read connection.

A screen asks (load_results, compute); the worker queries the database through a connection of its own
(WAL: it reads the last committed state without waiting for a running tournament or for the app's
connection, whose lock would otherwise make every other screen's query wait behind a multi-second
analysis) and hands its result back on the UI thread. The UI shows a loading state meanwhile and keeps
answering keys."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from textual.types import NoActiveAppError
from textual.worker import get_current_worker


@dataclass(frozen=True)
class ResultsData:
    """What the Results screen shows of one tournament."""

    row: Any  # TournamentRow
    outcomes: Any  # arena.analysis.tables.Outcomes
    pairs: list


def _reader(app):
    from arena.store.database import Store

    return Store(app.db_path)


def _deliver(screen, fn: Callable, *args) -> None:
    """Run fn(*args) on the UI thread unless the worker was cancelled (a newer one replaced it)."""
    if get_current_worker().is_cancelled:
        return

    def on_ui() -> None:
        if is_live(screen):
            fn(*args)

    screen.app.call_from_thread(on_ui)


def is_live(screen) -> bool:
    """Whether `screen` is still one of the app's screens: not removed (a dismissed dialog, a popped
    screen: no longer in a mode's stack) and the app not quitting (its screens torn down)."""
    try:
        app = screen.app
    except NoActiveAppError:
        return False
    if not (app.is_running and screen.is_attached):
        return False
    for mode in {app.current_mode, app.DEFAULT_MODE, *app.MODES}:
        try:
            if screen in app.get_screen_stack(mode):
                return True
        except KeyError:  # a mode not visited yet
            continue
    return False


def load_results(screen, tid: int | None, seq: int) -> None:
    """Load tournament `tid` (None: the newest) for the Results screen; calls screen.loaded(seq, data),
    with data None when there is no such tournament."""

    def work() -> None:
        from arena.analysis.tables import load_outcomes, pairs
        from arena.errors import ArenaError

        try:
            with _reader(screen.app) as store:
                row = store.tournament(tid)
                outcomes = load_outcomes(store, row.id)
                data = ResultsData(row, outcomes, pairs(outcomes))
        except ArenaError:
            data = None
        _deliver(screen, screen.loaded, seq, data)

    _start(screen, work, group="results-load", name=f"load tournament {tid}")


def _start(screen, work: Callable[[], None], group: str, name: str) -> None:
    """Run work() in a thread worker; a bug in it is shown on the screen (failures.py), not fatal."""

    def guarded() -> None:
        try:
            work()
        except Exception as exc:  # noqa: BLE001: any bug in a query is contained at its screen
            _deliver(screen, screen.show_failure, f"{screen.failure_name()}: {name}", exc)

    screen.run_worker(guarded, thread=True, exclusive=True, group=group, name=name)


def run_query(screen, group: str, fn: Callable[[Any], Any], done: Callable[[Any], None]) -> None:
    """fn(store) in a worker (a newer query of the same group replaces it); done(value) on the UI thread."""

    def work() -> None:
        with _reader(screen.app) as store:
            value = fn(store)
        _deliver(screen, done, value)

    _start(screen, work, group=group, name=group)


def compute(screen, what: str, tid: int, fn: Callable[[Any], Any]) -> None:
    """Compute fn(store) for tournament `tid` in a worker; calls screen.computed(what, tid, value)."""
    run_query(screen, f"results-{what}", fn, lambda value: screen.computed(what, tid, value))
