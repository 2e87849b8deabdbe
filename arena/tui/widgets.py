"""Widgets shared by the screens: the header with mode tabs, the simulation tree, the LLM transcript,
the pair matrix. They display what core gives them; none of them computes a result."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.color import Color
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.strip import Strip
from textual.widgets import Checkbox, SelectionList, Static, Tree
from textual.widgets.option_list import OptionDoesNotExist
from textual.widgets.tree import TreeNode

from . import format as fmt
from .codeview import code_node_widgets
from .textual_patches import SteadyFooter, SteadyTable, restyle_tree

MODES = (("library", "Library"), ("setup", "Setup"), ("live", "Live"), ("results", "Results"), ("history", "History"))


# --- header ------------------------------------------------------------------------------------------
class ModeTab(Static):
    def __init__(self, key: str, mode: str, title: str, active: bool):
        super().__init__(f" {key} {title} ", classes="mode-tab" + (" -active" if active else ""))
        self.mode = mode

    def on_click(self) -> None:
        self.app.switch_mode(self.mode)


class AppHeader(Horizontal):
    """Brand, the five mode tabs (keys 1-5), and the running tournament's status on the right."""

    def __init__(self, mode: str):
        super().__init__(id="app-header")
        self.mode = mode

    def compose(self) -> ComposeResult:
        yield Static(Content.from_markup("[b]◆ Arena[/]"), id="brand")
        for i, (mode, title) in enumerate(MODES, 1):
            yield ModeTab(str(i), mode, title, mode == self.mode)
        yield Static("", id="run-status")

    def on_mount(self) -> None:
        self.watch(self.app, "run_label", self._show_run, init=True)

    def _show_run(self, label: str) -> None:
        self.query_one("#run-status", Static).update(Content.from_markup(label) if label else "", layout=False)


# --- simulation tree ------------------------------------------------------------------------------
MODE_TEXT = {
    "simulated": ("◇", "simulates"),
    "grounded": ("●", "grounded"),
    "capped": ("■", "capped"),
    "direct": ("○", "acts directly"),
}


class ArenaFooter(SteadyFooter):
    """The footer of every screen: Textual's, rebuilt only when the keys it shows change
    (textual_patches.SteadyFooter)."""


@dataclass
class StoredNode:
    """A stored node (row of `nodes`) with its LLM calls (rows of `llm_calls`), shaped like a core Node."""

    index: int
    parent: int | None
    side: str
    depth: int
    program: str
    mode: str
    action: str | None
    error: str | None
    node_id: int
    calls: list[dict] = field(default_factory=list)
    code: dict | None = None  # a code program's value and printed output (nodes.code)
    round: int = 0  # the round of its match

    @classmethod
    def from_rows(cls, nodes: list[dict], calls: list[dict]) -> list[StoredNode]:
        by_node: dict[int, list[dict]] = {}
        for c in calls:
            by_node.setdefault(c["node_id"], []).append(c)
        idx = {n["id"]: n["idx"] for n in nodes}
        return [cls(n["idx"], idx.get(n["parent_id"]),
                    n["side"], n["depth"], n["program"], n["mode"], n["action"], n["error"], n["id"],
                    by_node.get(n["id"], []), json.loads(n["code"]) if n.get("code") else None,
                    n.get("round", 0)) for n in nodes]


def call_field(call: Any, name: str, default: Any = None) -> Any:
    """A field of a CallRecord (live) or an llm_calls row (stored)."""
    if isinstance(call, dict):
        return call.get(name, default)
    return getattr(call, name, default)


@dataclass
class Elided:
    """The middle of a chain too deep to show: one tree line stands for these nodes (shallowest first)."""

    nodes: list[Any]

    @property
    def action(self) -> str | None:  # the shallowest hidden node resolves last: then all of them have
        return self.nodes[0].action

    @property
    def error(self) -> str | None:
        return self.nodes[0].error

    @property
    def calls(self) -> list:
        return []

    def summary(self, pending: bool) -> str:
        first, last = self.nodes[0].depth, self.nodes[-1].depth
        text = f"⋮ {len(self.nodes):,} levels not shown (d{first}–d{last})"
        if pending:
            done = sum(n.action is not None or n.error is not None for n in self.nodes)
            text += f", {done:,} resolved"
        return text


