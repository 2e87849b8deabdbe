"""The program editor: YAML in a text area, validated as you type, problems shown as file:line."""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static, TextArea
from textual.widgets.option_list import Option

from arena.errors import ConfigError, Problem
from ..failures import ContainsFailures
from ..widgets import ArenaFooter

NEW_PROGRAM = """\
id: my-program
kind: llm
model: local/qwen2.5-coder-0.5b
temperature: 0.7
description: What this program is for, in one line.
system_prompt: |
  You are playing a one-shot game against another program.
  You are shown its source and, when available, what a simulation of it did against you.
"""

NEW_BUILTIN = """\
id: my-titfortat
kind: builtin
# a rule of Arena's own: fairbot, cliquebot, cooperatebot, defectbot, randombot (params: p), and for
# repeated games titfortat, titfortwotats, grimtrigger, pavlov, alternator
strategy: titfortat
description: Cooperates in the first round, then plays what the opponent played in the last round.
"""

NEW_CODE = """\
id: my-code
kind: code
description: FairBot as code - copies the simulated opponent; grounded it cooperates.
source: |
  def decide(ctx):
      # ctx["opponent_action"]: what a simulation of the opponent played against this program
      # (None when grounded, with probability epsilon, or at the depth cap)
      if ctx["opponent_action"] is None:
          return ctx["game"]["default_action"]
      return ctx["opponent_action"]  # every branch returns an action of ctx["game"]["actions"]
"""

TEMPLATES = {"llm": NEW_PROGRAM, "builtin": NEW_BUILTIN, "code": NEW_CODE}


def check_program_text(text: str, name: str, entries: dict, path: Path | None, programs_dir: Path):
    """Validate the editor's text: (programs, problems). Problems name `name` and the line."""
    from arena.library.programs import parse_program
    from arena.library.yamlio import read_documents

    try:
        docs = read_documents(Path(name), text=text)
    except ConfigError as exc:
        return [], exc.problems
    programs, problems = [], []
    for doc in docs:
        try:
            prog = parse_program(doc)
        except ConfigError as exc:
            problems += exc.problems
            continue
        other = entries.get(prog.id)
        from arena.library.catalog import is_example

        if other is not None and is_example(other) and (path is None or not Path(path).exists()):
            other = None  # a copy of a shipped example, saved among the user's programs, hides it
        if other is not None and (path is None or Path(other.file).resolve() != Path(path).resolve()):
            problems.append(Problem(name, doc.line, "id",
                                    f"program id '{prog.id}' is already used in {Path(other.file).name}:{other.line}"))
        elif any(p.id == prog.id for p in programs):
            problems.append(Problem(name, doc.line, "id", f"program id '{prog.id}' appears twice in this file"))
        programs.append(prog)
    if path is None and len(programs) == 1 and not problems:
        target = programs_dir / f"{programs[0].id}.yaml"
        if target.exists():
            problems.append(Problem(name, docs[0].line, "id", f"{target.name} already exists: choose another id"))
    return programs, problems


def _smoke(entries: list, games: list) -> list[Problem]:
    """A code program's smoke test in every game of the library (problems with line numbers); the same
    on save and in the status line (any thread)."""
    from arena.engine.sandbox import SandboxError
    from arena.engine.smoke import smoke_problems

    try:
        return smoke_problems(entries, games)
    except SandboxError as exc:  # the sandbox cannot start: say so, never save blind
        name = str(entries[0].file) if entries else "new program"
        return [Problem(name, None, "source", f"the smoke test could not run: {exc}")]


