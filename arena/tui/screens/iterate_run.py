"""One iterate run, live or as stored: the steps (each writer answer, the evaluations of the current and
the kept program), the selected step's writer message, its code highlighted and the feedback it got,
the welfare after each turn as a text plot filling in, and the current pair. A meta-rounds run in the
same view (what it shows of one: iterate_meta.py): a row per seat and meta-round, the selected program's
attempts, each seat's payoff per meta-round in the plot, the current meta-round in the header.

Live (`session` given): the run's runner process streams its events into the session's thread; this
screen reads a copy of the state every quarter second (no query on the UI thread): p pauses before the
next writer call (both seats' under meta-rounds), c cancels (the finished steps stay: resumable), x detaches (the run goes on; enter
on it in Iterate runs, or `arena attach`, follows it again). Stored (`session` None): loaded in a
worker; a run going on elsewhere (a terminal's `arena iterate`) is reloaded in a worker every second.
"""

from __future__ import annotations


from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from ..codeview import highlighted
from ..failures import ContainsFailures
from ..textual_patches import SteadyTable
from . import iterate_meta

BLOCKS = " ▁▂▃▄▅▆▇█"
HEAD_JOIN = Text("\n", no_wrap=True, overflow="ellipsis")  # the header's two lines, each cut to the width
STEP_COLUMNS = (("turn", "turn"), ("step", "step"), ("ok", "ok"), ("util", "util"), ("welf", "welf"))
STATUS_STYLE = {"running": "green", "finished": "green", "paused": "yellow", "pausing": "yellow",
                "cancelling": "yellow", "cancelled": "yellow", "interrupted": "yellow", "failed": "red"}