def elide(nodes: Sequence[Any], head: int, tail: int) -> dict[int, Elided]:
    """Which nodes a tree shows: a chain (each node has at most one child) deeper than head + tail + 1
    levels keeps its first `head` and last `tail` levels; the levels between become one Elided line.
    Returns {node index: its Elided} for the hidden nodes."""
    root: dict[int, Any] = {}  # node index -> the root of its chain (nodes come parents first)
    deepest: dict[int, int] = {}
    for n in nodes:
        r = n if n.parent is None else root[n.parent]
        root[n.index] = r
        deepest[r.index] = max(deepest.get(r.index, 0), n.depth)
    hidden: dict[int, Elided] = {}
    groups: dict[int, Elided] = {}
    for n in nodes:
        r = root[n.index]
        levels = deepest[r.index] - r.depth + 1
        if levels > head + tail + 1 and head <= n.depth - r.depth < levels - tail:
            group = groups.setdefault(r.index, Elided([]))
            group.nodes.append(n)
            hidden[n.index] = group
    return hidden


class SimTree(Tree):
    """One trial's simulation tree: the row decision's chain and the column decision's chain.

    Labels are rendered from the node objects at paint time (theme-aware styles from the component
    classes), so a node that resolves only needs a refresh. A chain deeper than HEAD + TAIL + 1 levels
    shows its first HEAD and last TAIL levels around one "⋮ k levels not shown" line: a FairBot with a
    tiny epsilon makes chains of thousands of nodes, which would nest past any screen's width (and past
    Python's recursion limit in Tree's layout).
    """

    HEAD = 40
    TAIL = 3
    COMPACT_BELOW = 48  # columns: narrower trees leave out the words 'simulates', 'grounded', ...

    COMPONENT_CLASSES = {"simtree--coop", "simtree--defect", "simtree--action", "simtree--muted",
                         "simtree--error", "simtree--active", "simtree--seat"}
    DEFAULT_CSS = """
    SimTree > .simtree--coop { color: $success; text-style: bold; }
    SimTree > .simtree--defect { color: $error; text-style: bold; }
    SimTree > .simtree--action { color: $warning; text-style: bold; }
    SimTree > .simtree--muted { color: $text-muted; }
    SimTree > .simtree--error { color: $error; }
    SimTree > .simtree--active { color: $accent; text-style: bold; }
    SimTree > .simtree--seat { color: $primary; text-style: bold; }
    """

    def __init__(self, **kw):
        super().__init__("trial", **kw)
        self.show_root = False
        self.guide_depth = 2
        self.key: Any = None
        self.finished = True
        self.coop_action: str | None = None
        self.defect_action: str | None = None
        self.opponents: tuple[str, str] = ("", "")
        self._shown_nodes: list[TreeNode] = []
        self._node_count = 0

    def show(self, key: Any, nodes: Sequence[Any], *, finished: bool, coop_action: str | None = None,
             defect_action: str | None = None, opponents: tuple[str, str] = ("", "")) -> bool:
        """Show a trial's nodes; returns True when the tree was rebuilt (a different trial)."""
        self.finished = finished
        if key == self.key and len(nodes) == self._node_count:
            for tn in self._shown_nodes:
                tn.refresh()
            return False
        self.key = key
        self.coop_action, self.defect_action, self.opponents = coop_action, defect_action, opponents
        self.clear()
        hidden = elide(nodes, self.HEAD, self.TAIL)
        has_child = {n.parent for n in nodes if n.parent is not None}
        made: dict[int, TreeNode] = {}
        self._shown_nodes = []
        self._node_count = len(nodes)
        for n in nodes:
            parent = made.get(n.parent) if n.parent is not None else self.root
            if parent is None:
                parent = self.root
            group = hidden.get(n.index)
            if group is not None:
                if group.nodes[0] is n:  # the group's one line, where its first node would be
                    tn = parent.add("", data=group, expand=True)
                    self._shown_nodes.append(tn)
                made[n.index] = made.get(n.parent) if group.nodes[0] is not n else tn
                continue
            if n.index in has_child:
                tn = parent.add("", data=n, expand=True)
            else:
                tn = parent.add_leaf("", data=n)
            made[n.index] = tn
            self._shown_nodes.append(tn)
        return True

    def notify_style_update(self) -> None:
        """Fresh line caches and a repaint, without Tree's layout of the whole screen
        (textual_patches.restyle_tree)."""
        restyle_tree(self)

    def reset_tree(self, message: str = "") -> None:
        self.key = None
        self._shown_nodes = []
        self._node_count = 0
        self.clear()

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(name, partial=True)

    def _pending(self, n: Any) -> bool:
        return not self.finished and n.action is None and n.error is None

    def is_asking(self, node: TreeNode) -> bool:
        """A pending node whose simulation below has resolved (or that has none) is being asked now."""
        n = node.data
        if n is None or isinstance(n, Elided) or not self._pending(n):
            return False
        child = next(iter(node.children), None)
        return child is None or child.data.action is not None or child.data.error is not None

    def render_label(self, node: TreeNode, base_style: Style, style: Style) -> Text:
        n = node.data
        if n is None:
            return Text("")
        if isinstance(n, Elided):
            text = Text(n.summary(not self.finished), self._style("simtree--muted"))
            text.stylize(style)
            return text
        glyph, verb = MODE_TEXT.get(n.mode, ("·", n.mode or "?"))
        text = Text()
        if n.parent is None:
            seat = "ROW" if n.side == "row" else "COL"
            text.append(f"{seat} ", self._style("simtree--seat"))
        text.append(f"d{n.depth} ", self._style("simtree--muted"))
        text.append(f"{glyph} ")
        text.append(n.program)
        if self.size.width >= self.COMPACT_BELOW:  # narrow: the glyph alone says how the node decided
            text.append(f"  {verb}", self._style("simtree--muted"))
        if n.action is not None:
            cls = ("simtree--coop" if n.action == self.coop_action else
                   "simtree--defect" if n.action == self.defect_action else "simtree--action")
            text.append("  → ", self._style("simtree--muted"))
            text.append(n.action, self._style(cls))
        elif n.error is not None:
            what = "refused" if "ACTION" in n.error or "refus" in n.error else n.error
            text.append(f"  ✗ {fmt.ellipsize(what, 40)}", self._style("simtree--error"))
        elif self._pending(n):
            if self.is_asking(node):
                text.append("  ⟳ asking…", self._style("simtree--active"))
            else:
                text.append("  ⋯", self._style("simtree--muted"))
        calls = n.calls or ()
        if calls:
            latency = sum(call_field(c, "latency_ms") or 0 for c in calls)
            cached = any(call_field(c, "cached") for c in calls)
            what = f"{len(calls)} call{'s' if len(calls) != 1 else ''}"
            text.append(f"  {what} · {fmt.ms(latency)}" + (" · cached" if cached else ""), self._style("simtree--muted"))
        text.stylize(style)
        return text


