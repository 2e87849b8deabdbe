"""The frame every mode screen shares: the header with the mode tabs, the body, the footer."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Input, Static

from ..failures import ContainsFailures
from ..widgets import AppHeader, ArenaFooter


class KeepsStyles(Screen):
    """A screen shown again without Textual's restyle of all its widgets, unless the app changed.

    Textual re-applies the whole stylesheet to every widget of a screen each time it is shown again
    (ScreenResume.refresh_styles), in case what styles depend on changed while it was hidden: that was
    most of a screen switch (17 of 20 ms for Results on an idle machine, 3-5x that under a running
    tournament, benchmarks/tui_load.py). A widget's own class or pseudo-class changes restyle it even
    while its screen is hidden; what does not is the app's state: the stylesheet (a theme change bumps
    its update count), the app's classes and pseudo-classes (focus, dark, ansi, ...). Restyle when
    those changed since the screen was hidden, as Textual would; else show it as it was."""

    def _style_state(self) -> tuple:
        app = self.app
        # (a theme change bumps the update count and sets the app's `-theme-<name>` class)
        return app._css_update_count, frozenset(app.classes), frozenset(app.get_pseudo_classes())

    def _on_screen_suspend(self) -> None:  # (Screen's own handler runs after this one)
        self._styled_for = self._style_state()

    def _on_screen_resume(self, event: events.ScreenResume) -> None:  # (before Screen's own)
        if event.refresh_styles and getattr(self, "_styled_for", None) == self._style_state():
            event.refresh_styles = False


class ArenaScreen(ContainsFailures, KeepsStyles):
    """Digits type into a focused field; Esc leaves the field, and then 1-5 switch screens again. A bug in
    one of the screen's handlers is shown in a banner under the header (failures.py); Esc hides it."""

    MODE = ""
    BINDINGS = [Binding("escape", "leave_field", "Leave field")]

    def compose(self) -> ComposeResult:
        yield AppHeader(self.MODE)
        yield Static(id="failure", markup=False)
        yield from self.compose_body()
        yield ArenaFooter()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        self.app.mode_screens[self.MODE] = self

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "leave_field":  # shown in the footer only while a field has the cursor (or a failure is shown)
            return isinstance(self.focused, Input) or self._failure_shown()
        return True

    def _failure_shown(self) -> bool:
        banner = self.query("#failure")
        return bool(banner) and banner.first().display

    def action_leave_field(self) -> None:
        if self._failure_shown():
            self.query_one("#failure").display = False
            return
        self.set_focus(None)
