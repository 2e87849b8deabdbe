"""The frame every mode screen shares: the header with the mode tabs, the body, the footer."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from ..widgets import AppHeader, ArenaFooter


class ArenaScreen(Screen):
    MODE = ""

    def compose(self) -> ComposeResult:
        yield AppHeader(self.MODE)
        yield from self.compose_body()
        yield ArenaFooter()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        self.app.mode_screens[self.MODE] = self