# --- transcript -----------------------------------------------------------------------------------
class Transcript(VerticalScroll):
    """The LLM calls of one node: every attempt, its messages, the raw answer and the parsed action."""

    def compose(self) -> ComposeResult:
        yield Static("Select a node of the simulation tree to see its LLM transcript.", classes="hint")

    def show_hint(self, text: str) -> None:
        self.remove_children()
        self.mount(Static(Content(text), classes="hint"))

    def show(self, node: Any | None, calls: Sequence[Any] | None = None, note: str = "",
             ctx: dict | None = None) -> None:
        """`ctx`: the node is a code program's (its ctx, value, output and error are shown)."""
        self.remove_children()
        if node is None:
            self.mount(Static("Select a node of the simulation tree to see its LLM transcript.", classes="hint"))
            return
        if isinstance(node, Elided):
            self.mount(Static(Content(f"{len(node.nodes):,} levels of this chain are not shown: select a node "
                                      "above or below them."), classes="hint"))
            return
        calls = list(node.calls if calls is None else calls)
        widgets: list[Static] = []
        glyph, verb = MODE_TEXT.get(node.mode, ("·", node.mode))
        head = Content.from_markup(
            "[b]$program[/] [dim]($side seat, depth $depth)[/] $glyph $verb", program=node.program,
            side=node.side, depth=str(node.depth), glyph=glyph, verb=verb)
        if node.action is not None:
            head += Content.from_markup("  → [b]$a[/]", a=node.action)
        elif node.error:
            head += Content.from_markup("  [$error]✗ $e[/]", e=node.error)
        widgets.append(Static(head, classes="tx-node"))
        if ctx is not None:
            widgets.extend(code_node_widgets(node, ctx))
        elif not calls:
            if note:
                widgets.append(Static(Content(note), classes="hint"))
            elif node.action is None and node.error is None:
                widgets.append(Static("Not asked yet.", classes="hint"))
            else:
                widgets.append(Static("No LLM call: a built-in program decided by its rule.", classes="hint"))
        for c in calls:
            widgets.extend(self._call(c))
        self.mount_all(widgets)
        self.scroll_home(animate=False)

    def _call(self, c: Any) -> list[Static]:
        params = call_field(c, "params") or {}
        status = call_field(c, "status") or "ok"
        bits = [f"attempt {call_field(c, 'attempt', 1)}"]
        if params.get("purpose"):
            bits.append(str(params["purpose"]))
        bits.append(status)
        if call_field(c, "cached"):
            bits.append("cache hit")
        else:
            bits.append(fmt.ms(call_field(c, "latency_ms")))
        pt, ct = call_field(c, "prompt_tokens"), call_field(c, "completion_tokens")
        if pt is not None or ct is not None:
            bits.append(f"tokens {pt if pt is not None else '?'}→{ct if ct is not None else '?'}")
        if "temperature" in params:
            bits.append(f"T {params['temperature']:g}")
        model = f"{call_field(c, 'provider')}/{call_field(c, 'model')}"
        cls = "tx-call" + (" -bad" if status not in ("ok",) else "")
        out = [Static(Content.from_markup("[b]$bits[/]  [dim]$model[/]", bits=" · ".join(bits), model=model), classes=cls)]
        for m in call_field(c, "messages") or []:
            role = str(m.get("role", "?"))
            body = m.get("content")
            if not isinstance(body, str):
                body = json.dumps(body, ensure_ascii=False, indent=1)
            w = Static(Content(body.rstrip()), classes=f"tx-msg -{role}")
            w.border_title = role
            out.append(w)
        response = call_field(c, "response")
        error = call_field(c, "error")
        if response is not None:
            w = Static(Content(response.rstrip() or "(empty answer)"), classes="tx-msg -answer")
            w.border_title = "raw answer"
            out.append(w)
        if error:
            out.append(Static(Content.from_markup("[$error]error:[/] $e", e=error), classes="tx-parsed"))
        parsed = call_field(c, "parsed_action")
        if response is not None:
            out.append(Static(Content.from_markup("parsed action: [b]$a[/]", a=parsed) if parsed else
                              Content.from_markup("parsed action: [$error]none[/]"), classes="tx-parsed"))
        return out


