"""Results: the pair table (sortable), cooperation and payoff matrices, export; drill into trials."""

from __future__ import annotations

import math
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Input, Label, Select, Static, TabbedContent, TabPane

from .. import format as fmt
from ..widgets import Heat, PairMatrix
from .base import ArenaScreen

# column key -> (header, PairRow attribute used for sorting, right-aligned)
COLUMNS = [
    ("game", "game", "game", False),
    ("eps", "ε", "epsilon", True),
    ("cap", "cap", "max_depth", True),
    ("temp", "T", "temperature", True),
    ("row", "row program", "row_program", False),
    ("col", "column program", "col_program", False),
    ("trials", "trials", "trials", True),
    ("coop", "coop", "cooperation", True),
    ("ci", "95% CI Wald", "wald_low", True),
    ("wilson", "Wilson", "wilson_low", True),
    ("rowpay", "row pay", "row_payoff", True),
    ("colpay", "col pay", "col_payoff", True),
    ("refused", "refused", "refusal_rate", True),
    ("errors", "errors", "error_rate", True),
    ("calls", "calls/trial", "calls_per_trial", True),
]


class ResultsScreen(ArenaScreen):
    MODE = "results"
    BINDINGS = [
        Binding("s", "sort", "Sort"),
        Binding("x", "export", "Export"),
        Binding("enter", "trials", "Trials"),
        Binding("t", "choose", "Tournament"),
        Binding("R", "refresh", "Refresh", show=False),
    ]

    def compose_body(self) -> ComposeResult:
        yield Static(id="results-empty", classes="panel")
        with Vertical(id="results-body"):
            yield Static(id="results-head", classes="panel")
            with Horizontal(id="results-bar"):
                yield Label("Condition ", id="results-cond-label")
                yield Select([("–", "0")], value="0", id="results-condition", allow_blank=False, compact=True)
            with TabbedContent(id="results-tabs"):
                with TabPane("Pairs", id="tab-pairs"):
                    yield Static(Content.from_markup(
                        "[dim]One row per cell · [b]enter[/]: its trials, trees and transcripts · [b]s[/]: sort by the "
                        "cursor's column (again: reverse) · coop = share of trials ending in a cooperative outcome[/]"),
                        classes="tab-caption")
                    yield DataTable(id="pairs", cursor_type="cell", zebra_stripes=True)
                with TabPane("Cooperation matrix", id="tab-coop"):
                    yield Static(id="coop-caption", classes="tab-caption")
                    yield PairMatrix(id="coop-matrix")
                with TabPane("Payoff matrix", id="tab-payoff"):
                    yield Static(id="payoff-caption", classes="tab-caption")
                    yield PairMatrix(id="payoff-matrix")

    def on_mount(self) -> None:
        super().on_mount()
        self.tid: int | None = None
        self.rows = []
        self.sort_key: str | None = None
        self.sort_reverse = False
        self._conditions: list = []
        self._condition = None
        self.query_one("#results-head").border_title = "Tournament"
        self.load(self.app.results_tid)

    def tournament_changed(self, tid: int) -> None:
        self.load(tid)

    def on_screen_resume(self) -> None:
        if self.app.results_tid is not None and self.app.results_tid != self.tid:
            self.load(self.app.results_tid)

    # -- loading -------------------------------------------------------------------------------------------
    def load(self, tid: int | None) -> None:
        from ...core.analysis import pair_rows
        from ...core.errors import ArenaError

        store = self.app.store
        try:
            row = store.tournament(tid)
        except ArenaError:
            row = None
        empty = self.query_one("#results-empty", Static)
        body = self.query_one("#results-body")
        if row is None:
            empty.display, body.display = True, False
            empty.update(Content.from_markup(
                "[b]No results yet.[/]\n\nStart a tournament in Setup ([b]2[/]) or pick one in History ([b]5[/])."))
            self.tid = None
            return
        empty.display, body.display = False, True
        self.tid = row.id
        self.app.results_tid = row.id
        self.tournament = row
        self.rows = pair_rows(store, row.id)
        cfg = row.config
        self.multi = len({(r.epsilon, r.max_depth, r.temperature) for r in self.rows}) > 1 or len(cfg["games"]) > 1
        status = row.display_status
        colour = self.app.theme_variables.get({"finished": "success", "running": "accent", "interrupted": "warning",
                                               "cancelled": "warning"}.get(status, "error"), "")
        head = self.query_one("#results-head", Static)
        head.border_title = f"Tournament {row.id}" + (f" · {row.name}" if row.name else "")
        temps = [t for t in cfg.get("temperatures", [None]) if t is not None]
        head.update(Content.from_markup(
            "[b]$status[/] · $done / $total trials · $games\n"
            "[dim]ε $eps · depth cap $caps$temps · $np programs · $trials trials per cell · seed $seed · "
            "simulation $sim$resume[/]",
            status=status, done=f"{row.done:,}", total=f"{row.total_trials:,}",
            games=", ".join(cfg["games"]), eps=" ".join(f"{e:g}" for e in cfg["epsilons"]),
            caps=" ".join(map(str, cfg["max_depths"])), temps=(" · T " + " ".join(f"{t:g}" for t in temps)) if temps else "",
            np=str(len(cfg["programs"])), trials=str(cfg["trials"]), seed=str(cfg.get("seed", 0)),
            sim=cfg.get("simulation", "run"),
            resume=" · resume it from History (5, r)" if status in ("interrupted", "cancelled", "failed") else "")
            .stylize(f"bold {colour}", 0, len(status)))
        conds = list(dict.fromkeys((r.game, r.epsilon, r.max_depth, r.temperature) for r in self.rows))
        self._conditions = conds
        select = self.query_one("#results-condition", Select)
        if conds:
            select.set_options([(fmt.condition(*c), str(i)) for i, c in enumerate(conds)])
            select.value = "0"
            self._condition = conds[0]
        self.query_one("#results-bar").display = len(conds) > 1
        self._fill_pairs()
        self._fill_matrices()
        self.query_one("#pairs", DataTable).focus()

    # -- pairs table -------------------------------------------------------------------------------------------
    def _columns(self):
        skip = set()
        if not self.multi:
            skip |= {"game", "eps", "cap"}
        if all(r.temperature is None for r in self.rows):
            skip.add("temp")
        return [c for c in COLUMNS if c[0] not in skip]

    def _fill_pairs(self) -> None:
        table = self.query_one("#pairs", DataTable)
        cursor = table.cursor_coordinate
        table.clear(columns=True)
        heat = Heat(self.app)
        cols = self._columns()
        for key, header, attr, right in cols:
            mark = ""
            if self.sort_key == key:
                mark = " ▼" if self.sort_reverse else " ▲"
            table.add_column(Text(header + mark, justify="right" if right else "left"), key=key)
        rows = list(self.rows)
        if self.sort_key is not None:
            attr = next(c[2] for c in COLUMNS if c[0] == self.sort_key)
            rows.sort(key=lambda r: _sort_value(getattr(r, attr)), reverse=self.sort_reverse)
            # NaN / None always last
            rows.sort(key=lambda r: _missing(getattr(r, attr)))
        self._shown_rows = rows
        for i, r in enumerate(rows):
            cells = {
                "game": r.game, "eps": f"{r.epsilon:g}", "cap": str(r.max_depth), "temp": fmt.temp(r.temperature),
                "row": r.row_program, "col": r.col_program, "trials": f"{r.trials:,}",
                "coop": heat.text(fmt.pct(r.cooperation, 1), r.cooperation),
                "ci": fmt.interval(r.wald_low, r.wald_high),
                "wilson": fmt.interval(r.wilson_low, r.wilson_high),
                "rowpay": fmt.num(r.row_payoff), "colpay": fmt.num(r.col_payoff),
                "refused": fmt.pct(r.refusal_rate), "errors": fmt.pct(r.error_rate),
                "calls": fmt.num(r.calls_per_trial, 1),
            }
            table.add_row(*[cells[k] if isinstance(cells[k], Text) else Text(cells[k], justify="right" if right else "left")
                            for k, _, _, right in cols], key=str(i))
        if table.row_count and cursor.row < table.row_count and cursor.column < len(cols):
            table.cursor_coordinate = cursor
        table.border_title = f"{len(rows)} cells"

    @on(DataTable.HeaderSelected, "#pairs")
    def _header(self, event: DataTable.HeaderSelected) -> None:
        self._sort_by(str(event.column_key.value))

    def action_sort(self) -> None:
        table = self.query_one("#pairs", DataTable)
        if not self.rows:
            return
        cols = self._columns()
        key = cols[min(table.cursor_column, len(cols) - 1)][0]
        self._sort_by(key)

    def _sort_by(self, key: str) -> None:
        if self.sort_key == key:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_key, self.sort_reverse = key, key in ("coop", "rowpay", "colpay", "trials", "ci", "wilson")
        self._fill_pairs()

    # -- matrices ------------------------------------------------------------------------------------------------
    @on(Select.Changed, "#results-condition")
    def _cond(self, event: Select.Changed) -> None:
        if event.value is not Select.NULL and self._conditions:
            self._condition = self._conditions[int(event.value)]
            self._fill_matrices()

    def _fill_matrices(self) -> None:
        programs = self.tournament.config["programs"] if self.tid is not None else []
        rows = [r for r in self.rows if (r.game, r.epsilon, r.max_depth, r.temperature) == self._condition]
        coop = {(r.row_program, r.col_program): (fmt.pct(r.cooperation), r.cooperation) for r in rows}
        self.query_one("#coop-matrix", PairMatrix).set_cells(programs, coop)
        payoff = {(r.row_program, r.col_program): (f"{fmt.num(r.row_payoff, 2)}, {fmt.num(r.col_payoff, 2)}", math.nan)
                  for r in rows}
        self.query_one("#payoff-matrix", PairMatrix).set_cells(programs, payoff)
        where = fmt.condition(*self._condition) if self._condition else ""
        self.query_one("#coop-caption", Static).update(Content.styled(
            f"Share of cooperative outcomes, row program (numbered) against column program · {where} · enter: trials",
            "dim"))
        self.query_one("#payoff-caption", Static).update(Content.styled(
            f"Mean payoffs (row program, column program) over the valid trials of each pair · {where}", "dim"))

    # -- actions --------------------------------------------------------------------------------------------------
    def action_trials(self) -> None:
        if self.tid is None:
            return
        tabs = self.query_one(TabbedContent)
        if tabs.active == "tab-pairs":
            table = self.query_one("#pairs", DataTable)
            if not table.row_count:
                return
            r = self._shown_rows[table.cursor_row]
        elif tabs.active == "tab-coop":
            m = self.query_one("#coop-matrix", PairMatrix)
            programs = self.tournament.config["programs"]
            if m.cursor_column == 0 or not programs:
                return
            rp, cp = programs[m.cursor_row], programs[m.cursor_column - 1]
            r = next((x for x in self.rows if (x.game, x.epsilon, x.max_depth, x.temperature) == self._condition
                      and x.row_program == rp and x.col_program == cp), None)
            if r is None:
                return
        else:
            return
        from .trials import TrialsScreen

        self.app.push_screen(TrialsScreen(self.tid, r))

    @on(DataTable.CellSelected, "#pairs, #coop-matrix")
    def _cell_selected(self, event: DataTable.CellSelected) -> None:
        self.action_trials()

    def action_export(self) -> None:
        if self.tid is None:
            self.notify("No tournament to export.", severity="warning")
            return
        self.app.push_screen(ExportDialog(self.tid))

    def action_choose(self) -> None:
        self.app.switch_mode("history")

    def action_refresh(self) -> None:
        self.load(self.tid)


