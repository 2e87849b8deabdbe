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


class ProgramEditor(ContainsFailures, ModalScreen[str | None]):
    """Edit one program file (or write a new one); dismisses with the saved program id, or None."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save"),
        Binding("escape", "cancel", "Cancel", priority=True),  # (before the text area, which would only unfocus)
        Binding("ctrl+o", "external", "Open in $EDITOR"),
        Binding("f6", "focus_problems", "Problems"),
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
        self.query_one("#editor").border_subtitle = "ctrl+s save · esc cancel · f6 problems · ctrl+o $EDITOR"
        self.query_one(TextArea).focus()
        self._validate()

    @on(TextArea.Changed)
    def _changed(self) -> None:
        self._timer = getattr(self, "_timer", None)
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(0.25, self._validate)

    def _validate(self) -> None:
        lib = self.app.library
        text = self.query_one(TextArea).text
        self.programs, self.problems = check_program_text(text, self._name_for_errors(text), lib.entries, self.path,
                                                          lib.programs_path)
        status = self.query_one("#editor-status", Static)
        box = self.query_one("#editor-problems", OptionList)
        box.clear_options()
        if self.problems:
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
            status.update(Content.from_markup("[b $success]✓ valid:[/] $what", what=what))
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
        self._validate()
        if not self.problems and any(p.kind == "code" for p in self.programs):
            self._smoke()
        if self.problems:
            self.notify(f"Not saved: {len(self.problems)} problem(s), the first at {self.problems[0]}",
                        severity="error", timeout=6)
            return
        text = self.query_one(TextArea).text
        lib = self.app.library
        path = self.path or lib.programs_path / f"{self.programs[0].id}.yaml"
        created = not path.parent.exists()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        except OSError as exc:
            self.notify(f"Cannot write {path}: {exc}", severity="error")
            return
        if created:
            from .library import display_path

            self.app.notify(f"Created {display_path(path.parent)}/ for your programs (set $ARENA_PROGRAMS to "
                            "keep them elsewhere).", timeout=8, markup=False)
        self.saved_to = path
        self.dismiss(self.programs[0].id)

    def _smoke(self) -> None:
        """On save, a code program's smoke test in every game of the library (problems with line numbers)."""
        from arena.engine.sandbox import SandboxError
        from arena.engine.smoke import smoke_problems
        from arena.library.programs import ProgramEntry, source_line
        from arena.library.yamlio import read_documents

        text = self.query_one(TextArea).text
        name = self._name_for_errors(text)
        docs = read_documents(Path(name), text=text)
        entries = [ProgramEntry(p, Path(name), d.index, d.line, source_line(d, 1) if p.kind == "code" else None)
                   for p, d in zip(self.programs, docs)]
        try:
            self.problems = smoke_problems(entries, list(self.app.library.games.values()))
        except SandboxError as exc:  # the sandbox cannot start: say so, never save blind
            self.problems = [Problem(name, None, "source", f"the smoke test could not run: {exc}")]
        if self.problems:
            box = self.query_one("#editor-problems", OptionList)
            box.clear_options()
            for i, p in enumerate(self.problems):
                box.add_option(Option(Content(str(p)), id=str(i)))
            box.display = True

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