def welfare_plot(turns: list[tuple[str, float | None]], width: int = 60, height: int = 3) -> str:
    """The welfare after each turn as bars (`height` rows, eighths of a row), the axis's top and bottom
    values on the left (the axis spans 0 and every value) and each bar's turn under it ("st": the start
    pair, "1r": round 1's row turn; '·' a turn without a welfare). The latest turns that fit in `width`
    are shown."""
    if not turns:
        return "no turn has finished yet"
    names = ["st" if label == "start" else label for label, _ in turns]
    per = max(3, 1 + max(len(n) for n in names))  # a bar as wide as its label, one cell apart
    keep = max(1, (width - 8) // per)
    shown, names = turns[-keep:], names[-keep:]
    got = [w for _, w in shown if w is not None]
    lo, hi = min([0.0, *got]), max([0.0, *got])
    span = (hi - lo) or 1.0
    rows = []
    for r in range(height - 1, -1, -1):
        cells = []
        for _, w in shown:
            if w is None:
                cells.append("·".ljust(per))
                continue
            eighths = max(1, round((w - lo) / span * height * 8))  # the axis's lowest value: a sliver
            fill = min(8, max(0, eighths - r * 8))
            cells.append(BLOCKS[fill] * (per - 1) + " ")
        axis = f"{hi:>6.3g} " if r == height - 1 else (f"{lo:>6.3g} " if r == 0 else " " * 7)
        rows.append(axis + "".join(cells).rstrip())
    labels = "".join(n.ljust(per) for n in names)
    return "\n".join(rows + [" " * 7 + labels.rstrip()])


def step_label(s: dict, steps: int) -> str:
    if s["player"] == "start":
        return "the start pair"
    if s["step"] == 0:
        return "the current program on the turn's episodes"
    if s["step"] == steps + 1:
        return "the kept program on fresh episodes"
    return f"writer step {s['step']} of {steps}"


class IterateRunScreen(ContainsFailures, Screen):
    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back"),
                Binding("p,space", "pause", "Pause/resume"), Binding("c", "cancel", "Cancel"),
                Binding("x", "detach", "Detach"), Binding("d", "focus_detail", "Read"),
                Binding("v", "conversation", "Conversation"),
                Binding("tab", "app.focus_next", "Next pane", show=False)]

    DEFAULT_CSS = """
    IterateRunScreen #itr-head { height: 2; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    IterateRunScreen #itr-main { height: 1fr; }
    IterateRunScreen #itr-steps { width: 36; }
    IterateRunScreen #itr-detail-box { width: 1fr; border: round $primary 50%; }
    IterateRunScreen #itr-detail-box:focus { border: round $accent; }
    IterateRunScreen #itr-detail { height: auto; }
    IterateRunScreen #itr-plot { height: 6; border: round $primary 50%; padding: 0 1; }
    IterateRunScreen #failure { display: none; background: $error 30%; }
    """

    def __init__(self, run_id: int, session=None):
        super().__init__()
        self.run_id = run_id
        self.session = session
        self.state = None
        self._version: tuple = ()
        self._rows: list[dict] = []
        self._detail_key = None
        self.conversation = False  # the detail shows the writer's whole conversation up to the step
        self._messages: dict[str, list[dict]] = {}  # candidate id -> the messages its writer call was sent

    def compose(self) -> ComposeResult:
        yield Static(id="failure", markup=False)
        with Vertical():
            yield Static(f"iterate run {self.run_id}: loading…", id="itr-head")
            with Horizontal(id="itr-main"):
                yield SteadyTable(id="itr-steps", cursor_type="row")
                with VerticalScroll(id="itr-detail-box", can_focus=True):
                    yield Static(id="itr-detail")
            yield Static(id="itr-plot")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#itr-steps", DataTable)
        self._columns(STEP_COLUMNS)
        self.query_one("#itr-plot").border_title = "welfare after each turn"
        table.focus()
        if self.session is not None:
            self.set_interval(0.25, self._poll)
            self._poll()
        else:
            self._load()

    # -- the state ------------------------------------------------------------------------------------
    def _columns(self, columns) -> None:
        table = self.query_one("#itr-steps", DataTable)
        if tuple(table.columns) != tuple(key for _, key in columns):
            table.clear(columns=True)
            for label, key in columns:
                table.add_column(label, key=key)

    def _load(self) -> None:
        from ..iterate_session import load_state
        from ..loading import run_query

        run_query(self, "iterate-run", lambda store: load_state(store, self.run_id), self._show)

    def _poll(self) -> None:
        state = self.session.view()
        if state is not None:
            self._show(state)

    def _show(self, state) -> None:
        if self.session is None and state.status == "running" and not getattr(self, "_reloading", False):
            self._reloading = True  # going on in another process (a terminal): reloaded every second
            self.set_interval(1.0, self._load)
        if self.state is not None and state.signature() == self._version:
            return
        self.state, self._version = state, state.signature()
        self.refresh_bindings()
        if state.meta:
            self._columns(iterate_meta.COLUMNS)
            self.query_one("#itr-plot").border_title = "payoff per round, each meta-round (r: row, c: column)"
        self._head()
        self._table()
        self._plot()
        self._detail()

    def _plot(self) -> None:
        st = self.state
        if st.meta:
            table = self.query_one("#itr-steps", DataTable)
            row = self._rows[table.cursor_row] if 0 <= table.cursor_row < len(self._rows) else None
            turns = iterate_meta.plot_turns(st, row)
            if not turns:
                self.query_one("#itr-plot", Static).update("no meta-round has been played yet")
                return
        else:
            turns = st.turns()
        self.query_one("#itr-plot", Static).update(welfare_plot(turns, max(20, self.size.width - 4)))

    def _head(self) -> None:
        st = self.state
        c = st.config
        status = Text(st.status, style=f"bold {STATUS_STYLE.get(st.status, '')}")
        mode = "" if self.session is not None else (" (stored)" if st.ended else " (read-only)")
        if st.meta:
            self.query_one("#itr-head", Static).update(HEAD_JOIN.join(iterate_meta.head(st, self.run_id, mode, status)))
            return
        first = Text.assemble(f"run {self.run_id} ", status, mode,
                              f" · {c['game']} · {c['rounds']}×{c['steps']}×{c['episodes']} ε {c['epsilon']:g} · "
                              f"writer {c['model']}", no_wrap=True, overflow="ellipsis")
        pair = st.pair()
        if st.writing is not None:
            w = st.writing
            now = f"round {w.round}: the {w.player} writer is writing step {w.step}"
        elif st.ended:
            w = st.run.get("welfare")
            now = (f"final welfare {w:.3g}" if w is not None else (st.error or st.status))
        else:
            now = "playing"
        second = Text(f"pair: row {pair['row']} · col {pair['col']} · {now}", no_wrap=True, overflow="ellipsis")
        self.query_one("#itr-head", Static).update(HEAD_JOIN.join([first, second]))

    def _table(self) -> None:
        table = self.query_one("#itr-steps", DataTable)
        keep = table.cursor_row
        follow = keep < 0 or keep >= len(self._rows) - 1  # on the last row: follow the run as it grows
        table.clear()
        if self.state.meta:
            self._rows, cells = iterate_meta.table_rows(self.state)
            for c in cells:
                table.add_row(*c)
            if self._rows:
                table.move_cursor(row=len(self._rows) - 1 if follow else min(keep, len(self._rows) - 1))
            return
        rows = self.state.ordered()
        f = lambda x: "" if x is None else f"{x:.3g}"
        for s in rows:
            mine = s.get("col_utility") if s["player"] == "col" else s.get("row_utility")
            ok = ("✓" if s.get("valid") else "✗") + ("k" if s.get("kept") and s["player"] != "start" else "")
            table.add_row(f"{s['round']} {s['player']}", str(s["step"]), ok, f(mine), f(s.get("welfare")))
        w = self.state.writing
        if w is not None:
            table.add_row(f"{w.round} {w.player}", str(w.step), "…", "", "")
        self._rows = rows + ([{"writing": w}] if w is not None else [])
        n = len(self._rows)
        if n:
            table.move_cursor(row=n - 1 if follow else min(keep, n - 1))

    def _detail(self) -> None:
        table = self.query_one("#itr-steps", DataTable)
        box = self.query_one("#itr-detail", Static)
        outer = self.query_one("#itr-detail-box")
        if not self._rows or not 0 <= table.cursor_row < len(self._rows):
            box.update("no step stored yet")
            return
        s = self._rows[table.cursor_row]
        if self.state.meta:
            title, parts, key = self._meta_detail(s)
        elif "writing" in s:
            w = s["writing"]
            key = ("writing", w.round, w.player, w.step)
            parts = [Text(f"the writer is writing {w.program_id}: its answer is shown when it has come "
                          "and been tested", style="italic")]
            title = f"round {w.round} · {w.player} · step {w.step}"
        elif self.conversation and s.get("reply"):
            pid = s["program_id"]
            key = ("conversation", pid, pid in self._messages)
            parts = self._conversation(s)
            title = f"the writer's conversation · round {s['round']} · {s['player']} · step {s['step']}"
        else:
            key = (s["round"], s["player"], s["step"], s.get("kept"), len(s))
            steps = self.state.config["steps"]
            flags = ("valid" if s.get("valid") else "invalid") + (" · kept" if s.get("kept") else "")
            parts = [Text(f"{s.get('program_id') or ''}  ({flags}) · {step_label(s, steps)}", style="bold")]
            if s.get("reply"):
                parts += [Text(""), Text("writer:", style="bold"), Text(iterate_meta.without_code(s["reply"]))]
            if s.get("source"):
                parts += [Text(""), Text("code:", style="bold"), highlighted(s["source"])]
            if s.get("feedback"):
                parts += [Text(""), Text("feedback sent:", style="bold"), Text(s["feedback"].rstrip())]
            elif s.get("validation"):
                parts += [Text(""), Text(s["validation"])]
            title = f"round {s['round']} · {s['player']} · step {s['step']}"
        if key == self._detail_key:
            return
        self._detail_key = key
        box.update(Group(*parts))
        outer.scroll_home(animate=False)
        outer.border_title = title
        outer.border_subtitle = "d: read · v: " + ("the step" if self.conversation else "conversation")

    def _meta_detail(self, row: dict) -> tuple[str, list, tuple]:
        last = iterate_meta.conversation_program(row)
        if self.conversation and last is not None and last.get("reply"):
            pid = last["program_id"]
            title = f"the {row['seat']} writer's conversation · meta-round {row['meta_round']}"
            return title, self._conversation(last), ("conversation", pid, pid in self._messages)
        return iterate_meta.detail(row)

    def _conversation(self, s: dict) -> list:
        """The messages the writer was sent for step `s` (read in a worker, once), its reply, and the
        feedback that became the next user message."""
        pid = s["program_id"]
        msgs = self._messages.get(pid)
        if msgs is None:
            self._fetch_messages(pid)
            return [Text("loading the conversation…", style="italic")]
        parts: list = []
        for m in [*msgs, {"role": "assistant", "content": s["reply"]},
                  *([{"role": "user", "content": s["feedback"]}] if s.get("feedback") else [])]:
            parts += [Text(f"{m['role']}:", style="bold"), Text(str(m.get("content", "")).rstrip()), Text("")]
        return parts

    def _fetch_messages(self, pid: str) -> None:
        import json

        from ..loading import run_query

        tid = self.state.run["tournament_id"]

        def query(store) -> list[dict]:
            rows = store.query("SELECT messages FROM llm_calls WHERE tournament_id=? AND trial_id=0 AND program=? "
                               "ORDER BY id DESC LIMIT 1", (tid, pid))
            return json.loads(rows[0]["messages"]) if rows else []

        def got(msgs: list[dict]) -> None:
            self._messages[pid] = msgs
            self._detail()

        run_query(self, f"iterate-conversation-{pid}", query, got)

    def action_conversation(self) -> None:
        self.conversation = not self.conversation
        self._detail_key = None
        if self.state is not None:
            self._detail()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if self.state is not None:
            self._detail()
            if self.state.meta:
                self._plot()  # the selected row's seed

    # -- actions --------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action in ("pause", "cancel", "detach"):
            return self.session is not None and self.state is not None and not self.state.ended and \
                not self.session.ended
        return True

    def action_pause(self) -> None:
        if self.session is not None:
            self.session.toggle_pause()
            self._poll()

    def action_cancel(self) -> None:
        if self.session is not None:
            self.session.cancel()
            self._poll()

    def action_detach(self) -> None:
        if self.session is None:
            return
        self.app.detach_iterate()
        self.notify(f"Iterate run {self.run_id} goes on in its runner process (pid {self.session.pid}); "
                    "enter on it in Iterate runs follows it again.", timeout=8)
        self.app.pop_screen()

    def action_focus_detail(self) -> None:
        self.query_one("#itr-detail-box").focus()