# --- matrices ---------------------------------------------------------------------------------------
def short(name: str, width: int = 12) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


class Heat:
    """Colours for shares in [0, 1] between the theme's error and success colours."""

    def __init__(self, app):
        v = app.theme_variables
        self.low = Color.parse(v.get("error", "red"))
        self.high = Color.parse(v.get("success", "green"))
        self.mid = Color.parse(v.get("warning", "yellow"))
        self.muted = v.get("text-muted", "grey50")

    def style(self, x: float) -> str:
        if x is None or math.isnan(x):
            return self.muted
        c = self.low.blend(self.mid, x * 2) if x < 0.5 else self.mid.blend(self.high, (x - 0.5) * 2)
        return f"bold {c.hex}"

    def text(self, label: str, x: float) -> Text:
        if x is None or math.isnan(x):  # no share to colour (a payoff, an empty cell)
            return Text(label, style="" if label not in ("·", "–") else self.muted, justify="right")
        return Text(label, style=self.style(x), justify="right")


class PairMatrix(SteadyTable):
    """Row program × column program. Columns are numbered (the row labels carry the numbers) so that
    ten programs fit in half a screen; cells come from the caller as (label, share)."""

    MIN_CELL = 4  # '100%'
    name_width = 16  # row labels are cut to this (Live narrows it to fit the whole matrix)

    def on_mount(self) -> None:
        self.cursor_type = "cell"
        self.zebra_stripes = False
        self.app.theme_changed_signal.subscribe(self, lambda _t: self._redraw())
        self._last: tuple | None = None

    @staticmethod
    def width_for(programs: Sequence[str], cell: int = 5, name_width: int = 16) -> int:
        """Cells needed to show the whole matrix (label column, n cell columns, padding)."""
        label = max((len(short(p, name_width)) for p in programs), default=8) + 4
        return label + 2 + len(programs) * (cell + 2)

    @classmethod
    def name_width_for(cls, programs: Sequence[str], room: int, cell: int = MIN_CELL) -> int:
        """The longest row label (4 to 16 characters) with which the whole matrix fits in `room` columns:
        names are abbreviated so that no number is ever cut off at the edge."""
        spare = room - (4 + 2 + len(programs) * (cell + 2))
        return max(4, min(16, spare))

    def set_name_width(self, width: int) -> None:
        if width != self.name_width:
            self.name_width = width
            self._redraw()

    def set_cells(self, programs: Sequence[str], cells: dict[tuple[str, str], tuple[str, float]],
                  corner: str = "row \\ col") -> None:
        last = self._last
        self._last = (tuple(programs), dict(cells), corner)
        if (last is not None and last[0] == self._last[0] and last[2] == corner and self.row_count == len(programs)
                and self._cell_width(cells) == self._cell_width(last[1])):
            heat = Heat(self.app)  # same layout: touch only the cells that changed
            for pair, value in cells.items():
                if last[1].get(pair) != value:
                    self.update_cell(pair[0], pair[1], heat.text(*value))
            return
        self._redraw()

    @classmethod
    def _cell_width(cls, cells: dict) -> int:
        return max([cls.MIN_CELL] + [len(label) for label, _ in cells.values()])

    def _redraw(self) -> None:
        if not self._last:
            return
        programs, cells, corner = self._last
        heat = Heat(self.app)
        cursor = self.cursor_coordinate
        self.clear(columns=True)
        self.add_column(Text(corner, style="dim"), key="_row")
        width = self._cell_width(cells)
        for i, p in enumerate(programs, 1):
            # a fixed width: cells start as '·' and later show '100%' (update_cell keeps the width)
            self.add_column(Text(str(i), justify="right", style="bold"), width=width, key=p)
        for i, r in enumerate(programs, 1):
            row = [Text.assemble((f"{i:>2} ", "dim"), (short(r, self.name_width), "bold"))]
            for c in programs:
                label, share = cells.get((r, c), ("·", math.nan))
                row.append(heat.text(label, share))
            self.add_row(*row, key=r)
        if self.row_count and cursor.row < self.row_count and 1 <= cursor.column <= len(programs):
            self.cursor_coordinate = cursor
        elif self.row_count and programs:
            self.cursor_coordinate = (0, 1)  # on a cell, not on the row labels


