"""Results: the pair table (sortable), cooperation and payoff matrices, the program ranking, plots,
export; drill into trials. Every number comes from arena.analysis.tables / plots (display only)."""

from __future__ import annotations

import math
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, DataTable, Input, Label, Select, Static, TabbedContent, TabPane, Tabs
from textual_plotext import PlotextPlot

# a line's colour in plotext and the same colour in the caption's legend (Rich names)
LINE_COLOURS = [("red", "red"), ("green", "green"), ("blue", "blue"), ("magenta", "magenta"), ("cyan", "cyan"),
                ("yellow", "yellow"), ("red+", "bright_red"), ("green+", "bright_green"), ("blue+", "bright_blue"),
                ("magenta+", "bright_magenta"), ("cyan+", "bright_cyan"), ("yellow+", "bright_yellow")]

from .. import format as fmt
from ..failures import ContainsFailures
from ..textual_patches import SteadyTable
from ..widgets import BarChart, Heat, PairMatrix
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


def _pane(title: str, pane_id: str, caption_id: str, *body: Widget) -> TabPane:
    """A tab of Results: its caption line (filled when the tab is), then its body."""
    return TabPane(title, Static(id=caption_id, classes="tab-caption"), *body, id=pane_id)


class ResultsScreen(ArenaScreen):
    MODE = "results"
    # The pairs table takes the focus when the screen is built (Textual's default gave it to the condition
    # selector, hidden while a tournament has one condition); later the shown tab's table (_focus_active).
    AUTO_FOCUS = "#pairs"
    BINDINGS = [
        Binding("s", "sort", "Sort"),
        Binding("x", "export", "Export"),
        Binding("enter", "trials", "Trials"),
        Binding("t", "choose", "Tournament"),
        Binding("left_square_bracket", "tab(-1)", "Prev tab", key_display="["),
        Binding("right_square_bracket", "tab(1)", "Next tab", key_display="]"),
        Binding("left_curly_bracket", "plot_tab(-1)", "Prev plot", key_display="{"),
        Binding("right_curly_bracket", "plot_tab(1)", "Next plot", key_display="}"),
        Binding("R", "refresh", "Refresh", show=False),
    ]

    def compose_body(self) -> ComposeResult:
        yield Static(id="results-empty", classes="panel")
        with Vertical(id="results-body"):
            yield Static(id="results-head", classes="panel")
            with Horizontal(id="results-bar"):
                yield Label("Condition ", id="results-cond-label")
                yield Select([("–", "-")], value="-", id="results-condition", allow_blank=False, compact=True)
            with TabbedContent(id="results-tabs"):
                with TabPane("Pairs", id="tab-pairs"):
                    yield Static(Content.from_markup(
                        "[dim]One row per cell · [b]enter[/]: its trials, trees and transcripts · [b]s[/]: sort by the "
                        "cursor's column (again: reverse) · [b]\\[[/] [b]][/]: other tabs · coop = share of trials ending "
                        "in a cooperative outcome[/]"),
                        classes="tab-caption")
                    yield SteadyTable(id="pairs", cursor_type="cell", zebra_stripes=True)
                yield _pane("Cooperation matrix", "tab-coop", "coop-caption", PairMatrix(id="coop-matrix"))
                yield _pane("Payoff matrix", "tab-payoff", "payoff-caption", PairMatrix(id="payoff-matrix"))
                yield _pane("Programs", "tab-programs", "programs-caption",
                            SteadyTable(id="ranking", cursor_type="row", zebra_stripes=True))
                yield _pane("Equilibria", "tab-eq", "eq-caption",
                            SteadyTable(id="equilibria", cursor_type="row", zebra_stripes=True))
                yield _pane("Disclosure", "tab-disclosure", "disclosure-caption",
                            SteadyTable(id="disclosure", cursor_type="row", zebra_stripes=True))
                with TabPane("Plots", id="tab-plots"):
                    with TabbedContent(id="plot-tabs"):
                        yield _pane("Cooperation vs ε", "plot-coop", "plot-coop-caption", PlotextPlot(id="plot-coop-chart"),
                                    VerticalScroll(BarChart(id="plot-coop-bars"), id="plot-coop-bars-box"))
                        yield _pane("Payoff heat map", "plot-heat", "plot-heat-caption", PairMatrix(id="heat-matrix"))
                        yield _pane("Depth histogram", "plot-depth", "plot-depth-caption", PlotextPlot(id="plot-depth-chart"))
                        yield _pane("Dynamics", "plot-dynamics", "plot-dynamics-caption",
                                    PlotextPlot(id="plot-replicator-chart"))
                        yield _pane("By round", "plot-rounds", "plot-rounds-caption", PlotextPlot(id="plot-rounds-chart"),
                                    Static(id="moran-caption", classes="tab-caption"), PairMatrix(id="moran-matrix"))

    def on_mount(self) -> None:
        super().on_mount()
        self.tid: int | None = None
        self.rows = []
        self.sort_key: str | None = None
        self.sort_reverse = False
        self._conditions: list = []
        self._condition = None
        self._outcomes = None
        self._programs = None  # per-program rows, computed when the Programs tab is shown
        self._plots = None  # plot data, computed when the Plots tab is shown
        self._equilibria = None  # the meta-game's Nash equilibria, computed when the Equilibria tab is shown
        self._disclosure = None  # the value-of-disclosure rows, computed when the Disclosure tab is shown
        self._loading = False  # a load in flight (its worker's result is shown when it comes)
        self._load_seq = 0  # the latest load asked for: older workers' results are dropped
        self._computing: set[tuple[str, int]] = set()  # (what, tournament) computations in flight
        self.query_one("#results-head").border_title = "Tournament"
        self.load(self.app.results_tid)

    def tournament_changed(self, tid: int) -> None:
        if not hasattr(self, "_load_seq") or not self.query("#results-head"):
            return  # not mounted (or no longer composed): on_mount / on_screen_resume load app.results_tid
        self.load(tid)

    def on_screen_resume(self) -> None:
        if self.app.results_tid is not None and self.app.results_tid != self.tid:
            self.load(self.app.results_tid)

    # -- loading -------------------------------------------------------------------------------------------
    def load(self, tid: int | None) -> None:
        """Load a tournament's analysis in a worker thread; the screen shows a loading state meanwhile and
        keeps answering keys (a 1,000,000-trial tournament takes seconds)."""
        from ..loading import load_results

        self._load_seq += 1
        self._loading = True
        self._computing.clear()
        self._programs = self._plots = self._equilibria = self._disclosure = None
        if self.tid is None and tid is None:  # the newest tournament, if there is one
            self.query_one("#results-body").display = False
            empty = self.query_one("#results-empty", Static)
            empty.display = True
            empty.update(Content.styled("Loading…", "dim"))
        else:
            head = self.query_one("#results-head", Static)
            head.update(Content.from_markup("[b $accent]Loading tournament $t…[/]", t=str(tid) if tid else ""))
            for w in ("#pairs", "#coop-matrix", "#payoff-matrix", "#ranking"):
                self.query_one(w).loading = True
        load_results(self, tid, self._load_seq)

    def loaded(self, seq: int, result) -> None:
        """The worker's result (on the UI thread): show it unless another load was asked for since."""
        if seq != self._load_seq:
            return
        for w in ("#pairs", "#coop-matrix", "#payoff-matrix", "#ranking"):
            self.query_one(w).loading = False
        self._loading = False
        row = result.row if result is not None else None
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
        self._outcomes = result.outcomes
        self.rows = result.pairs
        self._programs = self._plots = self._equilibria = self._disclosure = None
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
            "[dim]ε $eps · depth cap $caps$temps$match · $np programs · $trials trials per cell · seed $seed · "
            "simulation $sim$resume[/]",
            status=status, done=f"{row.done:,}", total=f"{row.total_trials:,}",
            games=", ".join(cfg["games"]), eps=" ".join(f"{e:g}" for e in cfg["epsilons"]),
            caps=" ".join(map(str, cfg["max_depths"])), temps=(" · T " + " ".join(f"{t:g}" for t in temps)) if temps else "",
            np=str(len(cfg["programs"])), trials=str(cfg["trials"]), seed=str(cfg.get("seed", 0)),
            sim=cfg.get("simulation", "run"), match=_match_axes(cfg),
            resume=" · resume it from History (5, r)" if status in ("interrupted", "cancelled", "failed") else "")
            .stylize(f"bold {colour}", 0, len(status)))
        conds = list(dict.fromkeys((r.game, r.epsilon, r.max_depth, r.temperature) for r in self.rows))
        self._conditions = conds
        select = self.query_one("#results-condition", Select)
        if conds:
            # values unique per tournament: Select shows a new label only when its value changes
            select.set_options([(fmt.condition(*c), f"{row.id}:{i}") for i, c in enumerate(conds)])
            self._condition = conds[0]
        self.query_one("#results-bar").display = len(conds) > 1
        self._fill_pairs()
        self._fill_matrices()
        self._fill_active()
        self._focus_active(force=True)
        self.refresh_bindings()  # (Textual leaves a loading widget's keys out, and says nothing when it is done)

    # -- pairs table -------------------------------------------------------------------------------------------
    def _narrow(self) -> bool:
        return 0 < self.size.width < 100

    def on_resize(self) -> None:
        narrow = self._narrow()
        if narrow != getattr(self, "_was_narrow", None):
            self._was_narrow = narrow
            if self.tid is not None and not self._loading:  # the tables fit the new width
                self._fill_pairs()
                self._fill_active()

    def _columns(self):
        skip = {"game", "eps", "cap"}  # one condition at a time (the selector above the tabs)
        if all(r.temperature is None for r in self.rows):
            skip.add("temp")
        if self._narrow():  # 80 columns: Wilson's interval (Wald's in the export), no empty columns
            skip |= {"ci", "calls"}
            shown = [r for r in self.rows if (r.game, r.epsilon, r.max_depth, r.temperature) == self._condition]
            if not any(r.refusal_rate for r in shown):
                skip.add("refused")
            if not any(r.error_rate for r in shown):
                skip.add("errors")
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
        rows = [r for r in self.rows if (r.game, r.epsilon, r.max_depth, r.temperature) == self._condition]
        if self.sort_key is not None:
            attr = next(c[2] for c in COLUMNS if c[0] == self.sort_key)
            rows.sort(key=lambda r: _sort_value(getattr(r, attr)), reverse=self.sort_reverse)
            # NaN / None always last
            rows.sort(key=lambda r: _missing(getattr(r, attr)))
        self._shown_rows = rows
        names = 14 if self._narrow() else 24
        for i, r in enumerate(rows):
            cells = {
                "game": r.game, "eps": f"{r.epsilon:g}", "cap": str(r.max_depth), "temp": fmt.temp(r.temperature),
                "row": fmt.ellipsize(r.row_program, names), "col": fmt.ellipsize(r.col_program, names),
                "trials": f"{r.trials:,}",
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
        if event.value is not Select.NULL and str(event.value) != "-" and self._conditions:
            self._condition = self._conditions[int(str(event.value).rpartition(":")[2])]
            self._fill_pairs()
            self._fill_matrices()
            self._fill_active()

    @on(TabbedContent.TabActivated)
    def _tab(self, event: TabbedContent.TabActivated) -> None:
        self._fill_active()
        self._focus_active()
        self.refresh_bindings()  # { } for the plots' tabs on the Plots tab only

    def _focus_active(self, force: bool = False) -> None:
        """Give the focus to the shown tab's table (its plot tabs where it has none) when the focus is
        nowhere or on a widget of a hidden tab (or always, with force); a tab bar keeps it while a user is on
        it. The shown table is then focused whatever order this and Textual's Hide event (which blurs the
        hidden table) run in."""
        focused = self.focused
        if not force and focused is not None and all(node.display for node in focused.ancestors_with_self
                                                     if node is not self):
            return
        tabs = self.query_one("#results-tabs", TabbedContent)
        if tabs.active == "tab-plots":  # the plots have tabs of their own: the shown plot's pane
            tabs = tabs.query_one("#plot-tabs", TabbedContent)
        if not tabs.active:
            return
        tables = tabs.query_one(f"#{tabs.active}", TabPane).query(DataTable)
        target = tables.first() if tables else tabs.query_one(Tabs)
        if target is not focused and not target.loading:
            target.focus(scroll_visible=False)

    def _fill_active(self) -> None:
        """Fill the Programs or Plots tab when shown (computed on first use, then kept)."""
        if self.tid is None or self._loading:
            return
        active = self.query_one("#results-tabs", TabbedContent).active
        if active == "tab-programs":
            self._fill_programs()
        elif active == "tab-plots":
            self._fill_plots()
        elif active == "tab-eq":
            self._fill_equilibria()
        elif active == "tab-disclosure":
            self._fill_disclosure()

    # -- value of disclosure ----------------------------------------------------------------------------------
    def _fill_disclosure(self) -> None:
        from arena.analysis.conditions import without_disclosure

        if self._disclosure is None:
            from arena.analysis.tables import tables

            self.query_one("#disclosure").loading = True
            tid = self.tid
            self._compute("disclosure", lambda store: tables(store, tid, ["disclosure"])["disclosure"])
            return
        table = self.query_one("#disclosure", DataTable)
        table.loading = False
        table.clear(columns=True)
        if self._condition is None:
            return
        game, eps, depth, temp = self._condition
        base = (without_disclosure(game), eps, depth, temp)
        rows = [r for r in self._disclosure if r.condition == base]
        heat = Heat(self.app)
        headers = ["row", "col", "disclosure", "trials", "coop", "Wilson 95%", "Δ coop", "95% CI", "row pay", "Δ row",
                   "95% CI ", "col pay", "Δ col", "95% CI  ", "verdict"]
        left = {"row", "col", "disclosure", "verdict"}
        for h in headers:
            table.add_column(Text(h, justify="left" if h in left else "right"), key=h)

        def signed(x, pct=False):
            return "–" if x is None else (f"{100 * x:+.1f} pp" if pct else f"{x:+.2f}")

        def ival(lo, hi, pct=False):
            if lo is None or hi is None:
                return "–"
            return f"[{100 * lo:+.1f}, {100 * hi:+.1f}] pp" if pct else f"[{lo:+.2f}, {hi:+.2f}]"

        for i, r in enumerate(rows):
            cells = [r.row_program, r.col_program, r.disclosure, f"{r.valid:,}",
                     heat.text(fmt.pct(r.cooperation, 1), r.cooperation), fmt.interval(r.wilson_low, r.wilson_high),
                     signed(r.cooperation_diff, True), ival(r.cooperation_diff_low, r.cooperation_diff_high, True),
                     fmt.num(r.row_payoff), signed(r.row_payoff_diff),
                     ival(r.row_payoff_diff_low, r.row_payoff_diff_high), fmt.num(r.col_payoff),
                     signed(r.col_payoff_diff), ival(r.col_payoff_diff_low, r.col_payoff_diff_high), r.verdict or "–"]
            table.add_row(*[c if isinstance(c, Text) else Text(c, justify="left" if h in left else "right")
                            for c, h in zip(cells, headers)], key=str(i))
        levels = self.tournament.config.get("disclosures", ["full"])
        self.query_one("#disclosure-caption", Static).update(Content.styled(
            ("Value of disclosure: each pair under every disclosure level, Δ = the level minus full, with a stratified "
             "bootstrap 95% interval; verdict: the meta-game's verdict of the pair under that level · "
             f"{fmt.condition(*base)}") if len(levels) > 1 else
            "This tournament shows every program everything (disclosure full only): run it with several "
            "disclosure levels (Setup: Disclosure; arena run --disclosure) to compare them.", "dim"))

    # -- equilibria -------------------------------------------------------------------------------------------
    def _fill_equilibria(self) -> None:
        from ..equilibria import EQ_COLUMNS, cells, extra_fields

        if self._equilibria is None:
            from arena.analysis.metagame import equilibrium_rows, meta_matrices

            self.query_one("#equilibria").loading = True
            outcomes, rows = self._outcomes, self.rows
            self._compute("equilibria", lambda store: equilibrium_rows(meta_matrices(outcomes.programs, rows)))
            return
        table = self.query_one("#equilibria", DataTable)
        table.loading = False
        rows = [r for r in self._equilibria if r.condition == self._condition]
        extra = extra_fields(rows)
        table.clear(columns=True)
        for key, header in (*EQ_COLUMNS, *((f, f.replace("_", " ")) for f in extra)):
            table.add_column(header, key=key)
        narrow = self._narrow()
        for r in rows:
            table.add_row(*cells(r, extra, narrow), key=str(r.index), height=None)  # (as many lines as it needs)
        where = fmt.condition(*self._condition) if self._condition else ""
        self.query_one("#eq-caption", Static).update(Content.styled(
            f"Nash equilibria of the meta-game's point estimate (choose a program, paid its mean payoff against the "
            f"other's), pure and mixed · {len(rows)} found" + (f" by {rows[0].method.replace('_', ' ')}" if rows else "") + f" · {where}",
            "dim"))

    # -- programs ---------------------------------------------------------------------------------------------
    def _fill_programs(self) -> None:
        if self._programs is None:
            from arena.analysis.tables import programs

            self.query_one("#ranking").loading = True
            outcomes = self._outcomes
            self._compute("programs", lambda store: programs(outcomes))
            return
        self.query_one("#ranking").loading = False
        rows = [r for r in self._programs if r.condition == self._condition]
        table = self.query_one("#ranking", DataTable)
        table.clear(columns=True)
        heat = Heat(self.app)
        two = any(r.cc is not None for r in rows)
        # short headers (the caption says what they are): CC/CD/DC/DD whole at 120 columns
        narrow = self._narrow()
        headers = ["#" if narrow else "rank", "program", "payoff", "95% CI", *([] if narrow else ["median"]), "coop", "wins", "initial",
                   *([] if narrow else ["initial plays"]), *(["CC", "CD", "DC", "DD"] if two else [])]
        for h in headers:
            table.add_column(Text(h, justify="left" if h in ("program", "initial plays") else "right"), key=h)
        for r in rows:
            plays = fmt.ellipsize(" ".join(f"{a} {fmt.pct(x)}" for a, x in r.initial_actions.items() if x > 0) or "–",
                                  18)
            cells = [str(r.rank or "–"), fmt.ellipsize(r.program, 14 if narrow else 20), fmt.num(r.mean_payoff),
                     "–" if r.payoff_low is None else f"{fmt.num(r.payoff_low)}–{fmt.num(r.payoff_high)}",
                     *([] if narrow else [fmt.num(r.median_payoff)]),
                     heat.text(fmt.pct(r.cooperation_rating, 1), r.cooperation_rating),
                     str(r.wins), fmt.pct(r.initial_rate), *([] if narrow else [plays]),
                     *([fmt.pct(x) for x in (r.cc, r.cd, r.dc, r.dd)] if two else [])]
            table.add_row(*[c if isinstance(c, Text) else Text(c, justify="left" if headers[i] in ("program", "initial plays")
                                                               else "right") for i, c in enumerate(cells)], key=r.program)
        where = fmt.condition(*self._condition) if self._condition else ""
        self.query_one("#programs-caption", Static).update(Content.styled(
            f"Ranked by mean payoff, both seats pooled · {where} · coop: cooperation rating · wins: opponents it "
            "out-scores on average · initial: top-level decisions that did not simulate" +
            (" · CC CD DC DD: outcome shares" if two else ""), "dim"))

    # -- plots ------------------------------------------------------------------------------------------------
    def _fill_plots(self) -> None:
        from arena.analysis import plots

        if self._plots is None:
            tid, outcomes, rows = self.tid, self._outcomes, self.rows
            for w in ("#plot-coop-caption", "#plot-heat-caption", "#plot-depth-caption"):
                self.query_one(w, Static).update(Content.styled("Computing the plots…", "dim"))
            self._compute("plots", lambda store: plots.plot_data(store, tid, outcomes, rows))
            return
        if self._condition is None:
            return
        game, eps, depth, temp = self._condition
        where = plots.panel_label(game, depth, temp)
        # cooperation vs epsilon: every pair of this game, cap and temperature
        series = plots.coop_series(self._plots.coop).get(where, {})
        chart = self.query_one("#plot-coop-chart", PlotextPlot)
        plt = chart.plt
        plt.clear_data()
        plt.clear_figure()
        single = all(len(pts) == 1 for pts in series.values())
        legend = None
        bars = single and bool(series)
        chart.display = not bars
        self.query_one("#plot-coop-bars-box").display = bars
        if bars:  # one ε: a line per pair would be a dot; a bar per pair, drawn as text (label, bar, value)
            shown = [(pair, pts[0].cooperation) for pair, pts in series.items() if pts[0].cooperation is not None]
            self.query_one("#plot-coop-bars", BarChart).set_bars(
                shown, f"cooperation at ε {next(iter(series.values()))[0].epsilon:g} (0 to 100%)")
        else:  # the legend goes below the caption, in the lines' colours: drawn inside, it hid the lines
            legend = Content("")
            for i, (pair, pts) in enumerate(series.items()):
                xs = [p.epsilon for p in pts if p.cooperation is not None]
                ys = [p.cooperation for p in pts if p.cooperation is not None]
                if xs:
                    plot_colour, text_colour = LINE_COLOURS[i % len(LINE_COLOURS)]
                    plt.plot(xs, ys, marker="hd", color=plot_colour)
                    legend += Content.styled("● ", text_colour) + Content(f"{pair}   ")
            plt.ylim(0, 1)
            plt.xlabel("ε")
            plt.ylabel("cooperation")
        chart.refresh()
        caption = Content.styled(f"Cooperation rate against ε per pair (both seatings pooled) · {where}", "dim")
        self.query_one("#plot-coop-caption", Static).update(caption if legend is None else caption + "\n" + legend)
        # payoff heat map of the meta-game under the chosen condition
        label = plots.panel_label(game, depth, temp, eps)
        programs, U, eq = plots.matrices(self._plots.matrix).get(label, ([], [], []))
        values = [x for row in U for x in row if x is not None]
        lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
        cells = {}
        for i, a in enumerate(programs):
            for j, b in enumerate(programs):
                x = U[i][j]
                share = math.nan if x is None else ((x - lo) / (hi - lo) if hi > lo else 0.5)
                cells[(a, b)] = (fmt.num(x) + eq[i][j], share)
        self.query_one("#heat-matrix", PairMatrix).set_cells(programs, cells, corner="program \\ opp.")
        self.query_one("#plot-heat-caption", Static).update(Content.styled(
            f"Meta-game: mean payoff of the row program against the column program, both seats · * program "
            f"equilibrium (no program gains by switching, by the bootstrap) · ? uncertain · {label}", "dim"))
        # depth histogram: one series per epsilon
        dseries = plots.depth_series(self._plots.depths).get(where, {})
        chart = self.query_one("#plot-depth-chart", PlotextPlot)
        plt = chart.plt
        plt.clear_data()
        plt.clear_figure()
        if dseries:
            depths = sorted({d for pts in dseries.values() for d, _ in pts})
            ys = [[dict(pts).get(d, 0.0) for d in depths] for pts in dseries.values()]
            plt.multiple_bar([str(d) for d in depths], ys, labels=[f"ε {e:g}" for e in dseries])
        plt.xlabel("depth reached (0: did not simulate)")
        plt.ylabel("share of decisions")
        chart.refresh()
        self.query_one("#plot-depth-caption", Static).update(Content.styled(
            f"Simulation depth reached by top-level decisions, both seats · {where}", "dim"))
        self._fill_dynamics(label)
        self._fill_rounds(label)

    def _fill_rounds(self, label: str) -> None:
        """Cooperation by round of the chosen condition's matches, a line per ordered pair."""
        from arena.analysis import plots

        series = plots.round_series(self._plots.rounds).get(label, {})
        chart = self.query_one("#plot-rounds-chart", PlotextPlot)
        plt = chart.plt
        plt.clear_data()
        plt.clear_figure()
        legend = Content("")
        for i, (pair, pts) in enumerate(series.items()):
            plot_colour, text_colour = LINE_COLOURS[i % len(LINE_COLOURS)]
            plt.plot([p.round + 1 for p in pts], [p.cooperation for p in pts], marker="hd", color=plot_colour)
            legend += Content.styled("● ", text_colour) + Content(f"{pair}   ")
        plt.ylim(0, 1)
        plt.xlabel("round")
        plt.ylabel("cooperation")
        chart.refresh()
        caption = (f"Share of the matches whose round was a cooperative outcome, per ordered pair · {label}" if series
                   else "No matches under this condition: cooperation by round needs a repeated game (Setup's "
                        "Rounds or Continuation, or arena run --rounds N)")
        self.query_one("#plot-rounds-caption", Static).update(Content.styled(caption, "dim") + (
            Content("\n") + legend if series else Content("")))

    def _fill_dynamics(self, label: str) -> None:
        """Replicator dynamics from the uniform mix and Moran fixation probabilities (N = 10) of the chosen
        condition's meta-game (arena.analysis.dynamics)."""
        from arena.analysis import dynamics, plots

        series = plots.replicator_series(self._plots.replicator).get(label, {})
        chart = self.query_one("#plot-replicator-chart", PlotextPlot)
        plt = chart.plt
        plt.clear_data()
        plt.clear_figure()
        rest = []
        for program, pts in series.items():
            plt.plot([t for t, _ in pts], [x for _, x in pts], label=program, marker="hd")
            rest.append(f"{program} {pts[-1][1]:.2f}")
        plt.ylim(0, 1)
        plt.xlabel("step")
        plt.ylabel("population share")
        chart.refresh()
        last = max((pts[-1][0] for pts in series.values()), default=0)
        programs, U, _ = plots.matrices(self._plots.matrix).get(label, ([], [], []))
        cells = {}
        if programs and all(x is not None for row in U for x in row):
            N = dynamics.DEFAULT_POPULATION
            for r in dynamics.moran_rows(self._condition, programs, U, N):
                cells[(r.invader, r.resident)] = (f"{r.fixation:.3g}", min(1.0, r.fixation * N / 2))
            for p in programs:
                cells[(p, p)] = ("–", math.nan)
        self.query_one("#moran-matrix", PairMatrix).set_cells(programs, cells, corner="invader \\ resident")
        self.query_one("#plot-dynamics-caption", Static).update(Content.styled(
            f"Replicator from the uniform mix · rest (step {last}): {', '.join(rest) or '–'}", "dim"))
        N = dynamics.DEFAULT_POPULATION
        self.query_one("#moran-caption", Static).update(Content.styled(
            f"Moran, N = {N}: fixation probability of one invader (row) among {N - 1} residents (column); "
            f"neutral {1 / N:g}", "dim"))

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

    def _compute(self, what: str, fn) -> None:
        """fn(store) for the shown tournament in a worker, once: a tab shown again while its data is on the
        way waits for the same worker (a second one would cancel the first)."""
        from ..loading import compute

        if (what, self.tid) in self._computing:
            return
        self._computing.add((what, self.tid))
        compute(self, what, self.tid, fn)

    def computed(self, what: str, tid: int, value) -> None:
        """A worker's Programs or Plots data (on the UI thread), kept for the tournament it was computed for."""
        self._computing.discard((what, tid))
        if tid != self.tid or self._loading:
            return
        setattr(self, {"programs": "_programs", "plots": "_plots", "equilibria": "_equilibria",
                       "disclosure": "_disclosure"}[what], value)
        self._fill_active()
        self._focus_active()  # a table cannot take the focus while it is loading: it takes it now
        self.refresh_bindings()  # and its keys count again

    # -- actions --------------------------------------------------------------------------------------------------
    def action_trials(self) -> None:
        if self.tid is None or self._loading:
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

    def action_tab(self, step: int, selector: str = "#results-tabs") -> None:
        """[ and ]: the previous / next tab ({ and }: the plots' own tabs), wrapping around."""
        tabs = self.query_one(selector, TabbedContent)
        ids = [pane.id for pane in tabs.query(TabPane) if pane.id and pane.parent.parent is tabs]  # (not nested)
        if not ids:
            return
        i = ids.index(tabs.active) if tabs.active in ids else 0
        tabs.active = ids[(i + step) % len(ids)]
        self.set_focus(None)
        self._focus_active()

    def action_plot_tab(self, step: int) -> None:
        tabs = self.query_one("#results-tabs", TabbedContent)
        if tabs.active != "tab-plots":
            tabs.active = "tab-plots"
            return
        self.action_tab(step, "#plot-tabs")

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "plot_tab" and self.query("#results-tabs"):  # shown on the Plots tab only
            return self.query_one("#results-tabs", TabbedContent).active == "tab-plots"
        return super().check_action(action, parameters)

    def action_refresh(self) -> None:
        self.load(self.tid)


def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _sort_value(x):
    if _missing(x):
        return 0
    return x


class ExportDialog(ContainsFailures, ModalScreen[list[Path] | None]):
    """Every export format; a table (text formats) or a plot (png, svg) to put in it; the file."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, tid: int):
        super().__init__(classes="dialog-screen")
        self.tid = tid
        self._folder_mode = False  # the path is a folder (every plot at once)

    def compose(self) -> ComposeResult:
        from .. import exporting

        formats = exporting.formats()
        choices = exporting.choices(formats[0])
        with Vertical(classes="dialog", id="export-dialog"):
            yield Static(Content.from_markup("[b]Export tournament $t[/]", t=str(self.tid)), classes="dialog-question")
            yield Label("Format")
            yield Select([(f, f) for f in formats], value=formats[0], allow_blank=False, id="export-format")
            yield Label("Table", id="export-what-label")
            yield Select(choices, value=choices[0][1], allow_blank=False, id="export-what")
            yield Label("File", id="export-path-label")
            yield Input(str(exporting.default_path(self.tid, formats[0], choices[0][1])), id="export-path")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Export", id="export", variant="success")

    def _selected(self) -> tuple[str, str]:
        return (str(self.query_one("#export-format", Select).value), str(self.query_one("#export-what", Select).value))

    @on(Select.Changed, "#export-format")
    def _fmt(self, event: Select.Changed) -> None:
        from .. import exporting

        fmt_ = str(event.value)
        what = self.query_one("#export-what", Select)
        choices = exporting.choices(fmt_)
        with what.prevent(Select.Changed):
            what.set_options(choices)
            what.value = choices[0][1]
        self.query_one("#export-what-label", Label).update("Plot" if fmt_ in ("png", "svg") else "Table")
        self._update_path()

    @on(Select.Changed, "#export-what")
    def _what(self, event: Select.Changed) -> None:
        self._update_path()

    def _update_path(self) -> None:
        """The new default name, in the folder the user chose so far."""
        from .. import exporting

        fmt_, what = self._selected()
        folder_mode = fmt_ in exporting.exports.PLOT_FORMATS and what == "all"
        path = self.query_one("#export-path", Input)
        current = Path(path.value.strip() or ".")
        folder = current if self._folder_mode else current.parent
        self._folder_mode = folder_mode
        self.query_one("#export-path-label", Label).update("Folder" if folder_mode else "File")
        path.value = str(folder) if folder_mode else str(folder / exporting.default_path(self.tid, fmt_, what).name)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#export")
    @on(Input.Submitted, "#export-path")
    def _export(self) -> None:
        from .. import exporting

        fmt_, what = self._selected()
        path = Path(self.query_one("#export-path", Input).value.strip() or exporting.default_path(self.tid, fmt_, what))
        from ..loading import run_query

        tid = self.tid

        def work(store):
            try:
                return exporting.export(store, tid, fmt_, path, what), None
            except Exception as exc:  # noqa: BLE001: whatever stops the export is shown in the dialog, type and message
                return None, exc

        self.query_one("#export", Button).disabled = True
        self.query_one("#export", Button).label = "Exporting…"
        run_query(self, "export", work, self._exported)

    def _exported(self, value) -> None:
        out, exc = value
        button = self.query_one("#export", Button)
        button.disabled, button.label = False, "Export"
        if exc is not None:
            self.notify(f"Export failed: {exc}", severity="error", timeout=10)
            return
        shown = str(out[0]) if len(out) == 1 else f"{len(out)} files in {out[0].parent}"
        self.notify(f"Exported tournament {self.tid} to {shown}")
        self.dismiss(out)


def _match_axes(cfg: dict) -> str:
    """The repeated-game axes of a stored config, as the header says them ('' for a one-shot tournament)."""
    parts = []
    if cfg.get("rounds", [1]) != [1]:
        parts.append("rounds " + " ".join(map(str, cfg["rounds"])))
    if cfg.get("continuations", [None]) != [None]:
        parts.append("continuation " + " ".join("none" if p is None else f"{p:g}" for p in cfg["continuations"]))
    if cfg.get("noises", [0.0]) != [0.0]:
        parts.append("noise " + " ".join(f"{x:g}" for x in cfg["noises"]))
    if cfg.get("recalls", [None]) != [None]:
        parts.append("recall " + " ".join("all" if k is None else str(k) for k in cfg["recalls"]))
    return "".join(f" · {p}" for p in parts)