def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _sort_value(x):
    if _missing(x):
        return 0
    return x


class ExportDialog(ModalScreen[Path | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, tid: int):
        super().__init__(classes="dialog-screen")
        self.tid = tid

    def compose(self) -> ComposeResult:
        from .. import exporting

        formats = exporting.formats()
        with Vertical(classes="dialog", id="export-dialog"):
            yield Static(Content.from_markup("[b]Export tournament $t[/]", t=str(self.tid)), classes="dialog-question")
            yield Label("Format")
            yield Select([(f, f) for f in formats], value=formats[0], allow_blank=False, id="export-format")
            yield Label("File")
            yield Input(str(exporting.default_path(self.tid, formats[0])), id="export-path")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Export", id="export", variant="success")

    @on(Select.Changed, "#export-format")
    def _fmt(self, event: Select.Changed) -> None:
        from .. import exporting

        path = self.query_one("#export-path", Input)
        path.value = str(Path(path.value).with_name(exporting.default_path(self.tid, str(event.value)).name))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#export")
    @on(Input.Submitted, "#export-path")
    def _export(self) -> None:
        from .. import exporting

        fmt_ = str(self.query_one("#export-format", Select).value)
        path = Path(self.query_one("#export-path", Input).value.strip() or exporting.default_path(self.tid, fmt_))
        try:
            out = exporting.export(self.app.store, self.tid, fmt_, path)
        except Exception as exc:
            self.notify(f"Export failed: {exc}", severity="error", timeout=10)
            return
        self.notify(f"Exported tournament {self.tid} to {out}")
        self.dismiss(out)
