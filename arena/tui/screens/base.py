"""The frame every mode screen shares: the header with the mode tabs, the body, the footer."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Input
from ..widgets import AppHeader, ArenaFooter


class ArenaScreen(Screen):
    """Digits type into a focused field; Esc leaves the field, and then 1-5 switch screens again."""

    MODE = ""
    BINDINGS = [Binding("escape", "leave_field", "Leave field")]

    def compose(self) -> ComposeResult:
        yield AppHeader(self.MODE)
        yield from self.compose_body()
        yield ArenaFooter()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        self.app.mode_screens[self.MODE] = self

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "leave_field":  # shown in the footer only while a field has the cursor
            return isinstance(self.focused, Input)
        return True

    def action_leave_field(self) -> None:
        self.set_focus(None)
