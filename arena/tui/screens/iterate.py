"""Iterate: the stored iterate runs (arena iterate, or started here: n), each step's candidate code and
the feedback it got, and the welfare per step (a meta-rounds run: each seat's program per meta-round, its
payoff, the welfare per meta-round); enter opens a run's view (live while its runner process runs). Reloaded every second in a worker (loading.py: a read connection of its own, nothing queried on
the UI thread), so a run going on in a terminal can be watched."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from ..failures import ContainsFailures
from ..textual_patches import SteadyTable


def welfare_bar(values: list[float | None], width: int = 40) -> str:
    """The welfare per step as a one-line sparkline (an invalid step is a gap: '·')."""
    blocks = "▁▂▃▄▅▆▇█"
    got = [v for v in values if v is not None]
    if not got:
        return ""
    lo, hi = min(got), max(got)
    span = (hi - lo) or 1.0
    return "".join("·" if v is None else blocks[int((v - lo) / span * (len(blocks) - 1))] for v in values[-width:])


def meta_steps(rounds: list[dict], programs: list[dict]) -> list[dict]:
    """A meta-rounds run's played meta-rounds as the steps table's rows: per meta-round the row's program,
    then the column's (round: the meta-round, step: the seed, valid: its writer gave a valid program, the
    seat's payoff per round, the welfare: both seats'), with the program's source and the feedback of
    its failed attempts."""
    sources = {p["program_id"]: p for p in programs}
    out = []
    for r in rounds:
        welfare = None if r["row_payoff"] is None else r["row_payoff"] + r["col_payoff"]
        for seat in ("row", "col"):
            pid = r[f"{seat}_program"]
            failed = [p["feedback"] for p in programs if (p["seed"], p["meta_round"], p["seat"]) ==
                      (r["seed"], r["meta_round"], seat) and not p["valid"] and p["feedback"]]
            out.append({"id": f"{r['seed']}-{r['meta_round']}-{seat}", "round": r["meta_round"], "player": seat,
                        "step": r["seed"], "valid": 0 if r[f"{seat}_failed"] else 1, "kept": 0,
                        "row_utility": r["row_payoff"], "col_utility": r["col_payoff"], "welfare": welfare,
                        "program_id": pid, "source": sources[pid]["source"] if pid in sources else None,
                        "feedback": "\n\n".join(failed) or None})
    return out


class IterateScreen(ContainsFailures, Screen):
    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back"), Binding("R", "refresh", "Refresh"),
                Binding("n", "new", "New run"), Binding("enter", "open", "Open / follow"),
                Binding("tab", "app.focus_next", "Next pane"),
                Binding("d", "focus_detail", "Read the step")]

    # the step's detail (feedback first, then the code) scrolls: a focused pane takes the arrows and pages
    DEFAULT_CSS = """
    IterateScreen #iterate-tables { height: 2fr; min-height: 5; }
    IterateScreen #iterate-runs { width: 1fr; }
    IterateScreen #iterate-steps { width: 2fr; }
    IterateScreen #iterate-detail-box { height: 3fr; border: round $primary 50%; }
    IterateScreen #iterate-detail-box:focus { border: round $accent; }
    IterateScreen #iterate-detail { height: auto; }
    IterateScreen #failure { display: none; background: $error 30%; }
    """

    def compose(self) -> ComposeResult:
        yield Static(id="failure", markup=False)
        with Vertical():
            with Horizontal(id="iterate-tables"):
                yield SteadyTable(id="iterate-runs", cursor_type="row")
                yield SteadyTable(id="iterate-steps", cursor_type="row")
            yield Static(id="iterate-welfare")
            with VerticalScroll(id="iterate-detail-box", can_focus=True):
                yield Static(id="iterate-detail", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        runs = self.query_one("#iterate-runs", DataTable)
        for label in ("run", "game", "writer", "status", "welfare"):
            runs.add_column(label, key=label)
        steps = self.query_one("#iterate-steps", DataTable)
        for label in ("round", "player", "step", "valid", "kept", "utility", "welfare"):
            steps.add_column(label, key=label)
        self.runs: list[dict] = []
        self.steps: list[dict] = []
        self._shown: tuple = ()
        self.action_refresh()
        self.set_interval(1.0, self.action_refresh)
        runs.focus()

    def action_refresh(self) -> None:
        """The runs and the highlighted run's steps, queried in a worker; shown when they come."""
        from arena.store import iterate as db

        from ..loading import run_query

        run = self._run()
        want = run["id"] if run else None

        def query(store):
            runs = db.runs(store)
            rid = want if any(r["id"] == want for r in runs) else (runs[0]["id"] if runs else None)
            if rid is None:
                return runs, rid, []
            if next(r for r in runs if r["id"] == rid)["config"].get("protocol") == "meta-rounds":
                return runs, rid, meta_steps(db.meta_rounds(store, rid), db.meta_programs(store, rid))
            return runs, rid, db.steps(store, rid)

        run_query(self, "iterate-list", query, self._loaded)

    def _loaded(self, value) -> None:
        runs, rid, steps = value
        key = tuple((r["id"], r["status"]) for r in runs)
        table = self.query_one("#iterate-runs", DataTable)
        self.runs = runs
        if key != self._shown:
            self._shown = key
            keep = table.cursor_row
            table.clear()
            for r in runs:
                c = r["config"]
                w = r.get("welfare")
                table.add_row(str(r["id"]), c["game"], c["model"], r["status"], "" if w is None else f"{w:g}",
                              key=str(r["id"]))
            if runs:
                table.move_cursor(row=min(max(keep, 0), len(runs) - 1))
        run = self._run()
        if run is not None and run["id"] == rid:
            self._steps_of = rid
            self._fill_steps(steps)
        elif run is not None:
            self.action_refresh()  # the cursor moved meanwhile: that run's steps
        else:
            self._fill_steps([])

    def _run(self) -> dict | None:
        table = self.query_one("#iterate-runs", DataTable)
        if not self.runs or not 0 <= table.cursor_row < len(self.runs):
            return None
        return self.runs[table.cursor_row]

    def _fill_steps(self, steps: list[dict]) -> None:
        run = self._run()
        table = self.query_one("#iterate-steps", DataTable)
        if [s["id"] for s in steps] != [s["id"] for s in self.steps] or any(
                a["kept"] != b["kept"] for a, b in zip(steps, self.steps)):
            keep = table.cursor_row
            follow = keep >= len(self.steps) - 1  # on the last step: follow the run as it grows
            table.clear()
            for s in steps:
                mine = s["row_utility"] if s["player"] in ("row", "start") else s["col_utility"]
                f = lambda x: "" if x is None else f"{x:.3g}"
                table.add_row(str(s["round"]), s["player"], str(s["step"]), "yes" if s["valid"] else "no",
                              "kept" if s["kept"] else "", f(mine), f(s["welfare"]))
            if steps:
                table.move_cursor(row=len(steps) - 1 if follow else min(keep, len(steps) - 1))
        self.steps = steps
        title = f"run {run['id']}: {run['config']['game']}" if run else "no iterate runs yet: n starts one (or arena iterate)"
        self.query_one("#iterate-welfare", Static).update(
            f"{title}   welfare per step: {welfare_bar([s['welfare'] for s in steps])}")
        self._detail()

    def _detail(self) -> None:
        table = self.query_one("#iterate-steps", DataTable)
        box = self.query_one("#iterate-detail", Static)
        if not self.steps or not 0 <= table.cursor_row < len(self.steps):
            box.update("")
            return
        s = self.steps[table.cursor_row]
        parts = [f"{s['program_id']}  ({'valid' if s['valid'] else 'invalid'})"]
        if s["feedback"]:  # what the writer was told: first, the code it answered with below
            parts += ["", "feedback sent:", s["feedback"].rstrip()]
        if s["source"]:
            parts += ["", "code:", s["source"].rstrip()]
        text = "\n".join(parts)
        if text != getattr(self, "_detail_text", None):
            self._detail_text = text
            box.update(text)
            outer = self.query_one("#iterate-detail-box")
            outer.scroll_home(animate=False)
            outer.border_title = f"step {s['step']} · {s['player']} · round {s['round']}"
            outer.border_subtitle = "d or tab: read (arrows, pgup/pgdn scroll)"

    def action_focus_detail(self) -> None:
        self.query_one("#iterate-detail-box").focus()

    @on(DataTable.RowHighlighted, "#iterate-runs")
    def _run_changed(self) -> None:
        run = self._run()
        if run is not None and run["id"] != getattr(self, "_steps_of", None):
            self.action_refresh()

    @on(DataTable.RowSelected, "#iterate-runs")
    def _run_selected(self) -> None:
        self.action_open()

    def action_open(self) -> None:
        run = self._run()
        if run is not None:
            self.app.watch_iterate(run["id"])

    def action_new(self) -> None:
        from .iterate_start import IterateStartScreen

        self.app.push_screen(IterateStartScreen())

    @on(DataTable.RowHighlighted, "#iterate-steps")
    def _step_changed(self) -> None:
        self._detail()