class ProgramEditor(ContainsFailures, ModalScreen[str | None]):
    """Edit one program file (or write a new one); dismisses with the saved program id, or None."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save"),
        Binding("escape", "cancel", "Cancel", priority=True),  # (before the text area, which would only unfocus)
        Binding("ctrl+o", "external", "Open in $EDITOR"),
        Binding("f6", "focus_problems", "Problems"),
        # (the text area's own ctrl+a goes to the line's start, which home does too)
        Binding("ctrl+a", "select_all", "Select all", priority=True),
    ]

    def __init__(self, text: str, path: Path | None, title: str):
        super().__init__(classes="editor-screen")
        self.text, self.path, self.title_text = text, path, title
        self.problems: list[Problem] = []
        self.programs: list = []

    @property
    def name_shown(self) -> str:
        if self.path is not None:
            return self.path.name
        return "new program"

    def compose(self) -> ComposeResult:
        with Vertical(id="editor"):
            area = TextArea(self.text, id="yaml", language="yaml", show_line_numbers=True, tab_behavior="indent",
                            soft_wrap=True)
            area.indent_width = 2
            yield area
            yield Static(id="editor-status")
            yield OptionList(id="editor-problems")
        yield ArenaFooter()

    def on_mount(self) -> None:
        self.query_one("#editor").border_title = self.title_text
        self.query_one("#editor").border_subtitle = "ctrl+s save · esc cancel · f6 problems · ctrl+a select all · ctrl+o $EDITOR"
        self.query_one(TextArea).focus()
        self._validate()

    @on(TextArea.Changed)
    def _changed(self) -> None:
        self._timer = getattr(self, "_timer", None)
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(0.25, self._validate)

    def _validate(self) -> None:
        """The static checks at once; a code program's smoke test (the same as on save: every game of the
        library, both seats) in a worker thread, the status saying "checking…" until it is done."""
        lib = self.app.library
        text = self.query_one(TextArea).text
        self.programs, self.problems = check_program_text(text, self._name_for_errors(text), lib.entries, self.path,
                                                          lib.programs_path)
        self._check_seq = getattr(self, "_check_seq", 0) + 1
        self.checked = not (not self.problems and any(p.kind == "code" for p in self.programs))
        if not self.checked:
            self._show_status(checking=True)
            seq, entries = self._check_seq, self._entries(text)
            games = list(lib.games.values())
            self.run_worker(lambda: self._smoke_in_worker(seq, text, entries, games), thread=True,
                            group="smoke", exclusive=False, exit_on_error=False)
            return
        self._show_status()

    def _smoke_in_worker(self, seq: int, text: str, entries: list, games: list) -> None:
        problems = _smoke(entries, games)
        self.app.call_from_thread(self._smoked, seq, text, problems)

    def _smoked(self, seq: int, text: str, problems: list) -> None:
        if seq != getattr(self, "_check_seq", 0) or not self.is_attached:
            return  # edited since: a newer check is on its way
        self.problems = problems
        self.checked = True
        self._smoked_text = (text, problems)
        self._show_status()

    def _show_status(self, checking: bool = False) -> None:
        status = self.query_one("#editor-status", Static)
        box = self.query_one("#editor-problems", OptionList)
        box.clear_options()
        if checking:
            status.update(Content.from_markup("[b $accent]checking…[/] [dim](the smoke test: every game, both "
                                              "seats, as on save)[/]"))
            box.display = False
        elif self.problems:
            status.update(Content.from_markup("[b $error]✗ $n problem$s[/] [dim](enter on a problem jumps to its line)[/]",
                                              n=str(len(self.problems)), s="s" if len(self.problems) > 1 else ""))
            for i, p in enumerate(self.problems):
                box.add_option(Option(Content(str(p)), id=str(i)))
            box.highlighted = 0  # enter jumps to the first problem at once
            box.display = True
        else:
            what = ", ".join(f"{p.kind} program '{p.id}'" + (f" ({p.model})" if p.kind == "llm" else
                                                               "" if p.kind == "code" else f" ({p.strategy})")
                             for p in self.programs)
            smoked = " · smoke test passed in every game" if any(p.kind == "code" for p in self.programs) else ""
            status.update(Content.from_markup("[b $success]✓ valid:[/] $what[dim]$smoked[/]", what=what, smoked=smoked))
            box.display = False

    def _name_for_errors(self, text: str) -> str:
        if self.path is not None:
            return self.path.name
        import re

        m = re.search(r"^id:\s*([A-Za-z0-9_.-]+)", text, re.M)
        if m and m.group(1) in self.app.library.entries:  # not that file: the program it would clash with
            return "new program"
        return f"{m.group(1) if m else 'new'}.yaml"

    @on(OptionList.OptionSelected, "#editor-problems")
    def _jump(self, event: OptionList.OptionSelected) -> None:
        p = self.problems[int(event.option.id)]
        area = self.query_one(TextArea)
        if p.line:
            area.move_cursor((p.line - 1, 0))
        area.focus()

    def action_focus_problems(self) -> None:
        self.query_one("#editor-problems").focus()

    def action_save(self) -> None:
        lib = self.app.library
        text = self.query_one(TextArea).text
        self.programs, self.problems = check_program_text(text, self._name_for_errors(text), lib.entries, self.path,
                                                          lib.programs_path)
        if not self.problems and any(p.kind == "code" for p in self.programs):
            done = getattr(self, "_smoked_text", None)
            self._check_seq = getattr(self, "_check_seq", 0) + 1  # (a check still running is answered here)
            self.problems = done[1] if done is not None and done[0] == text else _smoke(self._entries(text),
                                                                                       list(lib.games.values()))
            self._smoked_text = (text, self.problems)
            self.checked = True
        self._show_status()
        if self.problems:
            self.notify(f"Not saved: {len(self.problems)} problem(s), the first at {self.problems[0]}",
                        severity="error", timeout=6)
            return
        path = self.path or lib.programs_path / f"{self.programs[0].id}.yaml"
        created = not path.parent.exists()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        except OSError as exc:
            self.notify(f"Cannot write {path}: {exc}", severity="error")
            return
        if created:
            from ..format import display_path

            self.app.notify(f"Created {display_path(path.parent)}/ for your programs (set $ARENA_PROGRAMS to "
                            "keep them elsewhere).", timeout=8, markup=False)
        self.saved_to = path
        self.dismiss(self.programs[0].id)

    def _entries(self, text: str) -> list:
        """The editor's programs as library entries (file:line for the smoke test's problems)."""
        from arena.library.programs import ProgramEntry, source_line
        from arena.library.yamlio import read_documents

        name = self._name_for_errors(text)
        docs = read_documents(Path(name), text=text)
        return [ProgramEntry(p, Path(name), d.index, d.line, source_line(d, 1) if p.kind == "code" else None)
                for p, d in zip(self.programs, docs)]

    def action_select_all(self) -> None:
        self.query_one(TextArea).select_all()

    def action_cancel(self) -> None:
        """Esc leaves the editor; with unsaved edits it asks first."""
        from .dialogs import Confirm

        if self.query_one(TextArea).text == self.text:
            self.dismiss(None)
            return
        self.app.push_screen(Confirm("Discard your changes?", "The file stays as it was saved.", "Discard", "Keep editing"),
                             lambda ok: self.dismiss(None) if ok else None)

    def action_external(self) -> None:
        """Continue in $EDITOR on a temporary copy, then bring the text back here (validated)."""
        area = self.query_one(TextArea)
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False, encoding="utf-8") as f:
            f.write(area.text)
            tmp = Path(f.name)
        try:
            with self.app.suspend():
                subprocess.call([*shlex.split(editor), str(tmp)])
            area.load_text(tmp.read_text(encoding="utf-8"))
        except Exception as exc:
            self.notify(f"cannot open {editor}: {exc}", severity="error")
        finally:
            tmp.unlink(missing_ok=True)
        self._validate()
