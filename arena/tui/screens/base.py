"""The frame every mode screen shares: the header with the mode tabs, the body, the footer."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Input, Static

from ..failures import ContainsFailures
from ..textual_patches import KeepsStyles
from ..widgets import AppHeader, ArenaFooter


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
