"""A bug in the app is contained at the screen that raised it.

Textual ends the whole app on an exception in any handler, timer, action or worker, and prints the
traceback over the terminal. Arena's screens instead catch what escapes their own handlers, timers and
callbacks (`ContainsFailures`, mixed into every mode screen and dialog), the actions run by keys
(`ArenaApp.run_action`) and the queries of `loading.py`'s workers. Each failure's traceback goes to the
log beside the database (`arena.log`), and the screen shows, in a banner under its header, what failed
and where the log is. The app stays up; nothing stored is touched (the store is written by the runner,
never by a screen handler).
"""

from __future__ import annotations

import inspect
from pathlib import Path

from textual.css.query import NoMatches
from textual.message import Message

from .textual_patches import MessageFailures


def record(app, what: str, exc: BaseException) -> str:
    """Write exc's traceback to the app's log; return the line a screen shows."""
    from arena.runner.crashlog import log_path, record_internal_error

    record_internal_error(Path(app.db_path), exc)
    return (f"✗ {what} failed: {type(exc).__name__}: {exc} · a bug in Arena, not in your programs; "
            f"the traceback is in {log_path(Path(app.db_path))} · the app goes on (Esc hides this)")


class ContainsFailures(MessageFailures):
    """Mixin for a Screen: an exception from one of its message handlers (events, messages, timers,
    call_later / call_after_refresh callbacks) is recorded and shown instead of ending the app.

    The handlers' exceptions come through textual_patches.MessageFailures; tests/tui/test_code_in_setup.py
    injects a bug into Setup's summary timer and a Results worker and checks the banner.
    """

    def message_failed(self, message: Message, exc: Exception) -> None:
        self.show_failure(f"{self.failure_name()}: handling {type(message).__name__}", exc)

    # Textual's timers call their callbacks themselves, outside the screen's messages: each callback given
    # to a timer of the screen is wrapped.
    def set_timer(self, delay, callback=None, **kw):
        return super().set_timer(delay, self._contained(callback), **kw)  # type: ignore[misc]

    def set_interval(self, interval, callback=None, **kw):
        return super().set_interval(interval, self._contained(callback), **kw)  # type: ignore[misc]

    def _contained(self, callback):
        if callback is None:
            return None

        async def run() -> None:
            try:
                result = callback()
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:  # noqa: BLE001: any bug in a timer's callback is contained here
                self.show_failure(f"{self.failure_name()}: {getattr(callback, '__name__', 'a timer')}", exc)

        return run

    def failure_name(self) -> str:
        """How a failure names this screen ("Setup", "Results", "ExportDialog")."""
        return type(self).__name__.removesuffix("Screen")

    def show_failure(self, what: str, exc: BaseException) -> None:
        """Record exc (traceback to the log) and show the banner on this screen."""
        line = record(self.app, what, exc)  # type: ignore[attr-defined]
        try:
            banner = self.query_one("#failure")  # type: ignore[attr-defined]
        except NoMatches:  # a dialog without a banner, or a screen not composed yet: a notification instead
            self.app.notify(line, severity="error", timeout=30)  # type: ignore[attr-defined]
            return
        banner.update(line)
        banner.display = True
