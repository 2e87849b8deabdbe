"""Small modal dialogs."""

from __future__ import annotations

from typing import TypeVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from ..failures import ContainsFailures

T = TypeVar("T")


class Dialog(ContainsFailures, ModalScreen[T]):
    """A question, an optional detail and a row of buttons ((id, label, variant)); the button `focus`
    has the focus when the dialog opens."""

    def __init__(self, question: str, detail: str, choices: list[tuple[str, str, str]], focus: str | None = None):
        super().__init__(classes="dialog-screen")
        self.question, self.detail, self.choices, self.focus_id = question, detail, choices, focus

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, classes="dialog-question")
            if self.detail:
                yield Static(self.detail, classes="dialog-detail")
            with Horizontal(classes="dialog-buttons"):
                for cid, label, variant in self.choices:
                    yield Button(label, id=cid, variant=variant)

    def on_mount(self) -> None:
        if self.focus_id:
            self.query_one(f"#{self.focus_id}", Button).focus()


class Confirm(Dialog[bool]):
    """Yes/no question; y (or the Yes button) confirms, Escape, n or Enter on the focused Back declines
    (Enter never runs the destructive answer by accident)."""

    BINDINGS = [
        Binding("escape,n", "answer(False)", "No"),
        Binding("y", "answer(True)", "Yes"),
    ]

    def __init__(self, question: str, detail: str = "", yes: str = "Yes", no: str = "Back"):
        super().__init__(question, detail, [("no", no, "default"), ("yes", yes, "warning")], focus="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, ok: bool) -> None:
        self.dismiss(ok)


class Choose(Dialog[str | None]):
    """A question with several answers (buttons: (id, label, variant)); Escape answers None."""

    BINDINGS = [Binding("escape", "answer(None)", "Back")]

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "back" else event.button.id)

    def action_answer(self, choice: str | None) -> None:
        self.dismiss(choice)


class ChooseTemplate(Choose):
    """Which kind of program `n` starts from: l LLM, b built-in, c code (or the buttons)."""

    BINDINGS = [Binding("l", "answer('llm')", "LLM"), Binding("b", "answer('builtin')", "Built-in"),
                Binding("c", "answer('code')", "Code"), Binding("escape", "answer(None)", "Back")]

    def __init__(self):
        super().__init__("New program: which kind?",
                         "l  LLM: a model asked with your system prompt, shown the opponent's source\n"
                         "b  built-in: a rule of Arena's (fairbot, titfortat, grimtrigger, ...)\n"
                         "c  code: a Python decide(ctx) run in a sandbox, which may simulate the opponent",
                         [("llm", "LLM", "primary"), ("builtin", "Built-in", "default"), ("code", "Code", "default")],
                         focus="llm")  # (esc: back)
