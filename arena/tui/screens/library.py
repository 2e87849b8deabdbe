"""Library: the programs and games of the YAML library, a detail pane, and program editing."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import DataTable, OptionList, Static
from textual.widgets.option_list import Option

from .. import format as fmt
from ..format import display_path
from ..textual_patches import SteadyTable
from ..widgets import Heat
from .base import ArenaScreen


def reflow(text: str) -> str:
    """Paragraphs of a YAML description on one line each (the terminal wraps them)."""
    paras = [" ".join(p.split()) for p in text.strip().split("\n\n")]
    return "\n\n".join(p for p in paras if p)


def program_label(p, width: int, group: str = "") -> Content:
    """'fair-llm  qwen2.5-coder…' on one line: the id, then (dim) the model or the strategy, after the
    library group the program comes from ('fair-code code/', 'tft papers/ · code')."""
    match p.kind:
        case "llm":
            what = p.model.split("/", 1)[-1]
        case "code":
            what = "code"
        case "builtin":
            what = p.strategy
        case _:
            what = p.kind
    if what == p.id:
        what = ""
    if group:
        what = f"{group}/" if what in ("", group) else f"{group}/ · {what}"
    room = max(0, width - len(p.id) - 1)
    return Content.from_markup("$id [dim]$what[/]", id=p.id, what=fmt.ellipsize(what, room) if room > 3 else "")


class LibraryScreen(ArenaScreen):
    MODE = "library"
    BINDINGS = [
        Binding("n", "new", "New"),
        Binding("d", "duplicate", "Duplicate"),
        Binding("e", "edit", "Edit"),
        Binding("E", "external_edit", "$EDITOR", key_display="E"),
        Binding("r", "reload", "Reload"),
        Binding("tab", "app.focus_next", "Next pane", show=False),
    ]

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="library"):
            with Vertical(id="lib-lists"):
                yield OptionList(id="programs", classes="panel")
                yield OptionList(id="games", classes="panel")
            with VerticalScroll(id="lib-detail", classes="panel"):
                yield Static(id="lib-problems")
                yield Static(id="detail-title")
                yield Static(id="detail-meta")
                yield Static(id="detail-text", classes="boxed")
                yield Static(id="detail-source", classes="boxed")
                yield SteadyTable(id="game-matrix", cursor_type="none", zebra_stripes=False, show_cursor=False)
                yield Static(id="detail-foot")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#programs").border_title = "Programs"
        self.query_one("#games").border_title = "Games"
        self.query_one("#lib-detail").border_title = "Details"
        self._fill()
        self.query_one("#programs", OptionList).focus()

    # -- lists -------------------------------------------------------------------------------------------
    def _fill(self, select: str | None = None) -> None:
        lib = self.app.library
        progs = self.query_one("#programs", OptionList)
        games = self.query_one("#games", OptionList)
        progs.clear_options()
        games.clear_options()
        for pid, e in lib.entries.items():
            progs.add_option(Option(program_label(e.program, 28, e.group), id=f"p:{pid}"))
        for gid, g in lib.games.items():
            size = "grid" if getattr(g, "markov", False) else f"{len(g.actions)}×{len(g.actions)}"
            games.add_option(Option(Content.from_markup("$id [dim]$size[/]", id=gid, size=size), id=f"g:{gid}"))
        progs.border_subtitle = f"{len(lib.entries)}"
        games.border_subtitle = f"{len(lib.games)}"
        problems = self.app.library_problems
        box = self.query_one("#lib-problems", Static)
        box.display = bool(problems)
        if problems:
            lines = "\n".join(f"✗ {p}" for p in problems[:12])
            more = f"\n… and {len(problems) - 12} more" if len(problems) > 12 else ""
            box.update(Content.from_markup("[b $error]Files left out of the library:[/]\n$p", p=lines + more))
        target = select or (f"p:{next(iter(lib.entries))}" if lib.entries else None)
        if target:
            lst = progs if target.startswith("p:") else games
            try:
                lst.highlighted = lst.get_option_index(target)
            except Exception:
                lst.highlighted = 0 if lst.option_count else None
        if target is None:
            self._show_none()

    @on(OptionList.OptionHighlighted)
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        oid = event.option.id or ""
        if oid.startswith("p:"):
            self._show_program(oid[2:])
        elif oid.startswith("g:"):
            self._show_game(oid[2:])

    @on(OptionList.OptionSelected, "#programs")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.action_edit()

    def _current_program(self) -> str | None:
        lst = self.query_one("#programs", OptionList)
        if lst.highlighted is None or not lst.option_count:
            return None
        return (lst.get_option_at_index(lst.highlighted).id or "")[2:]

    # -- detail --------------------------------------------------------------------------------------------
    def _show_none(self) -> None:
        self.query_one("#detail-title", Static).update("No programs yet: press n to write one.")
        for w in ("#detail-meta", "#detail-text", "#detail-source", "#game-matrix", "#detail-foot"):
            self.query_one(w).display = False

    def _show_program(self, pid: str) -> None:
        lib = self.app.library
        e = lib.entries.get(pid)
        if e is None:
            return
        p = e.program
        title = self.query_one("#detail-title", Static)
        title.update(Content.from_markup("[b]$id[/]  [dim]$where[/]\n$desc", id=p.id,
                                         where=f"{display_path(e.file)}:{e.line}", desc=reflow(p.description)))
        eps = "the tournament's" if p.epsilon is None else f"{p.epsilon:g}"
        if p.kind == "llm":
            meta = ("[b]kind[/] LLM   [b]model[/] $model   [b]temperature[/] $t   [b]ε[/] $eps   [b]max tokens[/] $mt")
            self.query_one("#detail-meta", Static).update(Content.from_markup(
                meta, model=p.model, t=f"{p.temperature:g}", eps=eps, mt=str(p.max_tokens)))
            text = self.query_one("#detail-text", Static)
            text.update(Content(p.system_prompt.rstrip()))
            text.border_title = "system prompt"
        elif p.kind == "code":
            from ..codeview import highlighted

            self.query_one("#detail-meta", Static).update(Content.from_markup(
                "[b]kind[/] code   [b]simulates[/] $sim   [b]ε[/] $eps   [b]limits[/] $ms ms, $mb MB a decision",
                sim="yes" if p.simulates else "no (acts directly)", eps=eps, ms=str(p.time_limit_ms),
                mb=str(p.memory_mb)))
            text = self.query_one("#detail-text", Static)
            text.update(highlighted(p.code))
            text.border_title = "source (what opponents are shown)"
        else:
            params = ", ".join(f"{k}={v}" for k, v in p.params.items()) or "none"
            self.query_one("#detail-meta", Static).update(Content.from_markup(
                "[b]kind[/] built-in   [b]strategy[/] $s   [b]params[/] $params   [b]ε[/] $eps",
                s=p.strategy, params=params, eps=eps))
            self.query_one("#detail-text", Static).display = False
        src = self.query_one("#detail-source", Static)
        src.update(Content(p.source()))
        src.border_title = "what opponents are shown"
        for w in ("#detail-meta", "#detail-source", "#detail-foot"):
            self.query_one(w).display = True
        self.query_one("#detail-text").display = p.kind in ("llm", "code")
        self.query_one("#detail-source").display = p.kind != "code"  # the highlighted source above is it
        self.query_one("#game-matrix").display = False
        from arena.library.catalog import is_example

        if is_example(e):
            self.query_one("#detail-foot", Static).update(Content.from_markup(
                "[dim]An example shipped with Arena (read-only): e edits a copy, saved as $to · d duplicate · "
                "n new program[/]", to=display_path(lib.programs_path / f"{p.id}.yaml")))
        else:
            self.query_one("#detail-foot", Static).update(Content.from_markup(
                "[dim]e edit · d duplicate · E open in $ed · n new program · saved in $home[/]", ed="$EDITOR",
                home=display_path(e.file.parent)))

    def _show_game(self, gid: str) -> None:
        g = self.app.library.games.get(gid)
        if g is None:
            return
        self.query_one("#detail-title", Static).update(Content.from_markup(
            "[b]$name[/]  [dim]$id[/]", name=g.name, id=g.id))
        if getattr(g, "markov", False):  # a game with a state: its environment's parameters, no matrix
            self._show_markov_game(g)
            return
        coop = ", ".join(f"({a}, {b})" for a, b in g.cooperative)
        self.query_one("#detail-meta", Static).update(Content.from_markup(
            "[b]actions[/] $actions   [b]cooperative[/] $coop\n[b]default[/] $d   [b]defect[/] $x   $common",
            actions=" ".join(g.actions), coop=coop, d=g.default_label, x=g.defect_action,
            common="[common payoff]" if g.common_payoff else ""))
        text = self.query_one("#detail-text", Static)
        text.update(Content(reflow(g.description)))
        text.border_title = "description (shown to LLMs)"
        table = self.query_one("#game-matrix", DataTable)
        table.clear(columns=True)
        heat = Heat(self.app)
        table.add_column(Text("row \\ col", style="dim"))
        for a in g.actions:
            table.add_column(Text(a, style="bold", justify="center"))
        for i, a in enumerate(g.actions):
            cells = []
            for j, b in enumerate(g.actions):
                r, c = g.payoffs[i][j]
                label = f"{r:g}" if g.common_payoff else f"{r:g}, {c:g}"
                style = heat.style(1.0) if (a, b) in g.cooperative_set else ""
                cells.append(Text(label, style=style, justify="center"))
            table.add_row(Text(a, style="bold"), *cells)
        table.border_title = "payoffs"
        self.query_one("#detail-source").display = False
        self.query_one("#detail-foot", Static).update(Content.from_markup(
            "[dim]cells: (row payoff, column payoff) · cooperative outcomes in colour · games/$f[/]",
            f=f"{g.id}.yaml"))
        self.query_one("#detail-foot").display = True
        self.query_one("#detail-meta").display = True
        self.query_one("#detail-text").display = True
        table.display = True

    def _show_markov_game(self, g) -> None:
        shown = "   ".join(f"[b]{k}[/] {v}" for k, v in g.parameters().items() if v is not None)
        self.query_one("#detail-meta", Static).update(Content.from_markup(
            "[b]actions[/] $actions\n" + shown, actions=" ".join(g.actions)))
        text = self.query_one("#detail-text", Static)
        text.update(Content(reflow(g.description)))
        text.border_title = "description (shown to LLMs)"
        self.query_one("#game-matrix", DataTable).display = False
        self.query_one("#detail-source").display = False
        self.query_one("#detail-foot", Static).update(Content.from_markup(
            "[dim]a game with a state: each step's rewards come from the lbforaging environment "
            "(docs/markov-games.md) · games/$f[/]", f=f"{g.id}.yaml"))
        for w in ("#detail-foot", "#detail-meta", "#detail-text"):
            self.query_one(w).display = True

    # -- editing -------------------------------------------------------------------------------------------
    def _open_editor(self, text: str, path: Path | None, title: str) -> None:
        from .editor import ProgramEditor

        def done(saved: str | None) -> None:
            if saved:
                self.app.reload_library()
                self._fill(select=f"p:{saved}")
                self.notify(f"Saved program '{saved}'.")

        self.app.push_screen(ProgramEditor(text, path, title), done)

    def action_new(self) -> None:
        """A template for each kind of program: LLM, built-in (a rule of Arena's), code."""
        from .dialogs import ChooseTemplate
        from .editor import TEMPLATES

        names = {"llm": "New LLM program", "builtin": "New built-in program", "code": "New code program"}

        def chosen(kind: str | None) -> None:
            if kind in TEMPLATES:
                self._open_editor(TEMPLATES[kind], None, names[kind])

        self.app.push_screen(ChooseTemplate(), chosen)

    def action_duplicate(self) -> None:
        pid = self._current_program()
        if pid is None:
            return
        from arena.library.yamlio import dump_yaml

        p = self.app.library.entries[pid].program
        data = p.model_dump(mode="json", exclude_defaults=False, by_alias=True)  # a code program's `source`
        data["id"] = _free_id(f"{pid}-copy", self.app.library.entries)
        data = {k: v for k, v in data.items() if v not in (None, "", {})}
        self._open_editor(dump_yaml(_ordered(data)), None, f"Duplicate of {pid}")

    def action_edit(self) -> None:
        pid = self._current_program()
        if pid is None:
            return
        e = self.app.library.entries[pid]
        from arena.library.catalog import is_example

        if is_example(e):  # the installed package's files are never written: the edit is saved as a copy
            to = self.app.library.programs_path / f"{pid}.yaml"
            self._open_editor(_one_program(e), None, f"Edit a copy of example {pid} (saved as {display_path(to)})")
            return
        self._open_editor(e.file.read_text(encoding="utf-8"), e.file, f"Edit {display_path(e.file)}")

    def action_external_edit(self) -> None:
        pid = self._current_program()
        if pid is None:
            return
        from arena.library.catalog import is_example

        if is_example(self.app.library.entries[pid]):
            self.notify("An example shipped with Arena is not edited in place: e edits a copy in the app, "
                        "d duplicates it.", severity="warning", timeout=6)
            return
        path = self.app.library.entries[pid].file
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
        try:
            with self.app.suspend():
                subprocess.call([*shlex.split(editor), str(path)])
        except Exception as exc:  # no terminal to hand over (e.g. headless)
            self.notify(f"cannot open {editor}: {exc}", severity="error")
            return
        self.action_reload()
        bad = [p for p in self.app.library_problems if Path(p.file).resolve() == path.resolve()]
        if bad:
            self._open_editor(path.read_text(encoding="utf-8"), path, f"Fix {display_path(path)}")

    def action_reload(self) -> None:
        self.app.reload_library()
        self._fill(select=f"p:{self._current_program()}" if self._current_program() else None)
        n = len(self.app.library_problems)
        self.notify("Library reloaded." + (f" {n} problem(s)." if n else ""), severity="warning" if n else "information")


FIELD_ORDER = ("id", "kind", "description", "model", "strategy", "params", "temperature", "epsilon", "max_tokens",
               "system_prompt", "simulates", "time_limit_ms", "memory_mb", "source")


def _ordered(data: dict) -> dict:
    return {k: data[k] for k in (*FIELD_ORDER, *data) if k in data}


def _one_program(e) -> str:
    """The YAML of one program of a file (the whole file when it holds only that one)."""
    text = e.file.read_text(encoding="utf-8")
    if e.index is None:
        return text
    from arena.library.yamlio import dump_yaml

    data = e.program.model_dump(mode="json", exclude_defaults=False, by_alias=True)
    return dump_yaml(_ordered({k: v for k, v in data.items() if v not in (None, "", {})}))


def _free_id(base: str, taken) -> str:
    if base not in taken:
        return base
    i = 2
    while f"{base}{i}" in taken:
        i += 1
    return f"{base}{i}"