# --- bar chart -------------------------------------------------------------------------------------
def bar_lines(rows: Sequence[tuple[str, float]], width: int) -> list[tuple[str, int, str]]:
    """(label, bar length, value text) per row, in the rows' order, for a chart `width` cells wide: the
    label, its bar and its value come from the same row (plotext's horizontal bars drew 21 pairs in too
    few lines: labels without bars, bars under other labels)."""
    if not rows:
        return []
    label_w = min(max(len(label) for label, _ in rows), max(8, width // 2))
    bar_w = max(4, width - label_w - 7)  # ' ' label ' ' bar ' 100%'
    return [(fmt.ellipsize(label, label_w).ljust(label_w), round(max(0.0, min(1.0, x)) * bar_w),
             fmt.pct(x)) for label, x in rows]


class BarChart(Static):
    """Horizontal bars of shares in [0, 1], one line per row: label, bar, value (drawn at the widget's
    width, so it stays right when resized)."""

    DEFAULT_CSS = "BarChart { height: auto; }"

    def __init__(self, **kw):
        super().__init__(**kw)
        self.rows: list[tuple[str, float]] = []
        self.axis = ""

    def set_bars(self, rows: Sequence[tuple[str, float]], axis: str = "") -> None:
        self.rows, self.axis = list(rows), axis
        self.refresh(layout=True)

    def lines(self, width: int | None = None) -> list[tuple[str, int, str]]:
        return bar_lines(self.rows, width if width is not None else max(20, self.content_region.width or 80))

    def render(self) -> Content:
        heat = Heat(self.app)
        width = max(20, self.content_region.width or 80)
        out = Content("")
        lines = self.lines(width)
        bar_w = max(4, width - (len(lines[0][0]) if lines else 0) - 7)
        for i, ((label, n, value), (_, x)) in enumerate(zip(lines, self.rows)):
            out += (Content(label + " ") + Content.styled("█" * n, heat.style(x)) +
                    Content.styled("·" * (bar_w - n), "dim") + Content(f" {value:>4}"))
            if i < len(lines) - 1:
                out += Content("\n")
        if self.axis:
            out += Content("\n") + Content.styled(self.axis, "dim")
        return out


# --- marks that read without colour ----------------------------------------------------------------
MARK_ON, MARK_OFF = "✓", "·"


class MarkedSelectionList(SelectionList):
    """A SelectionList whose rows show ✓ (chosen) or · (not), in the text's own colour: Textual's ▐X▌
    differs only by the X's colour, which NO_COLOR and the light theme lose."""

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        try:
            selection = self.get_option_at_index(self.scroll_offset.y + y)
        except OptionDoesNotExist:
            return strip
        segments = list(strip)
        if len(segments) < 4:
            return strip
        base = segments[3].style or Style()
        chosen = selection.value in self.selected
        mark = Segment(MARK_ON if chosen else MARK_OFF, base + Style(bold=chosen, dim=not chosen,
                                                                     meta=segments[1].style.meta if segments[1].style else {}))
        return Strip([Segment(" ", base), mark, Segment(" ", base), *segments[3:]])


class MarkedCheckbox(Checkbox):
    """A Checkbox showing ✓ when ticked and nothing when not (see MarkedSelectionList)."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.BUTTON_INNER = MARK_ON if self.value else " "

    def watch_value(self) -> None:
        self.BUTTON_INNER = MARK_ON if self.value else " "
        super().watch_value()
