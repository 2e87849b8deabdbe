"""The stored trials of one cell: each trial's simulation tree and its nodes' LLM transcripts."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Static, Tree

from .. import format as fmt
from ..failures import ContainsFailures
from ..textual_patches import SteadyTable
from ..timeline import Timeline
from ..widgets import AppHeader, ArenaFooter, Heat, SimTree, StoredNode, Transcript


class TrialsScreen(ContainsFailures, Screen):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("t", "focus_tree", "Tree"),
        Binding("l", "focus_list", "Trials", show=False),
        Binding("left_square_bracket", "round(-1)", "Prev round", key_display="["),
        Binding("right_square_bracket", "round(1)", "Next round", key_display="]"),
        # a match's rounds (an episode's steps) on the arrow keys too, wherever the focus is: the trial list is
        # too narrow to scroll sideways and the tree does not bind them (only while a match is shown)
        Binding("left", "round(-1)", "Prev round", show=False, priority=True),
        Binding("right", "round(1)", "Next round", show=False, priority=True),
    ]

    def __init__(self, tid: int, cell):
        super().__init__()
        self.tid = tid
        self.cell = cell

    def compose(self) -> ComposeResult:
        yield AppHeader("results")
        with Horizontal(id="trials"):
            yield SteadyTable(id="trial-list", cursor_type="row", zebra_stripes=True, classes="panel")
            with Vertical(id="trial-right"):
                yield Timeline(id="trial-rounds", classes="panel")
                yield Static(id="trial-grid", classes="panel")
                yield SimTree(id="trial-tree", classes="panel")
                yield Transcript(id="trial-transcript", classes="panel")
        yield ArenaFooter()

    PAGE = 500  # trials fetched at a time (a cell can hold 40,000: fetched as the cursor nears the end)

    def on_mount(self) -> None:
        c = self.cell
        self.trials: list[dict] = []
        self._by_id: dict[int, dict] = {}
        self._more = True  # (until a page comes back short)
        self._fetching = False
        self.coop_action = self.defect_action = None
        self._code = None  # (programs, Game) when a code program plays, else None
        self._rounds: list[dict] = []  # the shown trial's rounds (a match), [] for a one-round trial
        self._round: int | None = None  # the round whose tree is shown (None: the last)
        from arena.analysis.conditions import base_game

        self._match = base_game(c.game) != c.game  # a cell of matches (its rules are in its game's label)
        timeline = self.query_one("#trial-rounds", Timeline)
        timeline.display = self._match
        timeline.border_title = "Rounds · ← → or [ ]: round"
        self.query_one("#trial-grid").display = False
        table = self.query_one("#trial-list", DataTable)
        table.border_title = (f"{c.row_program} vs {c.col_program} · "
                              f"{fmt.condition(c.game, c.epsilon, c.max_depth, c.temperature, short=True)}")
        table.border_subtitle = "loading…"
        for col in ("#", "row", "col", "pay", "depth", "calls"):  # (a failed trial's status stands in its pay)
            table.add_column(col, key=col)
        table.loading = True
        self.query_one("#trial-tree").border_title = "Simulation tree"
        self.query_one("#trial-transcript").border_title = "LLM transcript"
        table.focus()
        self._fetch()

    def _fetch(self) -> None:
        """The next page of the cell's trials, in a worker (the screen answers keys meanwhile)."""
        from ..loading import run_query

        if self._fetching or not self._more:
            return
        self._fetching = True
        c, tid, offset, page, first = self.cell, self.tid, len(self.trials), self.PAGE, not self.trials
        from arena.analysis.conditions import condition_where

        game_where, game_params = condition_where(c.game)  # the game and its match rules
        where = (game_where + " AND row_program=? AND col_program=? AND epsilon=? AND max_depth=? "
                 "AND coalesce(temperature, -1.0) = coalesce(?, -1.0)")
        params = (*game_params, c.row_program, c.col_program, c.epsilon, c.max_depth, c.temperature)

        def query(store):
            rows = store.trial_rows(tid, where, params, limit=page, offset=offset)
            return rows, (store.snapshot(tid) if first else None)

        run_query(self, "trials-page", query, self._page)

    def _page(self, value) -> None:
        rows, snapshot = value
        self._fetching = False
        self._more = len(rows) == self.PAGE
        if snapshot is not None:
            progs, games = snapshot
            from arena.analysis.conditions import base_game

            game = games.get(base_game(self.cell.game), {})
            if game.get("kind") == "lbf":  # a game with a state: every trial is an episode of steps
                self._match = True
                self.query_one("#trial-rounds").display = True
                self.query_one("#trial-rounds").border_title = "Steps · ← → or [ ]: step"
                self.refresh_bindings()
            self._code = _code_context(progs, game)
            self.coop_action, self.defect_action = game.get("default_action"), game.get("defect_action")
        table = self.query_one("#trial-list", DataTable)
        table.loading = False
        heat = Heat(self.app)
        first = not self.trials
        pay = ("row_total", "col_total") if self._match else ("row_payoff", "col_payoff")  # a match: its totals
        self.trials.extend(rows)
        self._by_id.update((t["id"], t) for t in rows)
        for t in rows:
            coop = bool(t["cooperative"])
            act_style = heat.style(1.0 if coop else 0.0) if t["status"] == "ok" else ""
            table.add_row(
                Text(f"{t['trial_index'] + 1:,}", justify="right"),
                Text(t["row_action"] or "–", style=act_style), Text(t["col_action"] or "–", style=act_style),
                Text(f"{fmt.num(t[pay[0]], 1)},{fmt.num(t[pay[1]], 1)}", justify="right")
                if t["status"] == "ok" else Text(t["status"], style=heat.style(0.0), justify="right"),
                Text(f"{t['row_depth']}/{t['col_depth']}", justify="right"),
                Text(str(t["n_calls"]), justify="right"),
                key=str(t["id"]))
        total = f"{self.cell.trials:,}"
        shown = f"{len(self.trials):,} of {total} trials" if self._more else f"{total} trials"
        table.border_subtitle = (f"{shown} · {'last round, totals · ' if self._match else ''}depth row/col · "
                                 "enter: tree")
        if first:
            table.focus()  # (again: the loading overlay took the focus from the table)
        if first and self.trials:
            self._show(self.trials[0])
        if table.cursor_row >= len(self.trials) - 20:  # the cursor is already near the end: one more page
            self._fetch()

    @on(DataTable.RowHighlighted, "#trial-list")
    def _row(self, event: DataTable.RowHighlighted) -> None:
        if event.cursor_row >= len(self.trials) - 20:  # near the end of what is loaded: the next page
            self._fetch()
        tid = int(event.row_key.value)
        trial = self._by_id.get(tid)
        if trial is not None:
            self._show(trial)

    @on(DataTable.RowSelected, "#trial-list")
    def _enter(self) -> None:
        self.action_focus_tree()

    def _show(self, trial: dict, keep_round: bool = False) -> None:
        store = self.app.store
        if not keep_round or getattr(self, "_trial", None) is not trial:
            self._rounds = store.rounds(trial["id"]) if self._match else []
            self._round = None
        rows = store.nodes(trial["id"])
        shown_round = None
        if self._rounds:  # a match: the tree of the selected round (the last by default, or the failed one)
            shown_round = self._round if self._round is not None else max(r["round"] for r in rows)
            rows = [r for r in rows if r["round"] == shown_round]
            self.query_one(Timeline).show(self._rounds, shown_round, Heat(self.app).style)
            self._show_grid(self._rounds[shown_round] if shown_round < len(self._rounds) else None)
        calls = store.calls(trial_id=trial["id"]) if trial["n_calls"] else []
        nodes = StoredNode.from_rows(rows, calls)
        self._all_nodes = StoredNode.from_rows(store.nodes(trial["id"]), []) if self._rounds else nodes
        tree = self.query_one(SimTree)
        tree.show(("stored", trial["id"], shown_round), nodes, finished=True, coop_action=self.coop_action,
                  defect_action=self.defect_action)
        if shown_round is not None and shown_round < len(self._rounds):
            r = self._rounds[shown_round]
            outcome = f"round {shown_round + 1}: {r['row_action']} / {r['col_action']}"
        else:
            outcome = (f"{trial['row_action']} / {trial['col_action']}" if trial["status"] == "ok"
                       else f"{trial['status']}: {fmt.ellipsize(trial['error'] or '', 60)}")
        tree.border_subtitle = outcome
        self._trial, self._trial_nodes = trial, nodes
        self._title()

    def _show_grid(self, step: dict | None) -> None:
        """A grid world's step: the field as the row agent saw it before both moved (R row, C column agent with
        their levels; food as its level)."""
        import json

        from ..timeline import grid_text

        grid = self.query_one("#trial-grid", Static)
        state = json.loads(step["state"]) if step is not None and step.get("state") else None
        grid.display = state is not None
        if state is not None:
            grid.update(grid_text(state[0]))
            grid.border_title = f"Step {state[0]['step'] + 1} · R row, C column (level) · food level"

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "round" and not getattr(self, "_match", False):
            return False  # (the round keys are a match's: not in the footer of one-round trials, and the arrow
            # keys go to the focused widget)
        return True

    def action_round(self, step: int) -> None:
        """The tree of the previous or next round of the match shown."""
        if not self._rounds:
            return
        last = len(self._rounds) - 1
        now = self._round if self._round is not None else last
        self._round = max(0, min(last, now + step))
        self._show(self._trial, keep_round=True)

    def _title(self) -> None:
        """'Trial 3 · seed 123…' where the pane is wide enough for the whole seed, else 'Trial 3': a number
        is shown whole or not at all."""
        trial = getattr(self, "_trial", None)
        if trial is None:
            return
        tree = self.query_one(SimTree)
        title = f"Trial {trial['trial_index'] + 1} · seed {trial['seed']}"
        tree.border_title = title if len(title) + 6 <= tree.size.width else f"Trial {trial['trial_index'] + 1}"

    def on_resize(self) -> None:
        self.call_after_refresh(self._title)  # (once the panes have their new widths)
        self.query_one(Transcript).show(None)

    @on(Tree.NodeHighlighted, "#trial-tree")
    def _node(self, event: Tree.NodeHighlighted) -> None:
        n = event.node.data
        if n is not None:
            ctx = None
            if self._code is not None and isinstance(n, StoredNode):
                from arena.engine.code import stored_ctx

                t = self._trial
                rules = None
                if self._rounds:
                    from arena.engine.records import MatchRules

                    rules = MatchRules(t["rounds"], t["continuation"], t["noise"], t["recall"])
                from arena.engine.disclosure import FULL_DISCLOSURE, Disclosure

                level = t.get("disclosure") or "full"
                disclosure = FULL_DISCLOSURE if level == "full" else Disclosure(
                    level, self.app.store.tournament(self.tid).config.get("obfuscate_prompts", "shuffle"))
                ctx = stored_ctx(self._all_nodes, n.index, t["seed"], t["epsilon"], t["row_program"], t["col_program"],
                                 *self._code, self._rounds, rules, disclosure)
            tx = self.query_one(Transcript)
            tx.show(n, self.app.store.calls(node_id=n.node_id) if n.calls else [], ctx=ctx)
            tx.border_title = "Code node · ctx, value, output" if ctx is not None else "LLM transcript"

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_focus_tree(self) -> None:
        tree = self.query_one(SimTree)
        tree.focus()
        if tree.cursor_line < 0 and tree.last_line >= 0:
            tree.cursor_line = 0

    def action_focus_list(self) -> None:
        self.query_one("#trial-list").focus()


def _code_context(progs: dict, game: dict):
    """The tournament's programs and the game, when a code program plays (to rebuild a node's ctx)."""
    if not any(p.get("kind") == "code" for p in progs.values()) or not game:
        return None
    from arena.library.games import parse_game
    from arena.library.programs import program_from_json

    return {k: program_from_json(v) for k, v in progs.items()}, parse_game(game)
